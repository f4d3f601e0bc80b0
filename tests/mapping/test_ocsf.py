from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from forwarder.errors import MappingError
from forwarder.mapping import event_id, event_time_ms, map_record
from tests.mapping.conftest import empties, leaves, sample_ids, sample_lines, sample_records

SAMPLES = list(sample_records())
LINES = list(sample_lines())
NOW = 1_750_000_000_000

# log type -> (class_uid, category_uid, class_name)
CLASSES = {
    "AUTHENTICATION_LOGS": (3002, 3, "Authentication"),
    "ACCESS_CONTROL_LOGS": (6001, 6, "Web Resources Activity"),
    "WORKMAIL_MAILBOX_ACCESS_LOGS": (6003, 6, "API Activity"),
    "WORKMAIL_AVAILABILITY_PROVIDER_LOGS": (6003, 6, "API Activity"),
    "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS": (3004, 3, "Entity Management"),
    "EMAIL_EVENT_LOGS": (4009, 4, "Email Activity"),
}
BASE_REQUIRED = {"activity_id", "category_uid", "class_uid", "metadata", "severity_id", "time"}
# Attributes OCSF 1.5.0 requires per class (besides the base event's and `cloud`).
CLASS_REQUIRED = {
    3002: {"user"},
    6001: {"web_resources"},
    6003: {"actor", "api", "src_endpoint"},
    3004: {"entity"},
    4009: {"direction_id", "email"},
}
# Attributes a class only has through a profile that must then be declared.
PROFILE_OF = {
    "action_id": "security_control",
    "disposition_id": "security_control",
    "policy": "security_control",
    "cloud": "cloud",
}
ARN = re.compile(r"arn:aws:workmail:([^:]+):(\d+):organization/(m-[0-9a-f]+)")


def ocsf(record: dict[str, Any], log_type: str, raw: str | None = None) -> dict[str, Any]:
    uid = event_id(record, log_type)
    time_ms = event_time_ms(record, log_type) or NOW
    return map_record(record, log_type, "ocsf", event_id=uid, time_ms=time_ms, raw=raw)


def sample(log_type: str, **match: Any) -> dict[str, Any]:
    """A deep copy of the first sample of `log_type` whose fields (or event fields) match."""
    for kind, record in SAMPLES:
        fields = record.get("event", record) if kind == "EMAIL_EVENT_LOGS" else record
        if kind == log_type and all(fields.get(k) == v for k, v in match.items()):
            return copy.deepcopy(record)
    raise LookupError(f"no {log_type} sample with {match}")


def assert_valid(doc: dict[str, Any]) -> None:
    class_uid = doc["class_uid"]
    missing = (BASE_REQUIRED | CLASS_REQUIRED[class_uid] | {"cloud"}) - doc.keys()
    assert not missing, missing
    assert doc["type_uid"] == class_uid * 100 + doc["activity_id"]
    assert doc["category_uid"] == class_uid // 1000
    assert doc["type_name"].startswith(doc["class_name"] + ": ")
    assert doc["cloud"]["provider"] == "AWS"
    metadata = doc["metadata"]
    assert metadata["version"] == "1.5.0"
    assert metadata["product"] == {"name": "Amazon WorkMail", "vendor_name": "AWS"}
    assert HEX32.fullmatch(metadata["uid"])
    for attribute, profile in PROFILE_OF.items():
        if attribute in doc:
            assert profile in metadata["profiles"], attribute
    if class_uid == 6001 and "actor" in doc:
        assert "host" in metadata["profiles"]
    if class_uid == 3002:
        assert "service" in doc or "dst_endpoint" in doc
    assert not list(empties(doc)), list(empties(doc))
    orjson.dumps(doc)


HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(("log_type", "line"), LINES, ids=sample_ids())
def test_sample_maps(log_type: str, line: str) -> None:
    record = orjson.loads(line)
    doc = ocsf(record, log_type, raw=line)
    assert_valid(doc)
    class_uid, category_uid, class_name = CLASSES[log_type]
    assert (doc["class_uid"], doc["category_uid"], doc["class_name"]) == (
        class_uid,
        category_uid,
        class_name,
    )
    metadata = doc["metadata"]
    assert metadata["log_name"] == log_type
    assert metadata["uid"] == event_id(record, log_type)
    assert doc["raw_data"] == line
    assert doc["time"] == (event_time_ms(record, log_type) or NOW)
    assert "cloud" in metadata["profiles"]
    if log_type == "EMAIL_EVENT_LOGS":
        assert metadata["correlation_uid"] == record["traceId"] == doc["message_trace_uid"]
        assert metadata["event_code"] == record["event"]["eventName"]
        return
    assert metadata["correlation_uid"] == record["request_id"]
    region, account, org_id = ARN.fullmatch(record["organization_arn"]).groups()  # type: ignore[union-attr]
    assert metadata["tenant_uid"] == org_id
    assert doc["cloud"] == {"provider": "AWS", "region": region, "account": {"uid": account}}
    assert metadata["original_time"] == str(record["event_timestamp"])
    if "source_ip" in record:
        assert doc["src_endpoint"]["ip"] == record["source_ip"]
    if "user_agent" in record:
        assert doc["http_request"]["user_agent"] == record["user_agent"]


@pytest.mark.parametrize(("log_type", "record"), SAMPLES, ids=sample_ids())
def test_no_documented_value_is_lost(log_type: str, record: dict[str, Any]) -> None:
    """Every scalar of the record shows up somewhere in the document."""
    doc = ocsf(record, log_type)
    found = {str(value).lower() for _, value in leaves(doc)}
    transformed = {"organization_arn", "method", "event_timestamp"}  # parsed or enumerated
    for path, value in leaves(record):
        if isinstance(value, bool) or path in transformed:
            continue
        assert str(value).lower() in found, path


def test_raw_data_omitted_without_raw() -> None:
    for log_type, record in SAMPLES:
        assert "raw_data" not in ocsf(record, log_type, raw=None)


def test_authentication_outcomes() -> None:
    ok = ocsf(sample("AUTHENTICATION_LOGS", auth_successful=True), "AUTHENTICATION_LOGS")
    assert (ok["status_id"], ok["status"], ok["severity_id"]) == (1, "Success", 1)
    assert ok["activity_id"] == 1 and ok["type_uid"] == 300201
    assert ok["auth_protocol_id"] == 11
    record = sample("AUTHENTICATION_LOGS", auth_successful=False)
    failed = ocsf(record, "AUTHENTICATION_LOGS")
    assert failed["status_id"] == 2 and failed["status"] == "Failure"
    assert failed["severity_id"] > 1 and failed["severity"] == "Medium"
    assert failed["status_detail"] == record["auth_failed_reason"]
    assert failed["user"] == {"uid": record["user_id"], "name": record["user"]}


def test_authentication_edge_shapes() -> None:
    record = sample("AUTHENTICATION_LOGS", auth_successful=True)
    record.update(auth_successful="FALSE", method="oauth", event_timestamp="1718182800611")
    del record["user"], record["user_id"]
    doc = ocsf(record, "AUTHENTICATION_LOGS")
    assert doc["status_id"] == 2
    assert (doc["auth_protocol_id"], doc["auth_protocol"]) == (99, "oauth")
    assert doc["user"] == {"name": "<unknown>", "type_id": 0, "type": "Unknown"}
    assert doc["time"] == 1718182800611
    token = ocsf(sample("AUTHENTICATION_LOGS", protocol="EWS"), "AUTHENTICATION_LOGS")
    assert token["user"]["credential_uid"] == "pat-3f9c1a7e5b2d4086"


