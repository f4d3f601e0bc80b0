"""SinkRunner: batch -> send -> retry the ERRORED subset -> resolve acks.

One runner per sink. It owns batching, the number of requests in flight, retries
with backoff, dead-lettering of rejected events and the ack resolutions, so a sink
itself is only an encoder and a request.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

import structlog

from forwarder.batching import Batcher
from forwarder.config import SinkBase
from forwarder.deadletter import Rejection
from forwarder.errors import SinkFatalError
from forwarder.events import Event, Status
from forwarder.pipeline import Pipeline, QueueClosed, SinkQueue, resolve_events
from forwarder.retry import Backoff
from forwarder.sinks.base import SendResult, Sink
from forwarder.telemetry import Health, Metrics

log = structlog.get_logger(__name__)

# A sink that refuses our credentials is retried slowly: an operator must act, and
# hammering an auth endpoint helps nobody.
_FATAL_RETRY_FLOOR = 30.0
_LATENCY_SAMPLES = 100_000


class SinkRunner:
    def __init__(
        self,
        sink: Sink,
        config: SinkBase,
        queue: SinkQueue,
        pipeline: Pipeline,
        metrics: Metrics,
        health: Health,
    ) -> None:
        self.sink = sink
        self.config = config
        self.queue = queue
        self.pipeline = pipeline
        self.metrics = metrics
        self.health = health
        self._slots = asyncio.Semaphore(sink.max_pending or config.max_in_flight)
        self._timeout = sink.send_timeout or config.timeout
        self._attrs = {"sink": config.id}
        self.in_flight = 0  # batches being sent, retried or awaiting an indexer ack
        # Seconds from a batch leaving the batcher to its resolution (retries and indexer
        # acks included), the last ones kept: summarised in the log when the sink stops.
        self.batch_seconds: deque[float] = deque(maxlen=_LATENCY_SAMPLES)

    async def run(self) -> None:
        """Deliver until the queue is closed and everything taken from it is resolved."""
        batch = self.config.batch
        batcher = Batcher(batch.max_events, batch.max_bytes, batch.max_wait, self.sink.view)
        async with asyncio.TaskGroup() as tasks:
            while True:
                deadline = batcher.deadline()
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    chunk = await self.queue.get(timeout)
                except QueueClosed:
                    break
                if chunk is not None:
                    for full in batcher.add_chunk(chunk):
                        await self._dispatch(tasks, full)
                deadline = batcher.deadline()
                if deadline is not None and time.monotonic() >= deadline:
                    await self._dispatch(tasks, batcher.take())
            if len(batcher):
                await self._dispatch(tasks, batcher.take())
        log.info("sink_summary", sink=self.config.id, **self.latency_summary())

    def latency_summary(self) -> dict[str, float | int]:
        """Batches resolved, and their p50 / p99 / max latency in seconds."""
        samples = sorted(self.batch_seconds)
        if not samples:
            return {"batches": 0}

        def at(q: float) -> float:
            return round(samples[min(len(samples) - 1, int(q * len(samples)))], 4)

        return {"batches": len(samples), "batch_p50_s": at(0.5), "batch_p99_s": at(0.99),
                "batch_max_s": round(samples[-1], 4)}  # fmt: skip

    async def _dispatch(self, tasks: asyncio.TaskGroup, events: list[Event]) -> None:
        await self._slots.acquire()
        tasks.create_task(self._deliver(events))

    async def _deliver(self, events: list[Event]) -> None:
        view = self.sink.view
        nbytes = sum(len(event.docs[view]) for event in events)
        self.in_flight += 1
        started = time.monotonic()
        try:
            await self._deliver_with_retries(events)
        finally:
            self.batch_seconds.append(time.monotonic() - started)
            self.in_flight -= 1
            self._slots.release()
            self.queue.release(len(events), nbytes)

    async def _deliver_with_retries(self, events: list[Event]) -> None:
        retry = self.config.retry
        backoff = Backoff(retry.initial_backoff, retry.max_backoff, retry.max_elapsed)
        pending = events
        while pending:
            result, fatal = await self._send_once(pending)
            errored: list[Event] = []
            delivered: list[Event] = []
            rejected: list[Rejection] = []
            for index, (event, status) in enumerate(zip(pending, result.statuses, strict=True)):
                if status is Status.DELIVERED:
                    delivered.append(event)
                elif status is Status.REJECTED:
                    reason = result.reasons.get(index, "rejected by sink")
                    rejected.append(Rejection(event, "sink_rejected", reason, sink=self.config.id))
                else:
                    errored.append(event)
            if delivered:
                self.metrics.delivered.add(len(delivered), self._attrs)
                resolve_events(delivered, Status.DELIVERED)
            if rejected:
                await self.pipeline.reject(rejected)
            if not errored:
                return
            delay = backoff.next_delay(result.retry_after)
            if fatal and delay is not None:
                delay = max(delay, _FATAL_RETRY_FLOOR)
            if delay is None:
                log.error(
                    "sink_gave_up",
                    sink=self.config.id,
                    events=len(errored),
                    attempts=backoff.attempt,
                    reason=next(iter(result.reasons.values()), ""),
                )
                self.metrics.given_up.add(len(errored), self._attrs)
                resolve_events(errored, Status.ERRORED)
                return
            self.metrics.retried.add(len(errored), self._attrs)
            log.warning(
                "sink_retry",
                sink=self.config.id,
                events=len(errored),
                attempt=backoff.attempt,
                delay_s=round(delay, 3),
                reason=next(iter(result.reasons.values()), ""),
            )
            await asyncio.sleep(delay)
            pending = errored

    async def _send_once(self, events: list[Event]) -> tuple[SendResult, bool]:
        """One request; never raises (but for cancellation). Returns (result, fatal)."""
        started = time.monotonic()
        self.metrics.batch_size.record(len(events), self._attrs)
        try:
            result = await asyncio.wait_for(self.sink.send(events), self._timeout)
        except SinkFatalError as exc:
            if self.config.id not in self.health.fatal_sinks:
                log.error("sink_fatal", sink=self.config.id, error=str(exc))
            self.health.fatal_sinks[self.config.id] = str(exc)
            return SendResult.all(len(events), Status.ERRORED, str(exc)), True
        except TimeoutError:
            reason = f"timed out after {self._timeout}s"
            return SendResult.all(len(events), Status.ERRORED, reason), False
        except Exception as exc:
            return SendResult.all(
                len(events), Status.ERRORED, f"{type(exc).__name__}: {exc}"
            ), False
        finally:
            self.metrics.request_latency.record(time.monotonic() - started, self._attrs)
        if len(result.statuses) != len(events):
            reason = f"sink returned {len(result.statuses)} statuses for {len(events)} events"
            log.error("sink_contract_violation", sink=self.config.id, error=reason)
            return SendResult.all(len(events), Status.ERRORED, reason), False
        self.health.fatal_sinks.pop(self.config.id, None)
        return result, False
