"""WorkMail records to OCSF 1.5.0 and ECS 9.4.0: pure functions on the per-event hot path.

The pipeline calls `detect_log_type` (unless the source names the log type),
`event_id`, `event_time_ms` and then `map_record` once per configured schema.
"""

from __future__ import annotations

from typing import Any

from forwarder.errors import MappingError
from forwarder.mapping import ecs, ocsf
from forwarder.mapping.common import (
    EMAIL_EVENTS,
    KIND_BY_LOG_TYPE,
    LOG_TYPES,
    MAX_TIME_MS,
    SCHEMAS,
    read_email,
)
from forwarder.mapping.detect import detect_log_type, normalize_log_type
from forwarder.mapping.ids import event_id, event_time_ms

__all__ = [
    "KIND_BY_LOG_TYPE",
    "LOG_TYPES",
    "SCHEMAS",
    "detect_log_type",
    "event_id",
    "event_time_ms",
    "map_record",
    "normalize_log_type",
]


def map_record(
    record: dict[str, Any],
    log_type: str,
    schema: str,
    *,
    event_id: str,
    time_ms: int,
    raw: str | None,
) -> dict[str, Any]:
    """The record as a `schema` document ("ocsf", "ecs" or "raw").

    `time_ms` is the event time the caller settled on; `raw`, when given, is the
    original record text embedded as OCSF `raw_data` / ECS `event.original`.
    Raises MappingError("unknown_log_type" | "invalid_record" | "unknown_schema").
    """
    if log_type not in KIND_BY_LOG_TYPE:
        raise MappingError("unknown_log_type", f"{log_type!r} is not a WorkMail log type")
    if type(record) is not dict:
        raise MappingError("invalid_record", f"expected a JSON object, not {type(record).__name__}")
    if schema == "raw":
        return record
    if type(time_ms) is not int or not 0 <= time_ms < MAX_TIME_MS:
        raise MappingError("invalid_record", f"event time out of range: {time_ms!r}")
    if log_type == EMAIL_EVENTS:
        facts = read_email(record)
        if isinstance(facts, str):
            raise MappingError("invalid_record", facts)
        if schema == "ocsf":
            out = ocsf.map_email(facts, log_type, event_id, time_ms)
        elif schema == "ecs":
            out = ecs.map_email(facts, log_type, event_id, time_ms)
        else:
            raise MappingError("unknown_schema", f"{schema!r} is not one of {SCHEMAS}")
    elif schema == "ocsf":
        out = ocsf.AUDIT_MAPPERS[log_type](record, log_type, event_id, time_ms)
    elif schema == "ecs":
        out = ecs.AUDIT_MAPPERS[log_type](record, log_type, event_id, time_ms)
    else:
        raise MappingError("unknown_schema", f"{schema!r} is not one of {SCHEMAS}")
    if raw is not None:
        if schema == "ocsf":
            out["raw_data"] = raw
        else:
            out["event"]["original"] = raw
    return out