def test_access_control_decisions() -> None:
    denied = ocsf(sample("ACCESS_CONTROL_LOGS", access_granted=False), "ACCESS_CONTROL_LOGS")
    assert (denied["action_id"], denied["action"]) == (2, "Denied")
    assert (denied["disposition_id"], denied["disposition"]) == (2, "Blocked")
    assert denied["status_id"] == 2 and denied["severity_id"] == 3
    assert denied["policy"]["uid"] == denied["policy"]["name"] == "deny-ews-outside-corp"
    assert denied["policy"]["group"] == {"name": "AccessControl"}
    assert denied["activity_id"] == 99 and denied["activity_name"] == "Access Evaluation"
    assert denied["web_resources"][0]["uid"].startswith("arn:aws:workmail:")
    allowed = ocsf(sample("ACCESS_CONTROL_LOGS", access_granted=True), "ACCESS_CONTROL_LOGS")
    assert (allowed["action_id"], allowed["disposition_id"], allowed["status_id"]) == (1, 1, 1)
    assert allowed["policy"] == {"name": "AccessControl", "group": {"name": "AccessControl"}}
    assert allowed["actor"]["user"]["uid"] == "2f6c1c3e-8a4b-4d0e-9c71-5b2a9e3f7d10"
    assert sorted(allowed["metadata"]["profiles"]) == ["cloud", "host", "security_control"]
    impersonated = sample("ACCESS_CONTROL_LOGS", scope="ImpersonationAccessControl")
    doc = ocsf(impersonated, "ACCESS_CONTROL_LOGS")
    assert doc["unmapped"] == {"impersonator_id": impersonated["impersonator_id"]}


@pytest.mark.parametrize(
    ("action", "activity_id", "activity_name"),
    [
        ("read", 2, "Read"),
        ("read_attachment", 2, "Read"),
        ("create", 1, "Create"),
        ("update_read_state", 3, "Update"),
        ("move_to", 3, "Update"),
        ("delete", 4, "Delete"),
        ("DELETE", 4, "Delete"),
        ("submit_email_for_sending", 99, "submit_email_for_sending"),
    ],
)
def test_mailbox_activities(action: str, activity_id: int, activity_name: str) -> None:
    record = sample("WORKMAIL_MAILBOX_ACCESS_LOGS", action="read")
    record["action"] = action
    doc = ocsf(record, "WORKMAIL_MAILBOX_ACCESS_LOGS")
    assert (doc["activity_id"], doc["activity_name"]) == (activity_id, activity_name)
    assert doc["api"]["operation"] == action
    assert doc["type_uid"] == 600300 + activity_id


def test_mailbox_access_details() -> None:
    record = sample("WORKMAIL_MAILBOX_ACCESS_LOGS", action="delete")
    denied = ocsf(record, "WORKMAIL_MAILBOX_ACCESS_LOGS")
    assert (denied["status_id"], denied["action_id"], denied["disposition_id"]) == (2, 2, 2)
    assert denied["api"]["service"] == {"name": "ActiveSync"}
    assert denied["api"]["request"] == {"uid": record["request_id"]}
    message, folder = denied["resources"]
    assert message == {
        "type": "Message",
        "uid": record["item_id"],
        "owner": {"uid": record["owner_id"]},
    }
    assert folder["type"] == "Folder" and folder["name"] == "Inbox"
    attachment = ocsf(
        sample("WORKMAIL_MAILBOX_ACCESS_LOGS", action="read_attachment"),
        "WORKMAIL_MAILBOX_ACCESS_LOGS",
    )
    assert [r["type"] for r in attachment["resources"]] == ["Attachment", "Message", "Folder"]
    assert attachment["resources"][0]["name"] == "Q2 report.pdf"
    folder_only = ocsf(
        sample("WORKMAIL_MAILBOX_ACCESS_LOGS", action="read_summary"),
        "WORKMAIL_MAILBOX_ACCESS_LOGS",
    )
    assert [r["type"] for r in folder_only["resources"]] == ["Folder"]
    assert folder_only["unmapped"] == {"impersonator_id": "b41d7e90-2c6a-4f3e-8d15-7a9c0e2f6b48"}


def test_mailbox_without_user_or_ip_keeps_required_objects() -> None:
    record = sample("WORKMAIL_MAILBOX_ACCESS_LOGS", action="read")
    for key in ("user_id", "source_ip", "user_agent", "action"):
        del record[key]
    doc = ocsf(record, "WORKMAIL_MAILBOX_ACCESS_LOGS")
    assert_valid(doc)
    assert doc["actor"] == {"app_name": "Amazon WorkMail"}
    assert doc["src_endpoint"] == {"svc_name": "Amazon WorkMail"}
    assert doc["api"]["operation"] == "Unknown" and doc["activity_id"] == 0


