"""Property tests: any JSON object built from the documented fields of a log type, in any
combination and with values of any JSON type, maps without an unexpected exception;
the document is valid OCSF 1.5.0 / ECS 9.4.0 and loses nothing documented, or the
mapper raises MappingError. A record whose documented fields all have their documented
JSON types must map (no MappingError).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forwarder.errors import MappingError
from forwarder.mapping import LOG_TYPES, event_id, event_time_ms, map_record
from tests.mapping.conftest import empties
from tests.mapping.ecs_checker import check_ecs
from tests.mapping.ocsf_validator import validate_ocsf
from tests.mapping.test_golden import DOCUMENTED, assert_nothing_lost

NOW = 1_718_236_800_000
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ------------------------------------------------------------- value strategies

_WORDS = st.sampled_from(
    ["read", "IMAP", "EWS", "basic", "Inbox", "FAIL", "PASS", "create", "delete", "x", " "]
)
_TEXT = st.one_of(
    _WORDS,
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=20),
    st.builds(lambda char, n: char * n, st.characters(codec="utf-8"), st.integers(1000, 20_000)),
)
_UUID = st.uuids().map(str)
_SID = st.lists(st.integers(0, 4_294_967_295), min_size=4, max_size=4).map(
    lambda parts: "S-1-1-12-" + "-".join(map(str, parts))
)
_IP = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.ip_addresses(v=6).map(lambda ip: ip.exploded),
    st.sampled_from(["::ffff:198.51.100.7", "fe80::1%eth0", "999.1.1.1", "localhost", "::"]),
)
_REGION = st.sampled_from(["us-east-1", "eu-west-1", "", "ap-southeast-2"])
_ORG_ARN = st.one_of(
    st.builds(
        lambda region, account, org: f"arn:aws:workmail:{region}:{account}:organization/m-{org}",
        _REGION,
        st.from_regex(r"\d{12}", fullmatch=True),
        st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    ),
    st.sampled_from(["arn:aws:s3:::bucket", "arn:aws:workmail:us-east-1:1:organization/"]),
    _TEXT,
)
_EPOCH_MS = st.integers(-(2**63), 2**63 - 1)
_ISO = st.datetimes().map(lambda moment: moment.isoformat() + "Z")
_TIME = st.one_of(
    st.integers(0, 4_102_444_800_000), _EPOCH_MS, _ISO, st.integers(0, 10**12).map(str)
)
_ADDRESS = st.one_of(
    st.emails(),
    st.sampled_from(["alice@example.com", "Alice <alice@example.com>", "a@b", "jösé@exämple.com"]),
)
_ADDRESSES = st.one_of(st.lists(_ADDRESS, max_size=4), _ADDRESS)
# Flags: JSON booleans, the string forms the mapper tolerates, and one it does not.
_BOOL = st.one_of(st.booleans(), st.sampled_from(["true", "FALSE", " True ", "maybe"]))
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
# Values of the wrong type for any field: null, numbers (beyond 64 bits too), bools,
# arrays, objects, unicode and huge strings.
_WRONG = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    _JSON,
)
_RULE_ACTIONS = st.lists(
    st.fixed_dictionaries(
        {"action": st.sampled_from(["Move", "Forward", "Bounce", "Drop", "Default"])},
        optional={"recipients": _ADDRESSES},
    ),
    max_size=3,
)
_BOUNCE = st.fixed_dictionaries(
    {},
    optional={
        "emailAddress": _ADDRESS,
        "reason": _TEXT,
        "status": st.sampled_from(["5.1.1", "5.2.2", "4.4.7"]),
    },
)
_EVENT_NAME = st.one_of(
    st.sampled_from(
        [
            "ORGANIZATION_EMAIL_RECEIVED",
            "MAILBOX_EMAIL_DELIVERED",
            "RULE_APPLIED",
            "JOURNALING_INITIATED",
            "INCOMING_EMAIL_BOUNCED",
            "OUTGOING_EMAIL_SUBMITTED",
            "OUTGOING_EMAIL_SENT",
            "OUTGOING_EMAIL_BOUNCED",
            "DMARC_POLICY_APPLIED",
        ]
    ),
    st.text(min_size=1, max_size=30),
)

# Per documented field: a strategy of values of its documented JSON type (realistic
# and arbitrary). Fields not listed are strings.
TYPED: dict[str, st.SearchStrategy[Any]] = {
    "event_timestamp": _TIME,
    "expires_time": _TIME,
    "organization_arn": _ORG_ARN,
    "user_id": st.one_of(_UUID, _SID, _TEXT),
    "owner_id": st.one_of(_UUID, _SID, _TEXT),
    "impersonator_id": st.one_of(_UUID, _TEXT),
    "source_ip": st.one_of(_IP, _TEXT),
    "protocol": st.one_of(
        st.sampled_from(["IMAP", "SMTP", "EWS", "ActiveSync", "WebMail", "IncomingEmail"]), _TEXT
    ),
    "action": st.one_of(
        st.sampled_from(
            ["read", "create", "delete", "move_to", "DELETE", "submit_email_for_sending"]
        ),
        _TEXT,
    ),
    "object_type": st.one_of(st.sampled_from(["Folder", "Message", "Attachment"]), _TEXT),
    "folder_path": st.one_of(st.sampled_from(["Inbox", "Posteingang/Büro/日本語"]), _TEXT),
    "scopes": st.one_of(st.lists(_TEXT, max_size=4), _TEXT),
    "type": st.one_of(st.sampled_from(["EWS", "LAMBDA"]), _TEXT),
    "ews_endpoint": st.one_of(
        st.sampled_from(
            ["https://mail.example.com/EWS/Exchange.asmx", "https://[2001:db8::1]:443/ews", "x://"]
        ),
        _TEXT,
    ),
    "auth_successful": _BOOL,
    "access_granted": _BOOL,
    "action_allowed": _BOOL,
    "availability_event_successful": _BOOL,
    "eventName": _EVENT_NAME,
    "recipients": _ADDRESSES,
    "destination": _ADDRESSES,
    "sender": _ADDRESS,
    "from": _ADDRESS,
    "recipient": _ADDRESS,
    "journalingAddress": _ADDRESS,
    "targetRecipient": _ADDRESS,
    "messageTimestamp": _TIME,
    "dmarcPolicy": st.one_of(st.sampled_from(["NONE", "QUARANTINE", "REJECT"]), _TEXT),
    "policy": st.one_of(st.sampled_from(["NONE", "QUARANTINE", "REJECT", "reject"]), _TEXT),
    "ruleType": st.one_of(
        st.sampled_from(["INBOUND_RULE", "OUTBOUND_RULE", "MAILBOX_RULE"]), _TEXT
    ),
    "ruleActions": _RULE_ACTIONS,
    "bouncedRecipient": _BOUNCE,
}


def _typed(name: str) -> st.SearchStrategy[Any]:
    return TYPED.get(name, _TEXT)


def _fields(log_type: str, wrong: bool) -> dict[str, st.SearchStrategy[Any]]:
    names = [field.removeprefix("event.") for field in DOCUMENTED[log_type]]
    names = [name for name in names if name not in ("traceId", "eventName")]
    if wrong:
        return {name: st.one_of(_typed(name), _WRONG) for name in names}
    return {name: _typed(name) for name in names}


def records(log_type: str, wrong: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Records of `log_type` with any subset of its documented fields; with `wrong`,
    any field may hold a value of any type, and undocumented fields may appear."""
    extra = st.dictionaries(st.text(max_size=10), _JSON, max_size=2) if wrong else st.just({})
    fields = st.fixed_dictionaries({}, optional=_fields(log_type, wrong))
    if log_type != "EMAIL_EVENT_LOGS":
        return st.builds(lambda known, more: {**more, **known}, fields, extra)
    name = st.one_of(_EVENT_NAME, _WRONG) if wrong else _EVENT_NAME
    event = st.builds(lambda known, value: {"eventName": value, **known}, fields, name)
    if wrong:
        event = st.one_of(event, _WRONG)
    trace = st.one_of(_UUID, _WRONG) if wrong else _UUID
    envelope = st.fixed_dictionaries({"event": event}, optional={"traceId": trace})
    return st.builds(lambda known, more: {**more, **known}, envelope, extra)


