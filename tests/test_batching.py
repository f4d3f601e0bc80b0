import time

from hypothesis import given, settings
from hypothesis import strategies as st

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


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.lists(st.integers(1, 40), max_size=12), max_size=6),
    max_events=st.integers(1, 6),
    max_bytes=st.integers(1, 100),
)
def test_add_chunk_equals_adding_event_by_event(
    sizes: list[list[int]], max_events: int, max_bytes: int
) -> None:
    one, many = (Batcher(max_events, max_bytes, 1.0, "ocsf") for _ in range(2))
    by_event: list[list[Event]] = []
    by_chunk: list[list[Event]] = []
    for chunk_sizes in sizes:
        chunk = [_event(size) for size in chunk_sizes]
        for event in chunk:
            if one.would_overflow(event):
                by_event.append(one.take())
            if one.add(event):
                by_event.append(one.take())
        by_chunk.extend(many.add_chunk(chunk))
        assert (one.events, one.nbytes) == (many.events, many.nbytes)
        assert (one.deadline() is None) == (many.deadline() is None)
    assert by_event == by_chunk
