"""Names, value coercion and shared field readers for the OCSF and ECS mappers.

Readers take a `bad` dict: a value that is present but unusable (a list where a string
belongs, an unparsable time) is put there under its original key instead of being
dropped, and each mapper then lands `bad` in OCSF `unmapped` / ECS `aws.workmail`.
"""

from __future__ import annotations

import ipaddress
import re
import time
from datetime import UTC, datetime
from math import isfinite
from typing import Any

ACCESS_CONTROL = "ACCESS_CONTROL_LOGS"
AUTHENTICATION = "AUTHENTICATION_LOGS"
AVAILABILITY_PROVIDER = "WORKMAIL_AVAILABILITY_PROVIDER_LOGS"
MAILBOX_ACCESS = "WORKMAIL_MAILBOX_ACCESS_LOGS"
PERSONAL_ACCESS_TOKEN = "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS"
EMAIL_EVENTS = "EMAIL_EVENT_LOGS"

LOG_TYPES: tuple[str, ...] = (
    ACCESS_CONTROL,
    AUTHENTICATION,
    AVAILABILITY_PROVIDER,
    MAILBOX_ACCESS,
    PERSONAL_ACCESS_TOKEN,
    EMAIL_EVENTS,
)
SCHEMAS: tuple[str, ...] = ("ocsf", "ecs", "raw")
KIND_BY_LOG_TYPE: dict[str, str] = {
    AUTHENTICATION: "authentication",
    ACCESS_CONTROL: "access_control",
    MAILBOX_ACCESS: "mailbox_access",
    AVAILABILITY_PROVIDER: "availability_provider",
    PERSONAL_ACCESS_TOKEN: "personal_access_token",
    EMAIL_EVENTS: "email_events",
}

PRODUCT_NAME = "Amazon WorkMail"

# Documented keys per log type; anything else is an addition AWS made after LOGS.md
# was written and is carried along verbatim rather than lost.
_AUDIT = frozenset({"event_timestamp", "request_id", "organization_arn", "user_id"})
KNOWN_KEYS: dict[str, frozenset[str]] = {
    MAILBOX_ACCESS: _AUDIT
    | {
        "impersonator_id",
        "protocol",
        "source_ip",
        "user_agent",
        "action",
        "owner_id",
        "object_type",
        "item_id",
        "folder_path",
        "folder_id",
        "attachment_path",
        "action_allowed",
    },
    # user_agent is not documented for access control, nor source_ip and user_agent for
    # availability; should AWS send them, they have a home.
    ACCESS_CONTROL: _AUDIT
    | {"impersonator_id", "protocol", "source_ip", "user_agent", "scope", "rule_id"}
    | {"access_granted"},
    AUTHENTICATION: _AUDIT
    | {
        "user",
        "protocol",
        "source_ip",
        "user_agent",
        "method",
        "auth_successful",
        "auth_failed_reason",
        "personal_access_token_id",
    },
    PERSONAL_ACCESS_TOKEN: _AUDIT
    | {"user", "protocol", "source_ip", "user_agent", "action", "name", "expires_time", "scopes"},
    AVAILABILITY_PROVIDER: _AUDIT
    | {
        "type",
        "domain",
        "function_arn",
        "ews_endpoint",
        "error_message",
        "availability_event_successful",
        "source_ip",
        "user_agent",
    },
    EMAIL_EVENTS: frozenset({"traceId", "event"}),
}

# Fields of the inner `event` object of an email event record, with the snake_case
# name they take under ECS `aws.workmail`.
EMAIL_FIELDS: dict[str, str] = {
    "eventName": "event_name",
    "recipients": "recipients",
    "sender": "sender",
    "from": "from",
    "subject": "subject",
    "messageId": "message_id",
    "spamVerdict": "spam_verdict",
    "dkimVerdict": "dkim_verdict",
    "dmarcVerdict": "dmarc_verdict",
    "dmarcPolicy": "dmarc_policy",
    "spfVerdict": "spf_verdict",
    "messageTimestamp": "message_timestamp",
    "recipient": "recipient",
    "folder": "folder",
    "ruleName": "rule_name",
    "ruleType": "rule_type",
    "ruleActions": "rule_actions",
    "targetFolder": "target_folder",
    "targetRecipient": "target_recipient",
    "journalingAddress": "journaling_address",
    "bouncedRecipient": "bounced_recipient",
    "policy": "dmarc_policy",
    "destination": "destination",
    "reason": "reason",
}

# Email activity per eventName: (OCSF activity_id, direction_id, is_failure).
EMAIL_EVENT_SHAPES: dict[str, tuple[int, int, bool]] = {
    "ORGANIZATION_EMAIL_RECEIVED": (2, 1, False),
    "MAILBOX_EMAIL_DELIVERED": (2, 1, False),
    "INCOMING_EMAIL_BOUNCED": (2, 1, True),
    "DMARC_POLICY_APPLIED": (3, 1, False),
    "OUTGOING_EMAIL_SUBMITTED": (1, 2, False),
    "OUTGOING_EMAIL_SENT": (1, 2, False),
    "OUTGOING_EMAIL_BOUNCED": (1, 2, True),
    "RULE_APPLIED": (4, 0, False),
    "JOURNALING_INITIATED": (4, 0, False),
}
RULE_DIRECTION: dict[str, int] = {"INBOUND_RULE": 1, "MAILBOX_RULE": 1, "OUTBOUND_RULE": 2}

