from __future__ import annotations

from typing import Any

import pytest

from forwarder.mapping import (
    KIND_BY_LOG_TYPE,
    LOG_TYPES,
    SCHEMAS,
    detect_log_type,
    normalize_log_type,
)
from tests.mapping.conftest import sample_ids, sample_records

SAMPLES = list(sample_records())


def test_names() -> None:
    assert set(LOG_TYPES) == set(KIND_BY_LOG_TYPE)
    assert len(LOG_TYPES) == 6
    assert SCHEMAS == ("ocsf", "ecs", "raw")
    assert sorted(KIND_BY_LOG_TYPE.values()) == [
        "access_control",
        "authentication",
        "availability_provider",
        "email_events",
        "mailbox_access",
        "personal_access_token",
    ]


def test_every_log_type_has_samples() -> None:
    assert len(SAMPLES) == 45
    assert {log_type for log_type, _ in SAMPLES} == set(LOG_TYPES)


@pytest.mark.parametrize(("log_type", "record"), SAMPLES, ids=sample_ids())
def test_detects_sample(log_type: str, record: dict[str, Any]) -> None:
    assert detect_log_type(record) == log_type


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"traceId": "t", "event": {"eventName": "X"}}, "EMAIL_EVENT_LOGS"),
        ({"event": {"eventName": "RULE_APPLIED"}}, "EMAIL_EVENT_LOGS"),
        ({"auth_successful": "false"}, "AUTHENTICATION_LOGS"),
        ({"method": "basic", "user": "a"}, "AUTHENTICATION_LOGS"),
        ({"auth_failed_reason": "x"}, "AUTHENTICATION_LOGS"),
        ({"personal_access_token_id": "p", "user": "a"}, "AUTHENTICATION_LOGS"),
        ({"access_granted": True}, "ACCESS_CONTROL_LOGS"),
        ({"scope": "AccessControl"}, "ACCESS_CONTROL_LOGS"),
        ({"rule_id": "r"}, "ACCESS_CONTROL_LOGS"),
        ({"action_allowed": "true"}, "WORKMAIL_MAILBOX_ACCESS_LOGS"),
        (
            {"object_type": "Folder", "action": "create", "name": "n"},
            "WORKMAIL_MAILBOX_ACCESS_LOGS",
        ),
        ({"folder_path": "Inbox"}, "WORKMAIL_MAILBOX_ACCESS_LOGS"),
        ({"item_id": "i"}, "WORKMAIL_MAILBOX_ACCESS_LOGS"),
        ({"availability_event_successful": False}, "WORKMAIL_AVAILABILITY_PROVIDER_LOGS"),
        ({"type": "LAMBDA", "domain": "d"}, "WORKMAIL_AVAILABILITY_PROVIDER_LOGS"),
        ({"type": "EWS", "domain": "d"}, "WORKMAIL_AVAILABILITY_PROVIDER_LOGS"),
        ({"function_arn": "arn"}, "WORKMAIL_AVAILABILITY_PROVIDER_LOGS"),
        ({"scopes": ["IMAP"]}, "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS"),
        ({"expires_time": 1}, "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS"),
        ({"action": "delete", "name": "n"}, "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS"),
        ({"type": "EWS"}, None),
        ({"action": "read", "name": "n"}, None),
        ({"traceId": "t", "event": "not an object"}, None),
        ({"request_id": "r", "user_id": "u"}, None),
        ({}, None),
    ],
)
def test_signals(record: dict[str, Any], expected: str | None) -> None:
    assert detect_log_type(record) == expected


@pytest.mark.parametrize("value", [None, [], "x", 5])
def test_non_object_is_unknown(value: Any) -> None:
    assert detect_log_type(value) is None


@pytest.mark.parametrize("log_type", LOG_TYPES)
def test_normalize_canonical_and_kind(log_type: str) -> None:
    kind = KIND_BY_LOG_TYPE[log_type]
    for alias in (log_type, log_type.lower(), f"  {log_type.title()} ", kind, kind.upper()):
        assert normalize_log_type(alias) == log_type
    assert normalize_log_type(kind.replace("_", "-")) == log_type


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("mailbox_access_logs", "WORKMAIL_MAILBOX_ACCESS_LOGS"),
        ("aws.workmail_email_events", "EMAIL_EVENT_LOGS"),
        ("workmail_authentication", "AUTHENTICATION_LOGS"),
    ],
)
def test_normalize_aliases(alias: str, expected: str) -> None:
    assert normalize_log_type(alias) == expected


@pytest.mark.parametrize("value", ["", "NOPE", "auth", "ocsf", None, 3])
def test_normalize_unknown(value: Any) -> None:
    assert normalize_log_type(value) is None