def test_availability_provider() -> None:
    record = sample("WORKMAIL_AVAILABILITY_PROVIDER_LOGS", type="EWS")
    doc = ocsf(record, "WORKMAIL_AVAILABILITY_PROVIDER_LOGS")
    assert doc["src_endpoint"] == {"svc_name": "Amazon WorkMail"}
    assert doc["api"]["operation"] == "AvailabilityLookup"
    assert doc["api"]["service"] == {"name": "EWS"}
    assert doc["dst_endpoint"]["hostname"] == "mail.partner.example.net"
    assert doc["http_request"]["url"]["url_string"] == record["ews_endpoint"]
    failed = sample("WORKMAIL_AVAILABILITY_PROVIDER_LOGS", type="LAMBDA")
    failed.update(availability_event_successful=False, error_message="boom")
    doc = ocsf(failed, "WORKMAIL_AVAILABILITY_PROVIDER_LOGS")
    assert (doc["status_id"], doc["status_detail"], doc["severity_id"]) == (2, "boom", 3)
    assert {"type": "Lambda Function", "uid": failed["function_arn"]} in doc["resources"]


def test_personal_access_token() -> None:
    created = ocsf(
        sample("WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS", action="create"),
        "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS",
    )
    assert (created["activity_id"], created["type_uid"], created["status_id"]) == (1, 300401, 0)
    assert created["entity"] == {
        "type": "Personal Access Token",
        "name": "Outlook on laptop",
        "data": {"scopes": ["IMAP", "EWS"], "expires_time": 1762264951000},
    }
    assert created["actor"]["user"] == {
        "uid": "c3a8f1d2-6b4e-4f7a-9d05-1e2b3c4d5e6f",
        "name": "carol@example.com",
    }
    assert created["unmapped"] == {"protocol": "webapp"}
    record = sample("WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS", action="delete")
    record.update(expires_time="2025-02-02T14:10:05Z", scopes="IMAP", action="rotate")
    doc = ocsf(record, "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS")
    assert doc["entity"]["data"] == {"scopes": ["IMAP"], "expires_time": 1738505405000}
    assert (doc["activity_id"], doc["activity_name"]) == (99, "rotate")
    deleted = ocsf(
        sample("WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS", action="delete"),
        "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS",
    )
    assert deleted["activity_id"] == 4 and deleted["type_name"] == "Entity Management: Delete"


@pytest.mark.parametrize(
    ("event_name", "activity_id", "direction_id", "status_id"),
    [
        ("ORGANIZATION_EMAIL_RECEIVED", 2, 1, 1),
        ("MAILBOX_EMAIL_DELIVERED", 2, 1, 1),
        ("INCOMING_EMAIL_BOUNCED", 2, 1, 2),
        ("OUTGOING_EMAIL_SUBMITTED", 1, 2, 1),
        ("OUTGOING_EMAIL_SENT", 1, 2, 1),
        ("OUTGOING_EMAIL_BOUNCED", 1, 2, 2),
        ("DMARC_POLICY_APPLIED", 3, 1, 1),
        ("JOURNALING_INITIATED", 4, 0, 1),
    ],
)
def test_email_activities(
    event_name: str, activity_id: int, direction_id: int, status_id: int
) -> None:
    doc = ocsf(sample("EMAIL_EVENT_LOGS", eventName=event_name), "EMAIL_EVENT_LOGS")
    assert (doc["activity_id"], doc["direction_id"], doc["status_id"]) == (
        activity_id,
        direction_id,
        status_id,
    )
    assert doc["email"]["to"], "every sample names a recipient"
    assert doc["email"]["uid"] == doc["message_trace_uid"]
    if status_id == 2:
        assert doc["severity_id"] == 3 and doc["status_detail"] and doc["status_code"]


