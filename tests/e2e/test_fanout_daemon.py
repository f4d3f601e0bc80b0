"""One inbox -> Splunk HEC (indexer acks) + Elasticsearch + rsyslog over TLS + a file.

The real CLI as a subprocess against the test peers and a real rsyslogd. A sink that
is down must not cost the others any event, and must keep the source from committing.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.conftest import variants
from tests.e2e.helpers import Daemon, expected_ids, ocsf_ids, wait_for
from tests.e2e.test_files_daemon import write_inbox
from tests.peers.fixtures import ES_API_KEY, HEC_TOKEN, PeerProcess
from tests.peers.rsyslog import RsyslogPeer, rsyslog_peer

__all__ = ["rsyslog_peer"]  # the fixture, imported for pytest
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

FAST = {"initial_backoff": "20ms", "max_backoff": "200ms"}


def fanout_config(root: Path, hec: PeerProcess, es: PeerProcess, syslog: RsyslogPeer) -> Path:
    batch = {"max_events": 100, "max_wait": "50ms"}
    config = {
        "state": {"path": str(root / "state" / "forwarder.db")},
        "sources": [
            {"id": "inbox", "type": "files", "path": str(root / "inbox"), "poll_interval": "100ms"}
        ],
        "sinks": [
            {
                "id": "splunk",
                "type": "splunk_hec",
                "url": hec.url,
                "token": HEC_TOKEN,
                "index": "workmail",
                "indexer_ack": True,
                "ack_poll_interval": "100ms",
                "batch": batch,
                "retry": FAST,
            },
            {
                "id": "elastic",
                "type": "elasticsearch",
                "url": es.url,
                "api_key": ES_API_KEY,
                "schema": "ecs",
                "batch": batch,
                "retry": FAST,
            },
            {
                "id": "soc",
                "type": "syslog",
                "url": syslog.tls_url,
                "tls": {"ca_file": str(syslog.ca_file)},
                "batch": batch,
                "retry": FAST,
            },
            {
                "id": "archive",
                "type": "file",
                "path": str(root / "out" / "ocsf.ndjson"),
                "batch": batch,
            },
        ],
        "dead_letter": {"path": str(root / "out" / "dead-letter.ndjson")},
        "telemetry": {"listen": None},
        "shutdown_grace": "5s",
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def hec_ids(peer: PeerProcess) -> Counter[str]:
    return Counter(item["envelope"]["fields"]["event_id"] for item in peer.control("events"))


def es_ids(peer: PeerProcess) -> Counter[str]:
    streams: dict[str, list[dict[str, Any]]] = peer.control("events")
    return Counter(doc["_id"] for docs in streams.values() for doc in docs)


def syslog_ids(peer: RsyslogPeer) -> Counter[str]:
    return Counter(orjson.loads(r["sd"])["workmail@32473"]["event_id"] for r in peer.records())


def checkpoints(root: Path) -> dict[str, dict[str, Any]]:
    db = root / "state" / "forwarder.db"
    if not db.exists():
        return {}
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT key, value FROM kv WHERE key LIKE 'files/%'").fetchall()
    return {key.removeprefix("files/inbox/"): orjson.loads(value) for key, value in rows}


def all_committed(root: Path) -> bool:
    """Every inbox file committed to its end (gzip files: marked finished)."""
    saved = checkpoints(root)
    for path in (root / "inbox").iterdir():
        point = saved.get(str(path))
        if point is None:
            return False
        done = (
            point["finished"]
            if path.name.endswith(".gz")
            else point["offset"] == path.stat().st_size
        )
        if not done:
            return False
    return True


async def test_every_sink_gets_every_event(tmp_path: Path, hec_ack_peer: PeerProcess, es_peer: PeerProcess,
                                           rsyslog_peer: RsyslogPeer) -> None:  # fmt: skip
    records = variants(10)
    write_inbox(tmp_path / "inbox", records, per_file=150)
    config = fanout_config(tmp_path, hec_ack_peer, es_peer, rsyslog_peer)
    daemon = Daemon(config, "--drain", cwd=tmp_path)
    assert await asyncio.to_thread(daemon.wait, 120) == 0, daemon.output()
    want = Counter(expected_ids(records))
    assert hec_ids(hec_ack_peer) == want
    assert es_ids(es_peer) == want
    await rsyslog_peer.wait_records(len(records), timeout=10)
    assert syslog_ids(rsyslog_peer) == want
    assert Counter(ocsf_ids(tmp_path / "out" / "ocsf.ndjson")) == want


async def test_a_down_sink_loses_nothing_and_holds_the_commit(
    tmp_path: Path, hec_ack_peer: PeerProcess, es_peer: PeerProcess, rsyslog_peer: RsyslogPeer
) -> None:
    records = variants(4)
    write_inbox(tmp_path / "inbox", records, per_file=60)
    es_peer.control("faults", {"error_500": 1_000_000})  # Elasticsearch is down
    config = fanout_config(tmp_path, hec_ack_peer, es_peer, rsyslog_peer)
    want = Counter(expected_ids(records))
    daemon = Daemon(config, cwd=tmp_path)
    try:
        await asyncio.to_thread(
            wait_for, lambda: hec_ids(hec_ack_peer) == want, 60, "HEC to get everything"
        )
        await rsyslog_peer.wait_records(len(records), timeout=30)
        await asyncio.to_thread(
            wait_for,
            lambda: Counter(ocsf_ids(tmp_path / "out" / "ocsf.ndjson")) == want,
            30,
            "the file",
        )
        await asyncio.sleep(0.5)
        assert es_ids(es_peer) == Counter()
        assert all(
            point["offset"] == 0 for point in checkpoints(tmp_path).values()
        )  # nothing committed

        es_peer.control("reset")  # Elasticsearch is back
        await asyncio.to_thread(
            wait_for, lambda: es_ids(es_peer) == want, 60, "Elasticsearch to catch up"
        )
        await asyncio.to_thread(
            wait_for, lambda: all_committed(tmp_path), 30, "every file committed"
        )
        daemon.signal(signal.SIGTERM)
        assert await asyncio.to_thread(daemon.wait, 30) == 0, daemon.output()
    finally:
        daemon.stop()
    assert hec_ids(hec_ack_peer) == want  # nothing sent twice to the sinks that were up
    assert syslog_ids(rsyslog_peer) == want
