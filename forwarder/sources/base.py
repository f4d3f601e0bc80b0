"""The Source contract and what the runtime hands every source."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import structlog

from forwarder.acks import OrderedCommitter
from forwarder.errors import StateError
from forwarder.leases import LeaseManager
from forwarder.pipeline import Pipeline
from forwarder.state import StateStore
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
