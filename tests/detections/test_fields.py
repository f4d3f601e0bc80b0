"""The pipelines' field tables against what the mapper really emits."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from forwarder import cli
from forwarder.detections.evaluate import flatten
from forwarder.detections.fields import FIELDS, KIND_CONDITION, LOG_TYPE_BY_CATEGORY
from tests.conftest import sample_records
from tests.detections.mapped import mapped
from tests.detections.scenarios import SCENARIOS, attack_records, benign_day


def corpus() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = list(sample_records()) + benign_day()
    for scenario in SCENARIOS:
        records += attack_records(scenario)
    return records


@pytest.mark.parametrize("schema", ["ecs", "ocsf"])
def test_every_target_field_is_single_valued_and_the_mapped_values_are_emitted(
    schema: str,
) -> None:
    assert set(LOG_TYPE_BY_CATEGORY) == set(FIELDS[schema])
    docs_by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in mapped(corpus(), schema):
        flat = dict(flatten(doc))
        kind = next(k for k, (f, v) in KIND_CONDITION[schema].items() if flat.get(f) == v)
        docs_by_kind.setdefault(kind, []).append(flat)
    for kind, table in FIELDS[schema].items():
        for source, target in table.items():
            values = [d[target.field] for d in docs_by_kind[kind] if target.field in d]
            # flatten() turns lists into JSON text: none may reach a field a rule compares.
            assert not any(isinstance(v, str) and v.startswith("[") for v in values), (
                f"{kind}.{source} -> {target.field} holds lists"
            )
            if target.values is None:
                continue
            emitted = set(values)
            outputs = set(target.values.values())
            if source == "event.eventName":  # the corpus has some of the nine names, not all
                assert emitted and emitted <= outputs
            else:
                assert outputs <= emitted, f"{kind}.{source}: {outputs - emitted} never emitted"


def test_the_helper_maps_like_the_map_command(
    tmp_path: Any, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    records = benign_day()[:300] + attack_records(SCENARIOS[0])
    path = tmp_path / "scenario.ndjson"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    for schema in ("ecs", "ocsf"):
        assert cli.main(["map", "--schema", schema, str(path)]) == 0
        out = capsysbinary.readouterr().out
        assert [orjson.loads(line) for line in out.splitlines()] == mapped(records, schema)
