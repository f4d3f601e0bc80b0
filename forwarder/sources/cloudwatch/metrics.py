"""The CloudWatch source's counters and lags, exported at scrape time (no hot-path work)."""

from __future__ import annotations

import time
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

    def event_lag() -> Samples:
        """Per group: now minus the newest acknowledged event's time."""
        now = time.time()
        return [
            (max(0.0, now - tracker.acked_event_ts / 1000.0), {**attrs, "log_group": name})
            for name, tracker in source.trackers.items()
            if tracker.acked_event_ts is not None
        ]

    def ingestion_lag() -> Samples:
        return [
            (tracker.last_ingestion_lag, {**attrs, "log_group": name})
            for name, tracker in source.trackers.items()
            if tracker.acked_event_ts is not None and tracker.last_ingestion_lag is not None
        ]

    def groups() -> Samples:
        return [(float(sum(not tracker.gone for tracker in source.trackers.values())), attrs)]

    metrics.add_gauge("wmf_cloudwatch_requests", requests)
    metrics.add_gauge(
        "wmf_cloudwatch_throttles", lambda: [(float(stats.requests_throttled), attrs)]
    )
    metrics.add_gauge("wmf_cloudwatch_request_rate", rate)
    metrics.add_gauge("wmf_cloudwatch_groups", groups)
    metrics.add_gauge("wmf_cloudwatch_lag_seconds", event_lag)
    metrics.add_gauge("wmf_cloudwatch_ingestion_lag_seconds", ingestion_lag)
