"""Deterministic event ids and the record's own event time."""

from __future__ import annotations

from hashlib import blake2b
from typing import Any

import orjson

from forwarder.errors import MappingError
from forwarder.mapping.common import (
    EMAIL_EVENTS,
    LOG_TYPES,
    MAX_TIME_MS,
    SECONDS_LIMIT,
    parse_time_ms,
)

_SORT_KEYS = orjson.OPT_SORT_KEYS
# One hasher per log type, already fed `log_type\0`; each id hashes a copy of it.
# Fixed in number (one per log type) and never updated in place.
_HASHERS = {log_type: blake2b(log_type.encode() + b"\0", digest_size=16) for log_type in LOG_TYPES}


def event_id(record: dict[str, Any], log_type: str) -> str:
    """32 hex chars, equal for equal records in any process, on any replica.

    Sorted keys make the id independent of the key order a source happened to
    serialise, so a record re-read from S3 and from CloudWatch gets one id.
    """
    try:
        body = orjson.dumps(record, option=_SORT_KEYS)
    except TypeError as exc:  # orjson.JSONEncodeError: ints beyond 64 bits, odd keys
        raise MappingError("invalid_record", f"cannot serialise the record: {exc}") from exc
    base = _HASHERS.get(log_type)
    if base is None:
        return blake2b(log_type.encode() + b"\0" + body, digest_size=16).hexdigest()
    hasher = base.copy()
    hasher.update(body)
    return hasher.hexdigest()


def event_time_ms(record: dict[str, Any], log_type: str) -> int | None:
    """Epoch ms of the event as the record states it, or None when it does not.

    Audit logs carry `event_timestamp` (documented as epoch ms; numeric strings and
    ISO-8601 are tolerated). Email events have no event time of their own; the
    message's `messageTimestamp` (an ISO string in the samples; epoch values are
    tolerated) is the only time they may carry.
    """
    if type(record) is not dict:
        return None
    if log_type == EMAIL_EVENTS:
        event = record.get("event")
        if type(event) is not dict:
            return None
        return parse_time_ms(event.get("messageTimestamp"))
    value = record.get("event_timestamp")
    if type(value) is int and SECONDS_LIMIT <= value < MAX_TIME_MS:  # epoch ms, as documented
        return value
    return parse_time_ms(value)
