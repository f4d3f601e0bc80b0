"""The Source contract and what the runtime hands every source."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from forwarder.pipeline import Pipeline
from forwarder.state import StateStore
from forwarder.telemetry import Metrics


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
