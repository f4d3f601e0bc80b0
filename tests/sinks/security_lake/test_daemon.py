"""The daemon with a Security Lake sink, as a subprocess: SIGKILL while objects are being
written loses nothing, and an S3 outage stops the reading instead of buffering."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from forwarder import mapping
from tests.conftest import ndjson, variants
from tests.e2e.helpers import Daemon, count_lines, wait_for
from tests.peers.fixtures import PeerProcess
from tests.peers.moto import REGION, MotoServer
from tests.sinks.security_lake.conftest import ACCOUNT, at, list_objects
from tests.sinks.security_lake.lake import read_rows

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]
START_MS = 1_718_150_400_000  # 2024-06-12T00:00:00Z


def write_config(root: Path, peer: PeerProcess, bucket: str, *, file_sink: bool = False,
                 lake: dict[str, Any] | None = None) -> Path:  # fmt: skip
    sinks: list[dict[str, Any]] = [{
        "id": "lake", "type": "security_lake", "region": REGION, "account_id": ACCOUNT,
        "bucket": bucket, "endpoint_url": peer.url, "spool_dir": str(root / "spool"),
        "batch": {"max_events": 400, "max_wait": "300ms"},
        "queue": {"max_events": 1200, "max_bytes": "64MiB"},
        "retry": {"initial_backoff": "100ms", "max_backoff": "500ms"},
        **(lake or {}),
    }]  # fmt: skip
    if file_sink:
        sinks.append({"id": "file", "type": "file", "path": str(root / "out" / "ocsf.ndjson"),
                      "batch": {"max_events": 200, "max_wait": "50ms"}})  # fmt: skip
    config = {
        "state": {"backend": "sqlite", "path": str(root / "state" / "forwarder.db")},
        "sources": [
            {
                "id": "inbox",
                "type": "files",
                "path": str(root / "inbox"),
                "poll_interval": "100ms",
                "chunk_events": 200,
            }
        ],
        "sinks": sinks,
        "dead_letter": {"path": str(root / "out" / "dead-letter.ndjson")},
        "telemetry": {"listen": None},
        "shutdown_grace": "20s",
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def seed(root: Path, copies: int, tag: str) -> list[str]:
    """Records with stated times (a replay gives them the same time), and their ids."""
    records = [at(r, START_MS + 1000 * n) for n, r in enumerate(variants(copies, tag=tag))]
    (root / "inbox").mkdir(parents=True)
    (root / "inbox" / "workmail.jsonl").write_bytes(ndjson(records))
    ids = []
    for record in records:
        log_type = mapping.detect_log_type(record)
        assert log_type is not None
        ids.append(mapping.event_id(record, log_type))
    return ids


def lake_ids(moto: MotoServer, bucket: str) -> Counter[str]:
    found: Counter[str] = Counter()
    for data in list_objects(moto, bucket).values():
        for row in read_rows(data)[1]:
            found[row["metadata"]["uid"]] += 1
    return found


def test_sigkill_while_objects_are_written_loses_nothing(
    tmp_path: Path, moto: MotoServer, lake_peer: PeerProcess, lake_bucket: str
) -> None:
    ids = seed(tmp_path, 30, "kill")  # 1,350 records
    config = write_config(tmp_path, lake_peer, lake_bucket)
    lake_peer.control("faults", {"s3_delay": 0.15})  # uploads in flight when the kill lands
    daemon = Daemon(config, cwd=tmp_path)
    try:
        wait_for(lambda: len(list_objects(moto, lake_bucket)) >= 3, 30, "some objects stored")
        daemon.signal(signal.SIGKILL)
        daemon.proc.wait(10)
    finally:
        daemon.stop()
    stored_before = sum(lake_ids(moto, lake_bucket).values())
    assert 0 < stored_before < len(ids), "the kill must land midway"
    assert list((tmp_path / "spool").iterdir()), "the killed process left its spool behind"

    lake_peer.control("faults", {"s3_delay": 0})
    rerun = Daemon(config, "--drain", cwd=tmp_path)
    assert rerun.wait(60) == 0, rerun.output()
    found = lake_ids(moto, lake_bucket)
    assert set(found) == set(ids)  # lost: none
    duplicates = sum(found.values()) - len(ids)
    # At most what was stored but not committed at the kill: the sink's queue bound.
    assert duplicates <= 1200, duplicates
    assert list((tmp_path / "spool").iterdir()) == []  # the dead process's spool is gone too
    print(f"sigkill: {len(ids)} records, stored before the kill {stored_before}, "
          f"duplicates {duplicates}")  # fmt: skip


def test_an_s3_outage_backs_up_the_source_and_nothing_is_lost(
    tmp_path: Path, moto: MotoServer, lake_peer: PeerProcess, lake_bucket: str
) -> None:
    ids = seed(tmp_path, 45, "outage")  # 2,025 records, more than the lake's queue holds
    config = write_config(tmp_path, lake_peer, lake_bucket, file_sink=True)
    lake_peer.control("faults", {"s3": "503"})
    daemon = Daemon(config, cwd=tmp_path)
    try:
        out = tmp_path / "out" / "ocsf.ndjson"
        wait_for(lambda: count_lines(out) > 0, 30, "the file sink to get the first events")
        wait_for(lambda: lake_peer.control("stats")["s3_failed"] >= 3, 30, "uploads refused")
        time.sleep(1.0)
        # The lake's full queue stops the reading: the other sink got no more than the
        # queue bound plus one chunk in flight, not the whole inbox.
        read = count_lines(out)
        assert read <= 1200 + 200, read
        assert list_objects(moto, lake_bucket) == {}
        time.sleep(0.5)
        assert count_lines(out) == read  # and it stays stopped
        lake_peer.control("faults", {"s3": None})
        wait_for(lambda: count_lines(out) == len(ids), 45, "every record after S3 came back")
        wait_for(lambda: set(lake_ids(moto, lake_bucket)) == set(ids), 45, "all in the lake")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.output()
    finally:
        daemon.stop()
