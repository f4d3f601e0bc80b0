"""The reference engine: the per-event mapping loop in pure Python.

forwarder.engine runs the native engine when it is installed and falls back to this
loop, record by record, for whatever the native engine defers; with WMF_ENGINE=python
(or without the native module) this is the whole mapping stage. Its output is the
definition the native engine is tested against, byte for byte (tests/native).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import orjson

from forwarder import mapping
from forwarder.deadletter import Rejection
from forwarder.errors import MappingError
from forwarder.events import Event


def map_events(events: list[Event], views: Sequence[str]) -> tuple[list[Event], list[Rejection]]:
    """The per-event hot path: plain functions over dicts, no awaits, no logging."""
    good: list[Event] = []
    rejected: list[Rejection] = []
    now_ms = int(time.time() * 1000)
    loads, dumps = orjson.loads, orjson.dumps
    detect, map_record = mapping.detect_log_type, mapping.map_record
    for event in events:
        if event.error is not None:
            rejected.append(Rejection(event, event.error, event.error_detail))
            continue
        try:
            record = loads(event.raw)
        except orjson.JSONDecodeError as exc:
            rejected.append(Rejection(event, "invalid_json", str(exc)))
            continue
        if not isinstance(record, dict):
            rejected.append(
                Rejection(
                    event,
                    "not_an_object",
                    f"a record must be a JSON object, not {type(record).__name__}",
                )
            )
            continue
        log_type = event.log_type or detect(record)
        if log_type is None:
            rejected.append(
                Rejection(
                    event,
                    "unknown_log_type",
                    "no WorkMail log type matches the record's fields",
                )
            )
            continue
        event.log_type = log_type
        try:
            event.id = mapping.event_id(record, log_type)
            time_ms = mapping.event_time_ms(record, log_type)
            if time_ms is None:
                time_ms = int(event.time * 1000) if event.time else now_ms
            event.time = time_ms / 1000.0
            raw_text: str | None = None
            docs = event.docs
            for view in views:
                schema, _, variant = view.partition(":")
                if raw_text is None and not variant and schema != "raw":
                    raw_text = event.raw.decode("utf-8").strip()
                encoded = dumps(
                    map_record(
                        record,
                        log_type,
                        schema,
                        event_id=event.id,
                        time_ms=time_ms,
                        raw=None if variant else raw_text,
                        origin=event.origin.as_dict() if schema == "raw" else None,
                    )
                )
                # orjson hands back its whole output buffer (16 KiB and up, not
                # shrunk): an exact-size copy makes a queued event cost ~2 KiB of
                # RSS instead of ~19 KiB, and is faster than keeping the buffer.
                docs[view] = bytes(memoryview(encoded))
        except MappingError as exc:
            rejected.append(Rejection(event, exc.reason, exc.detail))
            continue
        except Exception as exc:  # a mapping bug must cost one record, not the daemon
            rejected.append(Rejection(event, "mapping_failed", f"{type(exc).__name__}: {exc}"))
            continue
        good.append(event)
    return good, rejected
