"""Chaos 6: a flood of 2,000,000 events queued in S3 while the SIEM is slow.

200 gzip objects of 10,000 records each are announced on SQS at once; the HEC peer
answers its first requests slowly. Memory must stay bounded by the configured queues
(backpressure stops the reading), not grow with the backlog, and every event must
arrive. The peer runs in its fast mode and keeps only each event's id (16 bytes), so
the ledger is exact without storing two million envelopes.
"""

from __future__ import annotations

import gzip
import signal
import time
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from forwarder import mapping
from tests.chaos.ledger import Settlement, report
from tests.conftest import sample_records
from tests.e2e.helpers import Daemon, count_lines
from tests.e2e.test_s3_sqs_daemon import Queue
from tests.peers import moto as moto_peer
from tests.peers.fixtures import HEC_TOKEN, running
from tests.peers.moto import MotoServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]

moto = moto_peer.moto

OBJECTS, PER_OBJECT = 200, 10_000  # 2,000,000 events
RSS_BOUND_MB = 250


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def put_flood(queue: Queue) -> set[bytes]:
    """Upload the objects; the set of expected event ids (16 bytes each)."""
    samples = list(sample_records())
    types = [mapping.detect_log_type(r) for r in samples]
    expected: set[bytes] = set()
    n = 0
    for index in range(OBJECTS):
        lines = []
        for _ in range(PER_OBJECT):
            k = n % len(samples)
            record = dict(samples[k])
            record["request_id" if "request_id" in record else "traceId"] = f"flood-{n}"
            n += 1
            lines.append(orjson.dumps(record))
            log_type = types[k]
            assert log_type is not None
            expected.add(bytes.fromhex(mapping.event_id(record, log_type)))
        body = gzip.compress(b"\n".join(lines) + b"\n", 1)
        queue.put(f"AWSLogs/flood/part-{index:04d}.jsonl.gz", body)
    return expected


def test_two_million_events_with_a_slow_sink_stay_within_the_memory_bound(
    tmp_path: Path, moto: MotoServer
) -> None:
    queue = Queue(moto, visibility=60)
    started = time.monotonic()
    expected = put_flood(queue)
    assert len(expected) == OBJECTS * PER_OBJECT
    print(f"flood of {len(expected)} events uploaded in {time.monotonic() - started:.0f}s")
    with running("hec", "--token", HEC_TOKEN, "--fast", "--fast-ids") as peer:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "state": {"backend": "sqlite", "path": str(tmp_path / "state" / "forwarder.db")},
            "sources": [{"id": "s3", "type": "s3_sqs", "queue_url": queue.url,
                         "region": "us-east-1", "endpoint_url": moto.endpoint_url,
                         "wait_time": "1s"}],
            "sinks": [{"id": "hec", "type": "splunk_hec", "url": peer.url, "token": HEC_TOKEN,
                       "gzip_level": 1, "batch": {"max_events": 500, "max_bytes": "900KB"},
                       "max_in_flight": 2, "queue": {"max_events": 20000, "max_bytes": "64MiB"}}],
            "dead_letter": {"path": str(tmp_path / "out" / "dead-letter.ndjson")},
            "telemetry": {"listen": None},
            "shutdown_grace": "20s",
        }))  # fmt: skip
        # Slow first: 20 requests wait 2 s each while the backlog presses on the queues.
        peer.control("faults", {"delay": 2.0, "delay_count": 20})
        daemon = Daemon(config, cwd=tmp_path)
        peak, samples = 0.0, 0
        try:
            deadline = time.monotonic() + 500
            while peer.control("stats").get("events", 0) < len(expected):
                assert daemon.proc.poll() is None, daemon.output()[-3000:]
                assert time.monotonic() < deadline, "the flood was not delivered in time"
                peak = max(peak, rss_mb(daemon.proc.pid))
                samples += 1
                time.sleep(0.5)
            elapsed = time.monotonic() - started
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(30) == 0, daemon.output()[-3000:]
        finally:
            daemon.stop()
        raw = httpx.get(f"{peer.url}/__peer__/ids", timeout=60).content
    got = [raw[i : i + 16] for i in range(0, len(raw), 16)]
    unique = set(got)
    result = Settlement("flood 2M, slow sink", len(expected), len(unique & expected),
                        len(got) - len(unique), count_lines(tmp_path / "out" / "dead-letter.ndjson"),
                        len(expected - unique))  # fmt: skip
    report(result)
    print(f"peak RSS {peak:.0f} MB over {samples} samples; all delivered after {elapsed:.0f}s")
    assert result.lost == 0
    assert peak < RSS_BOUND_MB, f"peak RSS {peak:.0f} MB"
