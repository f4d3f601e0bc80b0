"""The S3/SQS source's counters, exported at scrape time (no work on the hot path)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forwarder.telemetry import Metrics

if TYPE_CHECKING:
    from forwarder.sources.s3_sqs.source import S3SqsSource


def observe(source: S3SqsSource, metrics: Metrics) -> None:
    """Export the counters this source keeps (observed at scrape time)."""
    stats, attrs = source.stats, {"source": source.id}

    def by_outcome(prefix: str) -> list[tuple[float, dict[str, str]]]:
        return [
            (float(getattr(stats, name)), {**attrs, "outcome": name.removeprefix(prefix)})
            for name in stats.__dataclass_fields__
            if name.startswith(prefix)
        ]

    def visibility() -> list[tuple[float, dict[str, str]]]:
        keeper = source._keeper
        if keeper is None:  # not started yet: nothing extended, exported as 0 all the same
            return [(0.0, {**attrs, "outcome": o}) for o in ("extended", "failed", "capped")]
        v = keeper.stats
        return [(float(v.extensions), {**attrs, "outcome": "extended"}),
                (float(v.failures), {**attrs, "outcome": "failed"}),
                (float(v.capped), {**attrs, "outcome": "capped"})]  # fmt: skip

    metrics.add_gauge("wmf_s3_messages", lambda: by_outcome("messages_"))
    metrics.add_gauge("wmf_s3_objects", lambda: by_outcome("objects_"))
    metrics.add_gauge("wmf_s3_bytes_read", lambda: [(float(stats.bytes_read), attrs)])
    metrics.add_gauge("wmf_sqs_receive_errors", lambda: [(float(stats.receive_errors), attrs)])
    metrics.add_gauge("wmf_sqs_visibility_extensions", visibility)
