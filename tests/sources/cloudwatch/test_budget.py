"""The adaptive budget: token bucket pacing, AIMD on throttles, one budget per account."""

from __future__ import annotations

import asyncio
import time

from forwarder.sources.cloudwatch.budget import AdaptiveBudget, shared_budget


async def test_requests_are_paced_at_the_ceiling() -> None:
    budget = AdaptiveBudget(20.0)
    started = time.monotonic()
    for _ in range(11):  # one from the burst, ten paced at 20/s
        await budget.acquire()
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 1.0
    assert budget.stats.requests == 11


def test_throttles_halve_the_rate_and_successes_climb_back_to_the_ceiling() -> None:
    budget = AdaptiveBudget(5.0)
    budget.throttled()
    budget.throttled()
    assert budget.rate == 1.25 and budget.stats.throttles == 2
    climbs = 0
    while budget.rate < 5.0:
        budget.succeeded()
        climbs += 1
    assert climbs == 30  # 0.125/s per success: recovery is slow on purpose
    budget.succeeded()
    assert budget.rate == 5.0  # never above the ceiling


def test_the_rate_never_drops_to_zero() -> None:
    budget = AdaptiveBudget(5.0)
    for _ in range(50):
        budget.throttled()
    assert budget.rate > 0


async def test_a_throttle_spends_the_saved_tokens() -> None:
    budget = AdaptiveBudget(10.0)
    budget.throttled()  # now 5/s and no token in hand
    started = time.monotonic()
    await budget.acquire()
    assert time.monotonic() - started >= 0.15


async def test_sources_of_one_account_and_region_share_one_budget() -> None:
    a = shared_budget("FilterLogEvents", "eu-west-1", None, 5.0)
    b = shared_budget("FilterLogEvents", "eu-west-1", None, 3.0)
    c = shared_budget("FilterLogEvents", "us-east-1", None, 5.0)
    assert a is b and a is not c
    assert a.ceiling == 3.0  # the lower ceiling holds for both
    assert shared_budget("DescribeLogGroups", "eu-west-1", None, 5.0) is not a


async def test_concurrent_callers_share_the_rate() -> None:
    budget = AdaptiveBudget(40.0)
    started = time.monotonic()
    await asyncio.gather(*(budget.acquire() for _ in range(21)))
    assert 0.45 <= time.monotonic() - started < 1.0
