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
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import ClientError

from forwarder import aws
from forwarder.acks import Ack
from forwarder.aws import TRANSIENT_ERRORS, error_code
from forwarder.events import Batch, Event, Origin, Status
from forwarder.retry import Backoff
from forwarder.sources.cloudwatch.pages import append_events

if TYPE_CHECKING:
    from forwarder.sources.base import SourceContext
    from forwarder.sources.cloudwatch.source import CloudWatchSource

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


class LiveTail:
    """Keeps Live Tail sessions open over the source's groups and delivers what they send."""

    def __init__(self, source: CloudWatchSource, ledgers: dict[str, TailLedger]) -> None:
        self.source = source
        self.ledgers = ledgers

    async def run(self, ctx: SourceContext) -> None:
        """Keep Live Tail sessions open over every group (10 per session) while running."""
        config = self.source.config
        # Behind a custom endpoint (moto, a VPC endpoint) the "stream-" host prefix of
        # StartLiveTail would name a host that does not exist.
        inject = config.endpoint_url is None
        # The stream stays open between events: its reads wait at least 2 minutes.
        async with aws.client("logs", config, max_attempts=1, inject_host_prefix=inject,
                              connect_timeout=config.connect_timeout,
                              read_timeout=max(config.read_timeout, 120.0)) as client:  # fmt: skip
            backoff = Backoff(initial=1.0, maximum=60.0)
            while not ctx.stopping.is_set():
                healthy = await self._sessions(ctx, client)
                # A session ends after 3 hours on AWS; one that failed waits longer.
                pause = 1.0 if healthy else (backoff.next_delay() or 60.0)
                if healthy:
                    backoff.reset()
                if await ctx.sleep_unless_stopping(pause):
                    return

    async def _sessions(self, ctx: SourceContext, client: Any) -> bool:
        """Run one session per 10 groups until they end, the groups change, or stop."""
        source = self.source
        live = source.arns
        names = sorted(n for n, t in source.trackers.items() if not t.gone and n in live)
        step = MAX_GROUPS_PER_SESSION
        chunks = [{live[n]: n for n in names[i : i + step]} for i in range(0, len(names), step)]
        source.groups_changed.clear()
        sessions = [
            asyncio.create_task(
                run_session(client, chunk, functools.partial(self._deliver, ctx=ctx), ctx.stopping)
            )
            for chunk in chunks
        ]
        interrupts = [
            asyncio.create_task(source.groups_changed.wait()),
            asyncio.create_task(ctx.stopping.wait()),
        ]
        pending: set[asyncio.Task[Any]] = set(sessions)
        try:
            while pending:
                _done, pending = await asyncio.wait(
                    pending | set(interrupts), return_when=asyncio.FIRST_COMPLETED
                )
                if any(task.done() for task in interrupts):
                    break
                pending -= set(interrupts)
        finally:
            for task in [*sessions, *interrupts]:
                task.cancel()
            await asyncio.gather(*sessions, *interrupts, return_exceptions=True)
        healthy = True
        for task in sessions:
            if task.cancelled():
                continue  # cut short by a change of groups or the stop
            error = task.exception()
            if error is not None:
                log.error("live_tail_crashed", source=self.source.id, error=repr(error))
            healthy = healthy and error is None and task.result() is True
        return healthy

    async def _deliver(self, results: list[dict[str, Any]], ctx: SourceContext) -> None:
        source = self.source
        ack = Ack()
        events: list[Event] = []
        for item in results:
            group = str(item["logGroupName"])
            tracker = source.trackers.get(group)
            ts, message = item.get("timestamp"), item.get("message")
            if tracker is None or not isinstance(ts, int) or not isinstance(message, str):
                continue
            if tracker.high_ts >= 0 and ts < tracker.high_ts - tracker.look_back_ms:
                continue  # older than the window: the poller has passed it
            stream = str(item.get("logStreamName", ""))
            ledger = self.ledgers.setdefault(group, TailLedger())
            if not ledger.claim((group, stream, ts, message), ts, ack):
                continue
            origin = Origin(source.id, f"{group}/{stream}", ts)
            append_events(events, message.encode(), origin, ack, source.log_type(group), ts)
        if events:
            source.stats.live_tail_events += len(events)
            ctx.metrics.records_read.add(len(events), {"source": source.id})
            await ctx.pipeline.send(Batch(events))
        ack.seal()


async def run_session(
    client: Any,
    arns: dict[str, str],
    deliver: Callable[[list[dict[str, Any]]], Awaitable[None]],
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
