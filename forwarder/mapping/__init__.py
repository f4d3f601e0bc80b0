"""WorkMail records to OCSF 1.5.0 and ECS 9.4.0: pure functions on the per-event hot path.

The pipeline calls `detect_log_type` (unless the source names the log type),
`event_id`, `event_time_ms` and then `map_record` once per configured schema.
"""

from __future__ import annotations

from math import isfinite
from typing import Any

from forwarder.errors import MappingError
from forwarder.mapping import ecs, ocsf
from forwarder.mapping.common import (
    EMAIL_EVENTS,
    KIND_BY_LOG_TYPE,
    LOG_TYPES,
    MAX_TIME_MS,
    SCHEMAS,
)
from forwarder.mapping.detect import detect_log_type, normalize_log_type
from forwarder.mapping.email import read_email
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
    origin: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The record as a `schema` document ("ocsf", "ecs" or "raw").

    `time_ms` is the event time the caller settled on; `raw`, when given, is the
    original record text embedded as OCSF `raw_data` / ECS `event.original`.
    "raw" is the record untouched inside a small envelope: log type, event id,
    event time and, when given, where it came from (`origin`).
    Raises MappingError("unknown_log_type" | "invalid_record" | "unknown_schema").
    """
    if log_type not in KIND_BY_LOG_TYPE:
        raise MappingError("unknown_log_type", f"{log_type!r} is not a WorkMail log type")
    if type(record) is not dict:
        raise MappingError("invalid_record", f"expected a JSON object, not {type(record).__name__}")
    if schema == "raw":
        envelope: dict[str, Any] = {"log_type": log_type, "event_id": event_id, "time": time_ms}
        if origin is not None:
            envelope["origin"] = origin
        envelope["record"] = record
        return envelope
    ocsf_wanted = schema == "ocsf"
    if not ocsf_wanted and schema != "ecs":
        raise MappingError("unknown_schema", f"{schema!r} is not one of {SCHEMAS}")
    if type(time_ms) is not int:
        if type(time_ms) is not float or not isfinite(time_ms):
            raise MappingError("invalid_record", f"event time is not a number: {time_ms!r}")
        time_ms = int(time_ms)  # a float from a caller's arithmetic
    if not 0 <= time_ms < MAX_TIME_MS:
        raise MappingError("invalid_record", f"event time out of range: {time_ms!r}")
    if log_type == EMAIL_EVENTS:
        facts = read_email(record)
        if isinstance(facts, str):
            raise MappingError("invalid_record", facts)
        mapper = ocsf.map_email if ocsf_wanted else ecs.map_email
        out = mapper(facts, record, log_type, event_id, time_ms)
    elif ocsf_wanted:
        out = ocsf.map_audit(record, log_type, event_id, time_ms)
    else:
        out = ecs.map_audit(record, log_type, event_id, time_ms)
    if raw is not None:
        if ocsf_wanted:
            out["raw_data"] = raw
        else:
            out["event"]["original"] = raw
    return out
