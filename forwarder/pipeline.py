"""The router: map each event once per document view, fan it out to every sink.

`Pipeline.send` runs in the source's task: it maps a batch (pure functions), registers
one expectation per (event, sink) on the events' acks, dead-letters what cannot be
mapped, then puts the batch on every sink's bounded queue. A full queue makes `send`
wait, and so the source stops reading: that is the backpressure.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence

import structlog

from forwarder import engine
from forwarder.acks import Ack
from forwarder.deadletter import DeadLetterOutput, Rejection
from forwarder.events import Batch, Event, Status
from forwarder.reference_engine import map_events  # noqa: F401  (the reference, re-exported)
from forwarder.telemetry import Metrics

log = structlog.get_logger(__name__)


class QueueClosed(Exception):
    """The queue was closed and has nothing left to hand out."""


class SinkQueue:
    """Bounded by events and bytes, counting both queued and in-flight events.

    Capacity is given back by `release` once the runner resolved the events, not when
    it took them, so a sink that is down holds the bound steady instead of letting
    the sources refill it. A single put larger than the whole bound is admitted when
    the queue is empty, so an oversize batch can never deadlock the pipeline.
    """

    def __init__(self, max_events: int, max_bytes: int) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.events = 0  # queued + in flight
        self.bytes = 0
        self._items: deque[list[Event]] = deque()
        self._closed = False
        self._space = asyncio.Event()
        self._ready = asyncio.Event()

    async def put(self, events: list[Event], nbytes: int) -> None:
        if self._closed:
            raise QueueClosed
        while self.events and (
            self.events + len(events) > self.max_events or self.bytes + nbytes > self.max_bytes
        ):
            self._space.clear()
            await self._space.wait()
            if self._closed:
                raise QueueClosed
        self.events += len(events)
        self.bytes += nbytes
        self._items.append(events)
        self._ready.set()

    async def get(self, timeout: float | None) -> list[Event] | None:
        """The next chunk of events; None on timeout; QueueClosed once closed and empty."""
        while not self._items:
            if self._closed:
                raise QueueClosed
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return None
        return self._items.popleft()

    def release(self, events: int, nbytes: int) -> None:
        self.events -= events
        self.bytes -= nbytes
        self._space.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()
        self._space.set()

    @property
    def queued_chunks(self) -> int:
        return len(self._items)


class SinkPort:
    """What the pipeline knows of a sink: its id, its document view, its queue."""

    def __init__(self, sink_id: str, view: str, queue: SinkQueue) -> None:
        self.sink_id = sink_id
        self.view = view
        self.queue = queue


def resolve_events(events: Iterable[Event], status: Status) -> None:
    """Resolve one (event, sink) pair per event, one call per distinct ack."""
    counts: dict[Ack, int] = {}
    for event in events:
        counts[event.ack] = counts.get(event.ack, 0) + 1
    for ack, n in counts.items():
        ack.resolve(status, n)


class Pipeline:
    def __init__(
        self, ports: Sequence[SinkPort], dead_letter: DeadLetterOutput, metrics: Metrics
    ) -> None:
        if not ports:
            raise ValueError("a pipeline needs at least one sink")
        self.ports = list(ports)
        self.views = tuple(sorted({port.view for port in ports}))
        self.dead_letter = dead_letter
        self.metrics = metrics

    async def send(self, batch: Batch) -> None:
        good, rejected = self.map_batch(batch.events)
        fanout = len(self.ports)
        expected: dict[Ack, int] = {}
        for event in good:
            expected[event.ack] = expected.get(event.ack, 0) + fanout
        for rejection in rejected:
            ack = rejection.event.ack
            expected[ack] = expected.get(ack, 0) + 1
        for ack, n in expected.items():
            ack.expect(n)
        if rejected:
            await self.reject(rejected)
        if not good:
            return
        for port in self.ports:
            view = port.view
            nbytes = sum(len(event.docs[view]) for event in good)
            await port.queue.put(good, nbytes)

    async def reject(self, rejected: list[Rejection]) -> None:
        """Dead-letter; each event resolves REJECTED once its entry is durably stored.

        The file dead letter stores before `submit` returns, the S3 one later (after its
        PutObject). If the entries cannot be taken, they resolve ERRORED: no commit.
        """
        try:
            await self.dead_letter.submit(rejected, self._dead_lettered)
        except OSError as exc:
            log.error("dead_letter_write_failed", error=str(exc), count=len(rejected))
            resolve_events((r.event for r in rejected), Status.ERRORED)

    def _dead_lettered(self, stored: list[Rejection]) -> None:
        reasons: dict[tuple[str, str], int] = {}
        for r in stored:
            key = (r.reason, r.sink or "pipeline")
            reasons[key] = reasons.get(key, 0) + 1
        for (reason, where), n in reasons.items():
            self.metrics.dead_lettered.add(n, {"reason": reason, "stage": where})
        resolve_events((r.event for r in stored), Status.REJECTED)

    def map_batch(self, events: list[Event]) -> tuple[list[Event], list[Rejection]]:
        return engine.map_events(events, self.views)
