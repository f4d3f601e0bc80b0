"""The dead-letter output: where every record that will never be delivered goes, with why."""

from __future__ import annotations

import base64
import time
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


class DeadLetter:
    """Appends NDJSON entries (reason, origin, original bytes) and fsyncs them.

    Entries are written before the source may commit past them: that is what makes
    "rejected" safe to acknowledge upstream.
    """

    def __init__(self, config: DeadLetterConfig) -> None:
        self._file = DurableAppendFile(config.path)
        self._max_raw = config.max_raw_bytes
        self._window_start = 0.0
        self._logged_in_window = 0
        self._suppressed = 0
        self.written = 0

    async def write(self, rejections: list[Rejection]) -> None:
        if not rejections:
            return
        now = time.time()
        lines = b"".join(self._entry(r, now) + b"\n" for r in rejections)
        await self._file.append(lines)
        self.written += len(rejections)
        self._log(rejections, now)

    def _entry(self, rejection: Rejection, now: float) -> bytes:
        event = rejection.event
        raw = event.raw[: self._max_raw]
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

    def _log(self, rejections: list[Rejection], now: float) -> None:
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

    async def close(self) -> None:
        await self._file.close()
