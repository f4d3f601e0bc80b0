"""Decoded lines -> Events: what every line-reading source (files, S3) does alike."""

from __future__ import annotations

from forwarder.acks import Ack
from forwarder.decode import Line, split_records
from forwarder.errors import DecodeError
from forwarder.events import Event, Origin


def append_line_events(
    events: list[Event],
    line: Line,
    origin: Origin,
    ack: Ack,
    log_type: str | None,
    *,
    max_line_bytes: int,
    fallback_time: float = 0.0,
) -> None:
    """Append the events one line carries; bad bytes become events preset for dead-letter."""
    if line.oversize:
        detail = (
            f"line longer than {max_line_bytes} bytes ({line.end - line.start} bytes); "
            "first 1024 bytes kept"
        )
        events.append(Event(line.data, origin, ack, error="line_too_long", error_detail=detail))
        return
    data = line.data
    if data[:1] == b"{" and b'"messageType"' not in data:
        # The common case, a plain JSON object line (what split_records returns as is).
        events.append(Event(data, origin, ack, log_type=log_type, time=fallback_time))
        return
    try:
        records = split_records(data)
    except DecodeError as exc:
        events.append(Event(data, origin, ack, error=exc.reason, error_detail=exc.detail))
        return
    for r in records:
        time = r.time_ms / 1000.0 if r.time_ms else fallback_time
        events.append(Event(r.raw, origin, ack, log_type=log_type, time=time))
