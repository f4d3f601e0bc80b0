"""Hostile input (the chaos suite's kinds): the native engine gives the reference's
rejection or defers; it never crashes, and what it can judge itself it does not defer."""

from __future__ import annotations

import pytest

from tests.native.engines import DEFERRED, Record, compare, native

AUTH = b'"auth_successful":true'
NOT_OBJECTS = [b"[]", b"[1, 2]", b'"text"', b"5", b"-7", b"null", b"true", b" false \n"]
# Parse errors, floats and ints orjson makes floats: the reference has the error text.
DEFERRED_INPUTS = [
    b"",
    b"   ",
    b"{",
    b"{}}",
    b'{"a":1,}',
    b"\xef\xbb\xbf{}",
    b"\x0c{}",
    b"1.5",
    b"-0",
    b"NaN",
    b"Infinity",
    b"18446744073709551616",
    b'{"event_timestamp": 1.5, ' + AUTH + b"}",
    b'{"user": 99999999999999999999, ' + AUTH + b"}",
    b'{"user": "\\ud800", ' + AUTH + b"}",
]
INVALID_UTF8 = [
    b"\xff",
    b'{"user":"\xff"}',
    b'{"user":"\xc3", ' + AUTH + b"}",
    b'{"user":"\xed\xa0\x80"}',  # an encoded surrogate
]
NUL = [b"\x00", b'{"user":"\x00"}', b"{}\x00", b'{"user":"a\\u0000b", ' + AUTH + b"}"]


@pytest.mark.parametrize("raw", NOT_OBJECTS)
def test_values_that_are_not_objects_are_rejected_natively(raw: bytes) -> None:
    assert compare([Record(raw)]) == []
    assert native([Record(raw)], ["ocsf"])[0][1] == "not_an_object"


@pytest.mark.parametrize("raw", DEFERRED_INPUTS + INVALID_UTF8 + NUL)
def test_malformed_records_match_or_defer(raw: bytes) -> None:
    compare([Record(raw), Record(raw, "AUTHENTICATION_LOGS")])


def test_deep_nesting() -> None:
    deep = 100_000
    records = [
        Record(b"[" * deep + b"]" * deep),
        Record(b'{"a":' * deep + b"1" + b"}" * deep),
        # Within orjson's limits but past the native one, and past orjson.dumps' 255.
        Record(b'{"x":' + b"[" * 200 + b"]" * 200 + b", " + AUTH + b"}"),
        Record(b'{"x":' + b"[" * 300 + b"]" * 300 + b", " + AUTH + b"}"),
    ]
    assert compare(records) == [0, 1, 2, 3]
    shallow = Record(b'{"x":' + b"[" * 100 + b"]" * 100 + b", " + AUTH + b"}")
    assert compare([shallow]) == []


def test_ten_megabyte_lines() -> None:
    big = "é" * (5 * 1024 * 1024)
    records = [
        Record(b'{"user":"' + big.encode() + b'", ' + AUTH + b"}"),
        Record(b'{"unknown_field":"' + b'\\"' * (5 * 1024 * 1024) + b'", ' + AUTH + b"}"),
        Record(b"x" * (10 * 1024 * 1024)),
    ]
    assert compare(records) == [2]


def test_a_numeric_time_beyond_int_conversion_limits_is_deferred() -> None:
    # int() refuses 4300+ digits: the reference answers mapping_failed (ValueError).
    raw = b'{"event_timestamp":"' + b"1" * 5000 + b'", ' + AUTH + b"}"
    assert compare([Record(raw)]) == [0]


@pytest.mark.parametrize("log_type", ["authentication", "AUTHENTICATION_LOGS ", "x", "\u00e9"])
def test_a_log_type_that_is_not_canonical_is_deferred(log_type: str) -> None:
    assert compare([Record(b"{" + AUTH + b"}", log_type)]) == [0]


@pytest.mark.parametrize("time", [float("nan"), float("inf"), 1e300, -1e300])
def test_source_times_python_cannot_convert_are_deferred(time: float) -> None:
    assert compare([Record(b'{"event":{"eventName":"X"}}', time=time)]) == [0]


def test_source_times_out_of_range_are_rejected_natively() -> None:
    records = [Record(b'{"event":{"eventName":"X"}}', time=t) for t in (-1.0, 253_402_300_800.0)]
    assert compare(records) == []
    assert compare(records, ["raw"]) == []  # the raw view has no range check
    assert native(records, ["ocsf"])[0][1] == "invalid_record"


def test_email_records_without_their_event_are_rejected_natively() -> None:
    records = [
        Record(b'{"traceId":"t"}', "EMAIL_EVENT_LOGS"),
        Record(b'{"event":[1]}', "EMAIL_EVENT_LOGS"),
        Record(b'{"event":{"eventName":""}}'),
        Record(b'{"event":{"eventName":5}}', "EMAIL_EVENT_LOGS"),
    ]
    assert compare(records) == []
    assert all(outcome != DEFERRED for outcome in native(records, ["ecs"]))


def test_names_python_cannot_encode_defer_their_records_only() -> None:
    # A file name read with surrogateescape: orjson refuses it in the raw view.
    records = [
        Record(b"{" + AUTH + b"}", partition="logs/bad\udcff.jsonl"),
        Record(b"{" + AUTH + b"}", "AUTHENTICATION_LOGS\udcff"),
        Record(b"{" + AUTH + b"}"),
    ]
    assert compare(records) == [0, 1]