_IPV4 = re.compile(
    r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
)
_DIGITS = re.compile(r"-?\d+(?:\.\d*)?")
# Below this an epoch value cannot be milliseconds of a WorkMail event (it would be
# before 1973), so it is taken as seconds.
_SECONDS_LIMIT = 100_000_000_000
MAX_TIME_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z, exclusive


def get_str(record: dict[str, Any], key: str, bad: dict[str, Any]) -> str | None:
    value = record.get(key)
    if type(value) is str:
        return value or None
    if value is None:
        return None
    if type(value) is int or (type(value) is float and isfinite(value)):
        return str(value)
    bad[key] = value
    return None


def get_bool(record: dict[str, Any], key: str, bad: dict[str, Any]) -> bool | None:
    value = record.get(key)
    if value is True or value is False:
        return value
    if value is None:
        return None
    if type(value) is str:
        low = value.strip().lower()
        if low == "true":
            return True
        if low == "false":
            return False
    elif type(value) is int and (value == 0 or value == 1):
        return value == 1
    bad[key] = value
    return None


def get_ip(record: dict[str, Any], key: str, bad: dict[str, Any]) -> str | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    if type(value) is str:
        if _IPV4.fullmatch(value) or (":" in value and _is_ipv6(value)):
            return value
    bad[key] = value
    return None


