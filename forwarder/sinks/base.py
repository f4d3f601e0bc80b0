"""The Sink contract: one request per call, one status per event."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from forwarder.events import Event, Status


@dataclass(slots=True)
class SendResult:
    statuses: list[Status]
    reasons: dict[int, str] = field(default_factory=dict)  # index -> why, for REJECTED/ERRORED
    retry_after: float | None = None  # the server's Retry-After, seconds

    @classmethod
    def all(cls, n: int, status: Status, reason: str | None = None) -> SendResult:
        reasons = dict.fromkeys(range(n), reason) if reason else {}
        return cls([status] * n, reasons)


class Sink(ABC):
    """A sink encodes events' documents (`event.docs[view]`) and sends them.

    `send` must not retry: the runner owns retries, backoff and ack resolution.
    It raises SinkFatalError when the peer refuses us until an operator acts, and
    may raise any other exception for a transient failure of the whole request.
    """

    id: str
    view: str
    # How many batches may be in the sink at once (None: the sink's max_in_flight).
    # A sink that waits for a late confirmation (HEC indexer acks) allows more
    # batches pending than HTTP requests in flight; the queue still bounds memory.
    max_pending: int | None = None
    # Seconds one send() may take (None: the sink's `timeout`).
    send_timeout: float | None = None

    async def start(self) -> None:
        """Open connections; called once before the first send."""

    @abstractmethod
    async def send(self, events: list[Event]) -> SendResult: ...

    async def close(self) -> None:
        """Release connections and files."""
