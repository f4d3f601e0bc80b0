"""Request ids: one delivery per id in flight, and the ids recently answered 200.

Firehose sends a failed or timed-out request again with the same request id. While
the first attempt is still on its way to the sinks, the retry joins it instead of
sending the events a second time; once it was answered 200, a retry within
`window` is answered 200 again at once. An attempt that failed is forgotten, so the
retry delivers it anew (at least once).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from forwarder.acks import Ack


class Answer(NamedTuple):
    status: int
    error: str | None = None


class Delivery:
    """One request id on its way to the sinks; `answer` settles once, for every attempt."""

    __slots__ = ("ack", "answer", "request_id")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.ack = Ack()
        self.answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()

    def settle(self, answer: Answer) -> None:
        if not self.answer.done():
            self.answer.set_result(answer)


class RequestLedger:
    def __init__(
        self,
        window: float,
        max_remembered: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.max_remembered = max_remembered
        self._clock = clock
        self._in_flight: dict[str, Delivery] = {}
        self._answered: OrderedDict[str, float] = OrderedDict()  # id -> expiry, oldest first

    def in_flight(self, request_id: str) -> Delivery | None:
        return self._in_flight.get(request_id)

    def answered(self, request_id: str) -> bool:
        """True if this id was answered 200 within the window."""
        self._expire()
        return request_id in self._answered

    def start(self, request_id: str) -> Delivery:
        if request_id in self._in_flight:
            raise ValueError(f"request {request_id} is already in flight")
        delivery = self._in_flight[request_id] = Delivery(request_id)
        return delivery

    def finish(self, delivery: Delivery, answer: Answer) -> None:
        """Settle every attempt waiting on `delivery`; remember the id if it succeeded."""
        if self._in_flight.get(delivery.request_id) is delivery:
            del self._in_flight[delivery.request_id]
        if answer.status == 200 and self.window > 0:
            self._answered[delivery.request_id] = self._clock() + self.window
            self._answered.move_to_end(delivery.request_id)
            while len(self._answered) > self.max_remembered:
                self._answered.popitem(last=False)
        delivery.settle(answer)

    def deliveries(self) -> list[Delivery]:
        return list(self._in_flight.values())

    def __len__(self) -> int:
        return len(self._in_flight)

    def _expire(self) -> None:
        now = self._clock()
        answered = self._answered
        while answered:
            request_id, expiry = next(iter(answered.items()))
            if expiry > now:
                return
            del answered[request_id]
