"""The real CLI as a Firehose HTTP endpoint: POST, 200, the events are in the sink files."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import orjson
import pytest
import yaml

from tests.conftest import free_port, sample_records
from tests.e2e.helpers import Daemon, count_lines, expected_ids, ocsf_ids, read_ndjson, wait_for
from tests.sources.firehose.client import FirehoseClient, check_contract, cloudwatch_payload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

KEY = "e2e-firehose-key"


def config(root: Path, port: int) -> Path:
    batch = {"max_events": 200, "max_wait": "50ms"}
    document = {
        "state": {"backend": "sqlite", "path": str(root / "state" / "forwarder.db")},
        "sources": [{"id": "firehose", "type": "firehose_http", "listen": f"127.0.0.1:{port}",
                     "access_key": "${FIREHOSE_ACCESS_KEY}"}],
        "sinks": [{"id": name, "type": "file", "path": str(root / "out" / f"{name}.ndjson"),
                   "schema": name, "batch": batch} for name in ("ocsf", "ecs")],
        "dead_letter": {"path": str(root / "out" / "dead-letter.ndjson")},
        "telemetry": {"listen": None},
        "shutdown_grace": "10s",
    }  # fmt: skip
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_daemon_answers_200_once_the_events_are_in_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIREHOSE_ACCESS_KEY", KEY)
    records = list(sample_records())
    raws = [orjson.dumps(r) for r in records]
    port = free_port()
    daemon = Daemon(config(tmp_path, port), cwd=tmp_path)
    out = tmp_path / "out"
    try:
        wait_for(lambda: accepting(port) or daemon.proc.poll() is not None, 30, "the listener")
        assert daemon.proc.poll() is None, daemon.output()

        async def send() -> None:
            async with FirehoseClient(f"http://127.0.0.1:{port}/", KEY, gzip_body=True) as client:
                half = len(raws) // 2
                request_id = str(uuid.uuid4())
                reply = await client.deliver(raws[:half], request_id)
                check_contract(reply, request_id)
                assert reply.status == 200, reply.body
                # The 200 is the commit: the files hold the events when it arrives.
                assert count_lines(out / "ocsf.ndjson") == half
                assert count_lines(out / "ecs.ndjson") == half
                payload = cloudwatch_payload([r.decode() for r in raws[half:]])
                request_id = str(uuid.uuid4())
                reply = await client.deliver([payload], request_id)
                check_contract(reply, request_id)
                assert reply.status == 200, reply.body
                again = await client.deliver([payload], request_id)  # a retry: not twice
                assert again.status == 200
            async with FirehoseClient(f"http://127.0.0.1:{port}/", "wrong") as intruder:
                denied = await intruder.deliver(raws[:1])
                assert denied.status == 403

        asyncio.run(send())
        assert sorted(ocsf_ids(out / "ocsf.ndjson")) == sorted(expected_ids(records))
        assert len(read_ndjson(out / "ecs.ndjson")) == len(records)
        daemon.signal()
        assert daemon.wait(30) == 0, daemon.output()
    finally:
        daemon.stop()
    assert not (out / "dead-letter.ndjson").exists() or count_lines(out / "dead-letter.ndjson") == 0
    wait_for(lambda: not accepting(port), 5, "the port to close")
