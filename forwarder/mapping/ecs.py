"""ECS 9.4.0 documents for WorkMail records: nested objects, only ECS-defined fields
plus vendor fields under `aws.workmail`, which also receives every value that is
unusable or undocumented (under its original key) so that nothing is lost."""

from __future__ import annotations

from typing import Any

from forwarder.mapping.common import (
    ACCESS_CONTROL,
    AUTHENTICATION,
    AVAILABILITY_PROVIDER,
    EMAIL_SNAKE,
    FIELD_SPECS,
    KIND_BY_LOG_TYPE,
    MAILBOX_ACCESS,
    PERSONAL_ACCESS_TOKEN,
    iso_ms,
    read_fields,
    url_host,
)
from forwarder.mapping.email import EmailFacts

VERSION = "9.4.0"
_DATASET = {log_type: f"aws.workmail_{kind}" for log_type, kind in KIND_BY_LOG_TYPE.items()}
_OUTCOME: dict[bool | None, str] = {True: "success", False: "failure", None: "unknown"}
_VERDICT: dict[bool | None, str | None] = {True: "allowed", False: "denied", None: None}
# ECS network.protocol wants lowercase application protocol names; the other
# WorkMail protocol values are client kinds (WindowsOutlook, WebMail...), not protocols.
_NETWORK_PROTOCOL = {"IMAP": "imap", "SMTP": "smtp"}
_MAILBOX_TYPE = (
    dict.fromkeys(("read", "read_hierarchy", "read_summary", "read_attachment"), "access")
    | dict.fromkeys(("read_permissions",), "access")
    | dict.fromkeys(("update", "update_permissions", "update_read_state"), "change")
    | dict.fromkeys(("move", "move_to", "copy", "copy_to"), "change")
    | {"create": "creation", "delete": "deletion"}
)
_PAT_TYPE = {"create": ("creation", "created"), "delete": ("deletion", "deleted")}
_EMAIL_DIRECTION = {1: "inbound", 2: "outbound"}


def _envelope(
    log_type: str, event_id: str, time_ms: int, category: str, types: list[str]
) -> dict[str, Any]:
    return {
        "@timestamp": iso_ms(time_ms),
        "ecs": {"version": VERSION},
        "event": {
            "kind": "event",
            "category": [category],
            "type": types,
            "id": event_id,
            "dataset": _DATASET[log_type],
            "module": "aws",
            "provider": "workmail.amazonaws.com",
        },
        "cloud": {"provider": "aws", "service": {"name": "workmail"}},
    }


def _related_user(out: dict[str, Any], value: str) -> None:
    users = out.setdefault("related", {}).setdefault("user", [])
    if value not in users:
        users.append(value)


def _audit(values: dict[str, Any], out: dict[str, Any], vendor: dict[str, Any]) -> None:
    """Fields every audit log shares."""
    get = values.get
    if "request_id" in values:
        vendor["request_id"] = values["request_id"]
    org = get("org")
    if org is not None:
        region, account, org_id = org
        cloud = out["cloud"]
        if region:
            cloud["region"] = region
        if account:
            cloud["account"] = {"id": account}
        out["organization"] = {"id": org_id}
    ip = get("source_ip")
    if ip is not None:
        out["source"] = {"ip": ip}
        out["related"] = {"ip": [ip]}
    if "user_agent" in values:
        out["user_agent"] = {"original": values["user_agent"]}
    user_id = get("user_id")
    if user_id is not None:
        out["user"] = {"id": user_id}
        _related_user(out, user_id)
    name = get("user")
    if name is not None:
        out.setdefault("user", {})["name"] = name
        _related_user(out, name)
    protocol = get("protocol")
    if protocol is not None:
        vendor["protocol"] = protocol
        network = _NETWORK_PROTOCOL.get(protocol.upper())
        if network is not None:
            out["network"] = {"protocol": network}
    impersonator = get("impersonator_id")
    if impersonator is not None:
        # Which of user_id and impersonator_id is the real caller is unconfirmed,
        # so the impersonator stays a vendor field rather than user.effective.*.
        vendor["impersonator_id"] = impersonator
        _related_user(out, impersonator)


def _authentication(values: dict[str, Any], event: dict[str, Any], out: dict[str, Any]) -> None:
    event["action"] = "user-login"
    event["outcome"] = _OUTCOME[values.get("auth_successful")]
    if "auth_failed_reason" in values:
        event["reason"] = values["auth_failed_reason"]


def _access_control(values: dict[str, Any], event: dict[str, Any], out: dict[str, Any]) -> None:
    granted = values.get("access_granted")
    verdict = _VERDICT[granted]
    if verdict is not None:
        event["type"].append(verdict)
    event["action"] = "access-control-evaluation"
    event["outcome"] = _OUTCOME[granted]
    rule: dict[str, Any] = {}
    if "rule_id" in values:
        # WorkMail rules are identified by name (GetAccessControlEffect returns names).
        rule["id"] = rule["name"] = values["rule_id"]
    if "scope" in values:
        rule["ruleset"] = values["scope"]
    if rule:
        out["rule"] = rule


def _mailbox_access(values: dict[str, Any], event: dict[str, Any], out: dict[str, Any]) -> None:
    action = values.get("action")
    allowed = values.get("action_allowed")
    if action is not None:
        event["type"][0] = _MAILBOX_TYPE.get(action) or _MAILBOX_TYPE.get(action.lower(), "info")
        event["action"] = action
    verdict = _VERDICT[allowed]
    if verdict is not None:
        event["type"].append(verdict)
    event["outcome"] = _OUTCOME[allowed]
    owner = values.get("owner_id")
    if owner is not None and owner != values.get("user_id"):
        out.setdefault("user", {})["target"] = {"id": owner}
        _related_user(out, owner)
    if "attachment_path" in values:
        out["email"] = {"attachments": [{"file": {"name": values["attachment_path"]}}]}


