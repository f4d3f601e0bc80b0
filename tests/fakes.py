"""Shipped fakes for tests: an in-memory sink whose failures are scripted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from forwarder.events import Event, Status
from forwarder.sinks.base import SendResult, Sink


class MemorySink(Sink):
    """Keeps what it was sent; `down`, `hang` and `verdict` script its behaviour."""

    def __init__(self, sink_id: str = "mem", view: str = "ocsf") -> None:
        self.id = sink_id
        self.view = view
        self.received: list[bytes] = []
        self.requests = 0
        self.down = False  # raise a connection error for every request
        self.hang: float = 0.0  # seconds each request takes
        self.verdict: Callable[[Event], Status] | None = None
        self.changed = asyncio.Event()

    async def send(self, events: list[Event]) -> SendResult:
        self.requests += 1
        if self.hang:
            await asyncio.sleep(self.hang)
        if self.down:
            raise ConnectionError("connection refused")
        statuses = [self.verdict(e) if self.verdict else Status.DELIVERED for e in events]
        reasons: dict[int, str] = {}
        for index, (event, status) in enumerate(zip(events, statuses, strict=True)):
            if status is Status.DELIVERED:
                self.received.append(event.docs[self.view])
            else:
                reasons[index] = f"scripted {status.name.lower()}"
        self.changed.set()
        return SendResult(statuses, reasons)
