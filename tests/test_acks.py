import asyncio
import random

import pytest

from forwarder.acks import Ack, OrderedCommitter, UnorderedCommitter
from forwarder.errors import AckAccountingError
from forwarder.events import Status


def test_done_only_when_sealed_and_nothing_pending() -> None:
    ack = Ack()
    ack.expect(2)
    ack.resolve(Status.DELIVERED)
    assert not ack.done
    ack.resolve(Status.DELIVERED)
    assert not ack.done  # not sealed yet: the source may still add events
    ack.seal()
    assert ack.done
    assert ack.status is Status.DELIVERED


def test_seal_before_resolution() -> None:
    ack = Ack()
    ack.expect(3)
    ack.seal()
    assert not ack.done
    ack.resolve(Status.DELIVERED, 3)
    assert ack.done


def test_seal_with_nothing_expected_is_done_at_once() -> None:
    ack = Ack()
    ack.seal()
    assert ack.done
    assert ack.status is Status.DELIVERED


@pytest.mark.parametrize(
    ("statuses", "worst"),
    [
        ([Status.DELIVERED, Status.REJECTED, Status.DELIVERED], Status.REJECTED),
        ([Status.REJECTED, Status.ERRORED], Status.REJECTED),
        ([Status.ERRORED, Status.DELIVERED], Status.ERRORED),
        ([Status.DELIVERED], Status.DELIVERED),
    ],
)
def test_worst_status_wins(statuses: list[Status], worst: Status) -> None:
    ack = Ack()
    ack.expect(len(statuses))
    ack.seal()
    for status in statuses:
        ack.resolve(status)
    assert ack.status is worst


def test_errored_blocks_commit_even_under_rejected() -> None:
    from forwarder.acks import committable

    ack = Ack()
    ack.expect(2)
    ack.seal()
    ack.resolve(Status.ERRORED)  # one sink could not deliver (yet)
    ack.resolve(Status.REJECTED)  # the other dead-lettered it
    assert ack.status is Status.REJECTED
    assert not committable(ack)


def test_over_resolution_is_a_bug() -> None:
    ack = Ack()
    ack.expect(1)
    ack.resolve(Status.DELIVERED)
    with pytest.raises(AckAccountingError):
        ack.resolve(Status.DELIVERED)


def test_use_after_done_is_a_bug() -> None:
    ack = Ack()
    ack.seal()
    with pytest.raises(AckAccountingError):
        ack.expect(1)
    with pytest.raises(AckAccountingError):
        ack.resolve(Status.DELIVERED, 0)
    with pytest.raises(AckAccountingError):
        ack.seal()


def test_every_event_sink_pair_resolved_exactly_once_in_random_order() -> None:
    rng = random.Random(7)
    for _ in range(200):
        events, sinks = rng.randint(1, 20), rng.randint(1, 4)
        ack = Ack()
        ack.expect(events * sinks)
        pairs = [(e, s) for e in range(events) for s in range(sinks)]
        rng.shuffle(pairs)
        seal_at = rng.randint(0, len(pairs))
        seen = set()
        for index, pair in enumerate(pairs):
            if index == seal_at:
                ack.seal()
            assert not ack.done
            ack.resolve(Status.DELIVERED)
            seen.add(pair)
        if seal_at == len(pairs):
            assert not ack.done
            ack.seal()
        assert ack.done and len(seen) == events * sinks


async def test_wait_returns_merged_status() -> None:
    ack = Ack()
    ack.expect(2)
    ack.seal()
    waiter = asyncio.create_task(ack.wait())
    await asyncio.sleep(0)
    ack.resolve(Status.REJECTED)
    ack.resolve(Status.DELIVERED)
    assert await waiter is Status.REJECTED


async def test_ordered_committer_commits_contiguous_prefix_only() -> None:
    committed: list[tuple[str, int]] = []

    async def commit(lane: str, token: int) -> None:
        committed.append((lane, token))

    committer: OrderedCommitter[int] = OrderedCommitter(commit)
    acks = [Ack() for _ in range(4)]
    for index, ack in enumerate(acks):
        ack.expect(1)
        ack.seal()
        committer.track("f", ack, (index + 1) * 10)
    acks[1].resolve(Status.DELIVERED)
    acks[2].resolve(Status.DELIVERED)
    await committer.flush()
    assert committed == []  # the head is not done: nothing may move
    acks[0].resolve(Status.REJECTED)  # dead-lettered counts as done
    await committer.flush()
    assert committed == [("f", 30)]
    acks[3].resolve(Status.DELIVERED)
    await committer.flush()
    assert committed[-1] == ("f", 40)
    assert committer.in_flight() == 0


async def test_ordered_committer_errored_head_rewinds_lane() -> None:
    committed: list[int] = []
    rewinds: list[tuple[str, int | None]] = []

    async def commit(_lane: str, token: int) -> None:
        committed.append(token)

    committer: OrderedCommitter[int] = OrderedCommitter(
        commit, lambda lane, last: rewinds.append((lane, last))
    )
    acks = [Ack() for _ in range(3)]
    for index, ack in enumerate(acks):
        ack.expect(1)
        ack.seal()
        committer.track("f", ack, index + 1)
    acks[0].resolve(Status.DELIVERED)
    acks[1].resolve(Status.ERRORED)
    acks[2].resolve(Status.DELIVERED)
    await committer.flush()
    assert committed == [1]
    assert rewinds == [("f", 1)]
    assert committer.in_flight() == 0  # the rest is read again


async def test_ordered_committer_retries_failed_commit() -> None:
    fail = True
    committed: list[int] = []

    async def commit(_lane: str, token: int) -> None:
        if fail:
            raise OSError("disk full")
        committed.append(token)

    committer: OrderedCommitter[int] = OrderedCommitter(commit)
    ack = Ack()
    ack.seal()
    committer.track("f", ack, 5)
    assert await committer.flush() is False
    fail = False
    assert await committer.flush() is True
    assert committed == [5]


async def test_ordered_committer_run_loop_commits_on_resolution() -> None:
    committed: list[int] = []
    done = asyncio.Event()

    async def commit(_lane: str, token: int) -> None:
        committed.append(token)
        done.set()

    committer: OrderedCommitter[int] = OrderedCommitter(commit)
    task = asyncio.create_task(committer.run())
    await asyncio.sleep(0)
    ack = Ack()
    ack.expect(1)
    ack.seal()
    committer.track("f", ack, 9)
    ack.resolve(Status.DELIVERED)
    await asyncio.wait_for(done.wait(), 2)
    task.cancel()
    assert committed == [9]


async def test_unordered_committer_commits_each_ack_independently() -> None:
    committed: list[str] = []
    released: list[str] = []

    async def commit(tokens: list[str]) -> None:
        committed.extend(tokens)

    async def release(tokens: list[str]) -> None:
        released.extend(tokens)

    committer: UnorderedCommitter[str] = UnorderedCommitter(commit, release)
    acks = {name: Ack() for name in "abc"}
    for name, ack in acks.items():
        ack.expect(1)
        ack.seal()
        committer.track(ack, name)
    acks["c"].resolve(Status.DELIVERED)
    acks["b"].resolve(Status.ERRORED)
    await committer.flush()
    assert committed == ["c"]
    assert released == ["b"]
    assert committer.in_flight() == 1
    acks["a"].resolve(Status.REJECTED)
    await committer.flush()
    assert committed == ["c", "a"]
