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
from typing import Any

import structlog
from botocore.exceptions import ClientError

from forwarder import aws
from forwarder.acks import Ack, OrderedCommitter
from forwarder.aws import THROTTLE_CODES, TRANSIENT_ERRORS, error_code
from forwarder.config import CloudWatchSourceConfig, parse_start
from forwarder.errors import VersionConflict
from forwarder.events import Batch
from forwarder.leases import LeaseManager, replica_id
from forwarder.sources.base import LaneSource, SourceContext
from forwarder.sources.cloudwatch.budget import AdaptiveBudget, shared_budget
from forwarder.sources.cloudwatch.groups import GroupInfo, discover, log_type_from_group
from forwarder.sources.cloudwatch.live_tail import LiveTail, TailLedger
from forwarder.sources.cloudwatch.metrics import CloudWatchStats, observe
from forwarder.sources.cloudwatch.pages import parse_events_fast, read_page
from forwarder.sources.cloudwatch.tracker import GroupCheckpoint, GroupTracker, PageToken
from forwarder.state.base import Versioned

log = structlog.get_logger(__name__)

_DESCRIBE_CEILING = 5.0  # DescribeLogGroups: 5 requests/s per account and Region
_ERROR_PAUSE = 5.0  # after a failed request, a group waits this long (plus its interval)
_SLICE = 1000  # events mapped between two yields to the event loop


