from __future__ import annotations

from typing import Any

import orjson
import pytest

from forwarder.errors import MappingError
from forwarder.mapping import KIND_BY_LOG_TYPE, event_id, event_time_ms, map_record
from tests.mapping.conftest import empties, leaves, sample_ids, sample_lines
from tests.mapping.ecs_checker import check_ecs
from tests.mapping.test_ocsf import MUTATIONS, NOW, SAMPLES, sample

LINES = list(sample_lines())


def ecs(record: dict[str, Any], log_type: str, raw: str | None = None) -> dict[str, Any]:
    uid = event_id(record, log_type)
    time_ms = event_time_ms(record, log_type) or NOW
    return map_record(record, log_type, "ecs", event_id=uid, time_ms=time_ms, raw=raw)


def assert_ecs_valid(doc: dict[str, Any]) -> None:
    """ECS 9.4.0 conformance (tests/mapping/ecs_checker.py) and no empty values."""
    assert not list(empties(doc)), list(empties(doc))
    check_ecs(doc)
    orjson.dumps(doc)


@pytest.mark.parametrize(("log_type", "line"), LINES, ids=sample_ids())
def test_sample_maps(log_type: str, line: str) -> None:
    record = orjson.loads(line)
    doc = ecs(record, log_type, raw=line)
    assert_ecs_valid(doc)
    event = doc["event"]
    assert doc["ecs"] == {"version": "9.4.0"}
    assert event["kind"] == "event"
    assert event["id"] == event_id(record, log_type)
    assert event["dataset"] == f"aws.workmail_{KIND_BY_LOG_TYPE[log_type]}"
    assert (event["module"], event["provider"]) == ("aws", "workmail.amazonaws.com")
    assert event["original"] == line
    assert event["outcome"] in ("success", "failure", "unknown")
    assert doc["cloud"]["provider"] == "aws"
    assert doc["cloud"]["service"] == {"name": "workmail"}
    if log_type == "EMAIL_EVENT_LOGS":
        assert event["category"] == ["email"]
        assert doc["email"]["local_id"] == record["traceId"]
        return
    assert doc["@timestamp"] == _iso(record["event_timestamp"])
    assert doc["aws"]["workmail"]["request_id"] == record["request_id"]
    assert doc["organization"]["id"] == record["organization_arn"].rsplit("/", 1)[1]
    assert doc["cloud"]["account"] == {"id": "111122223333"}
    assert doc["cloud"]["region"] == "us-east-1"
    if "source_ip" in record:
        assert doc["source"]["ip"] == record["source_ip"]
        assert doc["related"]["ip"] == [record["source_ip"]]
    if "user_id" in record:
        assert doc["user"]["id"] == record["user_id"]
        assert record["user_id"] in doc["related"]["user"]
    if "protocol" in record:
        assert doc["aws"]["workmail"]["protocol"] == record["protocol"]


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@pytest.mark.parametrize(("log_type", "record"), SAMPLES, ids=sample_ids())
def test_no_documented_value_is_lost(log_type: str, record: dict[str, Any]) -> None:
    doc = ecs(record, log_type)
    found = {str(value).lower() for _, value in leaves(doc)}
    # Parsed into parts, or normalised to an ISO date.
    transformed = {"organization_arn", "event_timestamp", "expires_time", "event.messageTimestamp"}
    if log_type == "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS":
        transformed.add("action")  # into event.type and event.action, see below
    for path, value in leaves(record):
        if isinstance(value, bool) or path in transformed:
            continue
        assert str(value).lower() in found, path


def test_raw_omitted_without_raw() -> None:
    for log_type, record in SAMPLES:
        assert "original" not in ecs(record, log_type, raw=None)["event"]


def test_authentication() -> None:
    record = sample("AUTHENTICATION_LOGS", auth_successful=False)
    doc = ecs(record, "AUTHENTICATION_LOGS")
    event = doc["event"]
    assert (event["category"], event["type"], event["action"]) == (
        ["authentication"],
        ["start"],
        "user-login",
    )
    assert event["outcome"] == "failure"
    assert event["reason"] == record["auth_failed_reason"]
    assert doc["user"] == {"id": record["user_id"], "name": record["user"]}
    assert doc["network"] == {"protocol": "imap"}
    assert doc["aws"]["workmail"]["method"] == "basic"
    ok = ecs(sample("AUTHENTICATION_LOGS", protocol="EWS"), "AUTHENTICATION_LOGS")
    assert ok["event"]["outcome"] == "success"
    assert "network" not in ok
    assert ok["aws"]["workmail"]["personal_access_token_id"] == "pat-3f9c1a7e5b2d4086"
    string_flag = sample("AUTHENTICATION_LOGS", protocol="EWS")
    string_flag["auth_successful"] = "false"
    assert ecs(string_flag, "AUTHENTICATION_LOGS")["event"]["outcome"] == "failure"


