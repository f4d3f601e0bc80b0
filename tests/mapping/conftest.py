"""Sample WorkMail records and document helpers shared by the mapping tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
# Vendored from the ECS 9.4.0 release (generated/ecs/ecs_flat.yml), so a fresh
# clone validates against the official definitions without network access.
ECS_SCHEMA = ROOT / "tests" / "schemas" / "ecs_flat-9.4.0.yml"


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
