"""Three CloudWatch replicas sharing state: each group read by one replica, failover, hand-over."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from forwarder.state import StateStore
from forwarder.state.dynamodb import DynamoStateStore
from forwarder.state.memory import MemoryStateStore
from tests.conftest import variants
from tests.fakes import MemorySink
from tests.peers import moto as moto_peer
from tests.peers.moto import MotoServer
from tests.sources.cloudwatch.test_source import LogGroup, cw_source, now_ms
from tests.sources.helpers import Following
from tests.sources.test_s3_sqs import ids, received_ids
from tests.state.conftest import drop_table, endpoint_of, new_table

moto = moto_peer.moto

pytestmark = pytest.mark.timeout(120)


class SharedMemoryStore(MemoryStateStore):
    """The memory store standing in for DynamoDB: replicas in one process share it."""

    shared = True


def groups_with_events(server: MotoServer, n: int, per_group: int, tag: str
                       ) -> tuple[str, list[LogGroup], list[dict[str, object]]]:  # fmt: skip
    prefix = f"/aws/vendedlogs/{MotoServer.unique('rep')}/"
    records = variants(per_group * n // 45 + 1, tag)[: per_group * n]
    groups = []
    for i in range(n):
        group = LogGroup(server, f"{prefix}g{i:02d}")
        group.put(records[i * per_group : (i + 1) * per_group], ts=now_ms() - 60_000)
        groups.append(group)
    return prefix, groups, records


def owners(replicas: list[Following]) -> list[set[str]]:
    out = []
    for replica in replicas:
        leases = replica.source._leases  # type: ignore[attr-defined]
        out.append(set() if leases is None else leases.owned)
    return out


async def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def total(sinks: list[MemorySink]) -> Counter[str]:
    out: Counter[str] = Counter()
    for sink in sinks:
        out += received_ids(sink)
    return out


@pytest.fixture(params=["memory", "dynamodb"])
async def shared_store(request: pytest.FixtureRequest, moto: MotoServer
                       ) -> AsyncIterator[StateStore]:  # fmt: skip
    """The store replicas share: a memory stand-in, and the real DynamoDB one on moto."""
    if request.param == "memory":
        yield SharedMemoryStore()
        return
    table = await new_table(moto)
    store = DynamoStateStore(table, endpoint_of(moto))
    try:
        yield store
    finally:
        await store.close()
        drop_table(moto, table)


async def test_three_replicas_split_thirty_groups_and_take_over_a_dead_one(
    tmp_path: Path, moto: MotoServer, shared_store: StateStore
) -> None:
    prefix, groups, records = groups_with_events(moto, 30, 3, "rep")
    store = shared_store
    config = groups[0].config(log_groups=[], log_group_prefix=prefix, lease_duration="3s",
                              discovery_interval="500ms", max_requests_per_second=500)  # fmt: skip
    sinks = [MemorySink(f"m{i}") for i in range(3)]
    replicas = [Following(tmp_path, cw_source(config), store, [sink]) for sink in sinks]
    for replica in replicas:
        await replica.__aenter__()
    try:
        await wait_until(lambda: sum(len(s.received) for s in sinks) >= 90, 30, "all events")
        await wait_until(lambda: sorted(len(o) for o in owners(replicas)) == [10, 10, 10], 20,
                         "a fair split")  # fmt: skip
        split = owners(replicas)
        assert set().union(*split) == {g.name for g in groups}
        # Steady state: no event twice.
        assert total(sinks) == ids(records)

        # Kill replica 0 without a goodbye: no flush, no lease release.
        dead = replicas.pop(0)
        dead.ctx.stopping.set()
        for task in (dead._reader, dead._committer):
            task.cancel()
        orphans = split[0]
        more = variants(1, "after")[:30]
        for group, record in zip(groups, more, strict=True):
            group.put([record], ts=now_ms() - 1000, stream="s2")
        started = time.monotonic()
        await wait_until(lambda: set().union(*owners(replicas)) == {g.name for g in groups},
                         15, "the orphaned groups to be taken over")  # fmt: skip
        took = time.monotonic() - started
        # New events of every group (the orphans' too) arrive, each once.
        live_sinks = sinks[1:]
        await wait_until(lambda: set(ids(more)) <= set(total(live_sinks)), 20, "new events")
        print(f"orphans={len(orphans)} taken over in {took:.1f}s (lease 3s)")
        for replica in replicas:
            await replica.stop()
    finally:
        for replica in replicas:
            await replica.__aexit__(None, None, None)
    delivered = total(sinks)
    assert set(delivered) == set(ids(records + more))  # nothing lost
    # Only what the dead replica had read but not committed may come twice.
    assert sum((delivered - ids(records + more)).values()) <= 30


async def test_a_clean_stop_hands_groups_over_at_once(
    tmp_path: Path, moto: MotoServer, shared_store: StateStore
) -> None:
    prefix, groups, records = groups_with_events(moto, 6, 2, "hand")
    store = shared_store
    config = groups[0].config(log_groups=[], log_group_prefix=prefix, lease_duration="60s",
                              discovery_interval="300ms")  # fmt: skip
    first_sink, second_sink = MemorySink("a"), MemorySink("b")
    async with Following(tmp_path, cw_source(config), store, [first_sink]) as first:
        await wait_until(lambda: len(first_sink.received) >= 12, 20, "the first replica")
        await first.stop()  # commits, then deletes its leases
    assert (await store.scan("leases/")) == {}
    for group, record in zip(groups, variants(1, "next")[:6], strict=True):
        group.put([record], ts=now_ms() - 1000, stream="s3")
    async with Following(tmp_path, cw_source(config), store, [second_sink]) as second:
        # Long leases (60 s), yet the second replica starts at once, from the checkpoints.
        await wait_until(lambda: len(second_sink.received) >= 6, 10, "the second replica")
        await asyncio.sleep(0.5)
        await second.stop()
    assert received_ids(second_sink) == ids(variants(1, "next")[:6])
    assert received_ids(first_sink) == ids(records)