def test_access_control() -> None:
    denied = ecs(
        sample("ACCESS_CONTROL_LOGS", rule_id="deny-legacy-protocols"), "ACCESS_CONTROL_LOGS"
    )
    assert denied["event"]["category"] == ["network"]
    assert denied["event"]["type"] == ["access", "denied"]
    assert denied["event"]["outcome"] == "failure"
    assert denied["rule"] == {
        "id": "deny-legacy-protocols",
        "name": "deny-legacy-protocols",
        "ruleset": "AccessControl",
    }
    assert denied["network"] == {"protocol": "smtp"}
    allowed = ecs(
        sample("ACCESS_CONTROL_LOGS", scope="ImpersonationAccessControl"), "ACCESS_CONTROL_LOGS"
    )
    assert allowed["event"]["type"] == ["access", "allowed"]
    assert allowed["aws"]["workmail"]["impersonator_id"] == "b41d7e90-2c6a-4f3e-8d15-7a9c0e2f6b48"
    assert allowed["aws"]["workmail"]["scope"] == "ImpersonationAccessControl"


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        ("read", "access"),
        ("create", "creation"),
        ("copy_to", "change"),
        ("delete", "deletion"),
        ("abort_sending_email", "info"),
    ],
)
def test_mailbox_types(action: str, kind: str) -> None:
    record = sample("WORKMAIL_MAILBOX_ACCESS_LOGS", action="read")
    record["action"] = action
    event = ecs(record, "WORKMAIL_MAILBOX_ACCESS_LOGS")["event"]
    assert event["category"] == ["api"]
    assert event["type"] == [kind, "allowed"]
    assert event["action"] == action


def test_mailbox_access() -> None:
    record = sample("WORKMAIL_MAILBOX_ACCESS_LOGS", action="delete")
    doc = ecs(record, "WORKMAIL_MAILBOX_ACCESS_LOGS")
    assert doc["event"]["type"] == ["deletion", "denied"]
    assert doc["event"]["outcome"] == "failure"
    assert doc["user"] == {"id": record["user_id"], "target": {"id": record["owner_id"]}}
    assert doc["related"]["user"] == [record["user_id"], record["owner_id"]]
    vendor = doc["aws"]["workmail"]
    for key in ("owner_id", "object_type", "item_id", "folder_path", "folder_id", "protocol"):
        assert vendor[key] == record[key]
    attachment = ecs(
        sample("WORKMAIL_MAILBOX_ACCESS_LOGS", action="read_attachment"),
        "WORKMAIL_MAILBOX_ACCESS_LOGS",
    )
    assert attachment["email"] == {"attachments": [{"file": {"name": "Q2 report.pdf"}}]}
    assert "target" not in attachment["user"]


def test_availability_provider() -> None:
    record = sample(
        "WORKMAIL_AVAILABILITY_PROVIDER_LOGS", type="EWS", availability_event_successful=False
    )
    doc = ecs(record, "WORKMAIL_AVAILABILITY_PROVIDER_LOGS")
    assert (doc["event"]["action"], doc["event"]["outcome"]) == ("availability-lookup", "failure")
    assert doc["url"] == {"original": record["ews_endpoint"], "domain": "mail.partner.example.net"}
    assert doc["destination"] == {"domain": "partner.example.net"}
    assert doc["error"] == {"message": record["error_message"]}
    assert doc["aws"]["workmail"]["type"] == "EWS"
    lam = ecs(
        sample("WORKMAIL_AVAILABILITY_PROVIDER_LOGS", type="LAMBDA"),
        "WORKMAIL_AVAILABILITY_PROVIDER_LOGS",
    )
    assert lam["aws"]["workmail"]["function_arn"].startswith("arn:aws:lambda:")


