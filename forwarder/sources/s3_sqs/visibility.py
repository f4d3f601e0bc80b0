"""Visibility heartbeat: SQS must not hand a message to anyone else while we work on it.

One scheduler for every held message. Each is extended back to the full timeout once
a third of it has elapsed (well before half, so a slow ChangeMessageVisibility call or
a busy loop cannot let it lapse), ten messages per ChangeMessageVisibilityBatch call.
SQS refuses to keep a message invisible past 12 hours from its first receive, so the
extension is cut to what is left of that and stops there: the message then comes back,
and the object resumes from its committed progress wherever it is received next.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)

SQS_MAX_VISIBILITY = 43_200  # seconds, from the first receive
_CAP_MARGIN = 30.0  # seconds kept clear of the cap: clocks and requests take time
_BATCH = 10  # entries per ChangeMessageVisibilityBatch (the SQS maximum)


@dataclass(slots=True)
class _Held:
    message_id: str
    receipt_handle: str
    due_at: float  # monotonic time of the next extension
    cap_at: float  # monotonic time past which SQS refuses any visibility


@dataclass(slots=True)
class VisibilityStats:
    extensions: int = 0
    failures: int = 0
    capped: int = 0


class VisibilityKeeper:
    """Extends the visibility of held messages until they are released."""

    def __init__(self, sqs: Any, queue_url: str, timeout: float, source_id: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self.timeout = max(1, math.ceil(timeout))
        self._interval = max(0.2, self.timeout / 3)
        self._source_id = source_id
        self._held: dict[str, _Held] = {}
        self._wake = asyncio.Event()
        self.stats = VisibilityStats()

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, message_id: str, receipt_handle: str, first_receive_ms: int | None) -> None:
        """Start (or, for a message received again, continue) extending a message."""
        held = self._held.get(message_id)
        if held is not None:
            held.receipt_handle = receipt_handle  # SQS honours the latest handle only
            return
        now = time.monotonic()
        cap_at = now + SQS_MAX_VISIBILITY - _CAP_MARGIN
        if first_receive_ms is not None:
            # The cap runs from the first receive, which may be hours ago (redeliveries).
            age = max(0.0, time.time() - first_receive_ms / 1000.0)
            cap_at = min(cap_at, now + SQS_MAX_VISIBILITY - age - _CAP_MARGIN)
        self._held[message_id] = _Held(message_id, receipt_handle, now + self._interval, cap_at)
        self._wake.set()

    def release(self, message_id: str) -> None:
        """Stop extending: the message's ack resolved (or it is being given back)."""
        self._held.pop(message_id, None)

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            due = [held for held in self._held.values() if held.due_at <= now]
            for start in range(0, len(due), _BATCH):
                await self._extend(due[start : start + _BATCH])
            next_due = min((held.due_at for held in self._held.values()), default=None)
            self._wake.clear()
            timeout = None if next_due is None else max(0.0, next_due - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _extend(self, group: list[_Held]) -> None:
        now = time.monotonic()
        entries: dict[str, tuple[_Held, dict[str, Any]]] = {}
        for index, held in enumerate(group):
            seconds = min(self.timeout, int(held.cap_at - now))
            if seconds < 1:
                self.stats.capped += 1
                log.warning(
                    "sqs_visibility_cap_reached", source=self._source_id,
                    message_id=held.message_id, hint="12 h since the first receive",
                )  # fmt: skip
                self._held.pop(held.message_id, None)
                continue
            entry = {"Id": str(index), "ReceiptHandle": held.receipt_handle,
                     "VisibilityTimeout": seconds}  # fmt: skip
            entries[str(index)] = (held, entry)
        if not entries:
            return
        try:
            response = await self._sqs.change_message_visibility_batch(
                QueueUrl=self._queue_url, Entries=[entry for _, entry in entries.values()]
            )
        except Exception as exc:  # network, throttling after retries: try again soon
            self.stats.failures += len(entries)
            log.warning("sqs_visibility_extend_failed", source=self._source_id,
                        error=str(exc), messages=len(entries))  # fmt: skip
            for held, _ in entries.values():
                held.due_at = now + min(self._interval, 1.0)
            return
        for ok in response.get("Successful", []):
            held, _ = entries[ok["Id"]]
            held.due_at = now + self._interval
            self.stats.extensions += 1
        for failed in response.get("Failed", []):
            held, entry = entries[failed["Id"]]
            self.stats.failures += 1
            if not failed.get("SenderFault", True) or held.receipt_handle != entry["ReceiptHandle"]:
                held.due_at = now + min(self._interval, 1.0)  # SQS's fault, or a newer handle
                continue
            # The handle is stale or the message gone: whoever holds it now extends it.
            log.warning("sqs_visibility_extend_refused", source=self._source_id,
                        message_id=held.message_id, code=failed.get("Code"),
                        error=failed.get("Message"))  # fmt: skip
            if self._held.get(held.message_id) is held:
                del self._held[held.message_id]

    async def give_back(self, handles: list[str]) -> None:
        """Make messages visible again at once (shutdown with work left undone)."""
        for start in range(0, len(handles), _BATCH):
            chunk = handles[start : start + _BATCH]
            entries = [{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                       for i, h in enumerate(chunk)]  # fmt: skip
            try:
                await self._sqs.change_message_visibility_batch(
                    QueueUrl=self._queue_url, Entries=entries
                )
            except Exception as exc:
                log.warning("sqs_give_back_failed", source=self._source_id, error=str(exc))
