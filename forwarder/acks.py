"""The acknowledgement ledger: when may a source commit?

One `Ack` stands for one upstream unit (a file chunk, an SQS message, a CloudWatch
page). Python has no destructors to lean on, so the accounting is explicit:

- the pipeline calls `expect(n)` for every (event, sink) pair it hands out,
- sink runners call `resolve(status, n)` once per (event, sink) pair,
- the source calls `seal()` after handing over its last event for the unit,
- the ack is done when it is sealed and nothing is pending; its status is the worst
  status any resolution reported.

Committers turn done acks into upstream commits: in order per lane (file offsets,
CloudWatch checkpoints) or one by one (SQS deletes).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

from forwarder.errors import AckAccountingError
from forwarder.events import Status

log = structlog.get_logger(__name__)

T = TypeVar("T")


class Ack:
    __slots__ = ("_callbacks", "_done", "_errored", "_pending", "_sealed", "_status")

    def __init__(self) -> None:
        self._pending = 0
        self._sealed = False
        self._done = False
        self._status = Status.DELIVERED
        self._errored = False
        self._callbacks: list[Callable[[Ack], None]] = []

    @property
    def done(self) -> bool:
        return self._done

    @property
    def status(self) -> Status:
        """The merged status so far; final once `done`."""
        return self._status

    @property
    def errored(self) -> bool:
        """True if any resolution was ERRORED, whatever else was merged on top of it."""
        return self._errored

    @property
    def pending(self) -> int:
        return self._pending

    def expect(self, n: int = 1) -> None:
        if self._done:
            raise AckAccountingError("expect() on an ack that is already done")
        if n < 0:
            raise AckAccountingError(f"expect({n}): n must not be negative")
        self._pending += n

    def resolve(self, status: Status, n: int = 1) -> None:
        if self._done:
            raise AckAccountingError("resolve() on an ack that is already done")
        if n < 0 or n > self._pending:
            raise AckAccountingError(f"resolve({n}) with only {self._pending} pending")
        self._pending -= n
        if status > self._status:
            self._status = status
        if status is Status.ERRORED:
            self._errored = True
        self._maybe_finish()

    def seal(self) -> None:
        if self._sealed:
            raise AckAccountingError("seal() called twice")
        self._sealed = True
        self._maybe_finish()

    def on_done(self, callback: Callable[[Ack], None]) -> None:
        """Call `callback(self)` once the ack is done (at once if it already is)."""
        if self._done:
            callback(self)
        else:
            self._callbacks.append(callback)

    async def wait(self) -> Status:
        if self._done:
            return self._status
        future: asyncio.Future[Status] = asyncio.get_running_loop().create_future()

        def settle(ack: Ack) -> None:
            if not future.done():
                future.set_result(ack.status)

        self.on_done(settle)
        return await future

    def _maybe_finish(self) -> None:
        if self._sealed and self._pending == 0 and not self._done:
            self._done = True
            callbacks, self._callbacks = self._callbacks, []
            for callback in callbacks:
                callback(self)


def committable(ack: Ack) -> bool:
    """May the source move past this unit?

    DELIVERED and REJECTED (already dead-lettered) both let it. One sink's ERRORED
    blocks it even when another sink REJECTED the same event, though REJECTED is the
    "worse" merged status: committing then would lose the event for the first sink.
    """
    return not ack.errored


class _CommitLoop(ABC):
    """Wakes when an ack is done, commits; after a failed commit, retries later."""

    def __init__(self, retry_interval: float) -> None:
        self._retry_interval = retry_interval
        self._wake: asyncio.Event | None = None

    def _poke(self, _ack: Ack | None = None) -> None:
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        self._wake = asyncio.Event()
        self._wake.set()  # commit what settled before the loop started
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not await self.flush():
                # The upstream or the state store refused a write: said so, try later.
                await asyncio.sleep(self._retry_interval)
                self._wake.set()

    @abstractmethod
    async def flush(self) -> bool:
        """Commit what is committable now; False when a commit failed."""


class OrderedCommitter(_CommitLoop, Generic[T]):
    """Commits, per lane, the token of the longest prefix of done, committable acks.

    A lane is one ordered stream (a file, a CloudWatch log group). When the ack at the
    head of a lane ends ERRORED, everything tracked behind it in that lane is dropped
    and `on_errored(lane, last_committed_token)` tells the source to read again from
    there: at least once, never a gap.
    """

    def __init__(
        self,
        commit: Callable[[str, T], Awaitable[None]],
        on_errored: Callable[[str, T | None], None] | None = None,
        *,
        retry_interval: float = 1.0,
    ) -> None:
        self._commit = commit
        self._on_errored = on_errored
        super().__init__(retry_interval)
        self._lanes: dict[str, deque[tuple[Ack, T]]] = {}
        self._uncommitted: dict[str, T] = {}
        self._last_committed: dict[str, T] = {}
        self.commits = 0

    def track(self, lane: str, ack: Ack, token: T) -> None:
        self._lanes.setdefault(lane, deque()).append((ack, token))
        ack.on_done(self._poke)

    def set_committed(self, lane: str, token: T) -> None:
        """Record where a lane stands on start-up (from the state store)."""
        self._last_committed[lane] = token

    def in_flight(self, lane: str | None = None) -> int:
        if lane is not None:
            return len(self._lanes.get(lane, ()))
        return sum(len(q) for q in self._lanes.values()) + len(self._uncommitted)

    def forget(self, lane: str) -> None:
        self._lanes.pop(lane, None)
        self._uncommitted.pop(lane, None)
        self._last_committed.pop(lane, None)

    async def flush(self) -> bool:
        """Commit every lane's done prefix; False when a commit failed (retried later)."""
        ok = True
        for lane in list(self._lanes):
            queue = self._lanes[lane]
            while queue and queue[0][0].done:
                ack, token = queue.popleft()
                if committable(ack):
                    self._uncommitted[lane] = token
                    continue
                queue.clear()
                if self._on_errored is not None:
                    last = self._uncommitted.get(lane, self._last_committed.get(lane))
                    self._on_errored(lane, last)
                break
            if not queue:
                del self._lanes[lane]
        for lane, token in list(self._uncommitted.items()):
            try:
                await self._commit(lane, token)
            except Exception as exc:  # the store's errors are many; all mean "not yet"
                ok = False
                log.error("checkpoint_commit_failed", lane=lane, error=str(exc))
                continue
            self.commits += 1
            self._last_committed[lane] = token
            if self._uncommitted.get(lane) is token:
                del self._uncommitted[lane]
        return ok


