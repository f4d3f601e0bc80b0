"""Golden files: every sample and edge case mapped to OCSF 1.5.0 and ECS 9.4.0.

Inputs are tests/mapping/golden/<log type>.jsonl (the bundled samples first, then edge
cases; golden/cases.json describes every line), expected outputs <log type>.ocsf.ndjson
and <log type>.ecs.ndjson, written by scripts/regen_golden.py (regenerate only after a
deliberate mapping change, and review the diff). Each expected document must validate
(tests/mapping/ocsf_validator.py, tests/mapping/ecs_checker.py), and no documented field
of an input may be lost.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from forwarder.mapping import LOG_TYPES
from forwarder.mapping.common import parse_org_arn
from tests.mapping.conftest import (
    GOLDEN_DIR,
    GOLDEN_TIME_MS,
    ROOT,
    empties,
    golden_lines,
    golden_output,
    sample_lines,
)
from tests.mapping.ecs_checker import check_ecs
from tests.mapping.ocsf_validator import validate_ocsf

SCHEMAS = ("ocsf", "ecs")
CASES: dict[str, dict[str, str]] = json.loads((GOLDEN_DIR / "cases.json").read_text("utf-8"))
LINES = list(golden_lines())
EXPECTED: dict[tuple[str, str], list[dict[str, Any]]] = {
    (log_type, schema): [
        orjson.loads(text)
        for text in (GOLDEN_DIR / f"{log_type.lower()}.{schema}.ndjson").read_bytes().splitlines()
        if text.strip()
    ]
    for log_type in LOG_TYPES
    for schema in SCHEMAS
}
PARAMS = [
    (log_type, number, line, schema) for log_type, number, line in LINES for schema in SCHEMAS
]
IDS = [f"{log_type.lower()}:{number}:{schema}" for log_type, number, _, schema in PARAMS]
DOC_PARAMS = [(log_type, number, line) for log_type, number, line in LINES]
DOC_IDS = [f"{log_type.lower()}:{number}" for log_type, number, _ in DOC_PARAMS]

# The fields LOGS.md documents (sections 1.1-1.5, 2.2 and the queries of 2.3).
_AUDIT = ("event_timestamp", "request_id", "organization_arn", "user_id")
DOCUMENTED: dict[str, tuple[str, ...]] = {
    "WORKMAIL_MAILBOX_ACCESS_LOGS": (
        *_AUDIT,
        *("impersonator_id", "protocol", "source_ip", "user_agent", "action", "owner_id"),
        *("object_type", "item_id", "folder_path", "folder_id", "attachment_path"),
        "action_allowed",
    ),
    "ACCESS_CONTROL_LOGS": (
        *_AUDIT,
        *("impersonator_id", "protocol", "source_ip", "scope", "rule_id", "access_granted"),
    ),
    "AUTHENTICATION_LOGS": (
        *_AUDIT,
        *("user", "protocol", "source_ip", "user_agent", "method", "auth_successful"),
        *("auth_failed_reason", "personal_access_token_id"),
    ),
    "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS": (
        *_AUDIT,
        *("user", "protocol", "source_ip", "user_agent", "action", "name", "expires_time"),
        "scopes",
    ),
    "WORKMAIL_AVAILABILITY_PROVIDER_LOGS": (
        *_AUDIT,
        *("type", "domain", "function_arn", "ews_endpoint", "error_message"),
        "availability_event_successful",
    ),
    "EMAIL_EVENT_LOGS": (
        "traceId",
        *(f"event.{name}" for name in ("eventName", "recipients", "sender", "from", "subject")),
        *(f"event.{name}" for name in ("messageId", "spamVerdict", "dkimVerdict", "dmarcVerdict")),
        *(f"event.{name}" for name in ("dmarcPolicy", "spfVerdict", "messageTimestamp")),
        *(f"event.{name}" for name in ("recipient", "folder", "ruleName", "ruleType")),
        *(f"event.{name}" for name in ("ruleActions", "targetFolder", "targetRecipient")),
        *(f"event.{name}" for name in ("journalingAddress", "bouncedRecipient", "policy")),
        "event.destination",
        "event.reason",
    ),
}
FLAGS = frozenset(("auth_successful", "access_granted", "action_allowed"))
FLAGS |= {"availability_event_successful"}
TIMES = frozenset(("event_timestamp", "expires_time", "event.messageTimestamp"))
_EMPTY: tuple[Any, ...] = (None, "", [], {})


# ---------------------------------------------------------------- the golden files


def test_golden_inputs_start_with_the_samples() -> None:
    """The samples are part of the goldens, first and unchanged."""
    samples: dict[str, list[str]] = {}
    for log_type, line in sample_lines():
        samples.setdefault(log_type, []).append(line)
    for log_type in LOG_TYPES:
        golden = [line for kind, _, line in LINES if kind == log_type]
        assert golden[: len(samples[log_type])] == samples[log_type], log_type


def test_every_golden_line_is_described() -> None:
    edge_cases = 0
    for log_type in LOG_TYPES:
        numbers = [str(number) for kind, number, _ in LINES if kind == log_type]
        described = CASES[log_type.lower()]
        assert sorted(described, key=int) == numbers, log_type
        edge_cases += sum(not text.startswith("sample ") for text in described.values())
    assert edge_cases >= 30


def test_expected_outputs_have_one_document_per_input() -> None:
    for log_type in LOG_TYPES:
        inputs = sum(kind == log_type for kind, _, _ in LINES)
        for schema in SCHEMAS:
            assert len(EXPECTED[log_type, schema]) == inputs, (log_type, schema)


@pytest.mark.parametrize(("log_type", "number", "line", "schema"), PARAMS, ids=IDS)
def test_output_equals_golden(log_type: str, number: int, line: str, schema: str) -> None:
    expected = EXPECTED[log_type, schema][number - 1]
    got = golden_output(log_type, line, schema)
    case = CASES[log_type.lower()][str(number)]
    assert got == expected, f"{case}: regenerate with scripts/regen_golden.py if intended"


@pytest.mark.parametrize(("log_type", "number", "line"), DOC_PARAMS, ids=DOC_IDS)
def test_golden_ocsf_is_valid(log_type: str, number: int, line: str) -> None:
    doc = EXPECTED[log_type, "ocsf"][number - 1]
    assert "mapping_error" not in doc, doc
    validate_ocsf(doc)
    assert doc["raw_data"] == line
    assert not list(empties(doc)), list(empties(doc))


@pytest.mark.parametrize(("log_type", "number", "line"), DOC_PARAMS, ids=DOC_IDS)
def test_golden_ecs_is_valid(log_type: str, number: int, line: str) -> None:
    doc = EXPECTED[log_type, "ecs"][number - 1]
    assert "mapping_error" not in doc, doc
    check_ecs(doc)
    assert doc["event"]["original"] == line
    assert not list(empties(doc)), list(empties(doc))


# ---------------------------------------------------------------- nothing is lost


def documented_values(record: dict[str, Any], log_type: str) -> Iterator[tuple[str, Any]]:
    """(field, value) of every documented field the record carries with a value."""
    for field in DOCUMENTED[log_type]:
        node: Any = record
        for step in field.split("."):
            node = node.get(step, None) if type(node) is dict else None
        if node not in _EMPTY:
            yield field, node


def assert_nothing_lost(record: dict[str, Any], log_type: str, schema: str, doc: Any) -> None:
    """Every documented value of `record` shows up in `doc` outside the raw copy: the
    value itself, or for flags, times, the organization ARN and enumerated values the
    value derived from it."""
    body = copy.copy(doc)
    if schema == "ocsf":
        body.pop("raw_data", None)
    else:
        body["event"] = {k: v for k, v in doc["event"].items() if k != "original"}
    found = set(_keys(body))
    for field, value in documented_values(record, log_type):
        derived = _derived(field, value, schema, body)
        if derived is not None:
            assert derived, f"{schema}: {field}={value!r} is lost (derived form missing)"
            continue
        for leaf in _scalars(value):
            if leaf in _EMPTY:
                continue
            keys = set(_keys(leaf))
            assert keys & found, f"{schema}: {field}={value!r}: {leaf!r} is not in the document"


def _derived(field: str, value: Any, schema: str, doc: dict[str, Any]) -> bool | None:
    """Whether the derived form of a value is in `doc`; None when the value counts as
    itself (or was not usable and so must be there verbatim)."""
    name = field.rsplit(".", 1)[-1]
    ocsf = schema == "ocsf"
    if field in FLAGS:
        flag = _flag(value)
        if flag is None:
            return None
        if ocsf:
            return bool(doc.get("status_id") == (1 if flag else 2))
        return bool(doc["event"].get("outcome") == ("success" if flag else "failure"))
    if field in TIMES:
        ms = _time_ms(value)
        if ms is None:
            return None
        return (("n", ms) if ocsf else ("s", _iso(ms))) in set(_keys(doc))
    if name == "organization_arn" and type(value) is str:
        parts = parse_org_arn(value)
        if parts is None:
            return None
        found = set(_keys(doc))
        return all(("s", part) in found for part in parts if part)
    if type(value) is int or type(value) is float:
        value = str(value)  # a number where a string is documented is kept as a string
    if type(value) is not str:
        return None
    low = value.lower()
    if ocsf and name == "method" and low == "basic":
        return bool(doc.get("auth_protocol_id") == 11)
    if name == "action" and field == "action" and "entity" in doc:  # PAT, OCSF
        return bool(doc["activity_name"].lower() == low)
    if not ocsf and name == "action" and doc["event"]["dataset"].endswith("personal_access_token"):
        past = {"create": "created", "delete": "deleted"}.get(low, value)
        return bool(doc["event"].get("action") == f"personal-access-token-{past}")
    if not ocsf and field == "event.eventName":
        return bool(doc["event"].get("action") == low)
    return None


def _flag(value: Any) -> bool | None:
    if value is True or value is False:
        return bool(value)
    if type(value) is str and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if type(value) is int and value in (0, 1):
        return value == 1
    return None


def _time_ms(value: Any) -> int | None:
    from forwarder.mapping.common import parse_time_ms

    return parse_time_ms(value)


def _iso(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    )


def _scalars(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    else:
        yield value


def _keys(value: Any) -> Iterator[tuple[str, Any]]:
    """Comparable forms of every scalar in `value`: a number also as the string a
    string field makes of it; bools apart from the numbers they equal."""
    for leaf in _scalars(value):
        if leaf is True or leaf is False:
            yield ("b", leaf)
        elif isinstance(leaf, int | float):
            yield ("n", leaf)
            yield ("s", str(leaf))
        else:
            yield ("s", leaf)


@pytest.mark.parametrize(("log_type", "number", "line", "schema"), PARAMS, ids=IDS)
def test_nothing_documented_is_lost(log_type: str, number: int, line: str, schema: str) -> None:
    assert_nothing_lost(
        orjson.loads(line), log_type, schema, EXPECTED[log_type, schema][number - 1]
    )


def test_every_documented_field_is_covered_by_the_goldens() -> None:
    """Each documented field is present in at least one golden input."""
    seen: set[tuple[str, str]] = set()
    for log_type, _, line in LINES:
        seen.update(
            (log_type, field) for field, _ in documented_values(orjson.loads(line), log_type)
        )
    missing = {(t, f) for t, fields in DOCUMENTED.items() for f in fields} - seen
    assert not missing, sorted(missing)


# ---------------------------------------------------------------- analysts' searches


def _golden(log_type: str, schema: str, match: Callable[[dict[str, Any]], bool]) -> list[Any]:
    return [doc for doc in EXPECTED[log_type, schema] if match(doc)]


def _get(doc: Any, path: str) -> Any:
    for step in path.split("."):
        doc = doc.get(step) if type(doc) is dict else None
    return doc


def test_search_failed_imap_login() -> None:
    ocsf = _golden(
        "AUTHENTICATION_LOGS",
        "ocsf",
        lambda d: (
            d["class_uid"] == 3002
            and d["status_id"] == 2
            and _get(d, "dst_endpoint.svc_name") == "IMAP"
        ),
    )
    ecs = _golden(
        "AUTHENTICATION_LOGS",
        "ecs",
        lambda d: (
            "authentication" in d["event"]["category"]
            and d["event"]["outcome"] == "failure"
            and _get(d, "network.protocol") == "imap"
        ),
    )
    assert len(ocsf) == len(ecs) >= 3
    assert all(d["status_detail"] for d in ocsf) and all(d["event"]["reason"] for d in ecs)


def test_search_denied_access_control_rule() -> None:
    ocsf = _golden(
        "ACCESS_CONTROL_LOGS", "ocsf", lambda d: d["action_id"] == 2 and "uid" in d["policy"]
    )
    ecs = _golden(
        "ACCESS_CONTROL_LOGS",
        "ecs",
        lambda d: "denied" in d["event"]["type"] and _get(d, "rule.id") is not None,
    )
    assert len(ocsf) == len(ecs) >= 4
    assert {d["policy"]["uid"] for d in ocsf} == {d["rule"]["id"] for d in ecs}


def test_search_mailbox_read_by_an_impersonator() -> None:
    ocsf = _golden(
        "WORKMAIL_MAILBOX_ACCESS_LOGS",
        "ocsf",
        lambda d: d["activity_id"] == 2 and _get(d, "unmapped.impersonator_id") is not None,
    )
    ecs = _golden(
        "WORKMAIL_MAILBOX_ACCESS_LOGS",
        "ecs",
        lambda d: (
            "access" in d["event"]["type"]
            and _get(d, "aws.workmail.impersonator_id") in d["related"]["user"]
        ),
    )
    assert len(ocsf) == len(ecs) >= 2


def test_search_new_personal_access_token() -> None:
    ocsf = _golden(
        "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS",
        "ocsf",
        lambda d: d["type_uid"] == 300401 and d["entity"]["type"] == "Personal Access Token",
    )
    ecs = _golden(
        "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS",
        "ecs",
        lambda d: d["event"]["category"] == ["iam"] and "creation" in d["event"]["type"],
    )
    assert len(ocsf) == len(ecs) >= 5
    assert all(d["event"]["action"] == "personal-access-token-created" for d in ecs)


def test_search_dmarc_failure() -> None:
    ocsf = _golden("EMAIL_EVENT_LOGS", "ocsf", lambda d: _get(d, "email_auth.dmarc") == "FAIL")
    ecs = _golden(
        "EMAIL_EVENT_LOGS", "ecs", lambda d: _get(d, "aws.workmail.dmarc_verdict") == "FAIL"
    )
    assert len(ocsf) == len(ecs) >= 2
    enforced = _golden("EMAIL_EVENT_LOGS", "ocsf", lambda d: d.get("action_id") == 2)
    assert {d["disposition"] for d in enforced} == {"Quarantined", "Rejected"}


# ---------------------------------------------------------------- the ECS subset


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ecs_subset_is_current() -> None:
    script = _script("ecs_subset")
    source: Path = script.DEFAULT_SOURCE
    if not source.is_file():
        pytest.skip(f"{source} is not there to compare with")
    committed = script.OUTPUT.read_text(encoding="utf-8")
    assert committed == script.render(script.build_subset(source)), (
        "tests/mapping/data/ecs_subset.json is stale: run python scripts/ecs_subset.py"
    )


def test_golden_outputs_are_current() -> None:
    stale = [
        path.name
        for path, content in _script("regen_golden").render().items()
        if path.read_bytes() != content
    ]
    assert not stale, f"{stale}: review the mapping change, then scripts/regen_golden.py"


def test_golden_time_is_used_only_without_an_event_time() -> None:
    times = {doc["time"] for doc in EXPECTED["EMAIL_EVENT_LOGS", "ocsf"]}
    assert GOLDEN_TIME_MS in times and len(times) > 1


# ---------------------------------------------------------------- the checkers


def _first(log_type: str, schema: str) -> dict[str, Any]:
    return copy.deepcopy(EXPECTED[log_type, schema][0])


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    node = doc
    for step in parents:
        node = node.setdefault(step, {})
    node[last] = value
    return doc


def _drop(doc: dict[str, Any], path: str) -> dict[str, Any]:
    *parents, last = path.split(".")
    node = doc
    for step in parents:
        node = node[step]
    del node[last]
    return doc


OCSF_BREAKS: list[tuple[str, str, Callable[[dict[str, Any]], Any], str]] = [
    (
        "AUTHENTICATION_LOGS",
        "typo",
        lambda d: _set(d, "src_endpont", {"ip": "192.0.2.1"}),
        "unknown attribute",
    ),
    ("AUTHENTICATION_LOGS", "bad ip", lambda d: _set(d, "src_endpoint.ip", "300.1.1.1"), "ip_t"),
    ("AUTHENTICATION_LOGS", "type_uid", lambda d: _set(d, "type_uid", 300202), "type_uid"),
    ("AUTHENTICATION_LOGS", "category_uid", lambda d: _set(d, "category_uid", 6), "category_uid"),
    ("AUTHENTICATION_LOGS", "string id", lambda d: _set(d, "status_id", "1"), "status_id"),
    ("AUTHENTICATION_LOGS", "int bool", lambda d: _set(d, "is_remote", 1), "is_remote"),
    ("AUTHENTICATION_LOGS", "float time", lambda d: _set(d, "time", 1.5), "time"),
    ("AUTHENTICATION_LOGS", "label", lambda d: _set(d, "status", "Failure"), "status"),
    ("AUTHENTICATION_LOGS", "no user", lambda d: _drop(d, "user"), "user"),
    (
        "AUTHENTICATION_LOGS",
        "empty user",
        lambda d: _set(d, "user", {"type_id": 0}),
        "at least one",
    ),
    ("AUTHENTICATION_LOGS", "null", lambda d: _set(d, "status_detail", None), "null"),
    (
        "AUTHENTICATION_LOGS",
        "undeclared profile",
        lambda d: _set(d, "action_id", 1),
        "security_control",
    ),
    (
        "AUTHENTICATION_LOGS",
        "no cloud profile",
        lambda d: _set(d, "metadata.profiles", []),
        "cloud",
    ),
    (
        "AUTHENTICATION_LOGS",
        "alien profile",
        lambda d: d["metadata"]["profiles"].append("trace"),
        "trace",
    ),
    ("AUTHENTICATION_LOGS", "version", lambda d: _set(d, "metadata.version", "1.4.0"), "version"),
    ("AUTHENTICATION_LOGS", "class name", lambda d: _set(d, "class_name", "Auth"), "class_name"),
    ("AUTHENTICATION_LOGS", "class", lambda d: _set(d, "class_uid", 3001), "class_uid"),
    ("ACCESS_CONTROL_LOGS", "action enum", lambda d: _set(d, "action_id", 7), "action_id"),
    (
        "ACCESS_CONTROL_LOGS",
        "disposition",
        lambda d: _set(d, "disposition", "Blocked"),
        "disposition",
    ),
    (
        "ACCESS_CONTROL_LOGS",
        "policy type",
        lambda d: _set(d, "policy.is_applied", "yes"),
        "is_applied",
    ),
    ("ACCESS_CONTROL_LOGS", "cloud provider", lambda d: _drop(d, "cloud.provider"), "provider"),
    (
        "ACCESS_CONTROL_LOGS",
        "host profile",
        lambda d: d["metadata"]["profiles"].remove("host"),
        "host",
    ),
    ("EMAIL_EVENT_LOGS", "address", lambda d: _set(d, "email.to", ["not an address"]), "email_t"),
    ("EMAIL_EVENT_LOGS", "not a list", lambda d: _set(d, "email.to", "a@example.com"), "array"),
    ("EMAIL_EVENT_LOGS", "no address", lambda d: _set(d, "email", {"subject": "x"}), "from"),
    ("EMAIL_EVENT_LOGS", "direction", lambda d: _set(d, "direction_id", 7), "direction_id"),
    (
        "WORKMAIL_MAILBOX_ACCESS_LOGS",
        "operation",
        lambda d: _set(d, "api.operation", 5),
        "operation",
    ),
    (
        "WORKMAIL_MAILBOX_ACCESS_LOGS",
        "resource",
        lambda d: _set(d, "resources", [{"type": "Folder"}]),
        "at least one",
    ),
]


@pytest.mark.parametrize(
    ("log_type", "change", "message"),
    [(t, c, m) for t, _, c, m in OCSF_BREAKS],
    ids=[f"{t.lower()}:{name}" for t, name, _, _ in OCSF_BREAKS],
)
def test_validate_ocsf_rejects(
    log_type: str, change: Callable[[dict[str, Any]], Any], message: str
) -> None:
    doc = _first(log_type, "ocsf")
    validate_ocsf(doc)
    change(doc)
    with pytest.raises(AssertionError, match=message):
        validate_ocsf(doc)


def test_validate_ocsf_accepts_the_inherited_unknown_activity() -> None:
    doc = _first("WORKMAIL_MAILBOX_ACCESS_LOGS", "ocsf")
    doc.update(activity_id=0, activity_name="Unknown", type_uid=600300)
    doc["type_name"] = "API Activity: Unknown"
    validate_ocsf(doc)


ECS_BREAKS: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("unknown field", lambda d: _set(d, "user.nickname", "x"), "not an ECS"),
    ("vendor outside aws.workmail", lambda d: _set(d, "aws.s3", {"x": 1}), "aws.workmail"),
    ("ip", lambda d: _set(d, "source.ip", "300.1.1.1"), "not an ip"),
    ("ip zone", lambda d: _set(d, "source.ip", "fe80::1%eth0"), "not an ip"),
    ("date", lambda d: _set(d, "@timestamp", 1718182800611), "ISO date"),
    ("date text", lambda d: _set(d, "@timestamp", "yesterday"), "ISO date"),
    ("keyword", lambda d: _set(d, "user.id", 5), "keyword"),
    ("array", lambda d: _set(d, "related.ip", "192.0.2.1"), "must be an array"),
    ("not array", lambda d: _set(d, "user.id", ["a", "b"]), "not an array field"),
    ("outcome", lambda d: _set(d, "event.outcome", "denied"), "event.outcome"),
    ("category", lambda d: _set(d, "event.category", ["mail"]), "event.category"),
    ("type", lambda d: _set(d, "event.type", ["creation"]), "event.type"),
    ("kind", lambda d: _set(d, "event.kind", "log"), "event.kind"),
    ("version", lambda d: _set(d, "ecs.version", "8.11.0"), "ecs.version"),
    ("null", lambda d: _set(d, "event.reason", None), "null"),
    ("leaf object", lambda d: _set(d, "user.name", {"first": "a"}), "user.name"),
]


@pytest.mark.parametrize(
    ("change", "message"), [(c, m) for _, c, m in ECS_BREAKS], ids=[n for n, _, _ in ECS_BREAKS]
)
def test_check_ecs_rejects(change: Callable[[dict[str, Any]], Any], message: str) -> None:
    doc = _first("AUTHENTICATION_LOGS", "ecs")
    check_ecs(doc)
    change(doc)
    with pytest.raises(AssertionError, match=message):
        check_ecs(doc)


def test_check_ecs_reads_the_subset_only() -> None:
    from tests.mapping import ecs_checker

    assert ecs_checker.SUBSET == ROOT / "forwarder" / "mapping" / "data" / "ecs_subset.json"
    assert not (ROOT / "tests" / "schemas").exists()


# ---------------------------------------------------------------- fixed mapping bugs


def _map(record: dict[str, Any], log_type: str, schema: str) -> dict[str, Any]:
    doc = golden_output(log_type, orjson.dumps(record).decode(), schema)
    (validate_ocsf if schema == "ocsf" else check_ecs)(doc)
    assert_nothing_lost(record, log_type, schema, doc)
    return doc


MAILBOX = "WORKMAIL_MAILBOX_ACCESS_LOGS"


def test_mailbox_object_type_without_a_resource_of_its_own_is_kept() -> None:
    record = {"action": "read", "object_type": "Message", "folder_path": "Inbox", "owner_id": "u"}
    doc = _map(record, MAILBOX, "ocsf")
    assert doc["resources"] == [{"type": "Folder", "name": "Inbox", "owner": {"uid": "u"}}]
    assert doc["unmapped"] == {"object_type": "Message"}
    doc = _map({"action": "read", "object_type": "Folder", "owner_id": "u"}, MAILBOX, "ocsf")
    assert "resources" not in doc
    assert doc["unmapped"] == {"owner_id": "u", "object_type": "Folder"}


def test_mailbox_folder_event_keeps_item_and_attachment() -> None:
    record = {
        "action": "read",
        "object_type": "Folder",
        "folder_id": "f",
        "item_id": "i",
        "attachment_path": "a.pdf",
    }
    doc = _map(record, MAILBOX, "ocsf")
    assert doc["resources"] == [
        {"type": "Folder", "uid": "f"},
        {"type": "Message", "uid": "i"},
        {"type": "Attachment", "name": "a.pdf"},
    ]


def test_email_event_without_any_address_or_detail() -> None:
    record = {"event": {"eventName": "RULE_APPLIED"}}
    assert _map(record, "EMAIL_EVENT_LOGS", "ocsf")["email"] == {"to": ["unknown@unknown.invalid"]}
    assert "email" not in _map(record, "EMAIL_EVENT_LOGS", "ecs")


@pytest.mark.parametrize(
    "address", ["jösé@exämple.com", "a,b@example.com", "a@b_c.example", "Alice <a@example.com>"]
)
def test_addresses_outside_ocsf_email_t_stay_verbatim(address: str) -> None:
    record = {"traceId": "t", "event": {"eventName": "OUTGOING_EMAIL_SENT", "from": address}}
    ocsf = _map(record, "EMAIL_EVENT_LOGS", "ocsf")
    assert ocsf["unmapped"] == {"event": {"from": address}}
    assert _map(record, "EMAIL_EVENT_LOGS", "ecs")["aws"]["workmail"] == {"from": address}


def test_ews_endpoint_at_an_ip_literal() -> None:
    record = {
        "type": "EWS",
        "domain": "example.net",
        "ews_endpoint": "https://[2001:DB8::1]:8443/EWS?x=1",
        "availability_event_successful": True,
    }
    ocsf = _map(record, "WORKMAIL_AVAILABILITY_PROVIDER_LOGS", "ocsf")
    assert ocsf["dst_endpoint"] == {"ip": "2001:db8::1", "svc_name": "EWS"}
    ecs = _map(record, "WORKMAIL_AVAILABILITY_PROVIDER_LOGS", "ecs")
    assert ecs["url"] == {"original": record["ews_endpoint"], "domain": "[2001:db8::1]"}
    record["ews_endpoint"] = "https://192.0.2.9/EWS/Exchange.asmx#frag"
    ocsf = _map(record, "WORKMAIL_AVAILABILITY_PROVIDER_LOGS", "ocsf")
    assert ocsf["dst_endpoint"] == {"ip": "192.0.2.9", "svc_name": "EWS"}
    record["ews_endpoint"] = "https://mail.example.net?wsdl"
    ocsf = _map(record, "WORKMAIL_AVAILABILITY_PROVIDER_LOGS", "ocsf")
    assert ocsf["dst_endpoint"] == {"hostname": "mail.example.net", "svc_name": "EWS"}