def test_email_details() -> None:
    received = ocsf(sample("EMAIL_EVENT_LOGS", dmarcPolicy="QUARANTINE"), "EMAIL_EVENT_LOGS")
    assert received["email_auth"] == {
        "spf": "FAIL",
        "dkim": "FAIL",
        "dmarc": "FAIL",
        "dmarc_policy": "QUARANTINE",
    }
    assert received["email"]["from"] == "it-support@examp1e.com"
    assert received["metadata"]["original_time"] == "2024-06-12T10:33:12.000Z"
    assert received["unmapped"] == {"event": {"spamVerdict": "FAIL"}}
    applied = ocsf(sample("EMAIL_EVENT_LOGS", eventName="DMARC_POLICY_APPLIED"), "EMAIL_EVENT_LOGS")
    assert (applied["action_id"], applied["disposition_id"], applied["disposition"]) == (
        2,
        3,
        "Quarantined",
    )
    assert "security_control" in applied["metadata"]["profiles"]
    rule = ocsf(sample("EMAIL_EVENT_LOGS", ruleName="fwd"), "EMAIL_EVENT_LOGS")
    assert rule["direction_id"] == 1 and rule["activity_name"] == "Trace"
    assert rule["policy"]["name"] == "fwd" and rule["policy"]["group"] == {"name": "MAILBOX_RULE"}
    assert rule["policy"]["data"]["targetRecipient"] == "alice.private@freemail.example"
    outbound = ocsf(sample("EMAIL_EVENT_LOGS", eventName="OUTGOING_EMAIL_SENT"), "EMAIL_EVENT_LOGS")
    assert outbound["email"]["delivered_to_list"] == ["customer@example.org"]
    assert outbound["unmapped"] == {"event": {"sender": "alice@example.com"}}


def test_outgoing_bounce_alternative_shape() -> None:
    record = {
        "traceId": "t-1",
        "event": {
            "eventName": "OUTGOING_EMAIL_BOUNCED",
            "destination": ["x@example.org"],
            "reason": "550 no",
        },
        "extra_top": 1,
    }
    doc = ocsf(record, "EMAIL_EVENT_LOGS")
    assert doc["email"]["to"] == ["x@example.org"]
    assert (doc["status_id"], doc["status_detail"]) == (2, "550 no")
    assert doc["unmapped"] == {"extra_top": 1}


def test_unknown_event_name_and_fields_are_kept() -> None:
    record = {
        "traceId": "t",
        "event": {"eventName": "NEW_THING", "from": "a@b.example", "novel": {"k": 1}},
    }
    doc = ocsf(record, "EMAIL_EVENT_LOGS")
    assert (doc["activity_id"], doc["activity_name"], doc["direction_id"]) == (99, "NEW_THING", 0)
    assert doc["unmapped"] == {"event": {"novel": {"k": 1}}}
    audit = sample("AUTHENTICATION_LOGS", auth_successful=True)
    audit["session_id"] = "s-1"
    assert ocsf(audit, "AUTHENTICATION_LOGS")["unmapped"] == {"session_id": "s-1"}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"traceId": "t"}, "invalid_record"),
        ({"traceId": "t", "event": {"from": "a@b.example"}}, "invalid_record"),
        ({"traceId": "t", "event": {"eventName": 5}}, "invalid_record"),
    ],
)
def test_unusable_email_record(record: dict[str, Any], reason: str) -> None:
    with pytest.raises(MappingError) as caught:
        map_record(record, "EMAIL_EVENT_LOGS", "ocsf", event_id="0" * 32, time_ms=NOW, raw=None)
    assert caught.value.reason == reason