class UnorderedCommitter(_CommitLoop, Generic[T]):
    """Commits each ack on its own as soon as it is done (an SQS message delete).

    `commit` receives every token that became committable since the last call, so a
    source can batch its deletes; `on_errored` receives the tokens whose acks ended
    ERRORED (for SQS: make the message visible again).
    """

    def __init__(
        self,
        commit: Callable[[list[T]], Awaitable[None]],
        on_errored: Callable[[list[T]], Awaitable[None]] | None = None,
        *,
        retry_interval: float = 1.0,
    ) -> None:
        self._commit = commit
        self._on_errored = on_errored
        super().__init__(retry_interval)
        self._ready: list[T] = []
        self._errored: list[T] = []
        self._outstanding = 0
        self.commits = 0

    def track(self, ack: Ack, token: T) -> None:
        self._outstanding += 1

        def done(settled: Ack) -> None:
            self._outstanding -= 1
            (self._ready if committable(settled) else self._errored).append(token)
            self._poke()

        ack.on_done(done)

    def in_flight(self) -> int:
        return self._outstanding + len(self._ready)

    async def flush(self) -> bool:
        ok = True
        if self._errored and self._on_errored is not None:
            errored, self._errored = self._errored, []
            try:
                await self._on_errored(errored)
            except Exception as exc:
                log.warning("errored_release_failed", error=str(exc), count=len(errored))
        else:
            self._errored.clear()
        if self._ready:
            ready, self._ready = self._ready, []
            try:
                await self._commit(ready)
                self.commits += len(ready)
            except Exception as exc:
                ok = False
                self._ready[:0] = ready
                log.error("commit_failed", error=str(exc), count=len(ready))
        return ok
