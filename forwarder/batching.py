"""Cut a stream of events into batches by count, bytes and age."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from forwarder.events import Event


@dataclass(slots=True)
class Batcher:
    """Accumulates events for one sink; `add` says when a batch is full.

    The clock starts at the first event of a batch, so an idle sink never sends
    empty batches and a trickle still leaves within `max_wait`.
    """

    max_events: int
    max_bytes: int
    max_wait: float
    view: str
    events: list[Event] = field(default_factory=list)
    nbytes: int = 0
    opened_at: float | None = None

    def add(self, event: Event) -> bool:
        """Add one event; True when the batch should be sent now."""
        if not self.events:
            self.opened_at = time.monotonic()
        self.events.append(event)
        self.nbytes += len(event.docs[self.view])
        return len(self.events) >= self.max_events or self.nbytes >= self.max_bytes

    def add_chunk(self, events: list[Event]) -> list[list[Event]]:
        """Add a whole chunk; the batches it filled, in order (the rest stays open).

        Equal to `would_overflow` + `take` + `add` per event, in one loop over plain
        ints: the runner calls this once per chunk, not twice per event.
        """
        view = self.view
        max_events, max_bytes = self.max_events, self.max_bytes
        full: list[list[Event]] = []
        batch, nbytes = self.events, self.nbytes
        for event in events:
            size = len(event.docs[view])
            if batch and nbytes + size > max_bytes:
                full.append(batch)
                batch, nbytes = [], 0
            if not batch:
                self.opened_at = time.monotonic()
            batch.append(event)
            nbytes += size
            if len(batch) >= max_events or nbytes >= max_bytes:
                full.append(batch)
                batch, nbytes = [], 0
        self.events, self.nbytes = batch, nbytes
        if not batch:
            self.opened_at = None
        return full

    def would_overflow(self, event: Event) -> bool:
        """True when adding `event` would push a non-empty batch past max_bytes."""
        return bool(self.events) and self.nbytes + len(event.docs[self.view]) > self.max_bytes

    def deadline(self) -> float | None:
        """Monotonic time at which the open batch must go, None when empty."""
        if self.opened_at is None or not self.events:
            return None
        return self.opened_at + self.max_wait

    def take(self) -> list[Event]:
        events, self.events = self.events, []
        self.nbytes = 0
        self.opened_at = None
        return events

    def __len__(self) -> int:
        return len(self.events)
