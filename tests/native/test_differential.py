"""The native engine against the reference, byte for byte: every golden input, every
sample, the bench corpus and hypothesis-generated records, in every view. For each
record the native engine must give exactly the reference's documents, id, time and
log type (or its rejection, reason and detail), or defer it to the reference.
Goldens, samples and the corpus must not be deferred at all.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.corpus import generate
from forwarder.mapping import LOG_TYPES
from tests.mapping.conftest import golden_lines, sample_lines
from tests.mapping.test_properties import records as documented_records
from tests.native.engines import ALL_VIEWS, VIEW_SETS, Record, compare

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# The corpus size (the issue asks for 200,000: about 15 s); WMF_DIFF_CORPUS to change it.
CORPUS = int(os.environ.get("WMF_DIFF_CORPUS", "200000"))


def _goldens() -> list[tuple[str, bytes]]:
    lines = [(t, line) for t, _, line in golden_lines()] + list(sample_lines())
    return [(log_type, line.encode()) for log_type, line in lines]


@pytest.mark.parametrize("views", VIEW_SETS, ids=["+".join(v) for v in VIEW_SETS])
def test_goldens_and_samples_are_identical_and_native(views: tuple[str, ...]) -> None:
    lines = _goldens()
    detected = [Record(raw) for _, raw in lines]
    # As a source configured with the log type hands them over, with its own time.
    forced = [Record(raw, log_type, 1_718_182_800.5) for log_type, raw in lines]
    deferred = compare(detected + forced, views)
    assert deferred == [], [(detected + forced)[i].raw for i in deferred]


def test_bench_corpus_is_identical_and_native() -> None:
    records = [Record(line) for line in generate(CORPUS, seed=7)]
    for start in range(0, len(records), 1000):
        assert compare(records[start : start + 1000], ("ocsf", "ecs", "raw")) == []


# ------------------------------------------------------------- generated records


def _encode(record: Any, style: str) -> bytes:
    """JSON text of `record` as different writers produce it: orjson (compact, raw
    UTF-8; it refuses ints beyond 64 bits), json with \\u escapes, json pretty-printed."""
    if style == "orjson":
        try:
            return orjson.dumps(record)
        except TypeError:
            style = "ascii"
    if style == "ascii":
        return json.dumps(record).encode()
    return json.dumps(record, ensure_ascii=False, indent=1).encode()


_STYLES = st.sampled_from(["orjson", "ascii", "pretty"])
_SOURCE_TIMES = st.one_of(
    st.just(0.0),
    st.floats(0, 4e9),
    st.sampled_from([-0.0, -1.0, 1_718_182_800.123, 1e300, 253_402_300_800.0]),
)
_VIEWS = st.sampled_from(VIEW_SETS)


@pytest.mark.parametrize("log_type", LOG_TYPES)
@pytest.mark.parametrize("wrong", [False, True], ids=["typed", "any-type"])
def test_documented_fields_in_any_shape(log_type: str, wrong: bool) -> None:
    """The mapping tests' records: any subset of the documented fields, with values of
    their documented type or (any-type) of any type, and undocumented fields."""

    @SETTINGS
    @given(
        record=documented_records(log_type, wrong),
        style=_STYLES,
        forced=st.booleans(),
        source_time=_SOURCE_TIMES,
        views=_VIEWS,
    )
    def check(
        record: dict[str, Any], style: str, forced: bool, source_time: float, views: tuple[str, ...]
    ) -> None:
        raw = _encode(record, style)
        compare([Record(raw, log_type if forced else None, source_time)], views)

    check()


_KEYS = st.one_of(
    st.sampled_from(
        ["event", "eventName", "user", "source_ip", "event_timestamp", "action", "type"]
    ),
    st.text(max_size=12),
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=12,
)


@SETTINGS
@given(
    record=st.dictionaries(_KEYS, _VALUES, max_size=8),
    style=_STYLES,
    log_type=st.one_of(st.none(), st.sampled_from([*LOG_TYPES, "", "authentication", "x"])),
    views=_VIEWS,
)
def test_arbitrary_objects(
    record: dict[str, Any], style: str, log_type: str | None, views: tuple[str, ...]
) -> None:
    compare([Record(_encode(record, style), log_type)], views)


def _object_text(pairs: list[tuple[str, Any]]) -> bytes:
    return ("{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs) + "}").encode()


@SETTINGS
@given(
    pairs=st.lists(
        st.tuples(st.sampled_from(["user", "method", "auth_successful", "x", "user_id"]), _VALUES),
        max_size=8,
    )
)
def test_duplicate_keys_keep_the_first_position_and_the_last_value(
    pairs: list[tuple[str, Any]],
) -> None:
    compare([Record(_object_text([("auth_successful", True), *pairs]))])


# ------------------------------------------------------------- times and addresses

WORKMAIL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3})?Z")
_OFFSETS = st.sampled_from(["", "Z", "+00:00", "-00:00", "+05:30", "-0800", "+01", "+23:59"])
_ISO = st.builds(
    lambda moment, sep, spec, tz: moment.isoformat(sep=sep, timespec=spec) + tz,
    st.datetimes(),
    st.sampled_from(["T", " "]),
    st.sampled_from(["minutes", "seconds", "milliseconds", "microseconds", "auto"]),
    _OFFSETS,
)
_TIMES = st.one_of(
    _ISO,
    _ISO.map(lambda text: f" {text}\t"),
    st.from_regex(r"\A[ \t]?-?[0-9]{1,16}(\.[0-9]{0,7})?[ \n]?\Z"),
    st.text(alphabet="0123456789-:T.,+ZWz ", min_size=8, max_size=32),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from(["2024-02-30", "2024-06-12T24:00:00", "0000-01-01", "9999-12-31T23:59:59Z"]),
)


@SETTINGS
@given(value=_TIMES, views=_VIEWS)
def test_event_times(value: Any, views: tuple[str, ...]) -> None:
    audit = {"event_timestamp": value, "auth_successful": True, "user": "alice"}
    email = {"event": {"eventName": "MAILBOX_EMAIL_DELIVERED", "messageTimestamp": value}}
    token = {"expires_time": value, "name": "laptop"}
    deferred = compare([Record(orjson.dumps(r)) for r in (audit, email, token)], views)
    if isinstance(value, str) and WORKMAIL_TIME.fullmatch(value):
        assert deferred == []  # WorkMail's own form is always mapped natively


_IPS = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.ip_addresses(v=6).map(lambda ip: ip.exploded),
    st.text(alphabet="0123456789abcdefABCDEF:.", max_size=45),
    st.sampled_from(["::ffff:1.2.3.4", "1::2::3", "fe80::1%eth0", "01.2.3.4", "::1/128"]),
)


@SETTINGS
@given(ip=_IPS, where=st.sampled_from(["source_ip", "ews_endpoint"]))
def test_addresses(ip: str, where: str) -> None:
    if where == "source_ip":
        record = {"source_ip": ip, "auth_successful": False}
    else:
        record = {"ews_endpoint": f"https://[{ip}]/EWS", "domain": "x", "type": "EWS"}
    assert compare([Record(orjson.dumps(record))]) == []  # ASCII: never deferred


def test_views_in_any_order() -> None:
    lines = [Record(raw) for _, raw in _goldens()[:20]]
    assert compare(lines, ("raw", "ecs", "ocsf:noraw", "ocsf")) == []
    assert compare(lines, ()) == []
    assert compare(lines, ALL_VIEWS[::-1]) == []
