"""OCSF 1.5.0 documents for WorkMail records (classes 3002, 6001, 6003, 3004, 4009).

Each mapper reads the fields it knows, lands what has no OCSF home, is unusable, or
is undocumented in `unmapped` under its original key, and never emits empty values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from forwarder.mapping.common import (
    ACCESS_CONTROL,
    AUTHENTICATION,
    AVAILABILITY_PROVIDER,
    KNOWN_KEYS,
    MAILBOX_ACCESS,
    PERSONAL_ACCESS_TOKEN,
    PRODUCT_NAME,
    EmailFacts,
    add_unknown,
    get_bool,
    get_ip,
    get_org,
    get_str,
    get_str_list,
    parse_time_ms,
    url_host,
)

VERSION = "1.5.0"
_IAM = (3, "Identity & Access Management")
_APPLICATION = (6, "Application Activity")
_NETWORK = (4, "Network Activity")

# Outcome -> (status_id, status, severity_id, severity): failures and denials are
# raised to Medium so that a SIEM's default severity filter surfaces them.
_OUTCOME: dict[bool | None, tuple[int, str, int, str]] = {
    True: (1, "Success", 1, "Informational"),
    False: (2, "Failure", 3, "Medium"),
    None: (0, "Unknown", 1, "Informational"),
}
# Outcome -> (action_id, action, disposition_id, disposition) of the Security Control profile.
_CONTROL: dict[bool | None, tuple[int, str, int, str]] = {
    True: (1, "Allowed", 1, "Allowed"),
    False: (2, "Denied", 2, "Blocked"),
    None: (0, "Unknown", 0, "Unknown"),
}
_DMARC_CONTROL: dict[str, tuple[int, str, int, str]] = {
    "NONE": (1, "Allowed", 16, "No Action"),
    "QUARANTINE": (2, "Denied", 3, "Quarantined"),
    "REJECT": (2, "Denied", 25, "Rejected"),
}
_CRUD = {0: "Unknown", 1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"}
_EMAIL_ACTIVITY = {0: "Unknown", 1: "Send", 2: "Receive", 3: "Scan", 4: "Trace", 99: "Other"}
_DIRECTION = {0: "Unknown", 1: "Inbound", 2: "Outbound"}
_MAILBOX_ACTIVITY = {
    "read": 2,
    "read_hierarchy": 2,
    "read_summary": 2,
    "read_attachment": 2,
    "read_permissions": 2,
    "create": 1,
    "update": 3,
    "update_permissions": 3,
    "update_read_state": 3,
    "move": 3,
    "move_to": 3,
    "copy": 3,
    "copy_to": 3,
    "delete": 4,
}
_PAT_ACTIVITY = {"create": 1, "delete": 4}


def _envelope(
    cls: tuple[int, str],
    category: tuple[int, str],
    activity: tuple[int, str],
    type_caption: str,
    log_type: str,
    event_id: str,
    time_ms: int,
    profiles: list[str],
) -> dict[str, Any]:
    class_uid, class_name = cls
    return {
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category[0],
        "category_name": category[1],
        "activity_id": activity[0],
        "activity_name": activity[1],
        "type_uid": class_uid * 100 + activity[0],
        "type_name": f"{class_name}: {type_caption}",
        "severity_id": 1,
        "severity": "Informational",
        "time": time_ms,
        "metadata": {
            "version": VERSION,
            "product": {"name": PRODUCT_NAME, "vendor_name": "AWS"},
            "log_name": log_type,
            "uid": event_id,
            "profiles": profiles,
        },
        "cloud": {"provider": "AWS"},
    }


def _outcome(out: dict[str, Any], ok: bool | None) -> None:
    out["status_id"], out["status"], out["severity_id"], out["severity"] = _OUTCOME[ok]


def _control(out: dict[str, Any], ok: bool | None) -> None:
    out["action_id"], out["action"], out["disposition_id"], out["disposition"] = _CONTROL[ok]


def _audit(record: dict[str, Any], out: dict[str, Any], extra: dict[str, Any]) -> str | None:
    """Fields every audit log shares; returns request_id."""
    metadata = out["metadata"]
    request_id = get_str(record, "request_id", extra)
    if request_id is not None:
        metadata["correlation_uid"] = request_id
    org = get_org(record, extra)
    if org is not None:
        region, account, metadata["tenant_uid"] = org
        cloud = out["cloud"]
        if region:
            cloud["region"] = region
        if account:
            cloud["account"] = {"uid": account}
    stamp = record.get("event_timestamp")
    if stamp is not None:
        if type(stamp) is not bool and parse_time_ms(stamp) is not None:
            metadata["original_time"] = str(stamp)
        else:
            extra["event_timestamp"] = stamp
    ip = get_ip(record, "source_ip", extra)
    if ip is not None:
        out["src_endpoint"] = {"ip": ip}
    agent = get_str(record, "user_agent", extra)
    if agent is not None:
        out["http_request"] = {"user_agent": agent}
    return request_id


def _keep(record: dict[str, Any], key: str, extra: dict[str, Any]) -> None:
    value = record.get(key)
    if value is not None and value != "":
        extra[key] = value


def _authentication(record: dict[str, Any], log_type: str, uid: str, ms: int) -> dict[str, Any]:
    out = _envelope(
        (3002, "Authentication"), _IAM, (1, "Logon"), "Logon", log_type, uid, ms, ["cloud"]
    )
    extra: dict[str, Any] = {}
    _audit(record, out, extra)
    user: dict[str, Any] = {}
    user_id = get_str(record, "user_id", extra)
    name = get_str(record, "user", extra)
    if user_id is not None:
        user["uid"] = user_id
    if name is not None:
        user["name"] = name
    if user_id is None and name is None:
        user["type_id"], user["type"] = 0, "Unknown"  # `user` is required even when unknown
    token = get_str(record, "personal_access_token_id", extra)
    if token is not None:
        user["credential_uid"] = token
    out["user"] = user
    _outcome(out, get_bool(record, "auth_successful", extra))
    reason = get_str(record, "auth_failed_reason", extra)
    if reason is not None:
        out["status_detail"] = reason
    method = get_str(record, "method", extra)
    if method is not None:
        if method.lower() == "basic":
            out["auth_protocol_id"], out["auth_protocol"] = 11, "Basic Authentication"
        else:
            out["auth_protocol_id"], out["auth_protocol"] = 99, method
    out["service"] = {"name": PRODUCT_NAME}
    protocol = get_str(record, "protocol", extra)
    if protocol is not None:
        out["dst_endpoint"] = {"svc_name": protocol}
    out["is_remote"] = True
    out["logon_type_id"], out["logon_type"] = 3, "Network"
    return _finish(record, log_type, out, extra)


def _access_control(record: dict[str, Any], log_type: str, uid: str, ms: int) -> dict[str, Any]:
    # No OCSF class records an authorization decision; 6004 was deprecated in
    # favour of 6001 with the Security Control profile. `actor` comes with the
    # Host profile in this class.
    out = _envelope(
        (6001, "Web Resources Activity"),
        _APPLICATION,
        (99, "Access Evaluation"),
        "Other",
        log_type,
        uid,
        ms,
        ["cloud", "host", "security_control"],
    )
    extra: dict[str, Any] = {}
    _audit(record, out, extra)
    granted = get_bool(record, "access_granted", extra)
    _outcome(out, granted)
    _control(out, granted)
    org_arn = record.get("organization_arn")
    resource: dict[str, Any] = {"type": "WorkMail Organization"}
    if "tenant_uid" in out["metadata"]:
        resource["uid"] = org_arn
        resource["name"] = out["metadata"]["tenant_uid"]
    else:
        resource["name"] = PRODUCT_NAME
    out["web_resources"] = [resource]
    rule_id = get_str(record, "rule_id", extra)
    scope = get_str(record, "scope", extra)
    if rule_id is not None:
        policy: dict[str, Any] = {"uid": rule_id, "name": rule_id, "is_applied": True}
    elif scope is not None:
        policy = {"name": scope}  # no rule matched: the scope's default decided
    else:
        policy = {}
    if scope is not None:
        policy["group"] = {"name": scope}
    if policy:
        out["policy"] = policy
    user_id = get_str(record, "user_id", extra)
    if user_id is not None:
        out["actor"] = {"user": {"uid": user_id}}
    protocol = get_str(record, "protocol", extra)
    if protocol is not None:
        out["dst_endpoint"] = {"svc_name": protocol}
    _keep(record, "impersonator_id", extra)
    return _finish(record, log_type, out, extra)


def _api_activity(
    activity_id: int, name: str | None, log_type: str, uid: str, ms: int, profiles: list[str]
) -> dict[str, Any]:
    caption = _CRUD[activity_id]
    return _envelope(
        (6003, "API Activity"),
        _APPLICATION,
        (activity_id, name if activity_id == 99 and name else caption),
        caption,
        log_type,
        uid,
        ms,
        profiles,
    )


def _resource(kind: str | None, uid: str | None, name: str | None, owner: str | None) -> Any:
    if uid is None and name is None:
        return None
    res: dict[str, Any] = {}
    if kind is not None:
        res["type"] = kind
    if uid is not None:
        res["uid"] = uid
    if name is not None:
        res["name"] = name
    if owner is not None:
        res["owner"] = {"uid": owner}
    return res


def _mailbox_access(record: dict[str, Any], log_type: str, uid: str, ms: int) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    action = get_str(record, "action", extra)
    if action is None:
        activity_id = 0
    else:
        activity_id = _MAILBOX_ACTIVITY.get(action) or _MAILBOX_ACTIVITY.get(action.lower(), 99)
    out = _api_activity(activity_id, action, log_type, uid, ms, ["cloud", "security_control"])
    request_id = _audit(record, out, extra)
    allowed = get_bool(record, "action_allowed", extra)
    _outcome(out, allowed)
    _control(out, allowed)
    api: dict[str, Any] = {"operation": action or "Unknown"}
    protocol = get_str(record, "protocol", extra)
    if protocol is not None:
        api["service"] = {"name": protocol}
    if request_id is not None:
        api["request"] = {"uid": request_id}
    out["api"] = api
    user_id = get_str(record, "user_id", extra)
    # IncomingEmail/OutgoingEmail operations may carry no user: WorkMail acts itself.
    out["actor"] = {"user": {"uid": user_id}} if user_id else {"app_name": PRODUCT_NAME}
    if "src_endpoint" not in out:
        out["src_endpoint"] = {"svc_name": PRODUCT_NAME}
    owner = get_str(record, "owner_id", extra)
    kind = get_str(record, "object_type", extra)
    item_id = get_str(record, "item_id", extra)
    folder_id = get_str(record, "folder_id", extra)
    folder_path = get_str(record, "folder_path", extra)
    attachment = get_str(record, "attachment_path", extra)
    if kind is not None and kind.lower() == "folder":
        found = [_resource(kind, folder_id, folder_path, owner)]
    else:
        if attachment is not None or (kind is not None and kind.lower() == "attachment"):
            found = [_resource(kind or "Attachment", None, attachment, owner)]
            found.append(_resource("Message", item_id, None, owner))
        else:
            found = [_resource(kind, item_id, None, owner)]
        found.append(_resource("Folder", folder_id, folder_path, owner))
    resources = [r for r in found if r is not None]
    if resources:
        out["resources"] = resources
    else:
        for key, value in (("object_type", kind), ("owner_id", owner)):
            if value is not None:
                extra[key] = value
    _keep(record, "impersonator_id", extra)
    return _finish(record, log_type, out, extra)


def _availability(record: dict[str, Any], log_type: str, uid: str, ms: int) -> dict[str, Any]:
    out = _api_activity(2, None, log_type, uid, ms, ["cloud"])
    extra: dict[str, Any] = {}
    request_id = _audit(record, out, extra)
    _outcome(out, get_bool(record, "availability_event_successful", extra))
    error = get_str(record, "error_message", extra)
    if error is not None:
        out["status_detail"] = error
    api: dict[str, Any] = {"operation": "AvailabilityLookup"}
    provider = get_str(record, "type", extra)
    if provider is not None:
        api["service"] = {"name": provider}
    if request_id is not None:
        api["request"] = {"uid": request_id}
    out["api"] = api
    actor: dict[str, Any] = {"app_name": PRODUCT_NAME}  # WorkMail asks on the user's behalf
    user_id = get_str(record, "user_id", extra)
    if user_id is not None:
        actor["user"] = {"uid": user_id}
    out["actor"] = actor
    if "src_endpoint" not in out:
        out["src_endpoint"] = {"svc_name": PRODUCT_NAME}
    resources = []
    domain = get_str(record, "domain", extra)
    if domain is not None:
        resources.append({"type": "Domain", "name": domain})
    function_arn = get_str(record, "function_arn", extra)
    if function_arn is not None:
        resources.append({"type": "Lambda Function", "uid": function_arn})
    if resources:
        out["resources"] = resources
    endpoint = get_str(record, "ews_endpoint", extra)
    if endpoint is not None:
        url: dict[str, Any] = {"url_string": endpoint}
        host = url_host(endpoint)
        if host is not None:
            url["hostname"] = host
            out["dst_endpoint"] = {"hostname": host, "svc_name": "EWS"}
        out.setdefault("http_request", {})["url"] = url
    return _finish(record, log_type, out, extra)


def _personal_access_token(
    record: dict[str, Any], log_type: str, uid: str, ms: int
) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    action = get_str(record, "action", extra)
    if action is None:
        activity_id = 0
    else:
        activity_id = _PAT_ACTIVITY.get(action) or _PAT_ACTIVITY.get(action.lower(), 99)
    caption = _CRUD[activity_id]
    name = action if activity_id == 99 and action else caption
    out = _envelope(
        (3004, "Entity Management"),
        _IAM,
        (activity_id, name),
        caption,
        log_type,
        uid,
        ms,
        ["cloud"],
    )
    _audit(record, out, extra)
    _outcome(out, None)  # the log has no outcome field
    entity: dict[str, Any] = {"type": "Personal Access Token"}
    token_name = get_str(record, "name", extra)
    if token_name is not None:
        entity["name"] = token_name
    data: dict[str, Any] = {}
    scopes = get_str_list(record, "scopes", extra)
    if scopes is not None:
        data["scopes"] = scopes
    expires = record.get("expires_time")
    if expires is not None and expires != "":
        expires_ms = parse_time_ms(expires) if type(expires) is not bool else None
        if expires_ms is None:
            extra["expires_time"] = expires
        else:
            data["expires_time"] = expires_ms
    if data:
        entity["data"] = data
    out["entity"] = entity
    actor_user: dict[str, Any] = {}
    user_id = get_str(record, "user_id", extra)
    user = get_str(record, "user", extra)
    if user_id is not None:
        actor_user["uid"] = user_id
    if user is not None:
        actor_user["name"] = user
    if actor_user:
        out["actor"] = {"user": actor_user}
    _keep(record, "protocol", extra)
    return _finish(record, log_type, out, extra)


def _finish(
    record: dict[str, Any], log_type: str, out: dict[str, Any], extra: dict[str, Any]
) -> dict[str, Any]:
    add_unknown(record, KNOWN_KEYS[log_type], extra)
    if extra:
        out["unmapped"] = extra
    return out


def map_email(facts: EmailFacts, log_type: str, uid: str, ms: int) -> dict[str, Any]:
    activity_id = facts.activity_id
    caption = _EMAIL_ACTIVITY[activity_id]
    profiles = ["cloud"]
    out = _envelope(
        (4009, "Email Activity"),
        _NETWORK,
        (activity_id, facts.name if activity_id == 99 else caption),
        caption,
        log_type,
        uid,
        ms,
        profiles,
    )
    metadata = out["metadata"]
    metadata["event_code"] = facts.name
    if facts.trace_id is not None:
        metadata["correlation_uid"] = facts.trace_id
        out["message_trace_uid"] = facts.trace_id
    if facts.time_text is not None:
        metadata["original_time"] = facts.time_text
    out["direction_id"] = facts.direction_id
    out["direction"] = _DIRECTION[facts.direction_id]
    _outcome(out, not facts.failed)
    if facts.reason is not None:
        out["status_detail"] = facts.reason
    if facts.bounce_status is not None:
        out["status_code"] = facts.bounce_status
    email: dict[str, Any] = {}
    if facts.from_ is not None:
        email["from"] = facts.from_
    if facts.recipients:
        email["to"] = facts.recipients
    if facts.delivered_to is not None:
        email["delivered_to_list"] = [facts.delivered_to]
    if facts.subject is not None:
        email["subject"] = facts.subject
    if facts.message_id is not None:
        email["message_uid"] = facts.message_id
    if facts.trace_id is not None:
        email["uid"] = facts.trace_id
    out["email"] = email
    auth: dict[str, Any] = {}
    for key, value in (
        ("spf", facts.spf),
        ("dkim", facts.dkim),
        ("dmarc", facts.dmarc),
        ("dmarc_policy", facts.dmarc_policy),
    ):
        if value is not None:
            auth[key] = value
    if auth:
        out["email_auth"] = auth
    control = _DMARC_CONTROL.get((facts.dmarc_policy or "").upper())
    if facts.name == "DMARC_POLICY_APPLIED" and control is not None:
        profiles.append("security_control")
        out["action_id"], out["action"], out["disposition_id"], out["disposition"] = control
        if control[0] == 2:
            out["severity_id"], out["severity"] = 3, "Medium"
    _email_policy(facts, out, profiles)
    inner = dict(facts.extra)
    for key, value in (
        ("sender", facts.sender),
        ("folder", facts.folder),
        ("spamVerdict", facts.spam),
    ):
        if value is not None:
            inner[key] = value
    if facts.bounce_extra:
        inner["bouncedRecipient"] = facts.bounce_extra
    unmapped = dict(facts.top_extra)
    if inner:
        unmapped["event"] = inner
    if unmapped:
        out["unmapped"] = unmapped
    return out


def _email_policy(facts: EmailFacts, out: dict[str, Any], profiles: list[str]) -> None:
    data: dict[str, Any] = {}
    for key, value in (
        ("ruleActions", facts.rule_actions),
        ("targetFolder", facts.target_folder),
        ("targetRecipient", facts.target_recipient),
    ):
        if value is not None:
            data[key] = value
    if facts.rule_name is None and facts.rule_type is None and not data:
        return
    policy: dict[str, Any] = {"is_applied": True}
    if facts.rule_name is not None:
        policy["name"] = facts.rule_name
    if facts.rule_type is not None:
        policy["group"] = {"name": facts.rule_type}
    if data:
        policy["data"] = data
    out["policy"] = policy
    if "security_control" not in profiles:
        profiles.append("security_control")


AUDIT_MAPPERS: dict[str, Callable[[dict[str, Any], str, str, int], dict[str, Any]]] = {
    AUTHENTICATION: _authentication,
    ACCESS_CONTROL: _access_control,
    MAILBOX_ACCESS: _mailbox_access,
    AVAILABILITY_PROVIDER: _availability,
    PERSONAL_ACCESS_TOKEN: _personal_access_token,
}
