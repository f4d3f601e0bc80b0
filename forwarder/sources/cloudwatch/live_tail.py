"""Live Tail: deliver events within a second or two, while polling stays the source of truth.

StartLiveTail streams new events of up to 10 log groups about once a second, but it
samples above 500 events/s and drops updates for a slow reader (PROTOCOLS.md 4.2), so
it can never carry a checkpoint. Here it only delivers early. Its events carry no
eventId, so an event is known by (group, stream, timestamp, message); the poller
computes the same key for each event it reads and, when Live Tail already handed
that event over, does not send it again but makes its page wait for the Live Tail
delivery. A Live Tail delivery that ends ERRORED leaves the event to the poller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog
from botocore.exceptions import ClientError

from forwarder.acks import Ack
from forwarder.aws import TRANSIENT_ERRORS, error_code
from forwarder.events import Status

log = structlog.get_logger(__name__)

TailKey = tuple[str, str, int, str]  # group, stream, timestamp ms, message
MAX_GROUPS_PER_SESSION = 10  # StartLiveTail takes 1-10 log group identifiers


class TailLedger:
    """Events handed over recently, by key: by Live Tail (with its ack) or by the poller."""

    def __init__(self) -> None:
        self._entries: dict[TailKey, tuple[int, Ack | None]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def claim(self, key: TailKey, ts: int, ack: Ack) -> bool:
        """Live Tail wants to deliver `key`: False if either path already has it."""
        if key in self._entries:
            return False
        self._entries[key] = (ts, ack)
        return True

    def covered(self, key: TailKey, ts: int, page_ack: Ack) -> bool:
        """The poller read `key`: True if Live Tail delivers it (the page then waits on that).

        A Live Tail delivery still in flight adds one expectation to the page's ack,
        resolved with its outcome: ERRORED makes the page ERRORED, the group rewinds
        and the poller reads the event again and sends it itself.
        """
        entry = self._entries.get(key)
        tail_ack = None if entry is None else entry[1]
        if tail_ack is None or (tail_ack.done and tail_ack.errored):
            self._entries[key] = (ts, None)
            return False
        if not tail_ack.done:
            page_ack.expect(1)

            def settle(done: Ack) -> None:
                page_ack.resolve(Status.ERRORED if done.errored else done.status)

            tail_ack.on_done(settle)
        return True

    def forget_before(self, ts: int) -> None:
        """Drop keys older than the look-back window: neither path reads them again."""
        for key in [k for k, (when, _ack) in self._entries.items() if when < ts]:
            del self._entries[key]


async def run_session(
    client: Any,
    arns: dict[str, str],
    deliver: Callable[[list[dict[str, Any]]], Any],
    stopping: asyncio.Event,
) -> bool:
    """One StartLiveTail session over `arns` (arn -> group name); False after an error.

    `deliver` receives each update's results with `logGroupIdentifier` turned into the
    group name. Returns when the stream ends (a 3-hour timeout on AWS) or on stop.
    """
    try:
        response = await client.start_live_tail(logGroupIdentifiers=list(arns))
    except (ClientError, *TRANSIENT_ERRORS) as exc:
        code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        log.warning("live_tail_start_failed", code=code, error=str(exc))
        return False
    stream = response["responseStream"]
    try:
        async for frame in stream:
            if stopping.is_set():
                return True
            update = frame.get("sessionUpdate")
            if update is None:
                if "sessionStart" in frame:
                    log.info("live_tail_started", groups=len(arns),
                             session=frame["sessionStart"].get("sessionId"))  # fmt: skip
                continue
            if update.get("sessionMetadata", {}).get("sampled"):
                log.info("live_tail_sampled", groups=len(arns))
            results = []
            for item in update.get("sessionResults") or []:
                identifier = str(item.get("logGroupIdentifier", ""))
                name = arns.get(identifier) or arns.get(identifier.removesuffix(":*"))
                if name is None:
                    continue
                results.append({**item, "logGroupName": name})
            if results:
                await deliver(results)
    except (ClientError, *TRANSIENT_ERRORS) as exc:
        log.warning("live_tail_stream_failed", error=f"{type(exc).__name__}: {exc}")
        return False
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                await result
    return True
