import time

from forwarder.acks import Ack
from forwarder.batching import Batcher
from forwarder.events import Event, Origin


def _event(size: int) -> Event:
    event = Event(raw=b"{}", origin=Origin("s", "p", 0), ack=Ack())
    event.docs["ocsf"] = b"x" * size
    return event


def test_full_by_count() -> None:
    batcher = Batcher(max_events=3, max_bytes=1 << 20, max_wait=1.0, view="ocsf")
    assert not batcher.add(_event(10))
    assert not batcher.add(_event(10))
    assert batcher.add(_event(10))
    assert len(batcher.take()) == 3
    assert len(batcher) == 0 and batcher.nbytes == 0


def test_full_by_bytes_and_overflow_check() -> None:
    batcher = Batcher(max_events=100, max_bytes=100, max_wait=1.0, view="ocsf")
    assert not batcher.add(_event(60))
    assert batcher.would_overflow(_event(50))
    assert not batcher.would_overflow(_event(40))
    assert batcher.add(_event(40))


def test_single_oversize_event_is_never_split_or_stuck() -> None:
    batcher = Batcher(max_events=100, max_bytes=10, max_wait=1.0, view="ocsf")
    assert not batcher.would_overflow(_event(1000))  # empty batch: always admitted
    assert batcher.add(_event(1000))


def test_deadline_starts_with_first_event() -> None:
    batcher = Batcher(max_events=10, max_bytes=1000, max_wait=0.5, view="ocsf")
    assert batcher.deadline() is None
    before = time.monotonic()
    batcher.add(_event(1))
    deadline = batcher.deadline()
    assert deadline is not None and before + 0.5 <= deadline <= time.monotonic() + 0.5
    batcher.take()
    assert batcher.deadline() is None
