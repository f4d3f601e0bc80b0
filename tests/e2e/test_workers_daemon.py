"""`workers: 2` through the real CLI: two processes share the files through leases in
DynamoDB (moto_server), each writes its own output, together every event exactly once."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.conftest import variants
from tests.e2e.helpers import Daemon, count_lines, expected_ids, ocsf_ids, wait_for
from tests.peers import moto as moto_peer
from tests.peers.moto import REGION, MotoServer
from tests.state.conftest import drop_table, new_table

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

moto = moto_peer.moto


def write_inbox(root: Path, files: int, tag: str) -> list[dict[str, Any]]:
    inbox = root / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    records = variants(files * 20, tag)  # 900 records a file
    per_file = len(records) // files
    for i in range(files):
        chunk = records[i * per_file : (i + 1) * per_file]
        (inbox / f"part-{i:02d}.jsonl").write_bytes(
            b"".join(orjson.dumps(r) + b"\n" for r in chunk)
        )
    return records


def config(root: Path, server: MotoServer, table: str, port: int | None = None) -> Path:
    document = {
        "workers": 2,
        "state": {"backend": "dynamodb", "table": table, "region": REGION,
                  "endpoint_url": server.endpoint_url},
        "sources": [{"id": "inbox", "type": "files", "path": str(root / "inbox"),
                     "poll_interval": "200ms", "partial_line_grace": "300ms",
                     "lease_duration": "6s"}],
        "sinks": [{"id": "ocsf", "type": "file", "path": str(root / "out" / "ocsf.ndjson"),
                   "schema": "ocsf", "batch": {"max_events": 500, "max_wait": "50ms"}}],
        "dead_letter": {"path": str(root / "out" / "dead-letter.ndjson")},
        "telemetry": {"listen": f"127.0.0.1:{port}" if port else None},
        "shutdown_grace": "10s",
    }  # fmt: skip
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
async def table(moto: MotoServer) -> Any:
    name = await new_table(moto)
    yield name
    drop_table(moto, name)


def outputs(root: Path) -> list[Path]:
    return [root / "out" / "ocsf.ndjson", root / "out" / "ocsf.worker1.ndjson"]


def test_two_workers_drain_every_file_once_between_them(
    tmp_path: Path, moto: MotoServer, table: str
) -> None:
    records = write_inbox(tmp_path, 10, "w")
    daemon = Daemon(config(tmp_path, moto, table), "--drain", cwd=tmp_path)
    assert daemon.wait(90) == 0, daemon.output()
    per_worker = [ocsf_ids(path) for path in outputs(tmp_path)]
    assert all(per_worker), [len(ids) for ids in per_worker]  # both did a share
    assert Counter(per_worker[0] + per_worker[1]) == Counter(expected_ids(records))
    assert '"worker":1' in daemon.output().replace(" ", "")


def test_sigterm_stops_both_workers_cleanly_and_nothing_repeats(
    tmp_path: Path, moto: MotoServer, table: str
) -> None:
    records = write_inbox(tmp_path, 6, "s")
    path = config(tmp_path, moto, table)
    daemon = Daemon(path, cwd=tmp_path)
    try:
        wait_for(lambda: sum(count_lines(p) for p in outputs(tmp_path)) >= len(records), 60,
                 "every record")  # fmt: skip
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.output()
    finally:
        daemon.stop()
    # Started again: the checkpoints in DynamoDB say everything is done.
    again = Daemon(path, "--drain", cwd=tmp_path)
    assert again.wait(60) == 0, again.output()
    delivered = Counter(ocsf_ids(outputs(tmp_path)[0]) + ocsf_ids(outputs(tmp_path)[1]))
    assert delivered == Counter(expected_ids(records))
