"""Names, field specs and value coercion shared by the OCSF and ECS mappers.

`read_fields` normalises a record in one pass; a value that is present but unusable
(a list where a string belongs, an unparsable time) is returned in `extra` under its
original key instead of being dropped, and each mapper lands `extra` in OCSF
`unmapped` / ECS `aws.workmail`.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from math import isfinite
from time import gmtime, strftime
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

# How each documented field is read. A value of the wrong shape is not dropped: the
# readers put it, like any undocumented field, in `extra` under its original key.
STR, BOOL, IP, TIME, STR_LIST, ORG_ARN, RAW, OBJECT, EMAIL, EMAIL_LIST = range(10)

_AUDIT = {"event_timestamp": TIME, "request_id": STR, "organization_arn": ORG_ARN, "user_id": STR}
_CLIENT = {"protocol": STR, "source_ip": IP, "user_agent": STR}
FIELD_SPECS: dict[str, dict[str, int]] = {
    MAILBOX_ACCESS: _AUDIT
    | _CLIENT
    | dict.fromkeys(
        ("impersonator_id", "action", "owner_id", "object_type", "item_id", "folder_path"),
        STR,
    )
    | {"folder_id": STR, "attachment_path": STR, "action_allowed": BOOL},
    # user_agent is not documented for access control, nor the client fields for
    # availability; should AWS send them, they have a home.
    ACCESS_CONTROL: _AUDIT
    | _CLIENT
    | {"impersonator_id": STR, "scope": STR, "rule_id": STR, "access_granted": BOOL},
    AUTHENTICATION: _AUDIT
    | _CLIENT
    | dict.fromkeys(("user", "method", "auth_failed_reason", "personal_access_token_id"), STR)
    | {"auth_successful": BOOL},
    PERSONAL_ACCESS_TOKEN: _AUDIT
    | _CLIENT
    | {"user": STR, "action": STR, "name": STR, "expires_time": TIME, "scopes": STR_LIST},
    AVAILABILITY_PROVIDER: _AUDIT
    | _CLIENT
    | dict.fromkeys(("type", "domain", "function_arn", "ews_endpoint", "error_message"), STR)
    | {"availability_event_successful": BOOL},
}
EMAIL_ENVELOPE_FIELDS = {"traceId": STR, "event": OBJECT}
EMAIL_EVENT_FIELDS = (
    dict.fromkeys(
        ("eventName", "subject", "messageId", "spamVerdict", "dkimVerdict", "dmarcVerdict"), STR
    )
    | dict.fromkeys(("dmarcPolicy", "spfVerdict", "folder", "ruleName", "ruleType"), STR)
    | dict.fromkeys(("targetFolder", "targetRecipient", "policy", "reason"), STR)
    | dict.fromkeys(("sender", "from", "recipient", "journalingAddress"), EMAIL)
    | {"recipients": EMAIL_LIST, "destination": EMAIL_LIST, "messageTimestamp": TIME}
    | {"ruleActions": RAW, "bouncedRecipient": OBJECT}
)
BOUNCE_FIELDS = {"emailAddress": EMAIL, "reason": STR, "status": STR}

# The snake_case name a documented camelCase email event field takes under ECS
# aws.workmail (the others keep their name).
EMAIL_SNAKE: dict[str, str] = {
    "messageId": "message_id",
    "spamVerdict": "spam_verdict",
    "dkimVerdict": "dkim_verdict",
    "dmarcVerdict": "dmarc_verdict",
    "dmarcPolicy": "dmarc_policy",
    "spfVerdict": "spf_verdict",
    "messageTimestamp": "message_timestamp",
    "ruleName": "rule_name",
    "ruleType": "rule_type",
    "ruleActions": "rule_actions",
    "targetFolder": "target_folder",
    "targetRecipient": "target_recipient",
    "journalingAddress": "journaling_address",
    "bouncedRecipient": "bounced_recipient",
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
# An address as OCSF 1.5.0's email_t defines it (its regex, minus the `,` its `+-/`
# range lets in): not a display name, not junk. Anything else is kept verbatim in
# OCSF `unmapped` / ECS `aws.workmail`.
ADDRESS_PATTERN = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+@[A-Za-z0-9-]+\.[A-Za-z0-9.-]+")
_DIGITS = re.compile(r"-?\d+(?:\.\d*)?")
# Below this an epoch value cannot be milliseconds of a WorkMail event (it would be
# before 1973), so it is taken as seconds.
SECONDS_LIMIT = 100_000_000_000
MAX_TIME_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z, exclusive


def read_fields(obj: dict[str, Any], spec: dict[str, int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values, extra): one pass over the record's own keys.

    `values` holds each usable documented field normalised: STR as a non-empty str
    (numbers are tolerated), BOOL as bool ("true"/"false" and 0/1 tolerated), IP as a
    valid address, TIME as epoch ms, STR_LIST as a list of str (a lone str tolerated),
    EMAIL/EMAIL_LIST as an address / a list of addresses (likewise),
    ORG_ARN as the ARN with its parts under "org", RAW and OBJECT verbatim. `extra`
    holds unusable and undocumented values verbatim. Empty values (None, "", [], {})
    are skipped: they carry nothing and must not reach the output.
    """
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    kind_of = spec.get
    for key, value in obj.items():
        kind = kind_of(key)
        cls = type(value)
        if cls is str:
            if not value:
                continue
            if kind == STR:  # the common case, decided first
                values[key] = value
                continue
        elif value is None or ((cls is list or cls is dict) and not value):
            continue
        if kind == STR:
            if cls is int or (cls is float and isfinite(value)):
                values[key] = str(value)
                continue
        elif kind == BOOL:
            flag = _as_bool(value)
            if flag is not None:
                values[key] = flag
                continue
        elif kind == IP:
            if cls is str and (_IP_OK.get(value) or _valid_ip(value)):
                values[key] = value
                continue
        elif kind == TIME:
            if cls is int and SECONDS_LIMIT <= value < MAX_TIME_MS:  # epoch ms, as documented
                values[key] = value
                continue
            ms = parse_time_ms(value)
            if ms is not None:
                values[key] = ms
                continue
        elif kind == STR_LIST:
            if cls is list:
                if all(type(v) is str and v for v in value):
                    values[key] = value
                    continue
                if not value:
                    continue
            elif cls is str:
                values[key] = [value]
                continue
        elif kind == EMAIL:
            if cls is str and ADDRESS_PATTERN.fullmatch(value):
                values[key] = value
                continue
        elif kind == EMAIL_LIST:
            if cls is str and ADDRESS_PATTERN.fullmatch(value):
                values[key] = [value]
                continue
            if cls is list and all(type(v) is str and ADDRESS_PATTERN.fullmatch(v) for v in value):
                values[key] = value
                continue
        elif kind == ORG_ARN:
            org = (_ORGS[value] if value in _ORGS else _org(value)) if cls is str else None
            if org is not None:
                values[key] = value
                values["org"] = org
                continue
        elif kind == RAW or (kind == OBJECT and cls is dict):
            values[key] = value
            continue
        extra[key] = value
    return values, extra