def _availability(values: dict[str, Any], event: dict[str, Any], out: dict[str, Any]) -> None:
    event["action"] = "availability-lookup"
    event["outcome"] = _OUTCOME[values.get("availability_event_successful")]
    endpoint = values.get("ews_endpoint")
    if endpoint is not None:
        url: dict[str, Any] = {"original": endpoint}
        host = url_host(endpoint)
        if host is not None:
            # ECS: an IPv6 literal keeps its brackets in url.domain (RFC 2732).
            url["domain"] = f"[{host}]" if ":" in host else host
        out["url"] = url
    if "domain" in values:
        out["destination"] = {"domain": values["domain"]}
    if "error_message" in values:
        out["error"] = {"message": values["error_message"]}


def _personal_access_token(
    values: dict[str, Any], event: dict[str, Any], out: dict[str, Any]
) -> None:
    action = values.get("action")
    shape = None if action is None else _PAT_TYPE.get(action.lower())
    if shape is not None:
        event["type"].insert(0, shape[0])
        event["action"] = f"personal-access-token-{shape[1]}"
    elif action is not None:
        event["action"] = f"personal-access-token-{action}"
    event["outcome"] = "unknown"  # the log has no outcome field


# Per log type: ECS category, initial event.type, the vendor fields kept verbatim,
# and the mapper adding the rest.
_AUDIT: dict[str, tuple[str, str, tuple[str, ...], Any]] = {
    AUTHENTICATION: (
        "authentication",
        "start",
        ("method", "personal_access_token_id"),
        _authentication,
    ),
    ACCESS_CONTROL: ("network", "access", ("scope",), _access_control),
    MAILBOX_ACCESS: (
        "api",
        "info",
        ("owner_id", "object_type", "item_id", "folder_path", "folder_id", "attachment_path"),
        _mailbox_access,
    ),
    AVAILABILITY_PROVIDER: ("api", "access", ("type", "function_arn"), _availability),
    PERSONAL_ACCESS_TOKEN: ("iam", "user", (), _personal_access_token),
}


def map_audit(record: dict[str, Any], log_type: str, event_id: str, time_ms: int) -> dict[str, Any]:
    values, extra = read_fields(record, FIELD_SPECS[log_type])
    category, first_type, kept, mapper = _AUDIT[log_type]
    out = _envelope(log_type, event_id, time_ms, category, [first_type])
    vendor: dict[str, Any] = {}
    _audit(values, out, vendor)
    for key in kept:
        if key in values:
            vendor[key] = values[key]
    mapper(values, out["event"], out)
    if log_type == PERSONAL_ACCESS_TOKEN:
        pat: dict[str, Any] = {k: values[k] for k in ("name", "scopes") if k in values}
        if "expires_time" in values:
            # Normalised to one date format so the field maps to one Elasticsearch type.
            pat["expires_time"] = iso_ms(values["expires_time"])
        if pat:
            vendor["pat"] = pat
    for key, value in extra.items():
        vendor.setdefault(key, value)
    if vendor:
        out["aws"] = {"workmail": vendor}
    return out


def map_email(
    facts: EmailFacts, record: dict[str, Any], log_type: str, event_id: str, time_ms: int
) -> dict[str, Any]:
    out = _envelope(log_type, event_id, time_ms, "email", ["info"])
    values = facts.values
    event = out["event"]
    event["action"] = facts.name.lower()
    event["outcome"] = "failure" if facts.failed else "success"
    if facts.reason is not None:
        event["reason"] = facts.reason
    email: dict[str, Any] = {}
    if facts.trace_id is not None:
        email["local_id"] = facts.trace_id
    if "messageId" in values:
        email["message_id"] = values["messageId"]
    if "from" in values:
        email["from"] = {"address": [values["from"]]}
    if "sender" in values:
        email["sender"] = {"address": values["sender"]}
    if facts.recipients:
        email["to"] = {"address": facts.recipients}
    if "subject" in values:
        email["subject"] = values["subject"]
    direction = _EMAIL_DIRECTION.get(facts.direction_id)
    if direction is not None:
        email["direction"] = direction
    if "messageTimestamp" in values:
        email["origination_timestamp"] = iso_ms(values["messageTimestamp"])
    if email:  # a rule event may name no message detail at all
        out["email"] = email
    rule: dict[str, Any] = {}
    if "ruleName" in values:
        rule["name"] = values["ruleName"]
    if "ruleType" in values:
        rule["category"] = values["ruleType"]
    if rule:
        out["rule"] = rule
    vendor: dict[str, Any] = dict(facts.top_extra)
    for key in _EMAIL_VENDOR:
        if key in values:
            vendor[EMAIL_SNAKE.get(key, key)] = values[key]
    if facts.dmarc_policy is not None:
        vendor["dmarc_policy"] = facts.dmarc_policy
    bounce: dict[str, Any] = dict(facts.bounce_extra)
    if facts.bounce_status is not None:
        bounce["status"] = facts.bounce_status
    if bounce:
        vendor["bounced_recipient"] = bounce
    for key, value in facts.extra.items():
        snake = EMAIL_SNAKE.get(key, key)
        vendor[key if snake in vendor else snake] = value
    if vendor:
        out["aws"] = {"workmail": vendor}
    return out


# Documented email event fields with no ECS home.
_EMAIL_VENDOR = (
    "spamVerdict",
    "spfVerdict",
    "dkimVerdict",
    "dmarcVerdict",
    "folder",
    "ruleActions",
    "targetFolder",
    "targetRecipient",
)