class CloudWatchSource(LaneSource):
    def __init__(self, config: CloudWatchSourceConfig) -> None:
        super().__init__()
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
        self._known: dict[str, GroupInfo] = {}  # from the last discovery
        self._observed = False
        self._client: Any = None
        self._budget: AdaptiveBudget | None = None
        self._describe_budget: AdaptiveBudget | None = None
        self._committer: OrderedCommitter[PageToken] = OrderedCommitter(
            self._commit, self._on_errored
        )

    # -- state -----------------------------------------------------------------------

    def _state_key(self, group: str) -> str:
        return f"cw/{self.id}/{group}"

    async def _commit(self, group: str, token: PageToken) -> None:
        ctx = self._require_ctx()
        tracker = self.trackers.get(group)
        if tracker is None:
            return
        checkpoint = tracker.checkpoint(token, self.config.max_checkpoint_ids)
        # Replicas write compare-and-set: one that lost the group must not move it back.
        expected = tracker.state_version if self._leases is not None else None
        try:
            tracker.state_version = await ctx.state.put(
                self._state_key(group), checkpoint.as_value(), expected_version=expected
            )
        except VersionConflict:
            log.warning("cloudwatch_group_taken_over", source=self.id, log_group=group)
            tracker.gone = True  # its poller stops; the lease renewal drops it
            return
        except Exception:
            ctx.metrics.checkpoint_failures.add(1, {"source": self.id})
            raise
        tracker.committed(token)
        tracker.prune(self.config.max_tracked_ids)  # memory follows the commits
        ctx.metrics.checkpoint_commits.add(1, {"source": self.id})

    def _on_errored(self, group: str, _last: PageToken | None) -> None:
        # A page was not delivered within retry.max_elapsed: read again from the last
        # commit. Pages after it may still arrive at a sink: duplicates, never a gap.
        ctx = self._require_ctx()
        ctx.errored_units += 1
        tracker = self.trackers.get(group)
        if tracker is None:
            return
        self._restart_sweeps(group)
        tracker.rewind()
        log.warning("cloudwatch_rewind", source=self.id, log_group=group,
                    from_ts=tracker.high_ts)  # fmt: skip

    async def _load_checkpoints(self, ctx: SourceContext) -> None:
        prefix = self._state_key("")
        for key, item in (await ctx.state.scan(prefix)).items():
            self._restore_lane(key[len(prefix) :], item)

    def _restore_lane(self, group: str, item: Versioned) -> None:
        try:
            saved = GroupCheckpoint.from_value(item.value)
        except (KeyError, TypeError, ValueError):
            log.warning("cloudwatch_checkpoint_unreadable", source=self.id, log_group=group)
            return
        tracker = GroupTracker.restore(group, saved, self._look_back_ms)
        tracker.state_version = item.version
        self.trackers[group] = tracker
        self._committer.set_committed(group, PageToken(0, saved.ts, saved.ts))

    # -- leases (replicas sharing a DynamoDB state store) ---------------------------

    def _restart_sweeps(self, name: str) -> None:
        """A sweep of this group in progress stops at its next page (see `_sweep`)."""
        self._generation[name] = self._generation.get(name, 0) + 1

    def _stop_poller(self, name: str) -> None:
        self._restart_sweeps(name)
        task = self._pollers.pop(name, None)
        if task is not None:
            task.cancel()

    def _forget_lane(self, lane: str) -> None:
        """A group this replica no longer reads (its events in flight may still land)."""
        self._stop_poller(lane)
        self._committer.forget(lane)
        self.trackers.pop(lane, None)
        if self._ledgers is not None:
            self._ledgers.pop(lane, None)
        self.groups_changed.set()

    def _stop_reading(self, lane: str) -> bool:
        self._stop_poller(lane)
        return True

    # -- groups ----------------------------------------------------------------------

    def log_type(self, group: str) -> str | None:
        configured = self.config.log_group_types.get(group)
        if configured is not None:
            return configured
        return log_type_from_group(group) or self.config.log_type

    async def _discover(self) -> dict[str, GroupInfo]:
        assert self._describe_budget is not None
        return await discover(self._client, self.config, self._describe_budget)

    def _admit(self, groups: dict[str, GroupInfo], start: int) -> list[str]:
        """Create or reset trackers for what discovery found; the groups to poll."""
        ready = []
        for name, info in groups.items():
            created, version = info.created, 0
            if info.arn is not None:
                self.arns[name] = info.arn
            tracker = self.trackers.get(name)
            if tracker is not None and created is not None and tracker.created not in (
                None, created,
            ):  # fmt: skip
                # Deleted and created again: everything in it is new.
                log.info("cloudwatch_group_recreated", source=self.id, log_group=name)
                self.stats.groups_recreated += 1
                self._restart_sweeps(name)
                self._committer.forget(name)
                version = tracker.state_version
                tracker = None
                first = 0
            else:
                # A group created after the source started holds only new events:
                # read it whole (its events may be timestamped before its creation).
                first = 0 if created is not None and created >= start else start
            if tracker is None:
                tracker = GroupTracker(name, first, self._look_back_ms, created=created)
                tracker.state_version = version
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
        if ctx.state.shared:
            self._leases = LeaseManager(
                ctx.state, f"cw/{self.id}", replica_id(), duration=config.lease_duration,
                min_replicas=ctx.replicas,
            )  # fmt: skip
        else:
            await self._load_checkpoints(ctx)  # one replica: every group is ours
        log.info("cloudwatch_source_started", source=self.id, drain=ctx.drain,
                 checkpoints=len(self.trackers), leases=self._leases is not None)  # fmt: skip
        self._reading_done = False
        async with aws.client("logs", config, max_attempts=1,
                              connect_timeout=config.connect_timeout,
                              read_timeout=config.read_timeout) as client:  # fmt: skip
            client.meta.events.register(
                "before-parse.cloudwatch-logs.FilterLogEvents", parse_events_fast
            )
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
                self._reading_done = True

    async def _readable(self, ctx: SourceContext, greedy: bool = False) -> dict[str, GroupInfo]:
        """Of the groups discovered, those this replica reads (all of them without leases)."""
        if self._leases is None:
            return self._known
        owned = await self._balance_leases(ctx, self._leases, self._known, greedy)
        return {name: info for name, info in self._known.items() if name in owned}

    async def _drain(self, ctx: SourceContext, start: int) -> None:
        """Read every group (this replica's share of them) up to now once, then return."""
        self._known = await self._discover()
        limit = asyncio.Semaphore(8)
        done: set[str] = set()

        async def one(name: str) -> None:
            async with limit:
                await self._sweep(ctx, name, look_back=True)

        # With replicas: our share first, then whatever nobody holds, until none is left.
        greedy = False
        while not ctx.stopping.is_set():
            groups = [g for g in self._admit(await self._readable(ctx, greedy), start)
                      if g not in done]  # fmt: skip
            if not groups:
                return
            await asyncio.gather(*(one(name) for name in groups))
            done.update(groups)
            if self._leases is None:
                return
            greedy = True

    async def _follow(self, ctx: SourceContext, start: int) -> None:
        if self._ledgers is not None:
            tail = LiveTail(self, self._ledgers)
            self._pollers[""] = asyncio.create_task(tail.run(ctx), name=f"live-tail:{self.id}")
        config = self.config
        # Leases are renewed at a third of their duration, whatever the discovery pace.
        tick = config.discovery_interval
        if self._leases is not None:
            tick = min(tick, config.lease_duration / 3)
        next_discovery = 0.0
        while not ctx.stopping.is_set():
            if time.monotonic() >= next_discovery:
                try:
                    self._known = await self._discover()
                    next_discovery = time.monotonic() + config.discovery_interval
                except (ClientError, *TRANSIENT_ERRORS) as exc:
                    log.warning("cloudwatch_discovery_failed", source=self.id, error=str(exc))
            for name in self._admit(await self._readable(ctx), start):
                task = self._pollers.get(name)
                if task is None or task.done():
                    self._pollers[name] = asyncio.create_task(
                        self._poll(ctx, name), name=f"cloudwatch:{self.id}:{name}"
                    )
            if await ctx.sleep_unless_stopping(tick):
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

    async def _fetch(self, request: dict[str, Any]) -> dict[str, Any]:
        """One FilterLogEvents page, within the budget; throttles slow it and are retried."""
        budget = self._budget
        assert budget is not None
        while True:
            await budget.acquire()
            try:
                response: dict[str, Any] = await self._client.filter_log_events(**request)
            except ClientError as exc:
                if error_code(exc) not in THROTTLE_CODES:
                    raise
                budget.throttled()
                self.stats.requests_throttled += 1
                continue
            budget.succeeded()
            self.stats.requests_ok += 1
            return response

    async def _sweep(self, ctx: SourceContext, name: str, *, look_back: bool) -> bool:
        """Page through one FilterLogEvents query; False if it stopped on an error.

        The next page is requested while this one is mapped and sent (CloudWatch
        takes a while to build a page), so reading and mapping overlap.
        """
        tracker = self.trackers[name]
        generation = self._generation.get(name, 0)
        request: dict[str, Any] = {
            "logGroupName": name,
            "startTime": tracker.query_start(look_back),
            "limit": self.config.page_limit,
            "interleaved": True,  # ignored by AWS (always on); moto needs it
        }
        if self.config.filter_pattern:
            request["filterPattern"] = self.config.filter_pattern
        ahead: asyncio.Task[dict[str, Any]] | None = None
        try:
            while not ctx.stopping.is_set():
                try:
                    response = await (ahead if ahead is not None else self._fetch(request))
                except ClientError as exc:
                    self._request_failed(tracker, exc, error_code(exc))
                    return False
                except TRANSIENT_ERRORS as exc:
                    self._request_failed(tracker, exc, type(exc).__name__)
                    return False
                ahead = None
                if self._generation.get(name, 0) != generation:
                    return True  # rewound or recreated meanwhile: the next sweep starts over
                token = response.get("nextToken")
                if token:
                    request = {**request, "nextToken": token}
                    ahead = asyncio.create_task(self._fetch(request))
                await self._dispatch(ctx, tracker, response.get("events") or [])
                if not token or self._generation.get(name, 0) != generation:
                    break
            else:
                return True  # stopping: the checkpoint holds what was acknowledged
        finally:
            if ahead is not None:
                ahead.cancel()
                await asyncio.gather(ahead, return_exceptions=True)
        tracker.force_look_back = False
        tracker.prune(self.config.max_tracked_ids)
        if self._ledgers is not None and name in self._ledgers:
            self._ledgers[name].forget_before(tracker.high_ts - self._look_back_ms)
        return True

    def _request_failed(self, tracker: GroupTracker, exc: BaseException, code: str) -> None:
        self.stats.requests_failed += 1
        if code == "ResourceNotFoundException":
            tracker.gone = True
            self.stats.groups_gone += 1
            log.warning("cloudwatch_group_gone", source=self.id, log_group=tracker.name)
        else:
            log.warning("cloudwatch_request_failed", source=self.id, log_group=tracker.name,
                        code=code, error=f"{type(exc).__name__}: {exc}")  # fmt: skip

    async def _dispatch(
        self, ctx: SourceContext, tracker: GroupTracker, items: list[dict[str, Any]]
    ) -> None:
        """Send one page's new events as one ack unit, tracked in the group's lane."""
        group = tracker.name
        ledger = None if self._ledgers is None else self._ledgers.setdefault(group, TailLedger())
        page = read_page(self.id, tracker, items, self.log_type(group), ledger)
        self.stats.duplicates_skipped += page.duplicates
        self.stats.live_tail_covered += page.covered
        if page.newest < 0:
            return
        token = tracker.record_page(page.seq, page.newest, page.ids, page.ingestion_lag_ms)
        self._committer.track(group, page.ack, token)
        page.ack.on_done(functools.partial(self._observe_lag, page.newest))
        events = page.events
        if events:
            self.stats.events_read += len(events)
            ctx.metrics.records_read.add(len(events), {"source": self.id})
            # Mapped in slices with a yield between them: the next page's request (and
            # every other task) goes on while a 10,000-event page is mapped.
            for at in range(0, len(events), _SLICE):
                await ctx.pipeline.send(Batch(events[at : at + _SLICE]))
                await asyncio.sleep(0)
        # Sealed only once every event is handed over (see FilesSource).
        page.ack.seal()

    def _observe_lag(self, newest_ms: int, _ack: Ack) -> None:
        """A page is acknowledged by every sink: CloudWatch event time -> ack."""
        if self._ctx is not None:
            lag = max(0.0, time.time() - newest_ms / 1000.0)
            self._ctx.metrics.source_lag.record(lag, {"source": self.id})
