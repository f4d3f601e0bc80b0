"""The CloudWatch Logs source: FilterLogEvents per log group, from a checkpoint.

Each log group is one lane of an OrderedCommitter: a page of FilterLogEvents results
is one ack unit, and the group's checkpoint (tracker.py) moves only over contiguous
acknowledged pages. Every group has its own poller task; all of them draw from one
adaptive request budget per account and region (budget.py), so 200 groups share
the 5 requests/s quota instead of each sleeping a fixed time.

A poll normally searches from the newest timestamp already dispatched (inclusive:
the events of that millisecond are skipped by eventId). Every `look_back_interval`
it searches `look_back` further back instead, which is where events that CloudWatch
accepted late show up; those already delivered are skipped by eventId.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from typing import Any

import structlog
from botocore.exceptions import ClientError

from forwarder import aws
from forwarder.acks import Ack, OrderedCommitter
from forwarder.aws import THROTTLE_CODES, TRANSIENT_ERRORS, error_code
from forwarder.config import CloudWatchSourceConfig, parse_start
from forwarder.decode import split_records
from forwarder.errors import DecodeError
from forwarder.events import Batch, Event, Origin
from forwarder.sources.base import Source, SourceContext
from forwarder.sources.cloudwatch.budget import AdaptiveBudget, shared_budget
from forwarder.sources.cloudwatch.groups import GroupInfo, describe_groups, log_type_from_group
from forwarder.sources.cloudwatch.live_tail import LiveTail, TailLedger
from forwarder.sources.cloudwatch.metrics import observe
from forwarder.sources.cloudwatch.tracker import GroupCheckpoint, GroupTracker, PageToken

log = structlog.get_logger(__name__)

_DESCRIBE_CEILING = 5.0  # DescribeLogGroups: 5 requests/s per account and Region
_ERROR_PAUSE = 5.0  # after a failed request, a group waits this long (plus its interval)


@dataclass
class CloudWatchStats:
    requests_ok: int = 0
    requests_throttled: int = 0
    requests_failed: int = 0
    events_read: int = 0
    duplicates_skipped: int = 0
    groups_gone: int = 0
    groups_recreated: int = 0
    live_tail_events: int = 0  # delivered early by Live Tail
    live_tail_covered: int = 0  # found by polling, already delivered by Live Tail


class CloudWatchSource(Source):
    def __init__(self, config: CloudWatchSourceConfig) -> None:
        self.id = config.id
        self.config = config
        self.stats = CloudWatchStats()
        self._look_back_ms = int(config.look_back * 1000)
        self._start = parse_start(config.start)  # None: "now", fixed when run starts
        self.trackers: dict[str, GroupTracker] = {}
        self._pollers: dict[str, asyncio.Task[None]] = {}
        self._generation: dict[str, int] = {}
        self.arns: dict[str, str] = {}
        # Live Tail mode: per group, what either path handed over recently.
        self._ledgers: dict[str, TailLedger] | None = {} if config.mode == "live_tail" else None
        self.groups_changed = asyncio.Event()
        self._ctx: SourceContext | None = None
        self._observed = False
        self._client: Any = None
        self._budget: AdaptiveBudget | None = None
        self._describe_budget: AdaptiveBudget | None = None
        self._committer: OrderedCommitter[PageToken] = OrderedCommitter(
            self._commit, self._on_errored
        )

    # -- state -----------------------------------------------------------------------

    def _key(self, group: str) -> str:
        return f"cw/{self.id}/{group}"

    async def _commit(self, group: str, token: PageToken) -> None:
        ctx = self._require_ctx()
        tracker = self.trackers.get(group)
        if tracker is None:
            return
        checkpoint = tracker.checkpoint(token, self.config.max_checkpoint_ids)
        try:
            await ctx.state.put(self._key(group), checkpoint.as_value())
        except Exception:
            ctx.metrics.checkpoint_failures.add(1, {"source": self.id})
            raise
        tracker.committed(token)
        ctx.metrics.checkpoint_commits.add(1, {"source": self.id})

    def _on_errored(self, group: str, _last: PageToken | None) -> None:
        # A page was not delivered within retry.max_elapsed: read again from the last
        # commit. Pages after it may still arrive at a sink: duplicates, never a gap.
        ctx = self._require_ctx()
        ctx.errored_units += 1
        tracker = self.trackers.get(group)
        if tracker is None:
            return
        self._generation[group] = self._generation.get(group, 0) + 1
        tracker.rewind()
        log.warning("cloudwatch_rewind", source=self.id, log_group=group,
                    from_ts=tracker.high_ts)  # fmt: skip

    def _require_ctx(self) -> SourceContext:
        if self._ctx is None:
            raise RuntimeError("source not started")
        return self._ctx

    async def commit_loop(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        await self._committer.run()

    async def flush(self) -> None:
        await self._committer.flush()

    def in_flight(self) -> int:
        return self._committer.in_flight()

    async def _load_checkpoints(self, ctx: SourceContext) -> None:
        prefix = self._key("")
        for key, item in (await ctx.state.scan(prefix)).items():
            group = key[len(prefix) :]
            try:
                saved = GroupCheckpoint.from_value(item.value)
            except (KeyError, TypeError, ValueError):
                log.warning("cloudwatch_checkpoint_unreadable", source=self.id, log_group=group)
                continue
            self.trackers[group] = GroupTracker.restore(group, saved, self._look_back_ms)
            self._committer.set_committed(group, PageToken(0, saved.ts, saved.ts))

    # -- groups ----------------------------------------------------------------------

    def log_type(self, group: str) -> str | None:
        configured = self.config.log_group_types.get(group)
        if configured is not None:
            return configured
        return log_type_from_group(group) or self.config.log_type

    async def _discover(self) -> dict[str, GroupInfo]:
        """The groups to read now, by name."""
        assert self._describe_budget is not None
        found: dict[str, GroupInfo] = {}
        prefix = self.config.log_group_prefix
        if prefix:
            found.update(await describe_groups(self._client, prefix, self._describe_budget))
        for name in self.config.log_groups:
            if name in found:
                continue
            try:
                matches = await describe_groups(self._client, name, self._describe_budget)
            except ClientError as exc:
                # DescribeLogGroups denied by a narrow policy: read the group anyway.
                log.warning("cloudwatch_describe_failed", source=self.id, log_group=name,
                            error=error_code(exc))  # fmt: skip
                found[name] = GroupInfo(None, None)
                continue
            if name in matches:
                found[name] = matches[name]
            else:
                log.warning("cloudwatch_group_missing", source=self.id, log_group=name)
        return found

    def _admit(self, groups: dict[str, GroupInfo], start: int) -> list[str]:
        """Create or reset trackers for what discovery found; the groups to poll."""
        ready = []
        for name, info in groups.items():
            created = info.created
            if info.arn is not None:
                self.arns[name] = info.arn
            tracker = self.trackers.get(name)
            if tracker is not None and created is not None and tracker.created not in (
                None, created,
            ):  # fmt: skip
                # Deleted and created again: everything in it is new.
                log.info("cloudwatch_group_recreated", source=self.id, log_group=name)
                self.stats.groups_recreated += 1
                self._generation[name] = self._generation.get(name, 0) + 1
                self._committer.forget(name)
                tracker = None
                first = 0
            else:
                # A group created after the source started holds only new events:
                # read it whole (its events may be timestamped before its creation).
                first = 0 if created is not None and created >= start else start
            if tracker is None:
                tracker = GroupTracker(name, first, self._look_back_ms, created=created)
                self.trackers[name] = tracker
            elif tracker.created is None:
                tracker.created = created
            if tracker.gone or name not in self._pollers:
                self.groups_changed.set()  # Live Tail sessions take the new set
            tracker.gone = False
            ready.append(name)
        return ready

    # -- reading ---------------------------------------------------------------------

    @property
    def budget(self) -> AdaptiveBudget | None:
        return self._budget

    def active_groups(self) -> int:
        return sum(1 for tracker in self.trackers.values() if not tracker.gone)

    async def run(self, ctx: SourceContext) -> None:
        if not self._observed:
            self._observed = True
            observe(self, ctx.metrics)
        self._ctx = ctx
        config = self.config
        start = self._start if self._start is not None else int(time.time() * 1000)
        self._budget = shared_budget(
            "FilterLogEvents", config.region, config.endpoint_url, config.max_requests_per_second
        )
        self._describe_budget = shared_budget(
            "DescribeLogGroups", config.region, config.endpoint_url, _DESCRIBE_CEILING
        )
        await self._load_checkpoints(ctx)
        log.info("cloudwatch_source_started", source=self.id, drain=ctx.drain,
                 checkpoints=len(self.trackers))  # fmt: skip
        async with aws.client("logs", config, max_attempts=1) as client:
            self._client = client
            try:
                if ctx.drain:
                    await self._drain(ctx, start)
                else:
                    await self._follow(ctx, start)
            finally:
                for task in self._pollers.values():
                    task.cancel()
                await asyncio.gather(*self._pollers.values(), return_exceptions=True)
                self._pollers.clear()
                self._client = None

    async def _drain(self, ctx: SourceContext, start: int) -> None:
        """Read every group up to now once, then return."""
        groups = self._admit(await self._discover(), start)
        limit = asyncio.Semaphore(8)

        async def one(name: str) -> None:
            async with limit:
                await self._sweep(ctx, name, look_back=True)

        await asyncio.gather(*(one(name) for name in groups))

    async def _follow(self, ctx: SourceContext, start: int) -> None:
        if self._ledgers is not None:
            tail = LiveTail(self, self._ledgers)
            self._pollers[""] = asyncio.create_task(tail.run(ctx), name=f"live-tail:{self.id}")
        while not ctx.stopping.is_set():
            try:
                groups = self._admit(await self._discover(), start)
            except (ClientError, *TRANSIENT_ERRORS) as exc:
                log.warning("cloudwatch_discovery_failed", source=self.id, error=str(exc))
                groups = []
            for name in groups:
                task = self._pollers.get(name)
                if task is None or task.done():
                    self._pollers[name] = asyncio.create_task(
                        self._poll(ctx, name), name=f"cloudwatch:{self.id}:{name}"
                    )
            if await ctx.sleep_unless_stopping(self.config.discovery_interval):
                return

    async def _poll(self, ctx: SourceContext, name: str) -> None:
        interval = self.config.poll_interval
        last_look_back = time.monotonic()
        while not ctx.stopping.is_set():
            tracker = self.trackers.get(name)
            if tracker is None or tracker.gone:
                return
            look_back = time.monotonic() - last_look_back >= self.config.look_back_interval
            ok = await self._sweep(ctx, name, look_back=look_back)
            if ok and look_back:
                last_look_back = time.monotonic()
            pause = interval if ok else interval + _ERROR_PAUSE
            if await ctx.sleep_unless_stopping(pause):
                return

    async def _sweep(self, ctx: SourceContext, name: str, *, look_back: bool) -> bool:
        """Page through one FilterLogEvents query; False if it stopped on an error."""
        tracker = self.trackers[name]
        budget = self._budget
        assert budget is not None
        generation = self._generation.get(name, 0)
        request: dict[str, Any] = {
            "logGroupName": name,
            "startTime": tracker.query_start(look_back),
            "limit": self.config.page_limit,
            "interleaved": True,  # ignored by AWS (always on); moto needs it
        }
        if self.config.filter_pattern:
            request["filterPattern"] = self.config.filter_pattern
        while not ctx.stopping.is_set():
            await budget.acquire()
            try:
                response = await self._client.filter_log_events(**request)
            except ClientError as exc:
                code = error_code(exc)
                if code in THROTTLE_CODES:
                    budget.throttled()
                    self.stats.requests_throttled += 1
                    continue
                self.stats.requests_failed += 1
                if code == "ResourceNotFoundException":
                    tracker.gone = True
                    self.stats.groups_gone += 1
                    log.warning("cloudwatch_group_gone", source=self.id, log_group=name)
                else:
                    log.warning("cloudwatch_request_failed", source=self.id, log_group=name,
                                code=code, error=str(exc))  # fmt: skip
                return False
            except TRANSIENT_ERRORS as exc:
                self.stats.requests_failed += 1
                log.warning("cloudwatch_request_failed", source=self.id, log_group=name,
                            error=f"{type(exc).__name__}: {exc}")  # fmt: skip
                return False
            budget.succeeded()
            self.stats.requests_ok += 1
            if self._generation.get(name, 0) != generation:
                return True  # rewound or recreated meanwhile: the next sweep starts over
            await self._dispatch(ctx, tracker, response.get("events") or [])
            token = response.get("nextToken")
            if not token or self._generation.get(name, 0) != generation:
                break
            request["nextToken"] = token
        else:
            return True  # stopping: the checkpoint holds what was acknowledged
        tracker.force_look_back = False
        tracker.prune(self.config.max_tracked_ids)
        if self._ledgers is not None and name in self._ledgers:
            self._ledgers[name].forget_before(tracker.high_ts - self._look_back_ms)
        return True

    async def _dispatch(
        self, ctx: SourceContext, tracker: GroupTracker, page: list[dict[str, Any]]
    ) -> None:
        """Turn one page into events not delivered yet; send them as one ack unit."""
        seen = tracker.seen
        seq = tracker.seq + 1
        ack = Ack()
        events: list[Event] = []
        source_id, group = self.id, tracker.name
        log_type = self.log_type(group)
        ledger = None if self._ledgers is None else self._ledgers.setdefault(group, TailLedger())
        newest_in_page = -1
        ingestion_lag = 0
        duplicates = covered = 0
        for item in page:
            event_id = item.get("eventId")
            ts = item.get("timestamp")
            message = item.get("message")
            if not isinstance(event_id, str) or not isinstance(ts, int):
                continue  # not a FilteredLogEvent; nothing to deliver or to remember
            if event_id in seen:
                duplicates += 1
                continue
            seen[event_id] = (ts, seq)
            if ts > newest_in_page:
                newest_in_page = ts
            ingested = item.get("ingestionTime")
            if isinstance(ingested, int) and ingested - ts > ingestion_lag:
                ingestion_lag = ingested - ts
            stream = str(item.get("logStreamName", ""))
            text = message if isinstance(message, str) else ""
            if ledger is not None and ledger.covered((group, stream, ts, text), ts, ack):
                covered += 1
                continue
            origin = Origin(source_id, f"{group}/{stream}", ts)
            self.append_events(events, text.encode(), origin, ack, log_type, ts)
        self.stats.duplicates_skipped += duplicates
        self.stats.live_tail_covered += covered
        if newest_in_page < 0:
            return
        tracker.seq = seq
        tracker.high_ts = max(tracker.high_ts, newest_in_page)
        tracker.last_ingestion_lag = ingestion_lag / 1000.0
        token = PageToken(seq, tracker.high_ts, newest_in_page)
        self._committer.track(group, ack, token)
        ack.on_done(functools.partial(self._observe_lag, newest_in_page))
        if events:
            self.stats.events_read += len(events)
            ctx.metrics.records_read.add(len(events), {"source": source_id})
            # Sealed only once every event is handed over (see FilesSource).
            await ctx.pipeline.send(Batch(events))
        ack.seal()

    @staticmethod
    def append_events(
        events: list[Event], raw: bytes, origin: Origin, ack: Ack, log_type: str | None, ts: int
    ) -> None:
        if not raw.strip():
            events.append(Event(raw, origin, ack, error="empty_message",
                                error_detail="the log event has no message"))  # fmt: skip
            return
        try:
            records = split_records(raw)
        except DecodeError as exc:
            events.append(Event(raw, origin, ack, error=exc.reason, error_detail=exc.detail))
            return
        fallback = ts / 1000.0
        for record in records:
            when = record.time_ms / 1000.0 if record.time_ms else fallback
            events.append(Event(record.raw, origin, ack, log_type=log_type, time=when))

    def _observe_lag(self, newest_ms: int, _ack: Ack) -> None:
        """A page is acknowledged by every sink: CloudWatch event time -> ack."""
        if self._ctx is not None:
            lag = max(0.0, time.time() - newest_ms / 1000.0)
            self._ctx.metrics.source_lag.record(lag, {"source": self.id})

    def lag_seconds(self) -> list[tuple[str, float, float | None]]:
        """Per group: now - newest acknowledged event, and the last ingestion lag seen."""
        now = time.time()
        out = []
        for name, tracker in self.trackers.items():
            if tracker.acked_event_ts is None:
                continue
            out.append((name, max(0.0, now - tracker.acked_event_ts / 1000.0),
                        tracker.last_ingestion_lag))  # fmt: skip
        return out
