"""The mapping hot path's memo caches: bounded, and never changing an output.

The caches (IP validity, organisation ARNs, the last ISO string parsed, the last second
formatted, OCSF type names, per-log-type id hashers) hold only immutable values; a
consumer mutating a mapped document must not change what a later mapping returns.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from hashlib import blake2b
from typing import Any

import orjson
import pytest

from forwarder.errors import MappingError
from forwarder.mapping import LOG_TYPES, common, event_id, event_time_ms, ids, map_record, ocsf
from forwarder.mapping.common import (
    AUTHENTICATION,
    FIELD_SPECS,
    is_ip,
    iso_ms,
    parse_org_arn,
    parse_time_ms,
    read_fields,
)
from tests.mapping.conftest import GOLDEN_DIR, golden_lines, golden_output

SCHEMAS = ("ocsf", "ecs")
LINES = list(golden_lines())
EXPECTED: dict[tuple[str, str], list[bytes]] = {
    (log_type, schema): [
        text
        for text in (GOLDEN_DIR / f"{log_type.lower()}.{schema}.ndjson").read_bytes().splitlines()
        if text.strip()
    ]
    for log_type in LOG_TYPES
    for schema in SCHEMAS
}


def test_ip_cache_is_bounded() -> None:
    for n in range(common.IP_CACHE_MAX + 500):
        address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        assert is_ip(address)
        assert not is_ip(address + ".1")
        assert len(common._IP_OK) <= common.IP_CACHE_MAX
    for n in range(common.IP_CACHE_MAX + 500):
        assert is_ip(f"2001:db8::{n:x}")
        assert len(common._IP_OK) <= common.IP_CACHE_MAX


def test_ip_cache_keeps_no_long_keys() -> None:
    junk = "1" * (common._CACHE_KEY_MAX + 1)
    assert not is_ip(junk)
    assert junk not in common._IP_OK


@pytest.mark.parametrize(
    "value",
    ["198.51.100.1", "::1", "2001:db8::1", "fe80::1%eth0", "1.2.3.04", "::ffff:1.2.3.4", "x", ""],
)
def test_ip_cache_answers_as_uncached(value: str) -> None:
    expected = common._IPV4.fullmatch(value) is not None or common._is_ipv6(value)
    for _ in range(3):  # cold, then warm
        assert is_ip(value) is expected
        values, _ = read_fields({"source_ip": value}, FIELD_SPECS[AUTHENTICATION])
        assert ("source_ip" in values) is (expected and value != "")


def test_org_cache_is_bounded() -> None:
    spec = FIELD_SPECS[AUTHENTICATION]
    for n in range(common.ORG_CACHE_MAX + 300):
        arn = f"arn:aws:workmail:us-east-1:{n:012d}:organization/m-{n}"
        values, _ = read_fields({"organization_arn": arn}, spec)
        assert values["org"] == ("us-east-1", f"{n:012d}", f"m-{n}")
        values, extra = read_fields({"organization_arn": f"arn:aws:s3:::b{n}"}, spec)
        assert "org" not in values and "organization_arn" in extra
        assert len(common._ORGS) <= common.ORG_CACHE_MAX
    long_arn = "arn:aws:workmail:us-east-1:1:organization/" + "m" * common._CACHE_KEY_MAX
    values, _ = read_fields({"organization_arn": long_arn}, spec)
    assert values["org"] == parse_org_arn(long_arn)
    assert long_arn not in common._ORGS


def test_cached_org_is_immutable() -> None:
    arn = "arn:aws:workmail:eu-west-1:111122223333:organization/m-immutable"
    first, _ = read_fields({"organization_arn": arn}, FIELD_SPECS[AUTHENTICATION])
    second, _ = read_fields({"organization_arn": arn}, FIELD_SPECS[AUTHENTICATION])
    assert type(first["org"]) is tuple and first["org"] == second["org"]


def test_iso_ms_cache_matches_uncached() -> None:
    base = 1_718_182_800_000
    for ms in (base, base + 1, base + 999, base + 1000, base - 1, 0, base + 1, base):
        expected = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        assert iso_ms(ms) == f"{expected}.{ms % 1000:03d}Z"


def test_parse_iso_cache_matches_uncached() -> None:
    texts = ["2024-06-12T08:00:00Z", "2024-06-12T08:00:00.123+02:00", "2024-06-12", "nope"]
    for text in texts + texts[::-1] + texts:
        assert parse_time_ms(text) == common._parse_iso_uncached(text.strip())
        assert parse_time_ms(text) == parse_time_ms(text)
    long_text = "2024-06-12T08:00:00" + " " * common._CACHE_KEY_MAX
    assert parse_time_ms(long_text) == parse_time_ms("2024-06-12T08:00:00")


def test_event_time_inline_int_matches_parse() -> None:
    for value in (100_000_000_000, 1_718_182_800_123, 99_999_999_999, 10**17, -5, True):
        record = {"event_timestamp": value}
        assert event_time_ms(record, AUTHENTICATION) == parse_time_ms(value)


def test_event_id_hashers() -> None:
    record = {"b": 1, "a": [1, 2], "c": {"z": None}}
    body = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    for log_type in (*LOG_TYPES, "SOME_OTHER_TYPE"):
        expected = blake2b(log_type.encode() + b"\0" + body, digest_size=16).hexdigest()
        for _ in range(3):  # the pre-fed hasher must not be updated in place
            assert event_id(record, log_type) == expected
    assert set(ids._HASHERS) == set(LOG_TYPES)


def test_type_name_cache_is_bounded() -> None:
    for log_type, _, line in LINES:
        golden_output(log_type, line, "ocsf")
    assert 0 < len(ocsf._TYPE_NAMES) <= ocsf._TYPE_NAMES_MAX
    for key, name in ocsf._TYPE_NAMES.items():
        assert name == f"{key[0]}: {key[1]}"


def _mutate(doc: Any) -> None:
    """Mutate every nested dict and list of `doc` in place (children first)."""
    if isinstance(doc, dict):
        for value in doc.values():
            _mutate(value)
        for key in list(doc):
            doc[key] = "MUTATED"
        doc["mutated"] = ["MUTATED"]
    elif isinstance(doc, list):
        for item in doc:
            _mutate(item)
        doc[:] = ["MUTATED"] * len(doc)
        doc.append("MUTATED")


# (log type, golden input line, its position among that log type's golden outputs)
POSITIONED: list[tuple[str, str, int]] = []
for _log_type in LOG_TYPES:
    POSITIONED += [
        (log_type, line, position)
        for position, (log_type, _, line) in enumerate(t for t in LINES if t[0] == _log_type)
    ]


@pytest.mark.parametrize("schema", [*SCHEMAS, "raw"])
def test_mutating_output_does_not_poison_later_mappings(schema: str) -> None:
    for log_type, line, position in POSITIONED:
        first = golden_output(log_type, line, schema)  # warms every cache
        before = copy.deepcopy(first)
        _mutate(first)
        again = golden_output(log_type, line, schema)
        assert again == before
        if schema in SCHEMAS:
            assert again == orjson.loads(EXPECTED[(log_type, schema)][position])


def test_mutating_output_of_shared_record_objects() -> None:
    """A document built from a record, mutated, then the same record text mapped again."""
    for log_type, _, line in LINES:
        for schema in (*SCHEMAS, "raw"):
            record = orjson.loads(line)
            try:
                uid = event_id(record, log_type)
                time_ms = event_time_ms(record, log_type) or 1_718_236_800_000
                doc = map_record(record, log_type, schema, event_id=uid, time_ms=time_ms, raw=line)
            except MappingError:  # invalid records are covered by the goldens
                continue
            expected = copy.deepcopy(doc)
            _mutate(doc)
            fresh = orjson.loads(line)
            assert (
                map_record(fresh, log_type, schema, event_id=uid, time_ms=time_ms, raw=line)
                == expected
            )
