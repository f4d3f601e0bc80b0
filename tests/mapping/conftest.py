"""Sample WorkMail records and document helpers shared by the mapping tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from forwarder.errors import MappingError
from forwarder.mapping import LOG_TYPES, event_id, event_time_ms, map_record

ROOT = Path(__file__).resolve().parents[2]
# Golden files: `<log type>.jsonl` inputs (the samples, then edge cases described in
# cases.json by line number) and `<log type>.ocsf.ndjson` / `.ecs.ndjson` outputs,
# written by scripts/regen_golden.py.
GOLDEN_DIR = ROOT / "tests" / "mapping" / "golden"
# Event time of records that state none (email events without messageTimestamp):
# 2024-06-13T00:00:00Z, so that golden outputs do not depend on the clock.
GOLDEN_TIME_MS = 1_718_236_800_000


def samples_dir() -> Path:
    """The samples bundled with the package."""
    return ROOT / "forwarder" / "samples"


def sample_lines() -> Iterator[tuple[str, str]]:
    """(log type, record text); each file is named after its log type."""
    for path in sorted(samples_dir().glob("*.jsonl")):
        log_type = path.stem.upper()
        for line in path.read_text().splitlines():
            if line.strip():
                yield log_type, line


def sample_records() -> Iterator[tuple[str, dict[str, Any]]]:
    for log_type, line in sample_lines():
        yield log_type, orjson.loads(line)


def sample_ids() -> list[str]:
    counts: dict[str, int] = {}
    ids = []
    for log_type, _ in sample_lines():
        counts[log_type] = counts.get(log_type, 0) + 1
        ids.append(f"{log_type.lower()}-{counts[log_type]}")
    return ids


def leaves(doc: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every leaf; list items share their list's path."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from leaves(value, f"{path}.{key}" if path else key)
    elif isinstance(doc, list):
        for item in doc:
            yield from leaves(item, path)
    else:
        yield path, doc


def empties(doc: Any, path: str = "") -> Iterator[str]:
    """Paths holding None, "", [] or {}: mapped documents must never contain them."""
    if doc is None or doc == "" or doc == [] or doc == {}:
        yield path or "<root>"
    elif isinstance(doc, dict):
        for key, value in doc.items():
            yield from empties(value, f"{path}.{key}" if path else key)
    elif isinstance(doc, list):
        for item in doc:
            yield from empties(item, path)


def golden_lines() -> Iterator[tuple[str, int, str]]:
    """(log type, line number from 1, record text) of every golden input."""
    for log_type in LOG_TYPES:
        path = GOLDEN_DIR / f"{log_type.lower()}.jsonl"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                yield log_type, number, line


def golden_output(log_type: str, line: str, schema: str) -> dict[str, Any]:
    """What the mapper makes of a golden input line: the document, or
    {"mapping_error": reason}. Deterministic: the record's own time or GOLDEN_TIME_MS,
    the deterministic event id, raw = the line."""
    record = orjson.loads(line)
    try:
        uid = event_id(record, log_type)
        time_ms = event_time_ms(record, log_type)
        if time_ms is None:
            time_ms = GOLDEN_TIME_MS
        return map_record(record, log_type, schema, event_id=uid, time_ms=time_ms, raw=line)
    except MappingError as exc:
        return {"mapping_error": exc.reason}