def _map(record: dict[str, Any], log_type: str, schema: str) -> dict[str, Any]:
    uid = event_id(record, log_type)  # MappingError for ints beyond 64 bits
    raw = orjson.dumps(record).decode()
    time_ms = event_time_ms(record, log_type)
    if time_ms is None:
        time_ms = NOW
    return map_record(record, log_type, schema, event_id=uid, time_ms=time_ms, raw=raw)


# Values kept verbatim (undocumented or unusable ones, rule actions) may hold whatever
# the record holds, nulls and empty arrays included.
VERBATIM = ("unmapped", "policy.data", "aws.workmail")


def _assert_valid(record: dict[str, Any], log_type: str, schema: str, doc: Any) -> None:
    found = [path for path in empties(doc) if not path.startswith(VERBATIM)]
    assert not found, found
    if schema == "ocsf":
        validate_ocsf(doc)
    else:
        check_ecs(doc)
    assert_nothing_lost(record, log_type, schema, doc)


CASES = [(log_type, schema) for log_type in LOG_TYPES for schema in ("ocsf", "ecs")]
IDS = [f"{log_type.lower()}:{schema}" for log_type, schema in CASES]


@pytest.mark.parametrize(("log_type", "schema"), CASES, ids=IDS)
def test_any_record_maps_or_raises_mapping_error(log_type: str, schema: str) -> None:
    @SETTINGS
    @given(record=records(log_type, wrong=True))
    def check(record: dict[str, Any]) -> None:
        try:
            doc = _map(record, log_type, schema)
        except MappingError:
            return
        _assert_valid(record, log_type, schema, doc)

    check()


@pytest.mark.parametrize(("log_type", "schema"), CASES, ids=IDS)
def test_well_typed_records_map_to_valid_documents(log_type: str, schema: str) -> None:
    @SETTINGS
    @given(record=records(log_type, wrong=False))
    def check(record: dict[str, Any]) -> None:
        doc = _map(record, log_type, schema)  # no MappingError
        _assert_valid(record, log_type, schema, doc)

    check()