def _as_bool(value: Any) -> bool | None:
    if value is True or value is False:
        return value
    if type(value) is str:
        low = value.strip().lower()
        if low == "true":
            return True
        if low == "false":
            return False
    elif type(value) is int and (value == 0 or value == 1):
        return value == 1
    return None


# Bounded memo caches of the per-record hot path: a daemon sees the same few source
# IPs, organisations and seconds over and over. Each holds only immutable values (bool,
# str, int, tuples of str), is cleared when full, and keys longer than _CACHE_KEY_MAX
# characters (never a valid IP or a real organisation ARN) are not remembered, so the
# memory they hold is bounded.
IP_CACHE_MAX = 4096
ORG_CACHE_MAX = 1024
_CACHE_KEY_MAX = 256
_IP_OK: dict[str, bool] = {}
_ORGS: dict[str, tuple[str, str, str] | None] = {}


def is_ip(value: str) -> bool:
    """An IPv4 or IPv6 address as OCSF ip_t and Elasticsearch's ip type accept it."""
    return _IP_OK.get(value) or _valid_ip(value)


def _valid_ip(value: str) -> bool:
    ok = _IP_OK.get(value)
    if ok is None:
        ok = _IPV4.fullmatch(value) is not None or _is_ipv6(value)
        if len(value) <= _CACHE_KEY_MAX:
            if len(_IP_OK) >= IP_CACHE_MAX:
                _IP_OK.clear()
            _IP_OK[value] = ok
    return ok


