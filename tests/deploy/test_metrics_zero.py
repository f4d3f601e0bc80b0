"""Metrics are present from the first scrape, and lag is recorded for every source type.

A real daemon (a files source, a firehose_http source, two file sinks) is scraped
before it has read anything: every counter it can move for these sources and sinks is
there with value 0, so `rate()`, `increase()` and absence alerts work from the start.
Then a file and a Firehose request are delivered: `wmf_source_lag_seconds` has an
observation for both sources.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from forwarder.telemetry import SOURCE_DEAD_LETTER_REASONS
from tests.conftest import free_port, sample_files, sample_records
from tests.e2e.helpers import Daemon, wait_for, write_config
from tests.sources.firehose.client import FirehoseClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

SINKS = ("ocsf", "ecs")


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float | None:  # fmt: skip
    return scraped.get((name, frozenset(labels.items())))


def get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except OSError:
        return None


def start_daemon(tmp_path: Path) -> tuple[Daemon, int, int]:
    (tmp_path / "inbox").mkdir()
    port, firehose_port = free_port(), free_port()
    config = write_config(tmp_path / "config.yaml", tmp_path, port=port)
    data = yaml.safe_load(config.read_text())
    data["sources"].append(
        {"id": "hose", "type": "firehose_http", "listen": f"127.0.0.1:{firehose_port}"}
    )
    config.write_text(yaml.safe_dump(data))
    return Daemon(config, cwd=tmp_path), port, firehose_port


def test_counters_start_at_zero_and_lag_is_recorded_for_files_and_firehose(
    tmp_path: Path,
) -> None:
    daemon, port, firehose_port = start_daemon(tmp_path)
    metrics = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(lambda: get(metrics) is not None, 30, "/metrics answering")
        first = get(metrics)
        assert first is not None
        scraped = samples(first)
        for source in ("inbox", "hose"):
            for name in ("wmf_source_records_read_total", "wmf_checkpoint_commits_total",
                         "wmf_checkpoint_commit_failures_total"):  # fmt: skip
                assert value(scraped, name, source=source) == 0.0, (name, source)
        for sink in SINKS:
            for name in ("wmf_sink_events_delivered_total", "wmf_sink_events_retried_total",
                         "wmf_sink_events_errored_total", "wmf_sink_queued_events",
                         "wmf_sink_queued_bytes", "wmf_sink_batches_in_flight"):  # fmt: skip
                assert value(scraped, name, sink=sink) == 0.0, (name, sink)
            dead = value(scraped, "wmf_events_dead_lettered_total", reason="sink_rejected",
                         stage=sink)  # fmt: skip
            assert dead == 0.0
        reasons = set(SOURCE_DEAD_LETTER_REASONS["files"]) | set(
            SOURCE_DEAD_LETTER_REASONS["firehose_http"]
        )
        for reason in reasons:
            dead = value(scraped, "wmf_events_dead_lettered_total", reason=reason,
                         stage="pipeline")  # fmt: skip
            assert dead == 0.0, reason
        assert value(scraped, "wmf_dead_letter_pending") == 0.0
        assert value(scraped, "wmf_firehose_requests_in_flight", source="hose") == 0.0
        for code in ("200", "500"):
            assert value(scraped, "wmf_firehose_requests_total", source="hose", code=code) == 0.0

        # Records from a file and from Firehose: each source records its lag once acked.
        for path in sample_files():
            shutil.copy(path, tmp_path / "inbox" / path.name)
        records = [line for path in sample_files() for line in path.read_bytes().splitlines()]

        async def post() -> int:
            async with FirehoseClient(f"http://127.0.0.1:{firehose_port}/") as client:
                return (await client.deliver(records[:5])).status

        assert asyncio.run(post()) == 200
        total = len(list(sample_records())) + 5

        def lagged() -> bool:
            text = get(metrics)
            if text is None:
                return False
            now = samples(text)
            return (
                value(now, "wmf_sink_events_delivered_total", sink="ecs") == float(total)
                and (value(now, "wmf_source_lag_seconds_count", source="inbox") or 0) > 0
                and (value(now, "wmf_source_lag_seconds_count", source="hose") or 0) > 0
            )

        wait_for(lagged, 60, "every record delivered and lag recorded for both sources")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.output()
    finally:
        daemon.stop()
