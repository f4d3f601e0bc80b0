"""The CloudWatch source's counters and lags, exported at scrape time (no hot-path work)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from forwarder.telemetry import Metrics

if TYPE_CHECKING:
    from forwarder.sources.cloudwatch.source import CloudWatchSource

Samples = list[tuple[float, dict[str, str]]]


@dataclass
class CloudWatchStats:
    requests_ok: int = 0
    requests_throttled: int = 0
    requests_failed: int = 0
    events_read: int = 0
    duplicates_skipped: int = 0
    groups_gone: int = 0
    groups_recreated: int = 0
    live_tail_events: int = 0  # delivered early by Live Tail
    live_tail_covered: int = 0  # found by polling, already delivered by Live Tail


def observe(source: CloudWatchSource, metrics: Metrics) -> None:
    stats, attrs = source.stats, {"source": source.id}

    def requests() -> Samples:
        api = {**attrs, "api": "FilterLogEvents"}
        return [
            (float(stats.requests_ok), {**api, "outcome": "ok"}),
            (float(stats.requests_throttled), {**api, "outcome": "throttled"}),
            (float(stats.requests_failed), {**api, "outcome": "failed"}),
        ]

    def rate() -> Samples:
        budget = source.budget
        return [] if budget is None else [(budget.rate, attrs)]

    def lags(index: int) -> Samples:
        out: Samples = []
        for group, lag, ingestion in source.lag_seconds():
            value = (lag, ingestion)[index]
            if value is not None:
                out.append((value, {**attrs, "log_group": group}))
        return out

    metrics.add_gauge("wmf_cloudwatch_requests", requests)
    metrics.add_gauge(
        "wmf_cloudwatch_throttles", lambda: [(float(stats.requests_throttled), attrs)]
    )
    metrics.add_gauge("wmf_cloudwatch_request_rate", rate)
    metrics.add_gauge("wmf_cloudwatch_groups", lambda: [(float(source.active_groups()), attrs)])
    metrics.add_gauge("wmf_cloudwatch_lag_seconds", lambda: lags(0))
    metrics.add_gauge("wmf_cloudwatch_ingestion_lag_seconds", lambda: lags(1))
