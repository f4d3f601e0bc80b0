"""CloudWatch Logs -> file end to end on moto_server: throughput against moto's ceiling,
and the latency of a tailing daemon.

One log group holds N events (the corpus's records as messages, timestamps in the
last hour, chronological, put in batches of at most 10,000 events and 1 MB). Three
figures come from one moto_server:

- moto's own FilterLogEvents rate: a plain boto3 client pages through the group
  (limit 10,000, interleaved, startTime 0). moto filters, copies and sorts the whole
  group for every page, so its rate falls as N grows; this is the ceiling.
- the daemon (`run --drain`, `start: beginning`) reading the same group into a file
  sink (OCSF, fsync): events/s (startup subtracted: an empty-group run is timed too),
  peak RSS, the ratio to the ceiling, and the p50 / p99 latency of the sink's batches
  (from the `sink_summary` the daemon logs; of the fastest pass). Both rates are the
  best of `--passes` (default 2).
- latency: a running daemon (`start: now`, `poll_interval: 1s`, the file sink's
  default batch, whose `max_wait` is 1 s) tails a second group; events are put one
  at a time, 100-200 ms apart, each with a unique request_id, and the output file is
  read every 10 ms: put -> line in the sink (fsynced: written is acknowledged).
  The daemon is stopped with SIGTERM and must exit 0.

The daemon and the boto3 reader run on the benchmark's CPU, moto_server on the other.
"""

from __future__ import annotations

import math
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import yaml

from bench.common import BenchResult, Options, ms, summary_row
from bench.corpus import EMAIL_EVENTS, generate, generate_with_kinds
from bench.daemon import other_cpu, run_daemon
from tests.peers.moto import CREDENTIALS, REGION, MotoServer, running_moto

NAME = "cloudwatch"
MIN_EVENTS_PER_S = 20_000
MAX_MEDIAN_LATENCY_S = 2.0
GROUP = "/aws/workmail/bench"
POLL_INTERVAL = "1s"
LATENCY_EVENTS = 50
_STREAMS = 4
_PUT_MAX_EVENTS = 10_000
_PUT_MAX_BYTES = 1_048_576
_PUT_EVENT_OVERHEAD = 26  # bytes CloudWatch counts per event on top of its message
_PAGE_LIMIT = 10_000
_FILE_POLL_S = 0.01
_LATENCY_TIMEOUT_S = 30.0


# -- moto ---------------------------------------------------------------------------------


def _create_group(logs: Any, group: str, streams: int) -> list[str]:
    logs.create_log_group(logGroupName=group)
    names = [f"workmail-{i}" for i in range(streams)]
    for name in names:
        logs.create_log_stream(logGroupName=group, logStreamName=name)
    return names


