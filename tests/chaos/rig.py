"""What the daemon-level chaos scenarios share: seeded randomness, HEC sink and source
configurations, uploads to S3/SQS and CloudWatch on moto, and the HEC peer's ledger.

Every scenario drives the real CLI (`tests.e2e.helpers.Daemon`) against moto_server and
the strict HEC peer (`tests.peers.hec`), each a subprocess stopped by its PID.
"""

from __future__ import annotations

import gzip
import os
import random
import time
from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.chaos.ledger import hec_ids
from tests.conftest import ndjson
from tests.e2e.helpers import count_lines
from tests.e2e.test_s3_sqs_daemon import Queue
from tests.peers.fixtures import HEC_TOKEN, PeerProcess
from tests.peers.moto import MotoServer


def seeded(scenario: str) -> tuple[int, random.Random]:
    """A seed (WMF_CHAOS_SEED to replay one, else a fresh one), printed, and its Random."""
    seed = int(os.environ.get("WMF_CHAOS_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"{scenario}: seed {seed} (replay with WMF_CHAOS_SEED={seed})")
    return seed, random.Random(seed)


def hec_sink(url: str, **overrides: Any) -> dict[str, Any]:
    """The Splunk HEC sink as a SIEM runs it: indexer acks on, short timings for tests."""
    sink: dict[str, Any] = {
        "id": "hec", "type": "splunk_hec", "url": url, "token": HEC_TOKEN,
        "indexer_ack": True, "ack_poll_interval": "200ms", "ack_timeout": "5s",
        "timeout": "5s", "gzip_level": 1,
        "batch": {"max_events": 200, "max_wait": "50ms"},
        "retry": {"initial_backoff": "100ms", "max_backoff": "1s"},
        "queue": {"max_events": 2000, "max_bytes": "16MiB"},
    }  # fmt: skip
    sink.update(overrides)
    return sink


def write_config(root: Path, source: dict[str, Any], sink: dict[str, Any]) -> Path:
    document = {
        "state": {"backend": "sqlite", "path": str(root / "state" / "forwarder.db")},
        "sources": [source],
        "sinks": [sink],
        "dead_letter": {"path": str(root / "out" / "dead-letter.ndjson")},
        "telemetry": {"listen": None},
        "shutdown_grace": "20s",
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def s3_source(queue: Queue, **options: Any) -> dict[str, Any]:
    return {"id": "s3", "type": "s3_sqs", "queue_url": queue.url, "region": "us-east-1",
            "endpoint_url": queue.server.endpoint_url, "wait_time": "1s", **options}  # fmt: skip


def cloudwatch_source(server: MotoServer, group: str, **options: Any) -> dict[str, Any]:
    return {"id": "cw", "type": "cloudwatch", "region": "us-east-1",
            "endpoint_url": server.endpoint_url, "log_groups": [group], "start": "beginning",
            "poll_interval": "200ms", "page_limit": 500, "max_requests_per_second": 100,
            **options}  # fmt: skip


def upload(queue: Queue, prefix: str, records: list[dict[str, Any]], per_object: int) -> int:
    """Objects of `per_object` records (every other one gzip'd); how many were put."""
    count = 0
    for start in range(0, len(records), per_object):
        data = ndjson(records[start : start + per_object])
        if count % 2:
            queue.put(f"{prefix}/part-{count:03d}.jsonl.gz", gzip.compress(data, 1))
        else:
            queue.put(f"{prefix}/part-{count:03d}.jsonl", data)
        count += 1
    return count


def put_log_events(server: MotoServer, group: str, stream: str, records: list[dict[str, Any]],
                   start_ms: int, spacing_ms: int) -> int:  # fmt: skip
    """One new stream of `records`, one every `spacing_ms` from `start_ms`; the next start."""
    logs = server.client("logs")
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    events = [{"timestamp": start_ms + i * spacing_ms, "message": orjson.dumps(r).decode()}
              for i, r in enumerate(records)]  # fmt: skip
    for at in range(0, len(events), 5000):
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=events[at : at + 5000])  # fmt: skip
    return start_ms + len(events) * spacing_ms


def stored_ids(peer: PeerProcess) -> list[str]:
    """The event ids of every envelope the peer stored, copies included."""
    return hec_ids([stored["envelope"] for stored in peer.control("events")])


def stored_count(peer: PeerProcess) -> int:
    return int(peer.control("stats").get("events", 0))


def log_events(output: str, name: str) -> list[dict[str, Any]]:
    """The daemon's JSON log lines for one event name, in order."""
    found = []
    for line in output.splitlines():
        if name in line and line.startswith("{"):
            entry = orjson.loads(line)
            if entry.get("event") == name:
                found.append(entry)
    return found


def dead_letters(root: Path) -> int:
    return count_lines(root / "out" / "dead-letter.ndjson")


class Clock:
    """Seconds since the scenario started, for the printed timeline."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self) -> float:
        return round(time.monotonic() - self.started, 1)
