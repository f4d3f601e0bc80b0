"""Running the real daemon for the end-to-end benchmarks: pinned, timed, RSS sampled."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


def other_cpu(cpu: int | None) -> int | None:
    """A CPU other than the daemon's, for the peers, so they do not compete with it."""
    if cpu is None or not hasattr(os, "sched_getaffinity"):
        return None
    others = sorted(set(range(os.cpu_count() or 1)) - {cpu})
    return others[0] if others else None


def run_daemon(
    config: Path, cpu: int | None, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one `run --drain`, pinned to `cpu`.

    The peak is sampled from /proc while it runs: the rusage of a forked child would
    count the benchmark's own memory, shared with the child until its exec.
    """
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "forwarder", "run", "--config", str(config), "--drain",
         "--log-format", "json", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
    )  # fmt: skip
    if cpu is not None:
        os.sched_setaffinity(process.pid, {cpu})
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, peak_rss_mb(process.pid) or 0.0)
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        stderr = process.stderr.read().decode() if process.stderr else ""
        raise RuntimeError(f"daemon exited {process.returncode}: {stderr[-2000:]}")
    return elapsed, peak
