"""CloudWatchSource in-process against moto_server: resume, same-ms ids, late events, groups."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from forwarder.config import CloudWatchSourceConfig
from forwarder.events import Status
from forwarder.sources import build_source
from forwarder.sources.cloudwatch import CloudWatchSource
from forwarder.sources.cloudwatch.tracker import GroupCheckpoint
from forwarder.state.memory import MemoryStateStore
from tests.conftest import variants
from tests.fakes import MemorySink
from tests.peers import moto as moto_peer
from tests.peers.aws_faults import AwsFaultProxy
from tests.peers.moto import MotoServer
from tests.sources.helpers import Following, drain_source
from tests.sources.test_s3_sqs import ids, received_ids

moto = moto_peer.moto

pytestmark = pytest.mark.timeout(90)


def now_ms() -> int:
    return int(time.time() * 1000)


class LogGroup:
    """A log group on moto_server, written through the real PutLogEvents API."""

    def __init__(self, server: MotoServer, name: str | None = None) -> None:
        self.server = server
        self.name = name or f"/aws/workmail/{MotoServer.unique('grp')}"
        self.logs = server.client("logs")
        self.logs.create_log_group(logGroupName=self.name)
        self.streams: set[str] = set()

    def put(self, records: list[dict[str, Any]], ts: int | None = None,
            stream: str = "s1", step: int = 1) -> None:  # fmt: skip
        """One event per record; timestamps from `ts`, `step` ms apart (0: the same ms)."""
        if stream not in self.streams:
            self.logs.create_log_stream(logGroupName=self.name, logStreamName=stream)
            self.streams.add(stream)
        base = now_ms() - 60_000 if ts is None else ts
        events = [{"timestamp": base + i * step, "message": orjson.dumps(r).decode()}
                  for i, r in enumerate(records)]  # fmt: skip
        for start in range(0, len(events), 5000):
            self.logs.put_log_events(logGroupName=self.name, logStreamName=stream,
                                     logEvents=events[start : start + 5000])  # fmt: skip

    def config(self, **overrides: Any) -> CloudWatchSourceConfig:
        base: dict[str, Any] = {
            "id": "cw", "type": "cloudwatch", "region": "us-east-1",
            "endpoint_url": self.server.endpoint_url, "log_groups": [self.name],
            "start": "beginning", "poll_interval": "100ms", "max_requests_per_second": 200,
        }  # fmt: skip
        base.update(overrides)
        return CloudWatchSourceConfig.model_validate(base)


def saved_ids(value: dict[str, Any]) -> int:
    """How many event ids a stored checkpoint holds."""
    return sum(len(ids) for ids in GroupCheckpoint.from_value(value).ids.values())


def cw_source(config: CloudWatchSourceConfig) -> CloudWatchSource:
    source = build_source(config)
    assert isinstance(source, CloudWatchSource)
    return source


async def drain(tmp_path: Path, config: CloudWatchSourceConfig, state: MemoryStateStore,
                sink: MemorySink) -> CloudWatchSource:  # fmt: skip
    source = cw_source(config)
    _, ctx = await drain_source(tmp_path, source, state, [sink])
    assert ctx.errored_units == 0 and source.in_flight() == 0
    return source


async def wait_for_count(sink: MemorySink, n: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while len(sink.received) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(sink.received)} of {n} events arrived in {timeout}s")
        await asyncio.sleep(0.05)


async def test_restart_resumes_without_loss_or_repeats(tmp_path: Path, moto: MotoServer) -> None:
    group = LogGroup(moto)
    first, second = variants(3, "a"), variants(2, "b")
    group.put(first[:60], stream="s1")
    group.put(first[60:], stream="s2", ts=now_ms() - 59_000)
    state = MemoryStateStore()
    sink = MemorySink()
    await drain(tmp_path, group.config(page_limit=25), state, sink)
    assert received_ids(sink) == ids(first)
    checkpoint = await state.get(f"cw/cw/{group.name}")
    assert checkpoint is not None and checkpoint.value["ts"] > 0
    # Nothing new: a restart delivers nothing again.
    again = MemorySink()
    await drain(tmp_path, group.config(page_limit=25), state, again)
    assert again.received == []
    group.put(second, ts=now_ms() - 30_000)
    later = MemorySink()
    await drain(tmp_path, group.config(page_limit=25), state, later)
    assert received_ids(later) == ids(second)


async def test_same_millisecond_events_across_a_page_boundary_and_a_restart(
    tmp_path: Path, moto: MotoServer
) -> None:
    group = LogGroup(moto)
    records = variants(1, "ms")[:8]
    instant = now_ms() - 20_000
    group.put(records[:3], ts=instant, step=0)  # three events in one millisecond
    state, sink = MemoryStateStore(), MemorySink()
    await drain(tmp_path, group.config(page_limit=2), state, sink)  # pages of 2: 2 + 1
    assert received_ids(sink) == ids(records[:3])
    # Two more in the same millisecond arrive after the checkpoint was written.
    group.put(records[3:5], ts=instant, step=0, stream="s2")
    more = MemorySink()
    await drain(tmp_path, group.config(page_limit=2), state, more)
    assert received_ids(more) == ids(records[3:5])


async def test_a_late_event_inside_the_look_back_is_delivered_once(
    tmp_path: Path, moto: MotoServer
) -> None:
    group = LogGroup(moto)
    records = variants(2, "late")
    base = now_ms() - 120_000
    group.put(records[:40], ts=base, step=1000)  # spans 40 s
    sink, state = MemorySink(), MemoryStateStore()
    config = group.config(look_back="5m", look_back_interval="300ms")
    async with Following(tmp_path, cw_source(config), state, [sink]) as running:
        await wait_for_count(sink, 40)
        # Timestamped 10 s after `base`: older than everything delivered since.
        group.put(records[40:41], ts=base + 10_500, stream="late")
        await wait_for_count(sink, 41)
        await asyncio.sleep(1.0)  # several look-back sweeps more
        await running.stop()
        exported = running.rig.metrics.render().decode()
    assert received_ids(sink) == ids(records[:41])
    label = f'log_group="{group.name}"'
    for family in ("wmf_cloudwatch_lag_seconds", "wmf_cloudwatch_ingestion_lag_seconds"):
        lines = [line for line in exported.splitlines() if line.startswith(family + "{")]
        assert any(label in line for line in lines), (family, lines)
    assert 'wmf_cloudwatch_groups{source="cw"} 1.0' in exported
    # While the forwarder is down another late event arrives; the restart finds it.
    group.put(records[41:42], ts=base + 20_500, stream="late")
    after = MemorySink()
    await drain(tmp_path, config, state, after)
    assert received_ids(after) == ids(records[41:42])


async def test_groups_found_by_prefix_and_new_groups_while_running(
    tmp_path: Path, moto: MotoServer
) -> None:
    prefix = f"/aws/vendedlogs/{MotoServer.unique('pfx')}/"
    records = variants(5, "pfx")
    groups = [LogGroup(moto, f"{prefix}g{i:03d}") for i in range(200)]
    for i, group in enumerate(groups):
        group.put(records[i : i + 1])
    config = groups[0].config(log_groups=[], log_group_prefix=prefix,
                              max_requests_per_second=500)  # fmt: skip
    sink, state = MemorySink(), MemoryStateStore()
    await drain(tmp_path, config, state, sink)
    assert received_ids(sink) == ids(records[:200])
    follow = MemorySink()
    config = config.model_copy(update={"discovery_interval": 0.3, "start": "now"})
    async with Following(tmp_path, cw_source(config), state, [follow]) as running:
        await asyncio.sleep(0.5)
        newcomer = LogGroup(moto, f"{prefix}new")
        newcomer.put(records[200:203], ts=now_ms() - 1000)
        await wait_for_count(follow, 3)
        await running.stop()
    assert received_ids(follow) == ids(records[200:203])


async def test_a_deleted_and_recreated_group_is_read_from_its_beginning(
    tmp_path: Path, moto: MotoServer
) -> None:
    group = LogGroup(moto)
    records = variants(2, "re")
    group.put(records[:10])
    sink, state = MemorySink(), MemoryStateStore()
    config = group.config(discovery_interval="200ms")
    source = cw_source(config)
    async with Following(tmp_path, source, state, [sink]) as running:
        await wait_for_count(sink, 10)
        group.logs.delete_log_group(logGroupName=group.name)
        await asyncio.sleep(1.5)  # a poll says gone; creationTime will differ
        recreated = LogGroup(moto, group.name)
        # Older than what the old group's checkpoint had reached: still new here.
        recreated.put(records[10:15], ts=now_ms() - 600_000)
        await wait_for_count(sink, 15)
        await running.stop()
    assert received_ids(sink) == ids(records[:15])
    assert source.stats.groups_recreated == 1


async def test_messages_that_are_not_records_are_dead_lettered(
    tmp_path: Path, moto: MotoServer
) -> None:
    group = LogGroup(moto)
    logs = group.logs
    logs.create_log_stream(logGroupName=group.name, logStreamName="junk")
    ts = now_ms() - 5000
    good = variants(1, "ok")[0]
    messages = ["not json at all", '{"deep": ' * 3 + "1" + "}" * 3, "\u0000\ufffd",
                orjson.dumps(good).decode()]  # fmt: skip
    logs.put_log_events(logGroupName=group.name, logStreamName="junk",
                        logEvents=[{"timestamp": ts + i, "message": m}
                                   for i, m in enumerate(messages)])  # fmt: skip
    sink, state = MemorySink(), MemoryStateStore()
    source = cw_source(group.config())
    rig, ctx = await drain_source(tmp_path, source, state, [sink])
    assert received_ids(sink) == ids([good])
    dead = rig.dead_letters()
    assert len(dead) == 3
    assert all(entry["origin"]["partition"] == f"{group.name}/junk" for entry in dead)
    assert ctx.errored_units == 0 and source.in_flight() == 0
    assert Counter(type(e["reason"]) for e in dead) == Counter({str: 3})


async def test_throttling_slows_the_budget_and_it_recovers_without_loss(
    tmp_path: Path, moto: MotoServer
) -> None:
    group = LogGroup(moto)
    records = variants(3, "thr")
    group.put(records[:50])
    proxy = AwsFaultProxy(moto.endpoint_url, {"FilterLogEvents"})
    await proxy.start()
    try:
        proxy.throttle_next = 4
        # A distinct endpoint is a distinct account/region: this test's budget is its own.
        config = group.config(endpoint_url=proxy.endpoint_url, max_requests_per_second=20,
                              page_limit=10)  # fmt: skip
        sink, state = MemorySink(), MemoryStateStore()
        source = cw_source(config)
        async with Following(tmp_path, source, state, [sink]) as running:
            await wait_for_count(sink, 50)
            budget = source.budget
            assert budget is not None
            assert source.stats.requests_throttled == 4
            # Halved four times (to 1.25/s), then up 0.5/s per success since.
            assert budget.rate <= 1.25 + 0.5 * source.stats.requests_ok
            # A server-side limit of 4 requests/s: the budget stays near it, not at 20.
            proxy.throttle_rate_over = 4
            group.put(records[50:100], ts=now_ms() - 30_000)
            await wait_for_count(sink, 100, timeout=40)
            limited = budget.rate
            assert limited < 10 and source.stats.requests_throttled > 4
            proxy.throttle_rate_over = None
            await asyncio.sleep(3.0)  # polls every 100 ms succeed: additive increase
            assert budget.rate > limited
            await running.stop()
        assert received_ids(sink) == ids(records[:100])
        assert proxy.throttled >= 4
    finally:
        await proxy.stop()


async def test_an_errored_page_is_read_again_from_the_last_checkpoint(
    tmp_path: Path, moto: MotoServer
) -> None:
    group = LogGroup(moto)
    records = variants(2, "err")
    group.put(records[:30])
    sink, state = MemorySink(), MemoryStateStore()
    failing = {"on": True}
    sink.verdict = lambda _e: Status.ERRORED if failing["on"] else Status.DELIVERED
    source = cw_source(group.config(page_limit=10))
    async with Following(tmp_path, source, state, [sink],
                         retry={"initial_backoff": 0.01, "max_elapsed": 0.2}) as running:  # fmt: skip
        # Pages end ERRORED after max_elapsed; the group rewinds and reads them again.
        deadline = time.monotonic() + 20
        while running.ctx.errored_units < 2:
            assert time.monotonic() < deadline, "no page ended ERRORED"
            await asyncio.sleep(0.05)
        assert (await state.get(f"cw/cw/{group.name}")) is None  # nothing committed
        failing["on"] = False
        await wait_for_count(sink, 30)
        await asyncio.sleep(0.5)
        await running.stop()
    assert set(received_ids(sink)) == set(ids(records[:30]))
    saved = await state.get(f"cw/cw/{group.name}")
    assert saved is not None
    assert saved_ids(saved.value) == 30


async def test_live_tail_delivers_early_and_polling_does_not_send_again(
    tmp_path: Path, moto: MotoServer
) -> None:
    # moto's Live Tail sends one update with every existing event, then closes the
    # stream (PROTOCOLS.md 5): enough to check the frames are handled and de-duplicated.
    group = LogGroup(moto)
    records = variants(1, "tail")[:12]
    group.put(records[:6])
    sink, state = MemorySink(), MemoryStateStore()
    config = group.config(mode="live_tail", poll_interval="2s")
    source = cw_source(config)
    async with Following(tmp_path, source, state, [sink]) as running:
        await wait_for_count(sink, 6)
        group.put(records[6:], ts=now_ms() - 10_000, stream="s2")
        await wait_for_count(sink, 12)
        await asyncio.sleep(2.5)  # more sessions re-send everything; polls run again
        await running.stop()
    assert received_ids(sink) == ids(records)  # each exactly once
    assert source.stats.live_tail_events > 0
    assert source.stats.live_tail_events + source.stats.events_read == 12
    saved = await state.get(f"cw/cw/{group.name}")
    assert saved is not None and saved_ids(saved.value) == 12
