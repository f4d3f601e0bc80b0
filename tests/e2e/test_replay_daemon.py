"""The real CLI: records are dead-lettered (a sink refused them, or they could not be
mapped) to a file or to S3, and `replay-dead-letter` sends them through again."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.conftest import sample_records
from tests.e2e.helpers import Daemon, expected_ids, ocsf_ids, read_ndjson
from tests.peers import moto as moto_peer
from tests.peers.fixtures import ES_API_KEY, PeerProcess
from tests.peers.moto import MotoServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

moto = moto_peer.moto  # the session-scoped moto_server fixture

RECORDS = list(sample_records())
GARBAGE = b'{"no": "log type"}'
FAST = {"initial_backoff": "20ms", "max_backoff": "200ms"}
BATCH = {"max_events": 100, "max_wait": "50ms"}


def unique(text: object) -> bool:
    """True when exactly one sample record mentions `text`."""
    return isinstance(text, str) and sum(text in orjson.dumps(r).decode() for r in RECORDS) == 1


def write_inbox(root: Path) -> None:
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    lines = [orjson.dumps(r) for r in RECORDS]
    (inbox / "audit.jsonl").write_bytes(b"\n".join([*lines[:3], GARBAGE, *lines[3:]]) + b"\n")


def write_config(
    path: Path, root: Path, sinks: list[dict[str, Any]], dead_letter: dict[str, Any]
) -> Path:
    config = {
        "state": {"path": str(root / "state" / "forwarder.db")},
        "sources": [{"id": "inbox", "type": "files", "path": str(root / "inbox")}],
        "sinks": sinks,
        "dead_letter": dead_letter,
        "telemetry": {"listen": None},
        "shutdown_grace": "10s",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def file_sink(path: Path) -> dict[str, Any]:
    return {"id": "archive", "type": "file", "path": str(path), "schema": "ocsf", "batch": BATCH}


def replay(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forwarder", "replay-dead-letter", *args, "--log-format", "json"],
        capture_output=True, text=True, cwd=cwd, timeout=120, env={**os.environ},
    )  # fmt: skip


def test_sink_rejections_are_replayed_once_the_cause_is_fixed(
    tmp_path: Path, es_peer: PeerProcess
) -> None:
    write_inbox(tmp_path)
    refused = next(r for r in RECORDS if unique(r.get("request_id")))
    es_peer.control("faults", {"item_400_match": refused["request_id"]})  # a mapping conflict
    elastic = {"id": "elastic", "type": "elasticsearch", "url": es_peer.url, "api_key": ES_API_KEY,
               "schema": "ecs", "batch": BATCH, "retry": FAST}  # fmt: skip
    dead_letter = tmp_path / "out" / "dead-letter.ndjson"
    config = write_config(tmp_path / "run.yaml", tmp_path, [elastic], {"path": str(dead_letter)})
    daemon = Daemon(config, "--drain", cwd=tmp_path)
    assert daemon.wait(90) == 0, daemon.output()
    entries = read_ndjson(dead_letter)
    assert Counter(e["reason"] for e in entries) == {"sink_rejected": 1, "unknown_log_type": 1}

    # The operator fixed the cause; replay into the archive, failures to a second dead letter.
    replayed = tmp_path / "out" / "replayed.ndjson"
    again = tmp_path / "out" / "dead-letter-again.ndjson"
    replay_config = write_config(tmp_path / "replay.yaml", tmp_path, [file_sink(replayed)],
                                 {"path": str(again)})  # fmt: skip

    dry = replay(str(dead_letter), "--config", str(replay_config), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "2 entries; would replay 2" in dry.stdout
    assert "would fail mapping again 1 (unknown_log_type=1)" in dry.stdout
    assert not replayed.exists() and not again.exists()

    only = replay(str(dead_letter), "--config", str(replay_config), "--reason", "sink_rejected",
                  cwd=tmp_path)  # fmt: skip
    assert only.returncode == 0, only.stderr
    assert "delivered 1, rejected again 0, undelivered 0; skipped 1 (--reason)" in only.stdout
    assert ocsf_ids(replayed) == expected_ids([refused])
    [doc] = read_ndjson(replayed)
    assert orjson.loads(doc["raw_data"]) == refused  # type: ignore[arg-type]
    assert not again.exists()

    everything = replay(str(dead_letter), "--config", str(replay_config), cwd=tmp_path)
    assert everything.returncode == 1, everything.stderr
    assert "delivered 1, rejected again 1" in everything.stdout
    [entry] = read_ndjson(again)
    assert entry["reason"] == "unknown_log_type" and entry["raw"] == GARBAGE.decode()
    assert entry["origin"]["source_id"] == "inbox"  # type: ignore[index]
    assert len(read_ndjson(dead_letter)) == 2  # the input is left as it was


def test_s3_dead_letter_then_replay_from_s3(tmp_path: Path, moto: MotoServer) -> None:
    write_inbox(tmp_path)
    bucket = MotoServer.unique("dl")
    s3 = moto.client("s3")
    s3.create_bucket(Bucket=bucket)
    out = tmp_path / "out"
    dead_letter = {"path": f"s3://{bucket}/dead-letter/", "endpoint_url": moto.endpoint_url,
                   "batch": {"max_wait": "100ms"}, "retry": FAST}  # fmt: skip
    first = write_config(
        tmp_path / "run.yaml", tmp_path, [file_sink(out / "ocsf.ndjson")], dead_letter
    )
    daemon = Daemon(first, "--drain", cwd=tmp_path)
    assert daemon.wait(90) == 0, daemon.output()
    assert sorted(ocsf_ids(out / "ocsf.ndjson")) == sorted(expected_ids(RECORDS))

    listed = s3.list_objects_v2(Bucket=bucket, Prefix="dead-letter/")["Contents"]
    [key] = [item["Key"] for item in listed]
    assert key.startswith("dead-letter/") and key.endswith(".ndjson.gz")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    [entry] = [orjson.loads(line) for line in gzip.decompress(body).splitlines()]
    assert entry["reason"] == "unknown_log_type" and entry["raw"] == GARBAGE.decode()

    # A restart reads nothing again: the rejected record was committed past once stored.
    again = Daemon(first, "--drain", cwd=tmp_path)
    assert again.wait(90) == 0, again.output()
    assert len(s3.list_objects_v2(Bucket=bucket, Prefix="dead-letter/")["Contents"]) == 1

    location = f"s3://{bucket}/dead-letter/"
    dry = replay(location, "--dry-run", "--endpoint-url", moto.endpoint_url, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "1 entries; would replay 1 (unknown_log_type=1)" in dry.stdout

    replayed = out / "replayed.ndjson"
    local = out / "dead-letter-again.ndjson"
    config = write_config(tmp_path / "replay.yaml", tmp_path, [file_sink(replayed)],
                          {"path": str(local)})  # fmt: skip
    result = replay(location, "--config", str(config), "--endpoint-url", moto.endpoint_url,
                    cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1, result.stderr  # it cannot be mapped now either
    assert "rejected again 1" in result.stdout
    [entry_again] = read_ndjson(local)
    assert entry_again["raw"] == GARBAGE.decode() and entry_again["reason"] == "unknown_log_type"
    assert not replayed.exists()


def test_replay_usage_errors(tmp_path: Path) -> None:
    missing = replay(str(tmp_path / "nope.ndjson"), "--dry-run", cwd=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    (tmp_path / "dl.ndjson").write_bytes(b"")
    no_config = replay(str(tmp_path / "dl.ndjson"), cwd=tmp_path)
    assert no_config.returncode == 2 and "--config" in no_config.stderr
