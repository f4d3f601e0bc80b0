"""Which WorkMail log a record belongs to, from its fields alone."""

from __future__ import annotations

from typing import Any

from forwarder.mapping.common import (
    ACCESS_CONTROL,
    AUTHENTICATION,
    AVAILABILITY_PROVIDER,
    EMAIL_EVENTS,
    KIND_BY_LOG_TYPE,
    LOG_TYPES,
    MAILBOX_ACCESS,
    PERSONAL_ACCESS_TOKEN,
)


def detect_log_type(record: dict[str, Any]) -> str | None:
    """The log type, or None when the fields do not tell.

    Each audit log has at least one field no other log has; the outcome flags are
    tried first because they are present on every documented record, the other
    distinctive fields second in case a record arrives without its flag. Mailbox
    access is tested before personal access tokens because both have `action`.
    """
    if type(record) is not dict:
        return None
    event = record.get("event")
    # traceId alone is not required: the event object with its name is unambiguous.
    if type(event) is dict and "eventName" in event:
        return EMAIL_EVENTS
    if "auth_successful" in record or "method" in record or "auth_failed_reason" in record:
        return AUTHENTICATION
    if "access_granted" in record or "scope" in record or "rule_id" in record:
        return ACCESS_CONTROL
    if "action_allowed" in record or "object_type" in record or "folder_path" in record:
        return MAILBOX_ACCESS
    if "availability_event_successful" in record or "function_arn" in record:
        return AVAILABILITY_PROVIDER
    if "ews_endpoint" in record:
        return AVAILABILITY_PROVIDER
    provider = record.get("type")
    if (provider == "EWS" or provider == "LAMBDA") and "domain" in record:
        return AVAILABILITY_PROVIDER
    if "scopes" in record or "expires_time" in record:
        return PERSONAL_ACCESS_TOKEN
    action = record.get("action")
    if (action == "create" or action == "delete") and "name" in record:
        return PERSONAL_ACCESS_TOKEN
    if "personal_access_token_id" in record:
        return AUTHENTICATION
    if "item_id" in record or "folder_id" in record or "owner_id" in record:
        return MAILBOX_ACCESS
    return None


def _aliases() -> dict[str, str]:
    names: dict[str, str] = {}
    for log_type in LOG_TYPES:
        kind = KIND_BY_LOG_TYPE[log_type]
        for alias in (
            log_type,
            kind,
            log_type.removeprefix("WORKMAIL_"),
            f"workmail_{kind}",
            f"aws.workmail_{kind}",
        ):
            names[alias.lower()] = log_type
    names["email_events_logs"] = EMAIL_EVENTS
    names["email_event"] = EMAIL_EVENTS
    names["email"] = EMAIL_EVENTS
    return names


_ALIASES = _aliases()


def normalize_log_type(value: str) -> str | None:
    """The canonical log type for a configured name: the canonical names and the kind
    names (`authentication`, `email_events`), any case, `-` or `_`; None if unknown."""
    if type(value) is not str:
        return None
    return _ALIASES.get(value.strip().lower().replace("-", "_"))
