"""run(config): wire sources, pipeline and sinks in one TaskGroup; stop in stages.

Shutdown order is what makes it lossless: stop reading, let the sinks drain what is
queued and in flight (for up to `shutdown_grace`), then commit exactly what every
sink acknowledged, then close. Anything not acknowledged is simply read again next
time: the sources are the buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from forwarder import engine
from forwarder.config import Config
from forwarder.deadletter import DeadLetterOutput, open_dead_letter
from forwarder.pipeline import Pipeline, SinkPort, SinkQueue
from forwarder.retry import Backoff
from forwarder.runner import SinkRunner
from forwarder.sinks import build_sink
from forwarder.sources import Source, SourceContext, build_source
from forwarder.state import state_store_from_config
from forwarder.tasks import first_of
from forwarder.telemetry import Health, Metrics, heartbeat, serve

log = structlog.get_logger(__name__)


@dataclass
class StopSignal:
    """Set once to stop reading; set again (a second Ctrl-C) to skip the drain."""

    stop: asyncio.Event = field(default_factory=asyncio.Event)
    force: asyncio.Event = field(default_factory=asyncio.Event)

    def trigger(self) -> None:
        if self.stop.is_set():
            self.force.set()
        self.stop.set()


def _source_type(source: Source) -> str:
    """The configured `type` of a source; sources built outside the config are "replay"."""
    config = getattr(source, "config", None)
    return str(getattr(config, "type", "replay"))


def _observe_runner(metrics: Metrics, runner: SinkRunner) -> None:
    attrs = {"sink": runner.config.id}
    metrics.add_gauge("wmf_sink_batches_in_flight", lambda: [(float(runner.in_flight), attrs)])


async def _supervise(source: Source, ctx: SourceContext) -> bool:
    """Run a source; restart it with backoff if it crashes. False if it gave up."""
    backoff = Backoff(initial=1.0, maximum=60.0)
    while True:
        try:
            await source.run(ctx)
            return True
        except Exception:
            log.exception("source_crashed", source=source.id)
            if ctx.drain:
                return False
            delay = backoff.next_delay() or 60.0
            if await ctx.sleep_unless_stopping(delay):
                return True


async def _within(work: asyncio.Future[Any], seconds: float, force: asyncio.Event) -> None:
    """Wait for `work` at most `seconds`, or until `force`; never cancels `work`."""
    if seconds <= 0 or work.done():
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(first_of(asyncio.shield(work), force.wait()), seconds)


def _observe_queue(metrics: Metrics, sink_id: str, queue: SinkQueue) -> None:
    attrs = {"sink": sink_id}
    metrics.add_gauge("wmf_sink_queued_events", lambda: [(float(queue.events), attrs)])
    metrics.add_gauge("wmf_sink_queued_bytes", lambda: [(float(queue.bytes), attrs)])


def _observe_dead_letter(metrics: Metrics, dead_letter: DeadLetterOutput) -> None:
    metrics.add_gauge("wmf_dead_letter_pending", lambda: [(float(dead_letter.pending), {})])


async def _store_dead_letters(
    dead_letter: DeadLetterOutput,
    task: asyncio.Task[None],
    signal: StopSignal,
    grace_ends: float,
    grace: float,
) -> bool:
    """Let the dead letter store what the sinks rejected; False if it could not in time.

    Runs after the sinks drained and before the sources commit: a source may commit
    past a rejected record only once its entry is stored.
    """
    dead_letter.finish()
    loop = asyncio.get_running_loop()
    if not signal.stop.is_set():
        await first_of(asyncio.shield(task), signal.stop.wait())
        grace_ends = loop.time() + grace
    if not task.done():
        await _within(task, grace_ends - loop.time(), signal.force)
    if task.done():
        return True
    log.warning("dead_letter_incomplete", entries_left=dead_letter.pending)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return False


async def run(
    config: Config,
    signal: StopSignal,
    *,
    drain: bool = False,
    sources: Sequence[Source] | None = None,
) -> int:
    """Run the daemon until `signal` (or, with drain, until every source is exhausted).

    `sources` replaces the configured ones (replay-dead-letter brings its own).
    """
    metrics = Metrics(config.telemetry)
    health = Health()
    state = state_store_from_config(config.state)
    health.state_ping = state.ping
    dead_letter = open_dead_letter(config.dead_letter)
    _observe_dead_letter(metrics, dead_letter)
    sinks = [build_sink(sink_config) for sink_config in config.sinks]
    queues = [SinkQueue(c.queue.max_events, c.queue.max_bytes) for c in config.sinks]
    for c, queue in zip(config.sinks, queues, strict=True):
        _observe_queue(metrics, c.id, queue)
    ports = [SinkPort(s.id, s.view, q) for s, q in zip(sinks, queues, strict=True)]
    pipeline = Pipeline(ports, dead_letter, metrics)
    runners = [
        SinkRunner(sink, c, queue, pipeline, metrics, health)
        for sink, c, queue in zip(sinks, config.sinks, queues, strict=True)
    ]
    for runner in runners:
        _observe_runner(metrics, runner)
    if sources is None:
        sources = [build_source(source_config) for source_config in config.sources]
    ctx = SourceContext(pipeline, state, metrics, drain=drain, replicas=config.workers)
    metrics.start_at_zero([(s.id, _source_type(s)) for s in sources], [s.id for s in sinks])
    clean = True
    try:
        for sink in sinks:
            await sink.start()
        async with asyncio.TaskGroup() as group:
            services = [group.create_task(heartbeat(health))]
            if config.telemetry.listen:
                services.append(group.create_task(serve(config.telemetry.listen, metrics, health)))
            services += [group.create_task(source.commit_loop(ctx)) for source in sources]
            runner_tasks = [group.create_task(runner.run()) for runner in runners]
            dead_letter_task = group.create_task(dead_letter.run())
            readers = [group.create_task(_supervise(source, ctx)) for source in sources]
            health.sources_started = True
            log.info(
                "forwarder_started",
                sources=[s.id for s in sources],
                sinks=[s.id for s in sinks],
                drain=drain,
                engine=engine.NAME,
                engine_detail=engine.describe(),
            )

            # Stage 1: read until told to stop (or, draining, until every source is done).
            if drain:
                await first_of(asyncio.gather(*readers, return_exceptions=True), signal.stop.wait())
            else:
                await signal.stop.wait()
            ctx.stopping.set()
            loop = asyncio.get_running_loop()
            grace_ends = loop.time() + config.shutdown_grace
            if signal.stop.is_set():
                log.info("stopping", grace_s=config.shutdown_grace)
            # Readers finish the batch they are handing over (so no chunk reaches one
            # sink but not another), unless the grace runs out first.
            reading = asyncio.gather(*readers, return_exceptions=True)
            await _within(reading, grace_ends - loop.time(), signal.force)
            for reader in readers:
                reader.cancel()
            results = await asyncio.gather(*readers, return_exceptions=True)
            clean = all(result is True for result in results) or signal.stop.is_set()

            # Stage 2: drain what the sinks hold; bounded by the grace once stopping.
            for queue in queues:
                queue.close()
            drained = asyncio.gather(*runner_tasks, return_exceptions=True)
            if not signal.stop.is_set():
                await first_of(asyncio.shield(drained), signal.stop.wait())
                grace_ends = loop.time() + config.shutdown_grace
            if not drained.done():
                await _within(drained, grace_ends - loop.time(), signal.force)
            if not drained.done():
                left = sum(queue.events for queue in queues)
                log.warning("drain_incomplete", events_left=left)
                clean = False
                for task in runner_tasks:
                    task.cancel()
            await asyncio.gather(drained, return_exceptions=True)
            if not await _store_dead_letters(
                dead_letter, dead_letter_task, signal, grace_ends, config.shutdown_grace
            ):
                clean = False

            # Stage 3: commit exactly what was acknowledged, then stop the services.
            for source in sources:
                await source.flush()
            if ctx.errored_units:
                clean = False
            for task in services:
                task.cancel()
    finally:
        for sink in sinks:
            with contextlib.suppress(Exception):
                await sink.close()
        await dead_letter.close()
        await state.close()
        metrics.shutdown()
    uncommitted = sum(source.in_flight() for source in sources)
    log.info("forwarder_stopped", uncommitted_units=uncommitted, clean=clean)
    if drain and not signal.stop.is_set():
        return 0 if clean and uncommitted == 0 else 1
    return 0
