"""One adaptive request budget per AWS account and region (AIMD over a token bucket).

CloudWatch Logs allows FilterLogEvents 5 times a second per account and Region, for
all callers together. A fixed sleep (Filebeat's 200 ms) either wastes the quota or
overruns it when a second reader shares the account. The budget starts at the
configured ceiling, halves its rate on every ThrottlingException (multiplicative
decrease) and climbs back by a small step per successful request (additive
increase), never above the ceiling. Every log group of every source that talks to
the same account and region draws from the same budget.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass

_MIN_RATE = 0.05  # requests/s: even a heavily throttled account is still polled
_RECOVERY_STEPS = 20  # successes to climb from half the ceiling back to the ceiling


@dataclass
class BudgetStats:
    requests: int = 0
    throttles: int = 0


class AdaptiveBudget:
    def __init__(self, ceiling: float, *, burst: float = 1.0) -> None:
        self.ceiling = ceiling
        self.rate = ceiling
        self._burst = max(1.0, burst)
        self._tokens = self._burst
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()
        self.stats = BudgetStats()

    def _refill(self, now: float) -> None:
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> None:
        """Wait for one request's worth of budget. Callers queue fairly (FIFO lock)."""
        async with self._lock:
            while True:
                now = time.monotonic()
                self._refill(now)
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    self.stats.requests += 1
                    return
                await asyncio.sleep((1.0 - self._tokens) / self.rate)

    def throttled(self) -> None:
        """AWS said slow down: halve the rate and spend what was saved up."""
        self.stats.throttles += 1
        self.rate = max(_MIN_RATE, self.rate / 2)
        self._tokens = min(self._tokens, 0.0)

    def succeeded(self) -> None:
        step = self.ceiling / (2 * _RECOVERY_STEPS)
        self.rate = min(self.ceiling, self.rate + step)

    def cap(self, ceiling: float) -> None:
        """Two sources share an account: the lower of their ceilings holds."""
        self.ceiling = min(self.ceiling, ceiling)
        self.rate = min(self.rate, self.ceiling)


# Per event loop: an asyncio.Lock belongs to one loop (tests run many loops).
_BUDGETS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str, str], AdaptiveBudget]
] = weakref.WeakKeyDictionary()


def shared_budget(
    api: str, region: str | None, endpoint_url: str | None, ceiling: float
) -> AdaptiveBudget:
    """The process-wide budget for `api` in one account/region (an endpoint stands for both).

    Credentials come from one chain per process, so sources that name the same region
    and endpoint talk to the same account.
    """
    budgets = _BUDGETS.setdefault(asyncio.get_running_loop(), {})
    key = (api, region or "", endpoint_url or "")
    budget = budgets.get(key)
    if budget is None:
        budget = budgets[key] = AdaptiveBudget(ceiling)
    else:
        budget.cap(ceiling)
    return budget
