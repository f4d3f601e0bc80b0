"""Running the real daemon for the end-to-end benchmarks: pinned, timed, RSS sampled,
and its batch latency read from the `sink_summary` lines it logs when a sink stops."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tests.peers.fixtures import HEC_TOKEN


def hec_sink(url: str) -> dict[str, Any]:
    """The sink every end-to-end benchmark sends to: OCSF, gzip, indexer acks."""
    return {
        "id": "splunk",
        "type": "splunk_hec",
        "url": url,
        "token": HEC_TOKEN,
        "schema": "ocsf",
        "indexer_ack": True,
        "ack_poll_interval": "100ms",
        "gzip_level": 1,
        "max_in_flight": 4,
        "batch": {"max_events": 500, "max_bytes": 1_000_000, "max_wait": "200ms"},
    }


@dataclass(slots=True)
class DaemonRun:
    """One `run --drain`: wall time, memory, and each sink's batch latency.

    `rss_peak_mb` is the largest peak of any one process (the daemon, or with
    `workers` > 1 the supervisor and each worker); `rss_total_mb` the sum of the
    processes' peaks (equal for one process). `sink_summaries` holds every
    `sink_summary` log line, one per sink and worker.
    """

    seconds: float
    rss_peak_mb: float
    rss_total_mb: float
    processes: int
    sink_summaries: list[dict[str, Any]] = field(default_factory=list)

    def batch_latency(self, sink: str | None = None) -> dict[str, Any]:
        """Batches and p50 / p99 / max batch latency (s) of `sink` (default: every sink).

        With several summaries (workers, sinks), batches add up and each percentile is
        the worst summary's: percentiles do not merge, so this errs on the slow side.
        """
        found = [
            s
            for s in self.sink_summaries
            if (sink is None or s.get("sink") == sink) and s.get("batches")
        ]
        if not found:
            return {"batches": 0, "batch_p50_s": None, "batch_p99_s": None, "batch_max_s": None}
        return {
            "batches": sum(int(s["batches"]) for s in found),
            **{
                key: max(float(s[key]) for s in found)
                for key in ("batch_p50_s", "batch_p99_s", "batch_max_s")
            },
        }


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the peak RSS of the process since its exec (fork-time pages excluded)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (Linux /proc; none where it is not available)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                found.extend(int(child) for child in f.read().split())
        except OSError:
            continue
    return found


def _tree(pid: int) -> list[int]:
    pids, pending = [], [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        pending.extend(_children(current))
    return pids


def other_cpu(cpu: int | None) -> int | None:
    """A CPU other than the daemon's, for the peers, so they do not compete with it."""
    if cpu is None or not hasattr(os, "sched_getaffinity"):
        return None
    others = sorted(set(range(os.cpu_count() or 1)) - {cpu})
    return others[0] if others else None


def sink_summaries(stderr: bytes) -> list[dict[str, Any]]:
    """The `sink_summary` records among the daemon's JSON log lines."""
    found: list[dict[str, Any]] = []
    for line in stderr.splitlines():
        if b'"sink_summary"' not in line:
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("event") == "sink_summary":
            found.append(record)
    return found


def run_daemon(
    config: Path, cpu: int | None, env: dict[str, str] | None = None, timeout: float = 1800.0
) -> DaemonRun:
    """One `run --drain`, pinned to `cpu` (None: not pinned), at log level info.

    The peak RSS is sampled from /proc while it runs, for the daemon and any processes
    it starts (workers): the rusage of a forked child would count the benchmark's own
    memory, shared with the child until its exec. stderr goes to a file, not a pipe,
    so that a chatty daemon never blocks on a full pipe.
    """
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "forwarder", "run", "--config", str(config), "--drain",
             "--log-format", "json", "--log-level", "info"],
            stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, **(env or {})},
        )  # fmt: skip
        if cpu is not None:
            os.sched_setaffinity(process.pid, {cpu})
        peaks: dict[int, float] = {}
        deadline = start + timeout
        while process.poll() is None:
            for pid in _tree(process.pid):
                peak = peak_rss_mb(pid)
                if peak is not None:
                    peaks[pid] = max(peaks.get(pid, 0.0), peak)
            if time.perf_counter() > deadline:
                for pid in reversed(_tree(process.pid)):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                process.wait()
                raise RuntimeError(f"daemon still running after {timeout:.0f} s: killed")
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        stderr.seek(0)
        logged = stderr.read()
    if process.returncode != 0:
        raise RuntimeError(f"daemon exited {process.returncode}: {logged.decode()[-2000:]}")
    return DaemonRun(
        seconds=elapsed,
        rss_peak_mb=max(peaks.values(), default=0.0),
        rss_total_mb=sum(peaks.values()),
        processes=len(peaks),
        sink_summaries=sink_summaries(logged),
    )
