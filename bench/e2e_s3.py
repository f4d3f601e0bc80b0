"""S3/SQS -> Splunk HEC end to end: the real daemon (`run --drain`) on one core.

moto_server serves S3 and SQS; the bucket announces ObjectCreated on a queue; the
objects are gzip NDJSON of about 10 MB each (uncompressed). OCSF, gzip, indexer
acks, against the HEC peer in fast mode on the other core. Startup is subtracted
(an empty-queue run is timed too). Reports events/s, the daemon's peak RSS and the
p50 / p99 latency of its HEC batches (from the `sink_summary` it logs).
"""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bench.common import BenchResult, Options, ms, summary_row
from bench.corpus import generate
from bench.daemon import hec_sink, other_cpu, run_daemon
from tests.peers.fixtures import HEC_TOKEN, PeerProcess
from tests.peers.moto import CREDENTIALS, REGION, MotoServer

NAME = "s3"
MIN_EVENTS_PER_S = 40_000
_OBJECT_BYTES = 10_000_000


def _setup(server: MotoServer, records: int, seed: int) -> str:
    s3, sqs = server.client("s3"), server.client("sqs")
    bucket = MotoServer.unique("bench")
    queue = sqs.create_queue(QueueName=MotoServer.unique("bench"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    lines = generate(records, seed=seed)
    part: list[bytes] = []
    size = index = 0
    for line in [*lines, b""]:
        if line:
            part.append(line)
            size += len(line) + 1
        if part and (size >= _OBJECT_BYTES or not line):
            body = gzip.compress(b"\n".join(part) + b"\n", compresslevel=6)
            s3.put_object(
                Bucket=bucket,
                Key=f"AWSLogs/111122223333/WorkMail/part-{index:04d}.json.gz",
                Body=body,
            )
            part, size, index = [], 0, index + 1
    return str(queue)


def _config(root: Path, endpoint: str, queue: str, hec_url: str) -> Path:
    config = {
        "state": {"path": str(root / "state.db")},
        "sources": [
            {
                "id": "s3",
                "type": "s3_sqs",
                "queue_url": queue,
                "region": REGION,
                "endpoint_url": endpoint,
                "wait_time": "1s",
            }
        ],
        "sinks": [hec_sink(hec_url)],
        "dead_letter": {"path": str(root / "dead-letter.ndjson")},
        "telemetry": {"listen": None},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(options: Options) -> BenchResult:
    cpu = options.cpu
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    records = options.records or 200_000
    with tempfile.TemporaryDirectory(prefix="wmf-bench-s3-") as tmp:
        root = Path(tmp)
        server = MotoServer(root)
        try:
            with PeerProcess("hec", "--token", HEC_TOKEN, "--ack", "--fast") as peer:
                other = other_cpu(cpu)
                if other is not None:
                    for pid in (peer.pid, server.proc.pid):
                        if pid is not None:
                            os.sched_setaffinity(pid, {other})
                empty_queue = str(
                    server.client("sqs").create_queue(QueueName=MotoServer.unique("e"))["QueueUrl"]
                )
                empty = run_daemon(
                    _config(root, server.endpoint_url, empty_queue, peer.url), cpu, CREDENTIALS
                ).seconds
                (root / "state.db").unlink(missing_ok=True)
                queue = _setup(server, records, options.seed)
                daemon = run_daemon(
                    _config(root, server.endpoint_url, queue, peer.url), cpu, CREDENTIALS
                )
                received = int(peer.control("stats")["events"])
        finally:
            server.stop()
    seconds = max(daemon.seconds - empty, 1e-9)
    result: dict[str, Any] = {
        "records": records,
        "seconds": round(seconds, 3),
        "startup_s": round(empty, 3),
        "events_per_s": round(records / seconds),
        "rss_peak_mb": round(daemon.rss_peak_mb, 1),
        "received": received,
        **daemon.batch_latency("splunk"),
    }
    failures = []
    if received < records:
        failures.append(f"HEC peer counted {received} of {records} events")
    if result["events_per_s"] < MIN_EVENTS_PER_S:
        failures.append(
            f"S3/SQS -> HEC at {result['events_per_s']:,} events/s, below {MIN_EVENTS_PER_S:,}"
        )
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    rate, rss = result["events_per_s"], result["rss_peak_mb"]
    p50, p99 = ms(result["batch_p50_s"]), ms(result["batch_p99_s"])
    table = (
        f"{'case':34s} {'events':>10s} {'events/s':>10s} {'RSS MB':>8s} {'batch p50':>10s}"
        f" {'batch p99':>10s}\n"
        f"{'S3/SQS -> HEC (OCSF, gzip, acks)':34s} {records:>10,} {rate:>10,} {rss:>8.1f}"
        f" {p50:>10s} {p99:>10s}"
    )
    report = {"bench": NAME, "result": result, "thresholds": {"min_events_per_s": MIN_EVENTS_PER_S}}
    row = summary_row("s3_hec", f"S3/SQS -> HEC, {records:,} events", result)
    return BenchResult(NAME, table, report, failures, [row])
