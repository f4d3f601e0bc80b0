"""Chaos 5: the SQLite state file's filesystem fills up while the daemon runs.

A real filesystem runs out of space: a 1 MiB tmpfs mounted for the test (as root;
the test fails, never skips, where mounting is not allowed) holds only the state
file, and a filler file takes the rest. The daemon must keep delivering, stop
committing and say so loudly (error log lines, the checkpoint failure counter), keep
the SQLite file intact, commit once space returns, and lose nothing across a stop
made while the disk is still full.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml

from tests.chaos.ledger import Ledger
from tests.conftest import free_port, variants
from tests.e2e.helpers import Daemon, count_lines, ocsf_ids, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "statefs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, f"the disk-full scenario needs tmpfs (run as root): {done.stderr}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path) -> Path:
    """Take every free byte of the filesystem; returns the filler to delete later."""
    filler = mount / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        with contextlib.suppress(OSError):  # ENOSPC: full
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    return filler


def write_records(inbox: Path, name: str, records: list[dict[str, object]]) -> None:
    tmp = inbox / f".{name}.tmp"
    tmp.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    tmp.rename(inbox / name)


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_state_disk_full_keeps_delivering_stops_committing_then_recovers(
    tmp_path: Path, small_fs: Path
) -> None:
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "state": {"backend": "sqlite", "path": str(small_fs / "forwarder.db")},
        "sources": [{"id": "inbox", "type": "files", "path": str(inbox),
                     "poll_interval": "100ms", "partial_line_grace": "200ms"}],
        "sinks": [{"id": "ocsf", "type": "file", "path": str(out / "ocsf.ndjson"),
                   "batch": {"max_events": 200, "max_wait": "50ms"}}],
        "dead_letter": {"path": str(out / "dead-letter.ndjson")},
        "telemetry": {"listen": f"127.0.0.1:{port}"},
        "shutdown_grace": "10s",
    }))  # fmt: skip
    records = variants(150, "full")  # 6,750 records in three files
    a, b, c = records[:2250], records[2250:4500], records[4500:]
    database = small_fs / "forwarder.db"

    daemon = Daemon(config, cwd=tmp_path)
    try:
        write_records(inbox, "a.jsonl", a)
        wait_for(lambda: count_lines(out / "ocsf.ndjson") >= len(a), 30, "file a")
        wait_for(lambda: metric(port, "wmf_checkpoint_commits") > 0, 10, "a checkpoint")

        filler = fill(small_fs)
        write_records(inbox, "b.jsonl", b)
        # Delivery goes on while the state store cannot record it.
        wait_for(lambda: count_lines(out / "ocsf.ndjson") >= len(a) + len(b), 30, "file b")
        wait_for(lambda: metric(port, "wmf_checkpoint_commit_failures") > 0, 20,
                 "checkpoint failures to be counted")  # fmt: skip
        assert '"level":"error"' in daemon.output().replace(" ", "")
        assert "checkpoint_commit_failed" in daemon.output()

        filler.unlink()  # space returns: the commits go through
        before = metric(port, "wmf_checkpoint_commits")
        wait_for(lambda: metric(port, "wmf_checkpoint_commits") > before, 20, "commits again")

        fill(small_fs)
        write_records(inbox, "c.jsonl", c)
        wait_for(lambda: count_lines(out / "ocsf.ndjson") >= len(records), 30, "file c")
        daemon.signal(signal.SIGTERM)  # stop while the disk is still full
        code = daemon.wait(30)
    finally:
        daemon.stop()
    print(f"exit code with the state disk full at stop: {code}")
    assert code in (0, 1)  # a clean stop; the uncommitted tail is read again next time

    (small_fs / "filler").unlink()
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    again = Daemon(config, "--drain", cwd=tmp_path)
    assert again.wait(60) == 0, again.output()
    settled = Ledger("state disk full", records).settle(ocsf_ids(out / "ocsf.ndjson"))
    assert settled.lost == 0
    # Only file c, delivered while nothing could be committed, may come twice.
    assert settled.duplicates <= len(c)
    assert count_lines(out / "dead-letter.ndjson") == 0