def test_bad_calls() -> None:
    record = SAMPLES[0][1]
    with pytest.raises(MappingError) as caught:
        map_record(record, "NOPE", "ocsf", event_id="x", time_ms=NOW, raw=None)
    assert caught.value.reason == "unknown_log_type"
    with pytest.raises(MappingError) as caught:
        map_record([record], "AUTHENTICATION_LOGS", "ocsf", event_id="x", time_ms=NOW, raw=None)  # type: ignore[arg-type]
    assert caught.value.reason == "invalid_record"
    bad_times: tuple[Any, ...] = (-1, 10**18, float("nan"), "now")
    for time_ms in bad_times:
        with pytest.raises(MappingError):
            map_record(
                record, "AUTHENTICATION_LOGS", "ocsf", event_id="x", time_ms=time_ms, raw=None
            )
    with pytest.raises(MappingError):
        map_record(record, "AUTHENTICATION_LOGS", "xml", event_id="x", time_ms=NOW, raw=None)
    origin = {"source_id": "s", "partition": "p", "offset": 3}
    envelope = map_record(
        record, "ACCESS_CONTROL_LOGS", "raw", event_id="x", time_ms=NOW, raw=None, origin=origin
    )
    assert envelope == {
        "log_type": "ACCESS_CONTROL_LOGS",
        "event_id": "x",
        "time": NOW,
        "origin": origin,
        "record": record,
    }


def mutations() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sample with each of its fields (and each email event field) replaced by
    each value of the wrong shape."""
    junk: tuple[Any, ...] = (None, 5, "x", [], {}, True, -1.5, ["x", 1], [{"recipients": 5}])
    for log_type, record in SAMPLES:
        for key in record:
            for value in junk:
                yield log_type, {**record, key: value}
        if log_type == "EMAIL_EVENT_LOGS":
            for key in record["event"]:
                for value in junk:
                    yield log_type, {**record, "event": {**record["event"], key: value}}


MUTATIONS = list(mutations())


@pytest.mark.parametrize("schema", ["ocsf", "ecs"])
def test_wrong_shapes_map_or_raise_mapping_error(schema: str) -> None:
    mapped = 0
    rejected: set[tuple[str, str]] = set()
    for log_type, record in MUTATIONS:
        uid = event_id(record, log_type)
        time_ms = event_time_ms(record, log_type) or NOW
        try:
            doc = map_record(record, log_type, schema, event_id=uid, time_ms=time_ms, raw="{}")
        except MappingError as exc:
            rejected.add((log_type, exc.reason))
            continue
        mapped += 1
        assert isinstance(doc, dict)
        assert not list(empties(doc)), (record, list(empties(doc)))
        if schema == "ocsf":
            assert_valid(doc)
        orjson.dumps(doc)
    assert mapped > 0.9 * len(MUTATIONS)
    # Only an email event without a usable event object or name is unmappable.
    assert rejected == {("EMAIL_EVENT_LOGS", "invalid_record")}


def test_wrong_shapes_land_in_unmapped() -> None:
    record = sample("AUTHENTICATION_LOGS", auth_successful=True)
    record.update(source_ip=5, user_id=["u"], event_timestamp={"ms": 1}, auth_successful="maybe")
    doc = ocsf(record, "AUTHENTICATION_LOGS")
    assert doc["unmapped"] == {
        "source_ip": 5,
        "user_id": ["u"],
        "event_timestamp": {"ms": 1},
        "auth_successful": "maybe",
    }
    assert "src_endpoint" not in doc and doc["status_id"] == 0
    assert doc["user"] == {"name": "alice@example.com"}
    record.update(source_ip="999.1.1.1", organization_arn="arn:aws:s3:::bucket")
    doc = ocsf(record, "AUTHENTICATION_LOGS")
    assert doc["unmapped"]["source_ip"] == "999.1.1.1"
    assert doc["unmapped"]["organization_arn"] == "arn:aws:s3:::bucket"
    assert "tenant_uid" not in doc["metadata"] and doc["cloud"] == {"provider": "AWS"}


def test_email_values_of_the_wrong_shape_are_unmapped() -> None:
    record = {
        "traceId": "t-2",
        "event": {
            "eventName": "OUTGOING_EMAIL_SENT",
            "from": "Alice <a@b>",
            "recipient": "c@d.example",
        },
    }
    doc = ocsf(record, "EMAIL_EVENT_LOGS")
    assert doc["email"] == {
        "to": ["c@d.example"],
        "delivered_to_list": ["c@d.example"],
        "uid": "t-2",
    }
    assert doc["unmapped"] == {"event": {"from": "Alice <a@b>"}}