def _put_corpus(logs: Any, group: str, records: int, seed: int) -> int:
    """Put `records` corpus lines into `group`, spread over its streams: the events put."""
    streams = _create_group(logs, group, _STREAMS)
    lines = generate(records, seed=seed)
    # Chronological, inside the last hour (CloudWatch takes nothing older than 14 days).
    first = int(time.time() * 1000) - 3_600_000
    step = max(1, 3_000_000 // max(1, records))
    batch: list[dict[str, Any]] = []
    size = calls = put = 0

    def flush() -> None:
        nonlocal batch, size, calls, put
        response = logs.put_log_events(
            logGroupName=group, logStreamName=streams[calls % len(streams)], logEvents=batch
        )
        if response.get("rejectedLogEventsInfo"):
            raise RuntimeError(f"moto rejected events: {response['rejectedLogEventsInfo']}")
        put += len(batch)
        calls += 1
        batch, size = [], 0

    for index, line in enumerate(lines):
        cost = len(line) + _PUT_EVENT_OVERHEAD
        if batch and (len(batch) >= _PUT_MAX_EVENTS or size + cost > _PUT_MAX_BYTES):
            flush()
        batch.append({"timestamp": first + index * step, "message": line.decode()})
        size += cost
    if batch:
        flush()
    return put


def _raw_read(logs: Any, group: str) -> tuple[int, float, int]:
    """(events, seconds, pages) of one boto3 pass over `group` with FilterLogEvents."""
    request: dict[str, Any] = {
        "logGroupName": group,
        "startTime": 0,
        "limit": _PAGE_LIMIT,
        "interleaved": True,
    }
    events = pages = 0
    start = time.perf_counter()
    while True:
        response = logs.filter_log_events(**request)
        events += len(response.get("events", []))
        pages += 1
        token = response.get("nextToken")
        if not token:
            break
        request["nextToken"] = token
    return events, time.perf_counter() - start, pages


# -- the daemon ---------------------------------------------------------------------------


def _config(
    root: Path, endpoint: str, group: str, start: str, output: Path, name: str = "config"
) -> Path:
    config = {
        "state": {"path": str(root / f"{name}-state.db")},
        "sources": [
            {
                "id": "cw",
                "type": "cloudwatch",
                "region": REGION,
                "endpoint_url": endpoint,
                "log_groups": [group],
                "start": start,
                "poll_interval": POLL_INTERVAL,
                "page_limit": _PAGE_LIMIT,
                "max_requests_per_second": 1000,  # moto has no quota
            }
        ],
        "sinks": [
            {"id": "file", "type": "file", "path": str(output), "schema": "ocsf", "fsync": True}
        ],
        "dead_letter": {"path": str(root / f"{name}-dead-letter.ndjson")},
        "telemetry": {"listen": None},
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


class _Tail(threading.Thread):
    """Reads the sink's output every 10 ms; notes when each awaited marker first shows."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="bench-tail", daemon=True)
        self.path = path
        self.seen: dict[str, float] = {}
        self._awaited: set[str] = set()
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def expect(self, marker: str) -> None:
        with self._lock:
            self._awaited.add(marker)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def run(self) -> None:
        offset = 0
        rest = b""
        while not self._halt.is_set():
            try:
                with self.path.open("rb") as f:
                    f.seek(offset)
                    data = f.read()
            except FileNotFoundError:
                data = b""
            now = time.monotonic()
            if data:
                offset += len(data)
                *lines, rest = (rest + data).split(b"\n")
                with self._lock:
                    awaited = list(self._awaited)
                for line in lines:
                    for marker in awaited:
                        if marker not in self.seen and marker.encode() in line:
                            self.seen[marker] = now
                with self._lock:
                    self._awaited.difference_update(self.seen)
            self._halt.wait(_FILE_POLL_S)


def _start_daemon(config: Path, cpu: int | None, stderr: Path) -> subprocess.Popen[bytes]:
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "forwarder", "run", "--config", str(config),
             "--log-format", "json", "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, **CREDENTIALS},
        )  # fmt: skip
    if cpu is not None:
        os.sched_setaffinity(process.pid, {cpu})
    return process


def _stop_daemon(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then wait; SIGKILL (and -9) if it does not exit within 30 s."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
    return process.returncode


def _latency_records(count: int, seed: int) -> list[dict[str, Any]]:
    """`count` corpus records that carry a request_id (every kind but email events)."""
    out: list[dict[str, Any]] = []
    for kind, line in generate_with_kinds(count * 3, seed=seed + 7):
        if kind != EMAIL_EVENTS:
            out.append(orjson.loads(line))
            if len(out) == count:
                return out
    raise RuntimeError("the corpus gave too few records with a request_id")


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _latency(server: MotoServer, root: Path, cpu: int | None, seed: int) -> dict[str, Any]:
    logs = server.client("logs")
    group = f"{GROUP}-tail-{MotoServer.unique('l')}"
    stream = _create_group(logs, group, 1)[0]
    output = root / "latency.ndjson"
    config = _config(root, server.endpoint_url, group, "now", output, name="latency")
    rng = random.Random(seed)
    records = _latency_records(LATENCY_EVENTS + 1, seed)
    run_id = uuid.uuid4().hex[:12]

    def put(record: dict[str, Any]) -> float:
        started = time.monotonic()
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[
                {"timestamp": int(time.time() * 1000), "message": orjson.dumps(record).decode()}
            ],
        )
        return started

    tail = _Tail(output)
    tail.start()
    process = _start_daemon(config, cpu, root / "latency-daemon.log")
    latencies: list[float] = []
    exit_code: int | None = None
    try:
        # `start: now` is fixed when the source starts: warm up until an event shows.
        warm = records[0]
        deadline = time.monotonic() + _LATENCY_TIMEOUT_S
        attempt = 0
        while True:
            marker = f"wmf-warmup-{run_id}-{attempt}"
            tail.expect(marker)
            put({**warm, "request_id": marker})
            shown = time.monotonic() + 2.5
            while marker not in tail.seen and time.monotonic() < shown:
                if process.poll() is not None:
                    raise RuntimeError(f"daemon exited {process.returncode} while warming up")
                time.sleep(_FILE_POLL_S)
            if marker in tail.seen:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the tailing daemon delivered no warm-up event in 30 s")
            attempt += 1
        time.sleep(1.5)  # let the warm-up page settle; start on a fresh poll cycle phase
        put_at: dict[str, float] = {}
        for index, record in enumerate(records[1:]):
            marker = f"wmf-latency-{run_id}-{index:03d}"
            tail.expect(marker)
            put_at[marker] = put({**record, "request_id": marker})
            time.sleep(rng.uniform(0.1, 0.2))
        deadline = time.monotonic() + _LATENCY_TIMEOUT_S
        while time.monotonic() < deadline and any(m not in tail.seen for m in put_at):
            time.sleep(0.05)
        latencies = [tail.seen[m] - t for m, t in put_at.items() if m in tail.seen]
    finally:
        exit_code = _stop_daemon(process)
        tail.stop()
    stderr_tail = (root / "latency-daemon.log").read_text(errors="replace")[-2000:]
    result: dict[str, Any] = {
        "events": LATENCY_EVENTS,
        "seen": len(latencies),
        "poll_interval": POLL_INTERVAL,
        "sink_batch_max_wait_s": 1.0,
        "exit_code": exit_code,
    }
    if latencies:
        result.update(
            median_s=round(statistics.median(latencies), 3),
            p99_s=round(_nearest_rank(latencies, 0.99), 3),
            min_s=round(min(latencies), 3),
            max_s=round(max(latencies), 3),
        )
    if exit_code != 0:
        result["stderr_tail"] = stderr_tail
    return result


# -- the benchmark ------------------------------------------------------------------------


def run(options: Options) -> BenchResult:
    cpu = options.cpu
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    records = options.records or 100_000
    passes = options.passes or 2
    with tempfile.TemporaryDirectory(prefix="wmf-bench-cw-") as tmp:
        root = Path(tmp)
        with running_moto(root) as server:
            other = other_cpu(cpu)
            if other is not None:
                os.sched_setaffinity(server.proc.pid, {other})
            logs = server.client("logs")
            endpoint = server.endpoint_url

            empty_group = f"{GROUP}-empty"
            _create_group(logs, empty_group, 1)
            empty = run_daemon(
                _config(root, endpoint, empty_group, "beginning", root / "empty.ndjson", "empty"),
                cpu,
                CREDENTIALS,
            ).seconds

            put = _put_corpus(logs, GROUP, records, options.seed)

            # moto's own rate, read the way the daemon reads (client on the daemon's CPU).
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})
            raw_best = float("inf")
            raw_events = raw_pages = 0
            for _ in range(passes):
                raw_events, seconds, raw_pages = _raw_read(logs, GROUP)
                raw_best = min(raw_best, seconds)
            if hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))

            # The daemon, as many passes (each from scratch); the best is kept.
            output = root / "throughput.ndjson"
            config = _config(root, endpoint, GROUP, "beginning", output, "throughput")
            elapsed, rss, written, dead = float("inf"), 0.0, records, 0
            batches: dict[str, Any] = {}
            for _ in range(passes):
                for stale in (output, root / "throughput-state.db",
                              root / "throughput-dead-letter.ndjson"):  # fmt: skip
                    stale.unlink(missing_ok=True)
                daemon = run_daemon(config, cpu, CREDENTIALS)
                if daemon.seconds < elapsed:  # the batch latency of the pass kept
                    elapsed, batches = daemon.seconds, daemon.batch_latency("file")
                rss = max(rss, daemon.rss_peak_mb)
                written = min(written, _count_lines(output))
                dead = max(dead, _count_lines(root / "throughput-dead-letter.ndjson"))

            latency = _latency(server, root, cpu, options.seed)
    seconds = max(elapsed - empty, 1e-9)
    raw_rate = round(raw_events / raw_best)
    rate = round(records / seconds)
    moto_result = {
        "events": raw_events,
        "pages": raw_pages,
        "seconds": round(raw_best, 3),
        "events_per_s": raw_rate,
        "passes": passes,
    }
    forwarder_result = {
        "records": records,
        "put": put,
        "seconds": round(seconds, 3),
        "startup_s": round(empty, 3),
        "events_per_s": rate,
        "rss_peak_mb": round(rss, 1),
        "written": written,
        "dead_lettered": dead,
        "passes": passes,
        "ratio_to_moto": round(rate / raw_rate, 2) if raw_rate else None,
        **batches,
    }
    failures = []
    if raw_events != put:
        failures.append(f"boto3 read {raw_events} of the {put} events put")
    if written < records:
        failures.append(f"the file sink holds {written} of {records} events")
    if rate < MIN_EVENTS_PER_S:
        failures.append(
            f"CloudWatch -> file at {rate:,} events/s, below {MIN_EVENTS_PER_S:,}"
            f" (moto's own FilterLogEvents rate: {raw_rate:,} events/s)"
        )
    if latency["seen"] < LATENCY_EVENTS:
        failures.append(f"latency: {latency['seen']} of {LATENCY_EVENTS} events reached the sink")
    median = latency.get("median_s")
    if median is not None and median >= MAX_MEDIAN_LATENCY_S:
        failures.append(f"latency: median {median} s, not below {MAX_MEDIAN_LATENCY_S} s")
    if latency["exit_code"] != 0:
        failures.append(f"latency: the daemon exited {latency['exit_code']} on SIGTERM")
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    ratio = forwarder_result["ratio_to_moto"]
    p50, p99 = ms(forwarder_result.get("batch_p50_s")), ms(forwarder_result.get("batch_p99_s"))
    rows = [
        f"{'case':40s} {'events':>10s} {'events/s':>10s} {'RSS MB':>8s} {'vs moto':>8s}"
        f" {'batch p50':>10s} {'batch p99':>10s}",
        f"{'moto FilterLogEvents (boto3, limit 10k)':40s} {raw_events:>10,} {raw_rate:>10,}"
        f" {'-':>8s} {1.0:>8.2f} {'-':>10s} {'-':>10s}",
        f"{'CloudWatch -> file (OCSF, fsync)':40s} {records:>10,} {rate:>10,} {rss:>8.1f}"
        f" {ratio if ratio is not None else 0.0:>8.2f} {p50:>10s} {p99:>10s}",
    ]
    if median is not None:
        rows.append(
            f"latency, poll {POLL_INTERVAL}, {latency['seen']} events: median {median:.3f} s,"
            f" p99 {latency['p99_s']:.3f} s, max {latency['max_s']:.3f} s;"
            f" SIGTERM exit {latency['exit_code']}"
        )
    thresholds = {
        "min_events_per_s": MIN_EVENTS_PER_S,
        "max_median_latency_s": MAX_MEDIAN_LATENCY_S,
    }
    report = {
        "bench": NAME,
        "moto": moto_result,
        "forwarder": forwarder_result,
        "latency": latency,
        "thresholds": thresholds,
    }
    row = summary_row(
        "cloudwatch_file", f"CloudWatch (moto) -> file, {records:,} events", forwarder_result
    )
    return BenchResult(NAME, "\n".join(rows), report, failures, [row])
