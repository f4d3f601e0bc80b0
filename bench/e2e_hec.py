"""files -> Splunk HEC end to end: the real daemon (`run --drain`) on one core.

OCSF, gzip on, indexer acknowledgement on, against the test HEC peer in its fast
mode (it inflates and counts; it runs on the other core so it does not compete).
Measures events/s (startup and shutdown subtracted: an empty-inbox run is timed
too), the daemon's peak RSS, the p50 / p99 latency of its HEC batches (send to
acknowledgement, from the `sink_summary` it logs), and, separately, the same with a
1,000,000-event backlog: memory must be bounded by the queues, not by the backlog.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bench.common import BenchResult, Options, SummaryRow, ms, summary_row
from bench.corpus import generate
from bench.daemon import hec_sink, other_cpu, run_daemon
from tests.peers.fixtures import HEC_TOKEN, PeerProcess

NAME = "hec"
MIN_EVENTS_PER_S = 60_000
MAX_RSS_MB = 250
BACKLOG = 1_000_000
_PER_FILE = 50_000


def _write_inbox(inbox: Path, records: int, seed: int) -> None:
    inbox.mkdir(parents=True, exist_ok=True)
    written = 0
    part = 0
    while written < records:
        n = min(_PER_FILE, records - written)
        lines = generate(n, seed=seed + part)
        (inbox / f"part-{part:04d}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        written += n
        part += 1


def _config(root: Path, hec_url: str) -> Path:
    config = {
        "state": {"path": str(root / "state.db")},
        "sources": [{"id": "inbox", "type": "files", "path": str(root / "inbox")}],
        "sinks": [hec_sink(hec_url)],
        "dead_letter": {"path": str(root / "dead-letter.ndjson")},
        "telemetry": {"listen": None},
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _measure(records: int, seed: int, cpu: int | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wmf-bench-") as tmp:
        root = Path(tmp)
        (root / "inbox").mkdir()
        with PeerProcess("hec", "--token", HEC_TOKEN, "--ack", "--fast") as peer:
            peer_cpu = other_cpu(cpu)
            if peer_cpu is not None and peer.pid is not None:
                os.sched_setaffinity(peer.pid, {peer_cpu})
            config = _config(root, peer.url)
            empty = run_daemon(config, cpu).seconds
            (root / "state.db").unlink(missing_ok=True)
            _write_inbox(root / "inbox", records, seed)
            daemon = run_daemon(config, cpu)
            received = int(peer.control("stats")["events"])
    seconds = max(daemon.seconds - empty, 1e-9)
    return {"records": records, "seconds": round(seconds, 3), "startup_s": round(empty, 3),
            "events_per_s": round(records / seconds), "rss_peak_mb": round(daemon.rss_peak_mb, 1),
            "received": received, **daemon.batch_latency("splunk")}  # fmt: skip


def run(options: Options) -> BenchResult:
    # The parent was pinned to one CPU by `python -m bench`; the daemon gets that CPU.
    cpu = options.cpu
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    records = options.records or 200_000
    speed = _measure(records, options.seed, cpu)
    backlog = _measure(BACKLOG, options.seed, cpu) if options.records is None else None
    failures = []
    for label, result in (("throughput", speed), ("backlog", backlog)):
        if result is None:
            continue
        if result["received"] < result["records"]:
            failures.append(
                f"{label}: HEC peer counted {result['received']} of {result['records']} events"
            )
        if result["rss_peak_mb"] > MAX_RSS_MB:
            failures.append(f"{label}: peak RSS {result['rss_peak_mb']} MB over {MAX_RSS_MB} MB")
    if speed["events_per_s"] < MIN_EVENTS_PER_S:
        failures.append(
            f"files -> HEC at {speed['events_per_s']:,} events/s, below {MIN_EVENTS_PER_S:,}"
        )
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    thresholds = {"min_events_per_s": MIN_EVENTS_PER_S, "max_rss_mb": MAX_RSS_MB}
    report = {"bench": NAME, "throughput": speed, "backlog": backlog, "thresholds": thresholds}
    rows = [f"{'case':34s} {'events':>10s} {'events/s':>10s} {'RSS MB':>8s} {'batch p50':>10s} "
            f"{'batch p99':>10s}"]  # fmt: skip
    summary: list[SummaryRow] = []
    for key, label, result in (
        ("files_hec", "files -> HEC (OCSF, gzip, acks)", speed),
        ("files_hec_backlog", f"backlog of {BACKLOG:,}", backlog),
    ):
        if result is not None:
            rate, rss = result["events_per_s"], result["rss_peak_mb"]
            p50, p99 = ms(result["batch_p50_s"]), ms(result["batch_p99_s"])
            rows.append(f"{label:34s} {result['records']:>10,} {rate:>10,} {rss:>8} "
                        f"{p50:>10s} {p99:>10s}")  # fmt: skip
            summary.append(summary_row(key, f"files -> HEC, {result['records']:,} events", result))
    return BenchResult(NAME, "\n".join(rows), report, failures, summary)
