"""What every benchmark shares: CPU pinning, timing passes, and the result shape."""

from __future__ import annotations

import gc
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any


@dataclass(frozen=True, slots=True)
class Options:
    """The command line as every benchmark sees it; None means the benchmark's default."""

    records: int | None = None
    passes: int | None = None
    seed: int = 1
    cpu: int | None = None


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """One line of the combined table `python -m bench` prints after the benchmarks.

    `key` names the case in the JSON summary; the row whose key is `FLOOR` is the
    baseline every other row's events/s is divided by. None: not measured.
    """

    key: str
    case: str
    events_per_s: float
    rss_mb: float | None = None
    batch_p50_s: float | None = None
    batch_p99_s: float | None = None


FLOOR = "floor"


def summary_row(key: str, case: str, result: dict[str, Any]) -> SummaryRow:
    """A row of the combined table from an end-to-end result: its `events_per_s`,
    `rss_peak_mb`, `batch_p50_s` and `batch_p99_s`."""
    return SummaryRow(key, case, result["events_per_s"], result.get("rss_peak_mb"),
                      result.get("batch_p50_s"), result.get("batch_p99_s"))  # fmt: skip


def ms(seconds: float | None) -> str:
    """A latency for a table: milliseconds, or '-' when not measured."""
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


@dataclass(slots=True)
class BenchResult:
    """One benchmark's outcome: `report` is JSON-ready; `failures` empty when it passed;
    `summary` its rows of the combined table."""

    name: str
    table: str
    report: dict[str, Any]
    failures: list[str] = field(default_factory=list)
    summary: list[SummaryRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def pin_to_one_cpu(cpu: int | None = None) -> int | None:
    """Pin this process to `cpu` (default: the last CPU it may run on); the CPU, or
    None where affinity cannot be set (macOS, restricted containers)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        allowed = os.sched_getaffinity(0)
        chosen = max(allowed) if cpu is None else cpu
        os.sched_setaffinity(0, {chosen})
    except (OSError, ValueError):
        return None
    return chosen


def best_of(
    passes: int, cases: dict[str, Callable[[], None]], between: Callable[[], None] | None = None
) -> dict[str, float]:
    """Best wall time in seconds of each case over `passes` rounds.

    The cases run interleaved (a, b, c, a, b, c...) so that drift of the machine
    (frequency, a noisy neighbour) falls on all of them alike and their ratios hold.
    The collector stays on, as in production, but starts each pass empty.
    """
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(passes):
        for name, case in cases.items():
            if between is not None:
                between()
            gc.collect()
            start = time.perf_counter()
            case()
            elapsed = time.perf_counter() - start
            best[name] = min(best[name], elapsed)
    return best


def environment(cpu: int | None) -> dict[str, Any]:
    versions: dict[str, str] = {}
    for package in ("orjson", "workmail-forwarder"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "?"
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "pinned_cpu": cpu,
        "versions": versions,
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"
