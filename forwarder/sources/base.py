"""The Source contract and what the runtime hands every source."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from forwarder.acks import Ack, OrderedCommitter
from forwarder.errors import StateError
from forwarder.events import Event
from forwarder.leases import LeaseManager
from forwarder.pipeline import Pipeline
from forwarder.state import StateStore
from forwarder.state.base import Versioned
from forwarder.telemetry import Metrics

log = structlog.get_logger(__name__)


@dataclass
class SourceContext:
    pipeline: Pipeline
    state: StateStore
    metrics: Metrics
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    drain: bool = False  # read what is there, then return instead of waiting for more
    errored_units: int = 0  # acks that ended ERRORED: their data will be read again
    replicas: int = 1  # replicas known to start together (`workers`): a floor for leases

    async def sleep_unless_stopping(self, seconds: float) -> bool:
        """Sleep; True if the daemon started stopping meanwhile."""
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True


def observe_lag(ctx: SourceContext, source_id: str, ack: Ack, events: list[Event]) -> None:
    """Record `wmf_source_lag_seconds` once every sink has `events` (their ack is done).

    The lag is now minus the newest event time among them (filled by the mapping
    stage); an ack that ended ERRORED is read again and records nothing.
    """

    def done(settled: Ack) -> None:
        if settled.errored:
            return
        newest = max((event.time for event in events), default=0.0)
        if newest > 0:
            lag = max(0.0, time.time() - newest)
            ctx.metrics.source_lag.record(lag, {"source": source_id})

    ack.on_done(done)


class Source(ABC):
    """Reads one upstream.

    `run` reads until `ctx.stopping` is set (or, with `ctx.drain`, until the upstream is
    exhausted) and hands batches to `ctx.pipeline.send`. `commit_loop` turns done acks
    into upstream commits while the daemon runs; `flush` commits whatever is done at
    shutdown; `in_flight` counts units not yet committed.
    """

    id: str

    @abstractmethod
    async def run(self, ctx: SourceContext) -> None: ...

    @abstractmethod
    async def commit_loop(self, ctx: SourceContext) -> None: ...

    @abstractmethod
    async def flush(self) -> None: ...

    @abstractmethod
    def in_flight(self) -> int: ...


class LaneSource(Source):
    """A source of ordered lanes (files, log groups): one OrderedCommitter, optional leases.

    Subclasses set `_committer` and, with shared state, `_leases`; `run` sets
    `_reading_done` when it returns, so that `flush` (the last commit at shutdown)
    also hands the leases over at once instead of letting them expire.
    """

    _committer: OrderedCommitter[Any]

    def __init__(self) -> None:
        self._ctx: SourceContext | None = None
        self._leases: LeaseManager | None = None
        self._reading_done = False
        self._parked: set[str] = set()  # held above the fair share, being given back
        self.lanes_gained = 0  # leases taken so far

    def _require_ctx(self) -> SourceContext:
        if self._ctx is None:
            raise RuntimeError("source not started")
        return self._ctx

    async def commit_loop(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        await self._committer.run()

    async def flush(self) -> None:
        await self._committer.flush()
        if self._leases is not None and self._reading_done:
            try:
                await self._leases.release_all()  # the next owner starts from this commit
            except StateError as exc:
                log.warning("lease_release_failed", source=self.id, error=str(exc))

    def in_flight(self) -> int:
        return self._committer.in_flight()

    # -- leases: which lanes this replica reads, when replicas share the state store --

    def _state_key(self, lane: str) -> str:
        raise NotImplementedError

    def _forget_lane(self, lane: str) -> None:
        """Drop what is known of a lane this replica no longer reads."""
        raise NotImplementedError

    def _restore_lane(self, lane: str, item: Versioned) -> None:
        """Take up a lane from its checkpoint, as its last owner committed it."""
        raise NotImplementedError

    def _stop_reading(self, lane: str) -> bool:
        """A lane is being given back: stop reading it now? (True: it is parked.)"""
        return False

    async def _balance_leases(
        self, ctx: SourceContext, leases: LeaseManager, lanes: Iterable[str], greedy: bool
    ) -> set[str]:
        """Renew, take and give back leases; the lanes this replica reads now."""
        try:
            balance = await leases.balance(lanes, greedy=greedy)
        except StateError as exc:
            # Keep reading what we hold: a lease outlives a short store outage.
            log.warning("lease_balance_failed", source=self.id, error=str(exc))
            return leases.owned - self._parked
        self.lanes_gained += len(balance.gained)
        for lane in balance.lost:
            self._let_go(lane)
        for lane in balance.gained:
            self._let_go(lane)
            item = await ctx.state.get(self._state_key(lane))
            if item is not None:
                self._restore_lane(lane, item)
        for lane in balance.surplus:
            if self._stop_reading(lane):
                self._parked.add(lane)
            if not self._committer.in_flight(lane):
                await leases.release(lane)
                self._let_go(lane)
        return leases.owned - self._parked

    def _let_go(self, lane: str) -> None:
        self._forget_lane(lane)
        self._parked.discard(lane)
