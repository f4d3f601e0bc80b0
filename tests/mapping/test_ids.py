from __future__ import annotations

import json
import re
import subprocess
import sys
from hashlib import blake2b
from typing import Any

import orjson
import pytest

from forwarder.errors import MappingError
from forwarder.mapping import event_id, event_time_ms
from tests.mapping.conftest import ROOT, sample_ids, sample_records

SAMPLES = list(sample_records())
HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(("log_type", "record"), SAMPLES, ids=sample_ids())
def test_event_id_format_and_formula(log_type: str, record: dict[str, Any]) -> None:
    uid = event_id(record, log_type)
    assert HEX32.fullmatch(uid)
    body = log_type.encode() + b"\0" + orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    assert uid == blake2b(body, digest_size=16).hexdigest()
    assert event_id(json.loads(json.dumps(record)), log_type) == uid


def test_event_id_ignores_key_order_but_not_content_or_type() -> None:
    record = {"b": 1, "a": {"y": [1, 2], "x": "s"}}
    reordered = {"a": {"x": "s", "y": [1, 2]}, "b": 1}
    assert event_id(record, "AUTHENTICATION_LOGS") == event_id(reordered, "AUTHENTICATION_LOGS")
    assert event_id(record, "AUTHENTICATION_LOGS") != event_id(record, "ACCESS_CONTROL_LOGS")
    assert event_id(record, "AUTHENTICATION_LOGS") != event_id(
        {**record, "b": 2}, "AUTHENTICATION_LOGS"
    )


def test_sample_ids_are_unique() -> None:
    ids = {event_id(record, log_type) for log_type, record in SAMPLES}
    assert len(ids) == len(SAMPLES)


def test_event_id_is_stable_across_processes() -> None:
    script = (
        "import sys, orjson\n"
        "from forwarder.mapping import event_id\n"
        "for line in sys.stdin.read().splitlines():\n"
        "    log_type, _, raw = line.partition('\\t')\n"
        "    print(event_id(orjson.loads(raw), log_type))\n"
    )
    stdin = "\n".join(f"{t}\t{orjson.dumps(r).decode()}" for t, r in SAMPLES)
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert result.stdout.split() == [event_id(r, t) for t, r in SAMPLES]


def test_event_id_unserialisable_record_is_a_mapping_error() -> None:
    with pytest.raises(MappingError) as caught:
        event_id({"n": 2**70}, "AUTHENTICATION_LOGS")
    assert caught.value.reason == "invalid_record"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1718182800987, 1718182800987),
        ("1718182800987", 1718182800987),
        (1718182800987.0, 1718182800987),
        (" 1718182800987 ", 1718182800987),
        (1718182800, 1718182800000),  # seconds, not ms
        ("1718182800.5", 1718182800500),
        ("2024-06-12T09:00:00.987Z", 1718182800987),
        ("2024-06-12T11:00:00.987+02:00", 1718182800987),
        ("2024-06-12T09:00:00", 1718182800000),  # naive is UTC
        (True, None),
        (None, None),
        ({}, None),
        ([1718182800987], None),
        ("", None),
        ("yesterday", None),
        ("2024-13-45T00:00:00Z", None),
        (float("nan"), None),
        (float("inf"), None),
        (-5, None),
        (10**20, None),
        ("1969-12-31T00:00:00Z", None),
        ("99999-01-01", None),
    ],
)
def test_audit_event_time(value: Any, expected: int | None) -> None:
    record = {"event_timestamp": value, "auth_successful": True}
    assert event_time_ms(record, "AUTHENTICATION_LOGS") == expected


def test_audit_event_time_missing() -> None:
    assert event_time_ms({"access_granted": True}, "ACCESS_CONTROL_LOGS") is None


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {"traceId": "t", "event": {"messageTimestamp": "2024-06-12T08:58:41.000Z"}},
            1718182721000,
        ),
        ({"traceId": "t", "event": {"eventName": "MAILBOX_EMAIL_DELIVERED"}}, None),
        ({"traceId": "t", "event": {"messageTimestamp": 1718182721000}}, 1718182721000),
        ({"traceId": "t", "event": {"messageTimestamp": True}}, None),
        ({"traceId": "t", "event": {"messageTimestamp": "garbage"}}, None),
        ({"traceId": "t", "event": "x"}, None),
        ({"traceId": "t", "event_timestamp": 1718182721000}, None),
    ],
)
def test_email_event_time(record: dict[str, Any], expected: int | None) -> None:
    assert event_time_ms(record, "EMAIL_EVENT_LOGS") == expected


@pytest.mark.parametrize("record", [None, [], "x"])
def test_event_time_of_non_object(record: Any) -> None:
    assert event_time_ms(record, "AUTHENTICATION_LOGS") is None
    assert event_time_ms(record, "EMAIL_EVENT_LOGS") is None
