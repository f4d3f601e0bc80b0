"""`workers: N`: N processes on one host, each a replica, to use every core.

The parent is a small supervisor: it starts N children running the same command
with WMF_WORKER_INDEX set, forwards SIGTERM/SIGINT to them, restarts a child that
crashes (with backoff) while it is not stopping, and exits with the worst exit code
once all of them ended. Each child is a full replica: sources split their lanes
through leases in the shared (DynamoDB) state store, SQS spreads messages by itself.

What cannot be shared between processes is made per worker: worker i > 0 serves
telemetry on the configured port + i and appends to `<name>.worker<i><suffix>` for
file sinks and a local dead-letter file (two processes appending to one file could
not roll back a failed write without cutting the other's lines).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import structlog

from forwarder.config import Config, FileSinkConfig

log = structlog.get_logger(__name__)

WORKER_ENV = "WMF_WORKER_INDEX"
_RESTART_MIN, _RESTART_MAX = 1.0, 30.0


def worker_index() -> int | None:
    """This process's worker index, or None in the supervisor / a single process."""
    value = os.environ.get(WORKER_ENV)
    return int(value) if value is not None and value.isdigit() else None


def per_worker_path(path: str, index: int) -> str:
    if index == 0:
        return path
    p = Path(path)
    suffixes = "".join(p.suffixes)
    stem = p.name[: len(p.name) - len(suffixes)] if suffixes else p.name
    return str(p.with_name(f"{stem}.worker{index}{suffixes}"))


def for_worker(config: Config, index: int) -> Config:
    """The configuration worker `index` runs with (see the module docstring)."""
    if index == 0:
        return config
    telemetry = config.telemetry
    if telemetry.listen is not None:
        host, _, port = telemetry.listen.rpartition(":")
        telemetry = telemetry.model_copy(update={"listen": f"{host}:{int(port) + index}"})
    sinks = [
        sink.model_copy(update={"path": Path(per_worker_path(str(sink.path), index))})
        if isinstance(sink, FileSinkConfig)
        else sink
        for sink in config.sinks
    ]
    dead_letter = config.dead_letter
    if not dead_letter.path.startswith("s3://"):
        dead_letter = dead_letter.model_copy(
            update={"path": per_worker_path(dead_letter.path, index)}
        )
    return config.model_copy(
        update={"telemetry": telemetry, "sinks": sinks, "dead_letter": dead_letter}
    )


def supervise(command: Sequence[str], workers: int, *, restart: bool = True) -> int:
    """Run `command` as `workers` children until they all end; 0 only if all ended 0.

    `restart`: start a crashed child again (a daemon); a drain is run once.
    """
    children: dict[int, subprocess.Popen[bytes]] = {}
    stopping = False
    restarts: dict[int, float] = {}

    def start(index: int) -> None:
        env = {**os.environ, WORKER_ENV: str(index)}
        children[index] = subprocess.Popen([sys.executable, *command], env=env)
        log.info("worker_started", worker=index, pid=children[index].pid)

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    codes: dict[int, int] = {}
    try:
        for index in range(workers):
            start(index)
        while len(codes) < workers:
            time.sleep(0.2)
            for index, child in list(children.items()):
                if index in codes or child.poll() is None:
                    continue
                code = child.returncode
                if stopping or code == 0 or not restart:
                    codes[index] = code
                    continue
                # Crashed while running: restart it, waiting longer after each crash.
                delay = min(_RESTART_MAX, max(_RESTART_MIN, restarts.get(index, 0) * 2))
                restarts[index] = delay
                log.error("worker_crashed", worker=index, code=code, restart_in=delay)
                deadline = time.monotonic() + delay
                while time.monotonic() < deadline and not stopping:
                    time.sleep(0.1)
                if stopping:
                    codes[index] = code
                else:
                    start(index)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for child in children.values():
            if child.poll() is None:
                child.terminate()
                child.wait()
    worst = max(codes.values(), key=lambda c: (c != 0, abs(c)))
    # A child killed by a signal reports -N; say 1 (runtime failure) for it.
    return worst if worst >= 0 else 1
