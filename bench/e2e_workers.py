"""`workers: 2` against one process: files -> Splunk HEC (fast peer), in the same run.

Both runs use DynamoDB state on moto_server (what `workers` > 1 requires), the same
inbox of 8 files and the HEC peer in its fast mode (it inflates and counts), so the
only difference is the number of worker processes. Neither run is pinned: the point
is to use both cores. Startup and shutdown are subtracted (an empty-inbox run of each
mode is timed too). Reports, for each, events/s, the peak RSS of the largest process
and the sum over the supervisor and its workers, and the p50 / p99 latency of the HEC
batches (from the `sink_summary` each worker logs; with two workers, the slower
worker's figure). Requirement: 2 processes >= 1.5x one process.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bench.common import BenchResult, Options, SummaryRow, ms, summary_row
from bench.corpus import generate
from bench.daemon import hec_sink, run_daemon
from forwarder.config import AwsEndpoint
from forwarder.state.dynamodb_table import ensure_table
from tests.peers.fixtures import HEC_TOKEN, PeerProcess
from tests.peers.moto import CREDENTIALS, REGION, MotoServer, running_moto

NAME = "workers"
MIN_RATIO = 1.5
_FILES = 8


def _write_inbox(inbox: Path, records: int, seed: int) -> None:
    inbox.mkdir(parents=True, exist_ok=True)
    per_file = records // _FILES
    for part in range(_FILES):
        lines = generate(per_file, seed=seed + part)
        (inbox / f"part-{part:02d}.jsonl").write_bytes(b"\n".join(lines) + b"\n")


def _config(root: Path, hec_url: str, moto: MotoServer, table: str, workers: int) -> Path:
    config = {
        "workers": workers,
        "state": {"backend": "dynamodb", "table": table, "region": REGION,
                  "endpoint_url": moto.endpoint_url},
        "sources": [{"id": "inbox", "type": "files", "path": str(root / "inbox")}],
        "sinks": [hec_sink(hec_url)],
        "dead_letter": {"path": str(root / "dead-letter.ndjson")},
        "telemetry": {"listen": None},
    }  # fmt: skip
    path = root / f"config-{workers}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _measure(records: int, seed: int, workers: int, moto: MotoServer) -> dict[str, Any]:
    endpoint = AwsEndpoint(region=REGION, endpoint_url=moto.endpoint_url)
    with tempfile.TemporaryDirectory(prefix="wmf-bench-") as tmp:
        root = Path(tmp)
        (root / "inbox").mkdir()
        with PeerProcess("hec", "--token", HEC_TOKEN, "--ack", "--fast") as peer:
            empty_table = MotoServer.unique("bench-empty")
            asyncio.run(ensure_table(empty_table, endpoint))
            empty = run_daemon(
                _config(root, peer.url, moto, empty_table, workers), None, CREDENTIALS, 900
            ).seconds
            table = MotoServer.unique("bench")
            asyncio.run(ensure_table(table, endpoint))
            _write_inbox(root / "inbox", records, seed)
            daemon = run_daemon(
                _config(root, peer.url, moto, table, workers), None, CREDENTIALS, 900
            )
            received = int(peer.control("stats")["events"])
    seconds = max(daemon.seconds - empty, 1e-9)
    total = records // _FILES * _FILES
    return {"workers": workers, "records": total, "seconds": round(seconds, 3),
            "startup_s": round(empty, 3), "events_per_s": round(total / seconds),
            "received": received, "processes": daemon.processes,
            "rss_peak_mb": round(daemon.rss_peak_mb, 1),
            "rss_total_mb": round(daemon.rss_total_mb, 1),
            **daemon.batch_latency("splunk")}  # fmt: skip


def run(options: Options) -> BenchResult:
    cpu = options.cpu
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    records = options.records or 200_000
    with tempfile.TemporaryDirectory(prefix="wmf-moto-") as logs, running_moto(Path(logs)) as moto:
        one = _measure(records, options.seed, 1, moto)
        two = _measure(records, options.seed, 2, moto)
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    ratio = two["events_per_s"] / max(one["events_per_s"], 1)
    failures = [
        f"workers={r['workers']}: HEC peer counted {r['received']} of {r['records']} events"
        for r in (one, two)
        if r["received"] < r["records"]
    ]
    if ratio < MIN_RATIO:
        failures.append(f"2 workers deliver {ratio:.2f}x one process, below {MIN_RATIO}x")
    report = {"bench": NAME, "one": one, "two": two, "ratio": round(ratio, 2),
              "thresholds": {"min_ratio": MIN_RATIO}}  # fmt: skip
    rows = [f"{'case':34s} {'events':>10s} {'events/s':>10s} {'ratio':>8s} {'RSS MB':>8s} "
            f"{'RSS sum':>8s} {'batch p50':>10s} {'batch p99':>10s}"]  # fmt: skip
    summary: list[SummaryRow] = []
    for key, label, result in (
        ("workers_1", "files -> HEC, 1 process", one),
        ("workers_2", "files -> HEC, workers: 2", two),
    ):
        share = result["events_per_s"] / max(one["events_per_s"], 1)
        p50, p99 = ms(result["batch_p50_s"]), ms(result["batch_p99_s"])
        rows.append(f"{label:34s} {result['records']:>10,} {result['events_per_s']:>10,} "
                    f"{share:>7.2f}x {result['rss_peak_mb']:>8} {result['rss_total_mb']:>8} "
                    f"{p50:>10s} {p99:>10s}")  # fmt: skip
        summary.append(summary_row(key, f"{label} (DynamoDB, unpinned)", result))
    return BenchResult(NAME, "\n".join(rows), report, failures, summary)
