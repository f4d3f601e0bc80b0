"""The dead-letter output: where every record that will never be delivered goes, with why.

`DeadLetterOutput` is what the pipeline uses. `submit` takes rejections and calls
`on_stored` once their entries are durably stored; only then does the pipeline resolve
the events REJECTED, which lets their sources commit past them. `DeadLetter` appends to
a local file and fsyncs (the default); `S3DeadLetter` (deadletter_s3.py) batches entries
into gzip objects. Both write the same entry, which `replay-dead-letter` reads back:

    {"time": 1718182800.1, "reason": "sink_rejected", "detail": "...", "sink": "es",
     "origin": {"source_id": ..., "partition": ..., "offset": ...}, "log_type": ...,
     "event_id": ..., "raw": "<the original record>"}

`raw` holds the original bytes when they are UTF-8, else `raw_base64` does; an
original longer than `max_raw_bytes` is cut and says so in `raw_truncated_from`.
"""

from __future__ import annotations

import asyncio
import base64
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import structlog

from forwarder.config import DeadLetterConfig
from forwarder.events import Event
from forwarder.fileio import DurableAppendFile

log = structlog.get_logger(__name__)

_LOG_WINDOW = 10.0  # seconds
_LOG_PER_WINDOW = 20  # individual warnings before they are summarised


@dataclass(slots=True)
class Rejection:
    event: Event
    reason: str  # short code: invalid_json, unknown_log_type, line_too_long, sink_rejected...
    detail: str = ""
    sink: str | None = None  # set when a sink refused it, None when the pipeline did


Stored = Callable[[list[Rejection]], None]


def encode_entry(rejection: Rejection, now: float, max_raw: int) -> bytes:
    """One dead-letter entry as a JSON line (without the newline)."""
    event = rejection.event
    raw = event.raw[:max_raw]
    entry: dict[str, object] = {
        "time": now,
        "reason": rejection.reason,
        "detail": rejection.detail,
        "origin": event.origin.as_dict(),
        "log_type": event.log_type,
    }
    if rejection.sink is not None:
        entry["sink"] = rejection.sink
    if event.id:
        entry["event_id"] = event.id
    try:
        entry["raw"] = raw.decode("utf-8")
    except UnicodeDecodeError:
        entry["raw_base64"] = base64.b64encode(raw).decode("ascii")
    if len(event.raw) > len(raw):
        entry["raw_truncated_from"] = len(event.raw)
    return orjson.dumps(entry)


class DeadLetterOutput(ABC):
    """Where rejected events go; the interface the pipeline uses."""

    def __init__(self, config: DeadLetterConfig) -> None:
        self.location = config.path
        self._max_raw = config.max_raw_bytes
        self._window_start = 0.0
        self._logged_in_window = 0
        self._suppressed = 0
        self.written = 0  # entries durably stored

    @abstractmethod
    async def submit(self, rejections: list[Rejection], on_stored: Stored) -> None:
        """Take `rejections`; call `on_stored(part)` for every part once it is stored.

        May wait for room (backpressure). Raises OSError when the entries cannot be
        taken at all; then `on_stored` is never called for them.
        """

    async def write(self, rejections: list[Rejection]) -> None:
        """Store `rejections` and return once every entry is durably stored."""
        if not rejections:
            return
        done = asyncio.get_running_loop().create_future()
        left = len(rejections)

        def stored(part: list[Rejection]) -> None:
            nonlocal left
            left -= len(part)
            if left <= 0 and not done.done():
                done.set_result(None)

        await self.submit(rejections, stored)
        await done

    async def run(self) -> None:
        """Background work (uploads) until `finish` and everything is stored; none here."""

    def finish(self) -> None:
        """No more submissions: store what is pending now instead of batching on."""

    @property
    def pending(self) -> int:
        """Entries taken but not yet stored."""
        return 0

    async def close(self) -> None:
        """Release what the output holds (files, clients)."""

    def entry(self, rejection: Rejection, now: float) -> bytes:
        return encode_entry(rejection, now, self._max_raw)

    def log_rejections(self, rejections: list[Rejection], now: float) -> None:
        # One clear line per bad record, but a flood of garbage must not flood the log.
        if now - self._window_start > _LOG_WINDOW:
            if self._suppressed:
                log.warning("dead_letter_suppressed", count=self._suppressed, window_s=_LOG_WINDOW)
            self._window_start, self._logged_in_window, self._suppressed = now, 0, 0
        for rejection in rejections:
            if self._logged_in_window >= _LOG_PER_WINDOW:
                self._suppressed += 1
                continue
            self._logged_in_window += 1
            origin = rejection.event.origin
            log.warning(
                "dead_lettered",
                reason=rejection.reason,
                detail=rejection.detail[:300],
                sink=rejection.sink,
                source=origin.source_id,
                partition=origin.partition,
                offset=origin.offset,
            )


class DeadLetter(DeadLetterOutput):
    """Appends NDJSON entries to a local file and fsyncs them (the default).

    `submit` returns once the entries are on disk and `on_stored` has been called:
    that is what makes "rejected" safe to acknowledge upstream.
    """

    def __init__(self, config: DeadLetterConfig) -> None:
        if config.is_s3:
            raise ValueError(f"{config.path} is not a file path")
        super().__init__(config)
        self._file = DurableAppendFile(config.file_path)

    async def submit(self, rejections: list[Rejection], on_stored: Stored) -> None:
        if not rejections:
            return
        await self.write(rejections)
        on_stored(rejections)

    async def write(self, rejections: list[Rejection]) -> None:
        if not rejections:
            return
        now = time.time()
        lines = b"".join(self.entry(r, now) + b"\n" for r in rejections)
        await self._file.append(lines)
        self.written += len(rejections)
        self.log_rejections(rejections, now)

    async def close(self) -> None:
        await self._file.close()


def open_dead_letter(config: DeadLetterConfig) -> DeadLetterOutput:
    """The dead letter `config.path` names: a local file, or an S3 prefix."""
    if config.is_s3:
        from forwarder.deadletter_s3 import S3DeadLetter

        return S3DeadLetter(config)
    return DeadLetter(config)
