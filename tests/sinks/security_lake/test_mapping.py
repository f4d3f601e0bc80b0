"""What the lake stores for each OCSF 1.5.0 document: valid OCSF 1.3.0 of the same class,
nothing lost (what 1.3.0 has no column for is in `unmapped`), the documented changes
only; the vendored column tree is the generator's; the sink's configuration."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from forwarder.config import ConfigError, parse_config
from forwarder.errors import MappingError
from forwarder.mapping import LOG_TYPES, event_id, map_record
from forwarder.sinks.security_lake.columns import MOVED_PREFIX, lake_classes, text
from forwarder.sinks.security_lake.downgrade import to_ocsf_1_3
from forwarder.sinks.security_lake.sink import locations
from tests.mapping.conftest import GOLDEN_DIR
from tests.mapping.test_properties import records
from tests.sinks.security_lake import gen_schema
from tests.sinks.security_lake.conftest import lake_config
from tests.sinks.security_lake.lake import expected
from tests.sinks.security_lake.ocsf_1_3_validator import validate_ocsf_1_3

SETTINGS = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
_Path = tuple[str | int, ...]


def golden_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(GOLDEN_DIR.glob("*.ocsf.ndjson")):
        docs += [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return docs


def _render(path: _Path) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def _get(doc: Any, path: _Path) -> Any:
    for step in path:
        if isinstance(step, int):
            if not isinstance(doc, list) or step >= len(doc):
                return _MISSING
        elif not isinstance(doc, dict) or step not in doc:
            return _MISSING
        doc = doc[step]
    return doc


_MISSING = object()
# (class_uid, path) -> {1.5.0 value: stored value}: the value changes OCSF 1.3.0 needs.
_CHANGED = {
    (3002, ("auth_protocol_id",)): {11: 99},
    (4009, ("activity_id",)): {4: 99},
    (4009, ("type_uid",)): {400904: 400999},
    (4009, ("type_name",)): {"Email Activity: Trace": "Email Activity: Other"},
    (None, ("metadata", "version")): {"1.5.0": "1.3.0"},
}


def _leaves(value: Any, path: _Path) -> list[tuple[_Path, Any]]:
    if isinstance(value, dict) and value:
        return [leaf for key, inner in value.items() for leaf in _leaves(inner, (*path, key))]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [leaf for n, inner in enumerate(value) for leaf in _leaves(inner, (*path, n))]
    return [(path, value)]


def assert_nothing_lost(original: dict[str, Any], stored: dict[str, Any]) -> None:
    """Every leaf of the 1.5.0 document is in the stored one: at its place (changed only
    as documented), under `unmapped` as `ocsf.<path>`, or, for the document's own
    `unmapped`, under its dotted key."""
    unmapped = stored.get("unmapped", {})
    uid = original["class_uid"]
    for path, value in _leaves(original, ()):
        if path == ("metadata", "profiles"):
            continue  # checked below
        if path[0] == "unmapped":  # flattened through objects, a list is one value
            lists = [n for n, step in enumerate(path) if isinstance(step, int)]
            whole = path[: lists[0]] if lists else path
            key = ".".join(str(step) for step in whole[1:])
            assert unmapped.get(key) == text(_get(original, whole)), (key, value)
            continue
        change = _CHANGED.get((uid, path)) or _CHANGED.get((None, path)) or {}
        new = change.get(value, value) if isinstance(value, int | str) else value
        if _get(stored, path) == new:
            continue
        if (
            path == ("email", "delivered_to_list")
            and [stored["email"].get("delivered_to")] == value
        ):
            continue
        moved = [
            k for k in range(len(path), 0, -1) if not isinstance(_get(original, path[:k]), dict)
        ]
        keys = [(MOVED_PREFIX + _render(path[:k]), _get(original, path[:k])) for k in moved]
        assert any(unmapped.get(key) == text(whole) for key, whole in keys), (path, value, unmapped)
    lake = lake_classes()[uid]
    profiles = [p for p in original["metadata"]["profiles"] if p in lake.profiles] + ["datetime"]
    assert stored["metadata"]["profiles"] == profiles


@pytest.mark.parametrize("doc", golden_documents(), ids=lambda d: d["metadata"]["uid"][:12])
def test_golden_documents_are_valid_ocsf_1_3_and_lose_nothing(doc: dict[str, Any]) -> None:
    stored = expected(doc)
    validate_ocsf_1_3(stored)
    assert_nothing_lost(doc, stored)
    assert stored["time_dt"].endswith("Z") and stored["metadata"]["version"] == "1.3.0"


@pytest.mark.parametrize("log_type", LOG_TYPES)
@pytest.mark.parametrize("wrong", [False, True], ids=["typed", "any-type"])
def test_any_record_stores_as_valid_ocsf_1_3_losing_nothing(log_type: str, wrong: bool) -> None:
    @SETTINGS
    @given(records(log_type, wrong))
    def check(record: dict[str, Any]) -> None:
        try:
            doc = map_record(record, log_type, "ocsf", event_id=event_id(record, log_type),
                             time_ms=1_718_236_800_000, raw=orjson.dumps(record).decode())  # fmt: skip
        except MappingError:
            return
        doc = orjson.loads(orjson.dumps(doc))
        stored = expected(doc)
        validate_ocsf_1_3(stored)
        assert_nothing_lost(doc, stored)

    check()


def test_the_documented_value_changes() -> None:
    email = {"class_uid": 4009, "activity_id": 4, "activity_name": "Trace", "type_uid": 400904,
             "type_name": "Email Activity: Trace", "message_trace_uid": "t-1",
             "metadata": {"version": "1.5.0", "profiles": ["cloud", "security_control"]},
             "email": {"to": ["a@example.com"], "delivered_to_list": ["a@example.com"]}}  # fmt: skip
    out = to_ocsf_1_3(email, ("cloud", "datetime", "host", "security_control"))
    assert (out["activity_id"], out["activity_name"], out["type_uid"]) == (99, "Trace", 400999)
    assert out["email"] == {"to": ["a@example.com"], "delivered_to": "a@example.com",
                            "from": "unknown@unknown.invalid"}  # fmt: skip
    assert out["metadata"] == {"version": "1.3.0",
                               "profiles": ["cloud", "security_control", "datetime"]}  # fmt: skip
    api = {"class_uid": 6003, "metadata": {"profiles": ["cloud", "security_control"]},
           "action_id": 2, "time": 1}  # fmt: skip
    row = lake_classes()[6003].row(to_ocsf_1_3(api, ("cloud", "datetime")))
    assert row["metadata"]["profiles"] == ["cloud", "datetime"]
    assert row["unmapped"] == {"ocsf.action_id": "2"} and row["time_dt"] == 1


def test_the_vendored_column_tree_is_what_the_generator_writes() -> None:
    assert gen_schema.main(["--check"]) == 0, "run: python -m tests.sinks.security_lake.gen_schema"


def test_each_class_schema_has_its_classification_and_a_map_for_unmapped() -> None:
    for uid, lake in lake_classes().items():
        schema = lake.schema
        assert schema.metadata == {b"ocsf_version": b"1.3.0", b"ocsf_class_uid": str(uid).encode()}
        assert str(schema.field("time").type) == "int64"
        assert str(schema.field("time_dt").type) == "timestamp[ms, tz=UTC]"
        assert str(schema.field("unmapped").type) == "map<string, string>"
        assert str(schema.field("metadata").type).startswith("struct<")
        assert schema.field("class_uid").type.bit_width == 32


def _sink(**options: Any) -> dict[str, Any]:
    return {"id": "lake", "type": "security_lake", "region": "us-east-1",
            "account_id": "111122223333", "bucket": "lake-bucket", **options}  # fmt: skip


def _problems(sink: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config({"sources": [{"id": "in", "type": "files", "path": "."}], "sinks": [sink]})
    return "\n".join(caught.value.problems)


def test_configuration() -> None:
    config = parse_config({"sources": [{"id": "in", "type": "files", "path": "."}],
                           "sinks": [_sink(locations={"auth": "s3://other-bucket/ext/x/2/"})]})  # fmt: skip
    where = locations(config.sinks[0])  # type: ignore[arg-type]
    assert where[3002].uri == "s3://other-bucket/ext/x/2/"
    assert where[4009].uri == "s3://lake-bucket/ext/workmail-email/1.0/"
    assert "schema: Security Lake stores OCSF only" in _problems(_sink(schema="ecs"))
    assert "bucket: required" in _problems({**_sink(), "bucket": None})
    assert "must hold at least one batch" in _problems(_sink(queue={"max_events": 10}))
    assert "is not 1-20 of" in _problems(_sink(source_name="workmail-forwarder-{class}"))
    assert "12-digit AWS account" in _problems(_sink(account_id="1234"))
    assert "not one of the classes" in _problems(_sink(locations={"dns": "s3://b-1/x/"}))
    assert "expected s3://BUCKET/PREFIX/" in _problems(_sink(locations={"3002": "lake/x"}))
    assert lake_config("http://x", "b-1").view == "ocsf"
