"""Exponential backoff with full jitter that honours a server's Retry-After."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delays for one retried unit of work.

    Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): each delay
    is uniform in [0, min(max, initial * 2**attempt)], so many clients retrying at once
    spread out instead of arriving in waves. A Retry-After from the server is a floor.
    """

    initial: float
    maximum: float
    max_elapsed: float | None = None  # None: never give up
    rand: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic
    attempt: int = 0
    started: float | None = None

    def next_delay(self, retry_after: float | None = None) -> float | None:
        """Seconds to wait before the next try, or None once max_elapsed is spent."""
        now = self.clock()
        if self.started is None:
            self.started = now
        ceiling = min(self.maximum, self.initial * (2.0 ** min(self.attempt, 62)))
        self.attempt += 1
        delay = self.rand.uniform(0.0, ceiling)
        if retry_after is not None and retry_after > delay:
            delay = retry_after
        if self.max_elapsed is not None and now + delay - self.started > self.max_elapsed:
            return None
        return delay

    def reset(self) -> None:
        self.attempt = 0
        self.started = None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as delta-seconds or an HTTP-date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    reference = time.time() if now is None else now
    return max(0.0, when.timestamp() - reference)