def _is_ipv6(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def get_str_list(record: dict[str, Any], key: str, bad: dict[str, Any]) -> list[str] | None:
    """A list of strings; a lone string is tolerated as a list of one."""
    value = record.get(key)
    if type(value) is list:
        if value and all(type(v) is str and v for v in value):
            return value
        if not value:
            return None
    elif type(value) is str:
        return [value] if value else None
    elif value is None:
        return None
    bad[key] = value
    return None


def parse_time_ms(value: Any) -> int | None:
    """Epoch ms from an int/float (ms, or seconds when implausibly small), a numeric
    string, or an ISO-8601 string; None when the value is not a usable time."""
    kind = type(value)
    if kind is int:
        ms = value if abs(value) >= _SECONDS_LIMIT else value * 1000
    elif kind is float:
        if not isfinite(value):
            return None
        ms = int(value if abs(value) >= _SECONDS_LIMIT else value * 1000)
    elif kind is str:
        text = value.strip()
        if _DIGITS.fullmatch(text):
            return parse_time_ms(float(text) if "." in text else int(text))
        return _parse_iso(text)
    else:
        return None
    return ms if 0 <= ms < MAX_TIME_MS else None


def _parse_iso(text: str) -> int | None:
    if len(text) < 10 or not text[:4].isdigit():
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    ms = int(parsed.timestamp() * 1000 + 0.5) if parsed.year >= 1970 else -1
    return ms if 0 <= ms < MAX_TIME_MS else None


def iso_ms(ms: int) -> str:
    """`2024-06-12T08:58:41.000Z`: ECS dates, built without strftime for speed."""
    t = time.gmtime(ms // 1000)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{ms % 1000:03d}Z"
    )


def parse_org_arn(value: str) -> tuple[str, str, str] | None:
    """(region, account, organization id) from `arn:aws:workmail:<r>:<a>:organization/<id>`."""
    parts = value.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "workmail":
        return None
    _, _, _, region, account, resource = parts
    kind, _, org_id = resource.partition("/")
    if kind != "organization" or not org_id:
        return None
    return region, account, org_id


def get_org(record: dict[str, Any], bad: dict[str, Any]) -> tuple[str, str, str] | None:
    arn = get_str(record, "organization_arn", bad)
    if arn is None:
        return None
    org = parse_org_arn(arn)
    if org is None:
        bad["organization_arn"] = record["organization_arn"]
    return org


def add_unknown(record: dict[str, Any], known: frozenset[str], into: dict[str, Any]) -> None:
    for key, value in record.items():
        if key not in known and value is not None:
            into.setdefault(key, value)


def url_host(url: str) -> str | None:
    """Host of `scheme://host[:port]/...`; cheap and never raises."""
    _, sep, rest = url.partition("://")
    if not sep:
        return None
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else ""
    else:
        host = host.split(":", 1)[0]
    return host.lower() or None


class EmailFacts:
    """Normalised fields of one email event record, shared by the OCSF and ECS mappers.

    `extra` holds the inner event's unusable or undocumented values by their original
    key, `top_extra` the same for the envelope; both mappers land them verbatim.
    """

    __slots__ = (
        "activity_id",
        "bounce_extra",
        "bounce_status",
        "delivered_to",
        "direction_id",
        "dkim",
        "dmarc",
        "dmarc_policy",
        "extra",
        "failed",
        "folder",
        "from_",
        "message_id",
        "name",
        "reason",
        "recipients",
        "rule_actions",
        "rule_name",
        "rule_type",
        "sender",
        "spam",
        "spf",
        "subject",
        "target_folder",
        "target_recipient",
        "time_text",
        "top_extra",
        "trace_id",
    )

    def __init__(self, name: str, event: dict[str, Any], record: dict[str, Any]) -> None:
        self.name = name
        self.top_extra: dict[str, Any] = {}
        self.trace_id = get_str(record, "traceId", self.top_extra)
        if len(record) > 2 or self.trace_id is None:
            add_unknown(record, KNOWN_KEYS[EMAIL_EVENTS], self.top_extra)
        extra: dict[str, Any] = {}
        self.extra = extra
        self.activity_id, self.direction_id, self.failed = EMAIL_EVENT_SHAPES.get(
            name, (99, 0, False)
        )
        self.from_ = get_str(event, "from", extra)
        self.sender = get_str(event, "sender", extra)
        self.subject = get_str(event, "subject", extra)
        self.message_id = get_str(event, "messageId", extra)
        self.spam = get_str(event, "spamVerdict", extra)
        self.spf = get_str(event, "spfVerdict", extra)
        self.dkim = get_str(event, "dkimVerdict", extra)
        self.dmarc = get_str(event, "dmarcVerdict", extra)
        self.dmarc_policy = get_str(event, "dmarcPolicy", extra)
        policy = get_str(event, "policy", extra)
        if policy is not None:
            if self.dmarc_policy is None:
                self.dmarc_policy = policy
            elif policy != self.dmarc_policy:
                extra["policy"] = policy
        self.folder = get_str(event, "folder", extra)
        self.reason = get_str(event, "reason", extra)
        self.rule_name = get_str(event, "ruleName", extra)
        self.rule_type = get_str(event, "ruleType", extra)
        self.target_folder = get_str(event, "targetFolder", extra)
        self.target_recipient = get_str(event, "targetRecipient", extra)
        self.rule_actions: Any = event.get("ruleActions")
        self.delivered_to: str | None = None
        self.bounce_status: str | None = None
        self.bounce_extra: dict[str, Any] = {}
        self.time_text: str | None = None
        self.recipients: list[str] = []
        self._read_recipients(event)
        if name == "RULE_APPLIED" and self.rule_type is not None:
            self.direction_id = RULE_DIRECTION.get(self.rule_type, 0)
        stamp = event.get("messageTimestamp")
        if stamp is not None:
            if type(stamp) is str and parse_time_ms(stamp) is not None:
                self.time_text = stamp
            else:
                extra["messageTimestamp"] = stamp
        add_unknown(event, _EMAIL_KNOWN, extra)

    def _read_recipients(self, event: dict[str, Any]) -> None:
        extra = self.extra
        out = self.recipients
        bounce = event.get("bouncedRecipient")
        if type(bounce) is dict:
            address = get_str(bounce, "emailAddress", self.bounce_extra)
            if address is not None:
                out.append(address)
            reason = get_str(bounce, "reason", self.bounce_extra)
            if reason is not None and self.reason is not None and reason != self.reason:
                self.bounce_extra["reason"] = reason
            elif reason is not None:
                self.reason = reason
            self.bounce_status = get_str(bounce, "status", self.bounce_extra)
            add_unknown(bounce, _BOUNCE_KNOWN, self.bounce_extra)
        elif bounce is not None:
            extra["bouncedRecipient"] = bounce
        for key in ("recipients", "destination"):
            for address in get_str_list(event, key, extra) or ():
                if address not in out:
                    out.append(address)
        recipient = get_str(event, "recipient", extra)
        if recipient is not None:
            if recipient not in out:
                out.append(recipient)
            if self.name in ("MAILBOX_EMAIL_DELIVERED", "OUTGOING_EMAIL_SENT"):
                self.delivered_to = recipient
        journal = get_str(event, "journalingAddress", extra)
        if journal is not None and journal not in out:
            out.append(journal)
        actions = self.rule_actions
        if type(actions) is list:
            for action in actions:
                if type(action) is dict and type(action.get("recipients")) is list:
                    for address in action["recipients"]:
                        if type(address) is str and address and address not in out:
                            out.append(address)


_EMAIL_KNOWN = frozenset(EMAIL_FIELDS)
_BOUNCE_KNOWN = frozenset({"emailAddress", "reason", "status"})


def read_email(record: dict[str, Any]) -> EmailFacts | str:
    """The record's facts, or why it is not a usable email event."""
    event = record.get("event")
    if type(event) is not dict:
        return "event: expected an object"
    name = event.get("eventName")
    if type(name) is not str or not name:
        return "event.eventName: expected a non-empty string"
    return EmailFacts(name, event, record)
