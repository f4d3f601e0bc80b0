"""Leases in the state store: fair shares, expiry, races, hand-over."""

from __future__ import annotations

import asyncio

from forwarder.leases import LeaseManager
from forwarder.state.dynamodb import DynamoStateStore
from forwarder.state.memory import MemoryStateStore
from tests.peers import moto as moto_peer
from tests.peers.moto import MotoServer
from tests.state.conftest import drop_table, endpoint_of, new_table

moto = moto_peer.moto

LANES = [f"/g{i:02d}" for i in range(30)]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def managers(n: int, store: MemoryStateStore, clock: Clock) -> list[LeaseManager]:
    return [LeaseManager(store, "cw/x", f"r{i}", duration=30, clock=clock) for i in range(n)]


async def settle(replicas: list[LeaseManager], rounds: int = 3) -> None:
    for _ in range(rounds):
        for replica in replicas:
            balance = await replica.balance(LANES)
            for lane in balance.surplus:
                await replica.release(lane)


async def test_three_replicas_split_thirty_lanes_without_overlap() -> None:
    clock = Clock()
    replicas = managers(3, MemoryStateStore(clock=clock), clock)
    await settle(replicas)
    owned = [r.owned for r in replicas]
    assert sorted(len(o) for o in owned) == [10, 10, 10]
    assert set().union(*owned) == set(LANES)
    assert sum(len(o) for o in owned) == 30  # each lane exactly once


async def test_a_live_lease_is_never_stolen_and_an_expired_one_is_taken() -> None:
    clock = Clock()
    store = MemoryStateStore(clock=clock)
    a, b = managers(2, store, clock)
    await a.balance(LANES)  # alone: a takes all 30
    assert len(a.owned) == 30
    gained = await b.balance(LANES)
    assert gained.gained == set()  # b registered, but a's leases are live
    clock.now += 31  # a stops renewing (killed)
    gained = await b.balance(LANES)
    # b sees itself as the only live replica (a's registration expired): takes all.
    assert gained.gained == set(LANES)
    lost = await a.balance(LANES)  # a comes back: its renewals fail
    assert lost.lost == set(LANES) and a.owned == set()


async def test_a_new_replica_gets_its_share_as_the_others_give_back_surplus() -> None:
    clock = Clock()
    store = MemoryStateStore(clock=clock)
    a, b = managers(2, store, clock)
    await a.balance(LANES)
    await b.balance(LANES)  # registers; a's next heartbeat sees two replicas
    surplus = (await a.balance(LANES)).surplus
    assert len(surplus) == 15
    for lane in surplus:
        await a.release(lane)
    assert len((await b.balance(LANES)).gained) == 15
    assert a.owned.isdisjoint(b.owned)


async def test_two_replicas_claiming_at_once_have_one_winner_per_lane() -> None:
    clock = Clock()
    store = MemoryStateStore(clock=clock)
    replicas = managers(2, store, clock)
    # Both register first, so both think the fair share is 1 of the 2 lanes...
    for r in replicas:
        await r.balance([])
    lanes = ["/a", "/b"]
    # ...then both try the same lanes concurrently.
    await asyncio.gather(*(r.balance(lanes) for r in replicas))
    owners = [r.owned for r in replicas]
    assert owners[0].isdisjoint(owners[1])
    assert sum(len(o) for o in owners) <= 2


async def test_release_all_hands_over_at_once() -> None:
    clock = Clock()
    store = MemoryStateStore(clock=clock)
    a, b = managers(2, store, clock)
    await a.balance(LANES)
    await a.release_all()
    assert (await b.balance(LANES)).gained == set(LANES)  # no waiting for expiry


async def test_a_lane_that_disappears_is_let_go() -> None:
    clock = Clock()
    store = MemoryStateStore(clock=clock)
    (a,) = managers(1, store, clock)
    await a.balance(["/a", "/b"])
    result = await a.balance(["/a"])
    assert result.lost == {"/b"} and a.owned == {"/a"}


async def test_a_lease_race_on_dynamodb_has_exactly_one_winner(moto: MotoServer) -> None:
    table = await new_table(moto)
    store = DynamoStateStore(table, endpoint_of(moto))
    try:
        for round_ in range(10):
            replicas = [LeaseManager(store, f"race{round_}", f"r{i}", duration=30)
                        for i in range(3)]  # fmt: skip
            for replica in replicas:
                await replica.balance([])  # all registered: each thinks 1 lane is its share
            await asyncio.gather(*(r.balance(["/contested"]) for r in replicas))
            winners = [r for r in replicas if r.owns("/contested")]
            assert len(winners) == 1, f"round {round_}: {len(winners)} winners"
    finally:
        await store.close()
        drop_table(moto, table)