def test_personal_access_token() -> None:
    doc = ecs(
        sample("WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS", action="create"),
        "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS",
    )
    assert doc["event"]["type"] == ["creation", "user"]
    assert doc["event"]["action"] == "personal-access-token-created"
    assert doc["event"]["outcome"] == "unknown"
    assert doc["aws"]["workmail"]["pat"] == {
        "name": "Outlook on laptop",
        "scopes": ["IMAP", "EWS"],
        "expires_time": "2025-11-04T14:02:31.000Z",
    }
    record = sample("WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS", action="delete")
    record["expires_time"] = "2025-02-02T14:10:05Z"
    doc = ecs(record, "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS")
    assert doc["event"]["type"] == ["deletion", "user"]
    assert doc["aws"]["workmail"]["pat"]["expires_time"] == "2025-02-02T14:10:05.000Z"
    record["expires_time"] = "next year"
    assert (
        ecs(record, "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS")["aws"]["workmail"]["expires_time"]
        == "next year"
    )


def test_email_events() -> None:
    received = ecs(sample("EMAIL_EVENT_LOGS", dmarcPolicy="QUARANTINE"), "EMAIL_EVENT_LOGS")
    email = received["email"]
    assert email["from"] == {"address": ["it-support@examp1e.com"]}
    assert email["to"] == {"address": ["carol@example.com"]}
    assert email["direction"] == "inbound"
    assert email["origination_timestamp"] == "2024-06-12T10:33:12.000Z"
    assert received["aws"]["workmail"] == {
        "spam_verdict": "FAIL",
        "spf_verdict": "FAIL",
        "dkim_verdict": "FAIL",
        "dmarc_verdict": "FAIL",
        "dmarc_policy": "QUARANTINE",
    }
    sent = ecs(sample("EMAIL_EVENT_LOGS", eventName="OUTGOING_EMAIL_SUBMITTED"), "EMAIL_EVENT_LOGS")
    assert sent["email"]["sender"] == {"address": "alice@example.com"}
    assert sent["email"]["direction"] == "outbound"
    assert sent["event"]["action"] == "outgoing_email_submitted"
    bounce = ecs(sample("EMAIL_EVENT_LOGS", eventName="OUTGOING_EMAIL_BOUNCED"), "EMAIL_EVENT_LOGS")
    assert bounce["event"]["outcome"] == "failure"
    assert bounce["event"]["reason"].startswith("550 5.1.1")
    assert bounce["aws"]["workmail"]["bounced_recipient"] == {"status": "5.1.1"}
    rule = ecs(sample("EMAIL_EVENT_LOGS", ruleName="Archive partner mail"), "EMAIL_EVENT_LOGS")
    assert rule["rule"] == {"name": "Archive partner mail", "category": "MAILBOX_RULE"}
    assert rule["aws"]["workmail"]["target_folder"] == "Inbox/Partners"
    assert rule["aws"]["workmail"]["rule_actions"] == [
        {"action": "Move", "recipients": ["alice@example.com"]}
    ]


def test_wrong_shapes_stay_out_of_ecs_fields() -> None:
    """Values of the wrong shape never reach a typed ECS field: they land in aws.workmail."""
    for log_type, record in MUTATIONS:
        try:
            doc = ecs(record, log_type, raw="{}")
        except MappingError:  # the only exception possible, see test_ocsf
            continue
        assert_ecs_valid(doc)
    record = sample("AUTHENTICATION_LOGS", auth_successful=True)
    record.update(source_ip=5, user_id=["u"], event_timestamp={"ms": 1}, novel="n")
    vendor = ecs(record, "AUTHENTICATION_LOGS")["aws"]["workmail"]
    assert (vendor["source_ip"], vendor["user_id"], vendor["event_timestamp"], vendor["novel"]) == (
        5,
        ["u"],
        {"ms": 1},
        "n",
    )


def test_email_values_of_the_wrong_shape_are_vendor_fields() -> None:
    record = {
        "traceId": "t-2",
        "event": {
            "eventName": "ORGANIZATION_EMAIL_RECEIVED",
            "from": "Alice <alice@example.com>",
            "recipients": ["bob@example.com", "not an address"],
            "recipient": "carol@example.com",
            "spamVerdict": ["PASS"],
            "newField": 1,
        },
        "account": "111122223333",
    }
    doc = ecs(record, "EMAIL_EVENT_LOGS")
    assert_ecs_valid(doc)
    assert doc["email"]["to"] == {"address": ["carol@example.com"]}
    assert "from" not in doc["email"]
    assert doc["aws"]["workmail"] == {
        "account": "111122223333",
        "from": "Alice <alice@example.com>",
        "recipients": ["bob@example.com", "not an address"],
        "spam_verdict": ["PASS"],
        "newField": 1,
    }
