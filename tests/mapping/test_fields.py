"""The mapping table (forwarder/mapping/fields.py) against the mappers and the docs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from forwarder import mapping
from forwarder.mapping.fields import KINDS, Kind, Row

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "forwarder" / "samples"
GOLDEN = ROOT / "tests" / "mapping" / "golden"
EMPTY: tuple[Any, ...] = (None, "", [], {})


def values_at(doc: Any, path: str) -> list[Any]:
    nodes = [doc]
    for step in path.split("."):
        key = step.removesuffix("[]")
        found = []
        for node in nodes:
            if isinstance(node, dict) and key in node:
                value = node[key]
                found.extend(value if step.endswith("[]") and isinstance(value, list) else [value])
        nodes = found
    return [node for node in nodes if node not in EMPTY]


def flat(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        out.extend(value if isinstance(value, list) else [value])
    return out


def records(kind: Kind) -> list[dict[str, Any]]:
    found = []
    for directory in (SAMPLES, GOLDEN):
        for path in sorted(directory.glob(f"{kind.log_type.lower()}*.jsonl")):
            found += [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return found


def mapped(record: dict[str, Any], log_type: str, schema: str) -> dict[str, Any]:
    time_ms = mapping.event_time_ms(record, log_type) or 1718182800000
    return mapping.map_record(
        record, log_type, schema, event_id="0" * 32, time_ms=time_ms, raw=None
    )


CASES = [(kind, row) for kind in KINDS for row in kind.rows]


@pytest.mark.parametrize(("kind", "row"), CASES, ids=[f"{k.log_type}:{r.source}" for k, r in CASES])
def test_row_matches_the_mappers(kind: Kind, row: Row) -> None:
    seen = 0
    for record in records(kind):
        value = values_at(record, row.source)
        if not value:
            continue
        source = value[0]
        seen += 1
        for schema, path in (("ocsf", row.ocsf), ("ecs", row.ecs)):
            got = values_at(mapped(record, kind.log_type, schema), path)
            assert got, f"{schema}: {row.source}={source!r} not at {path}"
            if row.verbatim and isinstance(source, str):
                assert source in flat(got), f"{schema}: {path} has {got!r}, not {source!r}"
            if (
                row.verbatim
                and isinstance(source, list)
                and all(isinstance(v, str) for v in source)
            ):
                assert set(source) <= set(flat(got)), f"{schema}: {path} has {got!r}"
    assert seen, f"no sample or golden record of {kind.log_type} has {row.source}"


def test_every_kind_is_in_the_table() -> None:
    assert {kind.log_type for kind in KINDS} == set(mapping.LOG_TYPES)


def test_docs_are_generated_from_the_table() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_mapping_doc.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
