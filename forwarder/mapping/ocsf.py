"""OCSF 1.5.0 documents for WorkMail records (classes 3002, 6001, 6003, 3004, 4009).

Each mapper lands the fields it has no OCSF home for, and every unusable or
undocumented value, in `unmapped` under the original key (email events mirror the
record: `unmapped.event.<key>`); empty values are never emitted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from forwarder.mapping.common import (
    ACCESS_CONTROL,
    AUTHENTICATION,
    AVAILABILITY_PROVIDER,
    FIELD_SPECS,
    MAILBOX_ACCESS,
    PERSONAL_ACCESS_TOKEN,
    PRODUCT_NAME,
    is_ip,
    read_fields,
    url_host,
)
from forwarder.mapping.email import EmailFacts

VERSION = "1.5.0"
# Stands in for an identity OCSF requires (user, entity and policy need a name or uid)
# when the record has none, so that the event stays valid for strict consumers.
UNKNOWN = "<unknown>"
# Likewise for an email event naming no address at all (email.from or email.to is
# required); `.invalid` is reserved (RFC 2606), so it can never be a real mailbox.
UNKNOWN_ADDRESS = "unknown@unknown.invalid"
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
# -> (action_id, action, disposition_id, disposition) of the Security Control profile.
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
_MAILBOX_ACTIVITY = (
    dict.fromkeys(("read", "read_hierarchy", "read_summary", "read_attachment"), 2)
    | dict.fromkeys(("read_permissions",), 2)
    | dict.fromkeys(("update", "update_permissions", "update_read_state"), 3)
    | dict.fromkeys(("move", "move_to", "copy", "copy_to"), 3)
    | {"create": 1, "delete": 4}
)
_PAT_ACTIVITY = {"create": 1, "delete": 4}

# (OCSF key, record key) pairs copied when present.
_AUTH_USER = (("uid", "user_id"), ("name", "user"), ("credential_uid", "personal_access_token_id"))
_ACTOR_USER = (("uid", "user_id"), ("name", "user"))
_PAT_DATA = (("scopes", "scopes"), ("expires_time", "expires_time"))  # expiry as epoch ms
_EMAIL = (("from", "from"), ("subject", "subject"), ("message_uid", "messageId"))
_EMAIL_AUTH = (("spf", "spfVerdict"), ("dkim", "dkimVerdict"), ("dmarc", "dmarcVerdict"))
_RULE_DATA = tuple((key, key) for key in ("ruleActions", "targetFolder", "targetRecipient"))


def _pick(values: dict[str, Any], pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {key: values[field] for key, field in pairs if field in values}


def _envelope(
    cls: tuple[int, str],
    category: tuple[int, str],
    activity: tuple[int, str, str],
    log_type: str,
    event_id: str,
    time_ms: int,
    profiles: list[str],
) -> dict[str, Any]:
    """`activity` is (activity_id, activity_name, caption of the id for type_name)."""
    class_uid, class_name = cls
    type_name = _TYPE_NAMES.get((class_name, activity[2]))
    if type_name is None:
        if len(_TYPE_NAMES) >= _TYPE_NAMES_MAX:
            _TYPE_NAMES.clear()
        type_name = _TYPE_NAMES[(class_name, activity[2])] = f"{class_name}: {activity[2]}"
    return {
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category[0],
        "category_name": category[1],
        "activity_id": activity[0],
        "activity_name": activity[1],
        "type_uid": class_uid * 100 + activity[0],
        "type_name": type_name,
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


# type_name per (class name, activity caption): both come from fixed tables, so this
# holds a few dozen str; the bound is a safeguard.
_TYPE_NAMES_MAX = 256
_TYPE_NAMES: dict[tuple[str, str], str] = {}


def _outcome(out: dict[str, Any], ok: bool | None) -> None:
    out["status_id"], out["status"], out["severity_id"], out["severity"] = _OUTCOME[ok]


def _control(out: dict[str, Any], ok: bool | None) -> None:
    out["action_id"], out["action"], out["disposition_id"], out["disposition"] = _CONTROL[ok]


def _audit(record: dict[str, Any], values: dict[str, Any], out: dict[str, Any]) -> None:
    """Fields every audit log shares."""
    metadata = out["metadata"]
    if "request_id" in values:
        metadata["correlation_uid"] = values["request_id"]
    if "org" in values:
        region, account, metadata["tenant_uid"] = values["org"]
        cloud = out["cloud"]
        if region:
            cloud["region"] = region
        if account:
            cloud["account"] = {"uid": account}
    if "event_timestamp" in values:
        metadata["original_time"] = str(record["event_timestamp"])
    if "source_ip" in values:
        out["src_endpoint"] = {"ip": values["source_ip"]}
    if "user_agent" in values:
        out["http_request"] = {"user_agent": values["user_agent"]}


def _authentication(values: dict[str, Any], out: dict[str, Any], extra: dict[str, Any]) -> None:
    user = _pick(values, _AUTH_USER)
    if "uid" not in user and "name" not in user:
        user["name"], user["type_id"], user["type"] = UNKNOWN, 0, "Unknown"
    out["user"] = user
    _outcome(out, values.get("auth_successful"))
    if "auth_failed_reason" in values:
        out["status_detail"] = values["auth_failed_reason"]
    method = values.get("method")
    if method is not None:
        basic = method.lower() == "basic"
        out["auth_protocol_id"] = 11 if basic else 99
        out["auth_protocol"] = "Basic Authentication" if basic else method
    out["service"] = {"name": PRODUCT_NAME}
    if "protocol" in values:
        out["dst_endpoint"] = {"svc_name": values["protocol"]}
    out["is_remote"] = True
    out["logon_type_id"], out["logon_type"] = 3, "Network"


def _access_control(values: dict[str, Any], out: dict[str, Any], extra: dict[str, Any]) -> None:
    granted = values.get("access_granted")
    _outcome(out, granted)
    _control(out, granted)
    resource: dict[str, Any] = {"type": "WorkMail Organization", "name": PRODUCT_NAME}
    if "org" in values:
        resource["uid"] = values["organization_arn"]
        resource["name"] = values["org"][2]
    out["web_resources"] = [resource]
    rule_id, scope = values.get("rule_id"), values.get("scope")
    policy: dict[str, Any] = {}
    if rule_id is not None:
        policy = {"uid": rule_id, "name": rule_id, "is_applied": True}
    if scope is not None:
        policy.setdefault("name", scope)  # no rule matched: the scope's default decided
        policy["group"] = {"name": scope}
    if policy:
        out["policy"] = policy
    if "user_id" in values:
        out["actor"] = {"user": {"uid": values["user_id"]}}
    if "protocol" in values:
        out["dst_endpoint"] = {"svc_name": values["protocol"]}
    if "impersonator_id" in values:
        extra["impersonator_id"] = values["impersonator_id"]


def _resource(kind: str | None, uid: str | None, name: str | None, owner: str | None) -> Any:
    if uid is None and name is None:
        return None
    found = {"type": kind, "uid": uid, "name": name}
    res: dict[str, Any] = {key: value for key, value in found.items() if value is not None}
    if owner is not None:
        res["owner"] = {"uid": owner}
    return res


def _mailbox_access(values: dict[str, Any], out: dict[str, Any], extra: dict[str, Any]) -> None:
    get = values.get
    allowed = get("action_allowed")
    _outcome(out, allowed)
    _control(out, allowed)
    api: dict[str, Any] = {"operation": get("action", "Unknown")}
    if "protocol" in values:
        api["service"] = {"name": values["protocol"]}
    if "request_id" in values:
        api["request"] = {"uid": values["request_id"]}
    out["api"] = api
    user_id = get("user_id")
    # IncomingEmail/OutgoingEmail operations may carry no user: WorkMail acts itself.
    out["actor"] = {"user": {"uid": user_id}} if user_id else {"app_name": PRODUCT_NAME}
    if "src_endpoint" not in out:
        out["src_endpoint"] = {"svc_name": PRODUCT_NAME}
    owner, kind = get("owner_id"), get("object_type")
    item_id, attachment = get("item_id"), get("attachment_path")
    low = kind.lower() if kind is not None else ""
    folder = _resource(
        "Folder" if low != "folder" else kind, get("folder_id"), get("folder_path"), owner
    )
    # The object acted upon first, then what contains it (or, for a folder, the item).
    if low == "folder":
        found = [folder, _resource("Message", item_id, None, owner)]
        found.append(_resource("Attachment", None, attachment, owner))
    elif attachment is not None or low == "attachment":
        found = [_resource(kind or "Attachment", None, attachment, owner)]
        found += [_resource("Message", item_id, None, owner), folder]
    else:
        found = [_resource(kind, item_id, None, owner), folder]
    resources = [r for r in found if r is not None]
    if resources:
        out["resources"] = resources
    elif owner is not None:
        extra["owner_id"] = owner
    if found[0] is None and kind is not None:  # no resource carries the object type
        extra["object_type"] = kind
    if "impersonator_id" in values:
        extra["impersonator_id"] = values["impersonator_id"]


def _availability(values: dict[str, Any], out: dict[str, Any], extra: dict[str, Any]) -> None:
    get = values.get
    _outcome(out, get("availability_event_successful"))
    if "error_message" in values:
        out["status_detail"] = values["error_message"]
    api: dict[str, Any] = {"operation": "AvailabilityLookup"}
    if "type" in values:
        api["service"] = {"name": values["type"]}
    if "request_id" in values:
        api["request"] = {"uid": values["request_id"]}
    out["api"] = api
    actor: dict[str, Any] = {"app_name": PRODUCT_NAME}  # WorkMail asks on the user's behalf
    if "user_id" in values:
        actor["user"] = {"uid": values["user_id"]}
    out["actor"] = actor
    if "src_endpoint" not in out:
        out["src_endpoint"] = {"svc_name": PRODUCT_NAME}
    resources = []
    if "domain" in values:
        resources.append({"type": "Domain", "name": values["domain"]})
    if "function_arn" in values:
        resources.append({"type": "Lambda Function", "uid": values["function_arn"]})
    if resources:
        out["resources"] = resources
    endpoint = get("ews_endpoint")
    if endpoint is not None:
        url: dict[str, Any] = {"url_string": endpoint}
        host = url_host(endpoint)
        if host is not None:
            url["hostname"] = host
            where = "ip" if is_ip(host) else "hostname"  # https://[2001:db8::1]/EWS
            out["dst_endpoint"] = {where: host, "svc_name": "EWS"}
        out.setdefault("http_request", {})["url"] = url


def _personal_access_token(
    values: dict[str, Any], out: dict[str, Any], extra: dict[str, Any]
) -> None:
    _outcome(out, None)  # the log has no outcome field
    entity: dict[str, Any] = {"type": "Personal Access Token", "name": values.get("name", UNKNOWN)}
    data = _pick(values, _PAT_DATA)
    if data:
        entity["data"] = data
    out["entity"] = entity
    actor_user = _pick(values, _ACTOR_USER)
    if actor_user:
        out["actor"] = {"user": actor_user}
    if "protocol" in values:
        extra["protocol"] = values["protocol"]


def _crud_activity(action: str | None, known: dict[str, int]) -> tuple[int, str, str]:
    """An unlisted action is activity 99, named after itself."""
    if action is None:
        return 0, "Unknown", "Unknown"
    activity_id = known.get(action) or known.get(action.lower(), 99)
    caption = _CRUD[activity_id]
    return activity_id, action if activity_id == 99 else caption, caption


def map_audit(record: dict[str, Any], log_type: str, event_id: str, time_ms: int) -> dict[str, Any]:
    values, extra = read_fields(record, FIELD_SPECS[log_type])
    cls, category, profiles, activity, mapper = _AUDIT[log_type]
    if isinstance(activity, dict):
        activity = _crud_activity(values.get("action"), activity)
    out = _envelope(cls, category, activity, log_type, event_id, time_ms, list(profiles))
    _audit(record, values, out)
    mapper(values, out, extra)
    if extra:
        out["unmapped"] = extra
    return out


def map_email(
    facts: EmailFacts, record: dict[str, Any], log_type: str, event_id: str, time_ms: int
) -> dict[str, Any]:
    activity_id = facts.activity_id
    caption = _EMAIL_ACTIVITY[activity_id]
    activity = (activity_id, facts.name if activity_id == 99 else caption, caption)
    profiles = ["cloud"]
    out = _envelope(_EMAIL_CLASS, _NETWORK, activity, log_type, event_id, time_ms, profiles)
    values = facts.values
    metadata = out["metadata"]
    metadata["event_code"] = facts.name
    if facts.trace_id is not None:
        metadata["correlation_uid"] = facts.trace_id
        out["message_trace_uid"] = facts.trace_id
    if "messageTimestamp" in values:
        metadata["original_time"] = str(record["event"]["messageTimestamp"])
    out["direction_id"] = facts.direction_id
    out["direction"] = _DIRECTION[facts.direction_id]
    _outcome(out, not facts.failed)
    if facts.reason is not None:
        out["status_detail"] = facts.reason
    if facts.bounce_status is not None:
        out["status_code"] = facts.bounce_status
    email = _pick(values, _EMAIL)
    if facts.recipients:
        email["to"] = facts.recipients
    if facts.delivered_to is not None:
        email["delivered_to_list"] = [facts.delivered_to]
    if facts.trace_id is not None:
        email["uid"] = facts.trace_id
    if "from" not in email and "to" not in email:
        email["to"] = [UNKNOWN_ADDRESS]  # the email object needs `from` or `to`
    out["email"] = email
    auth = _pick(values, _EMAIL_AUTH)
    if facts.dmarc_policy is not None:
        auth["dmarc_policy"] = facts.dmarc_policy
        control = _DMARC_CONTROL.get(facts.dmarc_policy.upper())
        if facts.name == "DMARC_POLICY_APPLIED" and control is not None:
            profiles.append("security_control")
            out["action_id"], out["action"], out["disposition_id"], out["disposition"] = control
            if control[0] == 2:
                out["severity_id"], out["severity"] = 3, "Medium"
    if auth:
        out["email_auth"] = auth
    inner = dict(facts.extra)
    if "ruleName" in values or "ruleType" in values or "ruleActions" in values:
        _email_policy(values, out, profiles)
    else:
        inner.update(_pick(values, _RULE_DATA))
    inner.update(_pick(values, _EMAIL_LEFTOVER))
    if facts.bounce_extra:
        inner["bouncedRecipient"] = facts.bounce_extra
    unmapped = dict(facts.top_extra)
    if inner:
        unmapped["event"] = inner
    if unmapped:
        out["unmapped"] = unmapped
    return out


_EMAIL_CLASS = (4009, "Email Activity")
# Email fields OCSF 1.5.0 has no attribute for (its email object has no sender).
_EMAIL_LEFTOVER = (("sender", "sender"), ("folder", "folder"), ("spamVerdict", "spamVerdict"))


def _email_policy(values: dict[str, Any], out: dict[str, Any], profiles: list[str]) -> None:
    policy: dict[str, Any] = {"name": values.get("ruleName", UNKNOWN), "is_applied": True}
    if "ruleType" in values:
        policy["group"] = {"name": values["ruleType"]}
    data = _pick(values, _RULE_DATA)
    if data:
        policy["data"] = data
    out["policy"] = policy
    if "security_control" not in profiles:
        profiles.append("security_control")


_Mapper = Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], None]
_API = (6003, "API Activity")
_AUTHN = (3002, "Authentication")
_WEB = (6001, "Web Resources Activity")
_ENTITY = (3004, "Entity Management")
_CLOUD = ("cloud",)
_GUARDED = ("cloud", "security_control")
_GUARDED_ACTOR = ("cloud", "host", "security_control")
_EVALUATION = (99, "Access Evaluation", "Other")
# Per log type: class, category, profiles, the activity (fixed, or looked up from the
# record's `action`) and the mapper of the class-specific fields. No OCSF class records
# an authorization decision: 6004 was deprecated in favour of 6001 with the Security
# Control profile, and in 6001 `actor` comes with the Host profile.
_AUDIT: dict[str, tuple[tuple[int, str], tuple[int, str], tuple[str, ...], Any, _Mapper]] = {
    AUTHENTICATION: (_AUTHN, _IAM, _CLOUD, (1, "Logon", "Logon"), _authentication),
    ACCESS_CONTROL: (_WEB, _APPLICATION, _GUARDED_ACTOR, _EVALUATION, _access_control),
    MAILBOX_ACCESS: (_API, _APPLICATION, _GUARDED, _MAILBOX_ACTIVITY, _mailbox_access),
    AVAILABILITY_PROVIDER: (_API, _APPLICATION, _CLOUD, (2, "Read", "Read"), _availability),
    PERSONAL_ACCESS_TOKEN: (_ENTITY, _IAM, _CLOUD, _PAT_ACTIVITY, _personal_access_token),
}
