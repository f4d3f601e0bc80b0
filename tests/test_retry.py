import random

from forwarder.retry import Backoff, parse_retry_after


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_full_jitter_stays_under_exponential_ceiling() -> None:
    backoff = Backoff(initial=0.1, maximum=5.0, rand=random.Random(1), clock=FakeClock())
    for attempt in range(20):
        delay = backoff.next_delay()
        assert delay is not None
        assert 0.0 <= delay <= min(5.0, 0.1 * 2**attempt)


def test_jitter_spreads_delays() -> None:
    backoff = Backoff(initial=1.0, maximum=1.0, rand=random.Random(2), clock=FakeClock())
    delays = {round(backoff.next_delay() or 0, 3) for _ in range(50)}
    assert len(delays) > 40


def test_retry_after_is_a_floor() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0, rand=random.Random(3), clock=FakeClock())
    assert backoff.next_delay(retry_after=7.0) == 7.0


def test_gives_up_after_max_elapsed() -> None:
    clock = FakeClock()
    backoff = Backoff(initial=1.0, maximum=1.0, max_elapsed=10.0, clock=clock)
    assert backoff.next_delay() is not None
    clock.now = 9.5
    assert backoff.next_delay(retry_after=1.0) is None


def test_never_gives_up_without_max_elapsed() -> None:
    clock = FakeClock()
    backoff = Backoff(initial=1.0, maximum=2.0, clock=clock)
    for step in range(1000):
        clock.now = step * 3600.0
        assert backoff.next_delay() is not None


def test_reset() -> None:
    backoff = Backoff(initial=1.0, maximum=100.0, rand=random.Random(4), clock=FakeClock())
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert (backoff.next_delay() or 0) <= 1.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
