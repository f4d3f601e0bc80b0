"""Drive the real CLI as a subprocess; every process started here is stopped by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import yaml

from forwarder import mapping


def write_config(path: Path, root: Path, *, port: int | None, extra_sink: dict[str, object] | None = None,
                 **source_options: object) -> Path:  # fmt: skip
    sinks: list[dict[str, object]] = [
        {"id": "ocsf", "type": "file", "path": str(root / "out" / "ocsf.ndjson"), "schema": "ocsf",
         "batch": {"max_events": 200, "max_wait": "50ms"}},
        {"id": "ecs", "type": "file", "path": str(root / "out" / "ecs.ndjson"), "schema": "ecs",
         "batch": {"max_events": 200, "max_wait": "50ms"}},
    ]  # fmt: skip
    if extra_sink:
        sinks.append(extra_sink)
    config = {
        "state": {"backend": "sqlite", "path": str(root / "state" / "forwarder.db")},
        "sources": [
            {
                "id": "inbox",
                "type": "files",
                "path": str(root / "inbox"),
                "poll_interval": "100ms",
                "partial_line_grace": "300ms",
                **source_options,
            }
        ],
        "sinks": sinks,
        "dead_letter": {"path": str(root / "out" / "dead-letter.ndjson")},
        "telemetry": {"listen": f"127.0.0.1:{port}" if port else None},
        "shutdown_grace": "20s",
    }
    path.write_text(yaml.safe_dump(config))
    return path


class Daemon:
    def __init__(self, config: Path, *args: str, cwd: Path) -> None:
        self.log = (cwd / f"daemon-{time.monotonic_ns()}.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "forwarder", "run", "--config", str(config), "--log-format", "json", *args],
            cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip

    def signal(self, signum: int = signal.SIGTERM) -> None:
        os.kill(self.proc.pid, signum)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.log.close()

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def read_ndjson(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def expected_ids(records: list[dict[str, object]]) -> list[str]:
    ids = []
    for record in records:
        log_type = mapping.detect_log_type(record)
        assert log_type is not None, record
        ids.append(mapping.event_id(record, log_type))
    return ids


def ocsf_ids(path: Path) -> list[str]:
    return [doc["metadata"]["uid"] for doc in read_ndjson(path)]  # type: ignore[index]


def ecs_ids(path: Path) -> list[str]:
    return [doc["event"]["id"] for doc in read_ndjson(path)]  # type: ignore[index]
