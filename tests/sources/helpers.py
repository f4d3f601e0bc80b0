"""Driving a source in-process the way the runtime does, against memory sinks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from forwarder.sources import Source, SourceContext
from forwarder.state import StateStore
from tests.fakes import MemorySink
from tests.test_runner import Rig


async def drain_source(
    tmp_path: Path,
    source: Source,
    state: StateStore,
    sinks: list[MemorySink],
    during: Callable[[], Awaitable[None]] | None = None,
    **overrides: object,
) -> tuple[Rig, SourceContext]:
    """What `run --drain` does: read what is there, drain the sinks, commit."""
    rig = Rig(tmp_path, sinks, **overrides)
    rig.start()
    ctx = SourceContext(rig.pipeline, state, rig.metrics, drain=True)
    committer = asyncio.create_task(source.commit_loop(ctx))
    helper = asyncio.create_task(during()) if during else None
    try:
        await source.run(ctx)
        await rig.finish()
        await source.flush()
    finally:
        ctx.stopping.set()
        for task in (committer, helper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    return rig, ctx


class Following:
    """A source running as the daemon runs it (not draining) until `stop`."""

    def __init__(self, tmp_path: Path, source: Source, state: StateStore,
                 sinks: list[MemorySink], **overrides: object) -> None:  # fmt: skip
        self.rig = Rig(tmp_path, sinks, **overrides)
        self.source = source
        self.ctx = SourceContext(self.rig.pipeline, state, self.rig.metrics)

    async def __aenter__(self) -> Following:
        self.rig.start()
        self._committer = asyncio.create_task(self.source.commit_loop(self.ctx))
        self._reader = asyncio.create_task(self.source.run(self.ctx))
        return self

    async def stop(self) -> None:
        """Staged like the runtime: stop reading, drain the sinks, commit, stop committing."""
        self.ctx.stopping.set()
        await asyncio.wait_for(self._reader, 30)
        await self.rig.finish()
        await self.source.flush()
        self._committer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._committer

    async def __aexit__(self, *exc: object) -> None:
        if not self._reader.done() or not self._committer.done():
            await self.stop()
