"""A batch's request body in one buffer, with the offset of each event in it.

The HTTP sinks cut a batch to `max_bytes` and bisect a refused one by slicing this
buffer, so no per-event body objects are made. The native engine builds the buffer
in one call (wmf_native.hec_events / es_bulk, GIL released); the reference joins the
per-event encoders (SplunkHecSink.encode, ElasticsearchSink.encode), which define the
bytes (tests/native/test_bodies.py holds both to the same output).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import accumulate

from forwarder import engine
from forwarder.events import Event
from forwarder.mapping import LOG_TYPES

# A log type the sink has no prefix for takes this one's (as the per-event encoders do).
_FALLBACK = LOG_TYPES.index("AUTHENTICATION_LOGS")
_INDEX = {log_type: i for i, log_type in enumerate(LOG_TYPES)}


class Body:
    """The encoded events of a batch: `data[offsets[i]:offsets[i + 1]]` is event i."""

    __slots__ = ("data", "offsets")

    def __init__(self, data: bytes, offsets: list[int]) -> None:
        self.data = data
        self.offsets = offsets

    @property
    def count(self) -> int:
        return len(self.offsets) - 1

    def release(self) -> None:
        """Drop the bytes once the whole body was sent (parts can no longer be taken)."""
        self.data = b""

    def size(self, start: int, end: int) -> int:
        return self.offsets[end] - self.offsets[start]

    def part(self, start: int, end: int) -> bytes:
        offsets = self.offsets
        if start == 0 and end == len(offsets) - 1:
            return self.data
        return self.data[offsets[start] : offsets[end]]


def joined(parts: list[bytes]) -> Body:
    return Body(b"".join(parts), [0, *accumulate(len(p) for p in parts)])


def prefix_table(prefixes: dict[str, bytes]) -> list[bytes]:
    """The per-log-type prefixes in LOG_TYPES order, for the native encoders."""
    return [prefixes[log_type] for log_type in LOG_TYPES]


def hec_body(
    events: list[Event],
    view: str,
    prefixes: list[bytes],
    encode: Callable[[Event], bytes],
) -> Body:
    if engine.NAME != "native":
        return joined([encode(event) for event in events])
    import wmf_native

    columns = _columns(events, view)
    return Body(*wmf_native.hec_events(*columns, prefixes, _prefix_of(events)))


def es_body(
    events: list[Event],
    view: str,
    actions: list[bytes],
    stamp: bool,
    encode: Callable[[Event], bytes],
) -> Body:
    if engine.NAME != "native":
        return joined([encode(event) for event in events])
    import wmf_native

    columns = _columns(events, view)
    return Body(*wmf_native.es_bulk(*columns, actions, _prefix_of(events), stamp))


def _columns(events: list[Event], view: str) -> tuple[list[bytes], list[str], list[float]]:
    return (
        [event.docs[view] for event in events],
        [event.id for event in events],
        [event.time for event in events],
    )


def _prefix_of(events: list[Event]) -> list[int]:
    index = _INDEX.get
    return [index(event.log_type or "", _FALLBACK) for event in events]