def _is_ipv6(value: str) -> bool:
    # A zone id (`%eth0`) is valid for Python but not for an Elasticsearch ip field.
    if ":" not in value or "%" in value:
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def parse_time_ms(value: Any) -> int | None:
    """Epoch ms from an int/float (ms, or seconds when implausibly small), a numeric
    string, or an ISO-8601 string; None when the value is not a usable time."""
    kind = type(value)
    if kind is int:
        ms = value if abs(value) >= SECONDS_LIMIT else value * 1000
    elif kind is float:
        if not isfinite(value):
            return None
        ms = int(value if abs(value) >= SECONDS_LIMIT else value * 1000)
    elif kind is str:
        text = value.strip()
        if _DIGITS.fullmatch(text):
            return parse_time_ms(float(text) if "." in text else int(text))
        return _parse_iso(text)
    else:
        return None
    return ms if 0 <= ms < MAX_TIME_MS else None


# (text, epoch ms) of the last ISO string parsed: an email record's messageTimestamp
# is parsed for its event time and again by read_fields. One tuple, replaced whole.
_LAST_ISO: tuple[str | None, int | None] = (None, None)


def _parse_iso(text: str) -> int | None:
    global _LAST_ISO
    last = _LAST_ISO
    if text == last[0]:
        return last[1]
    ms = _parse_iso_uncached(text)
    if len(text) <= _CACHE_KEY_MAX:
        _LAST_ISO = (text, ms)
    return ms


def _parse_iso_uncached(text: str) -> int | None:
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
    """`2024-06-12T08:58:41.000Z` for ECS dates; strftime plus a table is the fastest
    formatting CPython offers (an f-string with seven fields is twice as slow). The last
    second formatted is remembered: consecutive records mostly share it."""
    global _LAST_SECOND
    second = ms // 1000
    last = _LAST_SECOND
    if second != last[0]:
        last = _LAST_SECOND = (second, strftime("%Y-%m-%dT%H:%M:%S", gmtime(second)))
    return last[1] + _MILLIS[ms % 1000]


_MILLIS = tuple(f".{i:03d}Z" for i in range(1000))
# (epoch second, its "%Y-%m-%dT%H:%M:%S" text); one tuple, replaced whole.
_LAST_SECOND: tuple[int | None, str] = (None, "")


def _org(value: str) -> tuple[str, str, str] | None:
    """parse_org_arn, remembered in the bounded _ORGS (the tuple is immutable)."""
    org = parse_org_arn(value)
    if len(value) <= _CACHE_KEY_MAX:
        if len(_ORGS) >= ORG_CACHE_MAX:
            _ORGS.clear()
        _ORGS[value] = org
    return org


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


def url_host(url: str) -> str | None:
    """Host of `scheme://host[:port]/...` (an IPv6 literal without its brackets), in
    lower case; cheap and never raises."""
    _, sep, rest = url.partition("://")
    if not sep:
        return None
    for end in "/?#":
        rest = rest.split(end, 1)[0]
    host = rest.rsplit("@", 1)[-1]
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else ""
    else:
        host = host.split(":", 1)[0]
    return host.lower() or None
