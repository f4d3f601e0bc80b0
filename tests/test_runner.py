"""SinkRunner and Pipeline with an in-memory sink: retries, rejections, backpressure."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from forwarder.acks import Ack
from forwarder.config import DeadLetterConfig, FileSinkConfig
from forwarder.deadletter import DeadLetter
from forwarder.events import Batch, Event, Origin, Status
from forwarder.pipeline import Pipeline, SinkPort, SinkQueue
from forwarder.runner import SinkRunner
from forwarder.telemetry import Health, Metrics
from tests.conftest import sample_records
from tests.fakes import MemorySink

pytestmark = pytest.mark.timeout(30)

RECORDS = [orjson.dumps(r) for r in sample_records()]


def sink_config(**overrides: object) -> FileSinkConfig:
    base: dict[str, object] = {
        "id": "mem", "type": "file", "path": "unused",
        "batch": {"max_events": 10, "max_wait": "20ms"},
        "retry": {"initial_backoff": "1ms", "max_backoff": "5ms"},
    }  # fmt: skip
    base.update(overrides)
    return FileSinkConfig.model_validate(base)


class Rig:
    """One pipeline, N memory sinks, their runners; started as tasks."""

    def __init__(self, tmp_path: Path, sinks: list[MemorySink], queue_events: int = 10_000,
                 **overrides: object) -> None:  # fmt: skip
        self.metrics = Metrics()
        self.health = Health()
        self.dead_letter_path = tmp_path / "dl.ndjson"
        dead_letter = DeadLetter(DeadLetterConfig(path=self.dead_letter_path))
        self.queues = [SinkQueue(queue_events, 1 << 30) for _ in sinks]
        ports = [SinkPort(s.id, s.view, q) for s, q in zip(sinks, self.queues, strict=True)]
        self.pipeline = Pipeline(ports, dead_letter, self.metrics)
        self.runners = [
            SinkRunner(
                s, sink_config(id=s.id, **overrides), q, self.pipeline, self.metrics, self.health
            )
            for s, q in zip(sinks, self.queues, strict=True)
        ]
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(r.run()) for r in self.runners]

    async def finish(self) -> None:
        for queue in self.queues:
            queue.close()
        await asyncio.gather(*self.tasks)

    def dead_letters(self) -> list[dict[str, object]]:
        if not self.dead_letter_path.exists():
            return []
        return [orjson.loads(x) for x in self.dead_letter_path.read_bytes().splitlines()]


def batch_of(raws: list[bytes], ack: Ack) -> Batch:
    return Batch([Event(raw=r, origin=Origin("t", "p", i), ack=ack) for i, r in enumerate(raws)])


async def test_fan_out_to_every_sink_and_ack_once(tmp_path: Path) -> None:
    a, b = MemorySink("a", "ocsf"), MemorySink("b", "ecs")
    rig = Rig(tmp_path, [a, b])
    rig.start()
    ack = Ack()
    await rig.pipeline.send(batch_of(RECORDS, ack))
    ack.seal()
    assert await asyncio.wait_for(ack.wait(), 5) is Status.DELIVERED
    await rig.finish()
    assert len(a.received) == len(b.received) == len(RECORDS)
    assert orjson.loads(a.received[0])["metadata"]["version"] == "1.5.0"
    assert orjson.loads(b.received[0])["ecs"]["version"] == "9.4.0"


async def test_unmappable_records_are_dead_lettered_and_committable(tmp_path: Path) -> None:
    sink = MemorySink()
    rig = Rig(tmp_path, [sink])
    rig.start()
    ack = Ack()
    await rig.pipeline.send(batch_of([RECORDS[0], b"nope", b"[1]", b'{"x": 1}'], ack))
    ack.seal()
    assert await asyncio.wait_for(ack.wait(), 5) is Status.REJECTED
    assert not ack.errored
    await rig.finish()
    assert [e["reason"] for e in rig.dead_letters()] == [
        "invalid_json",
        "not_an_object",
        "unknown_log_type",
    ]
    assert len(sink.received) == 1


async def test_transient_failures_are_retried_until_delivered(tmp_path: Path) -> None:
    sink = MemorySink()
    sink.down = True
    rig = Rig(tmp_path, [sink])
    rig.start()
    ack = Ack()
    await rig.pipeline.send(batch_of(RECORDS[:5], ack))
    ack.seal()
    while sink.requests < 3:
        await asyncio.sleep(0.01)
    assert not ack.done
    sink.down = False
    assert await asyncio.wait_for(ack.wait(), 5) is Status.DELIVERED
    await rig.finish()
    assert len(sink.received) == 5


async def test_only_the_errored_subset_is_retried(tmp_path: Path) -> None:
    sink = MemorySink()
    attempts: dict[bytes, int] = {}

    def verdict(event: Event) -> Status:
        attempts[event.raw] = attempts.get(event.raw, 0) + 1
        return (
            Status.ERRORED
            if event.raw == RECORDS[1] and attempts[event.raw] < 3
            else Status.DELIVERED
        )

    sink.verdict = verdict
    rig = Rig(tmp_path, [sink])
    rig.start()
    ack = Ack()
    await rig.pipeline.send(batch_of(RECORDS[:4], ack))
    ack.seal()
    assert await asyncio.wait_for(ack.wait(), 5) is Status.DELIVERED
    await rig.finish()
    assert attempts[RECORDS[1]] == 3
    assert attempts[RECORDS[0]] == attempts[RECORDS[2]] == 1
    assert len(sink.received) == 4


async def test_sink_rejections_are_dead_lettered_with_the_sink_and_reason(tmp_path: Path) -> None:
    sink = MemorySink()
    sink.verdict = lambda e: Status.REJECTED if e.raw == RECORDS[2] else Status.DELIVERED
    rig = Rig(tmp_path, [sink])
    rig.start()
    ack = Ack()
    await rig.pipeline.send(batch_of(RECORDS[:3], ack))
    ack.seal()
    assert await asyncio.wait_for(ack.wait(), 5) is Status.REJECTED
    await rig.finish()
    [entry] = rig.dead_letters()
    assert entry["reason"] == "sink_rejected" and entry["sink"] == "mem"
    assert entry["detail"] == "scripted rejected"
    assert entry["raw"] == RECORDS[2].decode()


async def test_gives_up_after_max_elapsed_without_commit(tmp_path: Path) -> None:
    sink = MemorySink()
    sink.down = True
    rig = Rig(
        tmp_path,
        [sink],
        retry={"initial_backoff": "1ms", "max_backoff": "5ms", "max_elapsed": "100ms"},
    )
    rig.start()
    ack = Ack()
    await rig.pipeline.send(batch_of(RECORDS[:2], ack))
    ack.seal()
    await asyncio.wait_for(ack.wait(), 5)
    assert ack.errored
    await rig.finish()


async def test_hung_requests_time_out_and_retry(tmp_path: Path) -> None:
    sink = MemorySink()
    sink.hang = 10.0
    rig = Rig(tmp_path, [sink], timeout="50ms")
    rig.start()
    ack = Ack()
    await rig.pipeline.send(batch_of(RECORDS[:2], ack))
    ack.seal()
    while sink.requests < 2:
        await asyncio.sleep(0.01)
    sink.hang = 0.0
    assert await asyncio.wait_for(ack.wait(), 5) is Status.DELIVERED
    await rig.finish()


async def test_a_down_sink_stops_the_reading_and_bounds_memory(tmp_path: Path) -> None:
    """Backpressure: the pipeline blocks once queued + in-flight reaches the bound."""
    slow, fast = MemorySink("slow"), MemorySink("fast")
    slow.down = True
    rig = Rig(tmp_path, [slow, fast], queue_events=50)
    rig.start()
    sent = 0
    acks: list[Ack] = []

    async def produce() -> None:
        nonlocal sent
        for _ in range(100):
            ack = Ack()
            acks.append(ack)
            await rig.pipeline.send(batch_of(RECORDS[:10], ack))
            ack.seal()
            sent += 10

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0.5)
    assert not producer.done()
    assert sent <= 60  # the bound (50) plus the batch that was admitted into a non-full queue
    assert all(q.events <= 60 for q in rig.queues)
    slow.down = False
    await asyncio.wait_for(producer, 10)
    await asyncio.wait_for(asyncio.gather(*(a.wait() for a in acks)), 10)
    await rig.finish()
    assert len(slow.received) == len(fast.received) == 1000


async def test_batch_latency_is_summarised_when_the_sink_stops(tmp_path: Path) -> None:
    sink = MemorySink()
    sink.hang = 0.05
    rig = Rig(tmp_path, [sink])
    rig.start()
    ack = Ack()
    await rig.pipeline.send(batch_of(RECORDS * 5, ack))
    ack.seal()
    assert await asyncio.wait_for(ack.wait(), 5) is Status.DELIVERED
    await rig.finish()
    summary = rig.runners[0].latency_summary()
    assert summary["batches"] >= 1
    assert 0.05 <= summary["batch_p50_s"] <= summary["batch_p99_s"] <= summary["batch_max_s"] < 5
