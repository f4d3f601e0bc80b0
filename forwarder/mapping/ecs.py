"""ECS 9.4.0 documents for WorkMail records: nested objects, only ECS-defined fields
plus vendor fields under `aws.workmail`, which also receives every value that is
unusable or undocumented (under its original key) so that nothing is lost."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from forwarder.mapping.common import (
    ACCESS_CONTROL,
    AUTHENTICATION,
    AVAILABILITY_PROVIDER,
    EMAIL_FIELDS,
    KIND_BY_LOG_TYPE,
    KNOWN_KEYS,
    MAILBOX_ACCESS,
    PERSONAL_ACCESS_TOKEN,
    EmailFacts,
    add_unknown,
    get_bool,
    get_ip,
    get_org,
    get_str,
    get_str_list,
    iso_ms,
    parse_time_ms,
    url_host,
)

VERSION = "9.4.0"
_DATASET = {log_type: f"aws.workmail_{kind}" for log_type, kind in KIND_BY_LOG_TYPE.items()}
_OUTCOME: dict[bool | None, str] = {True: "success", False: "failure", None: "unknown"}
_VERDICT: dict[bool | None, str | None] = {True: "allowed", False: "denied", None: None}
# ECS network.protocol wants lowercase application protocol names; the other
# WorkMail protocol values are client kinds (WindowsOutlook, WebMail...), not protocols.
_NETWORK_PROTOCOL = {"IMAP": "imap", "SMTP": "smtp"}
_MAILBOX_TYPE = {
    "read": "access",
    "read_hierarchy": "access",
    "read_summary": "access",
    "read_attachment": "access",
    "read_permissions": "access",
    "create": "creation",
    "update": "change",
    "update_permissions": "change",
    "update_read_state": "change",
    "move": "change",
    "move_to": "change",
    "copy": "change",
    "copy_to": "change",
    "delete": "deletion",
}
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


def _audit(record: dict[str, Any], out: dict[str, Any], vendor: dict[str, Any]) -> None:
    """Fields every audit log shares."""
    request_id = get_str(record, "request_id", vendor)
    if request_id is not None:
        vendor["request_id"] = request_id
    org = get_org(record, vendor)
    if org is not None:
        region, account, org_id = org
        cloud = out["cloud"]
        if region:
            cloud["region"] = region
        if account:
            cloud["account"] = {"id": account}
        out["organization"] = {"id": org_id}
    stamp = record.get("event_timestamp")
    if stamp is not None and (type(stamp) is bool or parse_time_ms(stamp) is None):
        vendor["event_timestamp"] = stamp
    ip = get_ip(record, "source_ip", vendor)
    if ip is not None:
        out["source"] = {"ip": ip}
        out["related"] = {"ip": [ip]}
    agent = get_str(record, "user_agent", vendor)
    if agent is not None:
        out["user_agent"] = {"original": agent}
    user_id = get_str(record, "user_id", vendor)
    if user_id is not None:
        out["user"] = {"id": user_id}
        _related_user(out, user_id)
    protocol = get_str(record, "protocol", vendor)
    if protocol is not None:
        vendor["protocol"] = protocol
        network = _NETWORK_PROTOCOL.get(protocol.upper())
        if network is not None:
            out["network"] = {"protocol": network}
    impersonator = get_str(record, "impersonator_id", vendor)
    if impersonator is not None:
        # Which of user_id and impersonator_id is the real caller is unconfirmed,
        # so the impersonator stays a vendor field rather than user.effective.*.
        vendor["impersonator_id"] = impersonator
        _related_user(out, impersonator)


def _finish(
    record: dict[str, Any], log_type: str, out: dict[str, Any], vendor: dict[str, Any]
) -> dict[str, Any]:
    add_unknown(record, KNOWN_KEYS[log_type], vendor)
    if vendor:
        out["aws"] = {"workmail": vendor}
    return out


def _user_name(record: dict[str, Any], out: dict[str, Any], vendor: dict[str, Any]) -> None:
    name = get_str(record, "user", vendor)
    if name is not None:
        out.setdefault("user", {})["name"] = name
        _related_user(out, name)


def _authentication(record: dict[str, Any], log_type: str, uid: str, ms: int) -> dict[str, Any]:
    out = _envelope(log_type, uid, ms, "authentication", ["start"])
    vendor: dict[str, Any] = {}
    _audit(record, out, vendor)
    _user_name(record, out, vendor)
    event = out["event"]
    event["action"] = "user-login"
    event["outcome"] = _OUTCOME[get_bool(record, "auth_successful", vendor)]
    reason = get_str(record, "auth_failed_reason", vendor)
    if reason is not None:
        event["reason"] = reason
    for key in ("method", "personal_access_token_id"):
        value = get_str(record, key, vendor)
        if value is not None:
            vendor[key] = value
    return _finish(record, log_type, out, vendor)


def _access_control(record: dict[str, Any], log_type: str, uid: str, ms: int) -> dict[str, Any]:
    vendor: dict[str, Any] = {}
    granted = get_bool(record, "access_granted", vendor)
    verdict = _VERDICT[granted]
    out = _envelope(log_type, uid, ms, "network", ["access", verdict] if verdict else ["access"])
    _audit(record, out, vendor)
    event = out["event"]
    event["action"] = "access-control-evaluation"
    event["outcome"] = _OUTCOME[granted]
    rule: dict[str, Any] = {}
    rule_id = get_str(record, "rule_id", vendor)
    if rule_id is not None:
        # WorkMail rules are identified by name (GetAccessControlEffect returns names).
        rule["id"] = rule["name"] = rule_id
    scope = get_str(record, "scope", vendor)
    if scope is not None:
        rule["ruleset"] = scope
        vendor["scope"] = scope
    if rule:
        out["rule"] = rule
    return _finish(record, log_type, out, vendor)


def _mailbox_access(record: dict[str, Any], log_type: str, uid: str, ms: int) -> dict[str, Any]:
    vendor: dict[str, Any] = {}
    action = get_str(record, "action", vendor)
    allowed = get_bool(record, "action_allowed", vendor)
    kind = "info"
    if action is not None:
        kind = _MAILBOX_TYPE.get(action) or _MAILBOX_TYPE.get(action.lower(), "info")
    verdict = _VERDICT[allowed]
    out = _envelope(log_type, uid, ms, "api", [kind, verdict] if verdict else [kind])
    _audit(record, out, vendor)
    event = out["event"]
    if action is not None:
        event["action"] = action
    event["outcome"] = _OUTCOME[allowed]
    owner = get_str(record, "owner_id", vendor)
    if owner is not None:
        vendor["owner_id"] = owner
        if owner != out.get("user", {}).get("id"):
            out.setdefault("user", {})["target"] = {"id": owner}
            _related_user(out, owner)
    for key in ("object_type", "item_id", "folder_path", "folder_id", "attachment_path"):
        value = get_str(record, key, vendor)
        if value is not None:
            vendor[key] = value
    attachment = vendor.get("attachment_path")
    if type(attachment) is str:
        out["email"] = {"attachments": [{"file": {"name": attachment}}]}
    return _finish(record, log_type, out, vendor)


def _availability(record: dict[str, Any], log_type: str, uid: str, ms: int) -> dict[str, Any]:
    out = _envelope(log_type, uid, ms, "api", ["access"])
    vendor: dict[str, Any] = {}
    _audit(record, out, vendor)
    event = out["event"]
    event["action"] = "availability-lookup"
    event["outcome"] = _OUTCOME[get_bool(record, "availability_event_successful", vendor)]
    endpoint = get_str(record, "ews_endpoint", vendor)
    if endpoint is not None:
        url: dict[str, Any] = {"original": endpoint}
        host = url_host(endpoint)
        if host is not None:
            url["domain"] = host
        out["url"] = url
    domain = get_str(record, "domain", vendor)
    if domain is not None:
        out["destination"] = {"domain": domain}
    error = get_str(record, "error_message", vendor)
    if error is not None:
        out["error"] = {"message": error}
    for key in ("type", "function_arn"):
        value = get_str(record, key, vendor)
        if value is not None:
            vendor[key] = value
    return _finish(record, log_type, out, vendor)


def _personal_access_token(
    record: dict[str, Any], log_type: str, uid: str, ms: int
) -> dict[str, Any]:
    vendor: dict[str, Any] = {}
    action = get_str(record, "action", vendor)
    shape = None if action is None else _PAT_TYPE.get(action.lower())
    out = _envelope(log_type, uid, ms, "iam", [shape[0], "user"] if shape else ["user"])
    _audit(record, out, vendor)
    _user_name(record, out, vendor)
    event = out["event"]
    if shape is not None:
        event["action"] = f"personal-access-token-{shape[1]}"
    elif action is not None:
        event["action"] = f"personal-access-token-{action}"
    event["outcome"] = "unknown"  # the log has no outcome field
    pat: dict[str, Any] = {}
    name = get_str(record, "name", vendor)
    if name is not None:
        pat["name"] = name
    scopes = get_str_list(record, "scopes", vendor)
    if scopes is not None:
        pat["scopes"] = scopes
    expires = record.get("expires_time")
    if expires is not None and expires != "":
        # Normalised to one date format so the field maps to one Elasticsearch type.
        expires_ms = parse_time_ms(expires) if type(expires) is not bool else None
        if expires_ms is None:
            vendor["expires_time"] = expires
        else:
            pat["expires_time"] = iso_ms(expires_ms)
    if pat:
        vendor["pat"] = pat
    return _finish(record, log_type, out, vendor)


def map_email(facts: EmailFacts, log_type: str, uid: str, ms: int) -> dict[str, Any]:
    out = _envelope(log_type, uid, ms, "email", ["info"])
    event = out["event"]
    event["action"] = facts.name.lower()
    event["outcome"] = "failure" if facts.failed else "success"
    if facts.reason is not None:
        event["reason"] = facts.reason
    email: dict[str, Any] = {}
    if facts.trace_id is not None:
        email["local_id"] = facts.trace_id
    if facts.message_id is not None:
        email["message_id"] = facts.message_id
    if facts.from_ is not None:
        email["from"] = {"address": [facts.from_]}
    if facts.sender is not None:
        email["sender"] = {"address": facts.sender}
    if facts.recipients:
        email["to"] = {"address": facts.recipients}
    if facts.subject is not None:
        email["subject"] = facts.subject
    direction = _EMAIL_DIRECTION.get(facts.direction_id)
    if direction is not None:
        email["direction"] = direction
    if facts.time_text is not None:
        stamp = parse_time_ms(facts.time_text)
        if stamp is not None:
            email["origination_timestamp"] = iso_ms(stamp)
    out["email"] = email
    rule: dict[str, Any] = {}
    if facts.rule_name is not None:
        rule["name"] = facts.rule_name
    if facts.rule_type is not None:
        rule["category"] = facts.rule_type
    if rule:
        out["rule"] = rule
    vendor: dict[str, Any] = dict(facts.top_extra)
    for key, value in facts.extra.items():
        vendor.setdefault(EMAIL_FIELDS.get(key, key), value)
    for key, value in (
        ("spam_verdict", facts.spam),
        ("spf_verdict", facts.spf),
        ("dkim_verdict", facts.dkim),
        ("dmarc_verdict", facts.dmarc),
        ("dmarc_policy", facts.dmarc_policy),
        ("folder", facts.folder),
        ("rule_actions", facts.rule_actions),
        ("target_folder", facts.target_folder),
        ("target_recipient", facts.target_recipient),
    ):
        if value is not None:
            vendor[key] = value
    bounce: dict[str, Any] = dict(facts.bounce_extra)
    if facts.bounce_status is not None:
        bounce["status"] = facts.bounce_status
    if bounce:
        vendor["bounced_recipient"] = bounce
    if vendor:
        out["aws"] = {"workmail": vendor}
    return out


AUDIT_MAPPERS: dict[str, Callable[[dict[str, Any], str, str, int], dict[str, Any]]] = {
    AUTHENTICATION: _authentication,
    ACCESS_CONTROL: _access_control,
    MAILBOX_ACCESS: _mailbox_access,
    AVAILABILITY_PROVIDER: _availability,
    PERSONAL_ACCESS_TOKEN: _personal_access_token,
}
