"""Chaos 7: hostile input through the real daemon, from files and from S3/SQS.

Random bytes, JSON nested past any parser's depth, a 10 MB line, invalid UTF-8, NUL
bytes, every field of every sample record given every wrong JSON type, a gzip bomb
(a small object that inflates past the configured limit), and SQS bodies that are
no S3 notification. The daemon must stay up and bounded in memory, deliver the good
records, and account for every other one in the dead-letter output with a reason.
"""

from __future__ import annotations

import gzip
import random
import signal
import urllib.request
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.chaos.ledger import Ledger, dead_letter_entries
from tests.conftest import free_port, sample_records, variants
from tests.e2e.helpers import Daemon, count_lines, ocsf_ids, read_ndjson, wait_for
from tests.e2e.test_s3_sqs_daemon import Queue
from tests.peers import moto as moto_peer
from tests.peers.moto import MotoServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(180)]

moto = moto_peer.moto

WRONG_VALUES: list[Any] = [None, 0, -1.5, True, "", "x" * 300, [], {}, [1, "a"], {"k": [None]}]


def wrong_type_records() -> list[dict[str, Any]]:
    """Each sample record with one field (top level or nested one deep) set to each wrong type."""
    out = []
    for record in sample_records():
        for key, value in record.items():
            for wrong in WRONG_VALUES:
                out.append({**record, key: wrong})
            if isinstance(value, dict):
                for inner in value:
                    for wrong in WRONG_VALUES[:4]:
                        out.append({**record, key: {**value, inner: wrong}})
    return out


def gzip_bomb(inflated: int) -> bytes:
    """A gzip member of `inflated` zero bytes: about 1/1000 of that on the wire."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    parts = [compressor.compress(chunk) for _ in range(inflated >> 20)]
    return b"".join(parts) + compressor.flush()


def hostile_lines(rng: random.Random) -> dict[str, bytes]:
    """File name -> content, one unit of hostility per line."""
    random_lines = [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 400))).replace(b"\n", b"")
                    for _ in range(50)]  # fmt: skip
    return {
        "random.jsonl": b"\n".join(line or b"\x01" for line in random_lines) + b"\n",
        "nested.jsonl": b"[" * 100_000
        + b"]" * 100_000
        + b"\n"
        + b'{"a":' * 5000
        + b"1"
        + b"}" * 5000
        + b"\n",
        "huge.jsonl": b'{"event_type":"' + b"A" * (10 << 20) + b'"}\n',
        "badutf8.jsonl": b'{"request_id":"\xff\xfe\xc3\x28","event_type":"x"}\n'
        + b'{"user":"\xed\xa0\x80"}\n',
        "nul.jsonl": b'{"a":"\x00"}\n\x00\x00\x00\n{"b\x00":1}\n',
    }


def metric_ok(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        return response.status == 200


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_hostile_files_and_sqs_bodies_are_dead_lettered_and_the_daemon_stays_up(
    tmp_path: Path, moto: MotoServer
) -> None:
    rng = random.Random(7)
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    queue = Queue(moto, visibility=10)
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "state": {"backend": "sqlite", "path": str(tmp_path / "state" / "forwarder.db")},
        "sources": [
            {"id": "inbox", "type": "files", "path": str(inbox), "poll_interval": "100ms",
             "partial_line_grace": "200ms", "max_inflated_bytes": "32MiB"},
            {"id": "s3", "type": "s3_sqs", "queue_url": queue.url, "region": "us-east-1",
             "endpoint_url": moto.endpoint_url, "wait_time": "1s",
             "max_inflated_bytes": "32MiB"},
        ],
        "sinks": [{"id": "ocsf", "type": "file", "path": str(out / "ocsf.ndjson"),
                   "batch": {"max_events": 200, "max_wait": "50ms"}}],
        "dead_letter": {"path": str(out / "dead-letter.ndjson"), "max_raw_bytes": "4KiB"},
        "telemetry": {"listen": f"127.0.0.1:{port}"},
        "shutdown_grace": "10s",
    }))  # fmt: skip

    good = variants(2, "good")
    wrong = wrong_type_records()
    files = hostile_lines(rng)
    files["wrong-types.jsonl"] = b"".join(orjson.dumps(r) + b"\n" for r in wrong)
    files["good.jsonl"] = b"".join(orjson.dumps(r) + b"\n" for r in good[:45])
    bomb = gzip_bomb(256 << 20)  # 256 MiB of zeros in about 250 KB
    assert len(bomb) < 1 << 20

    daemon = Daemon(config, cwd=tmp_path)
    try:
        for name, data in files.items():
            (inbox / f".{name}").write_bytes(data)
            (inbox / f".{name}").rename(inbox / name)
        (inbox / "bomb.jsonl.gz").write_bytes(bomb)
        queue.put("AWSLogs/bomb.jsonl.gz", bomb)
        queue.put("AWSLogs/good.jsonl.gz", gzip.compress(b"".join(orjson.dumps(r) + b"\n"
                                                                 for r in good[45:])))  # fmt: skip
        for body in ["hello", "{}", '{"Records": "x"}', '{"Records": [{"s3": 1}]}',
                     "[" * 10_000, "x" * 200_000, '{"Type":"Notification","TopicArn":"a","Message":"{"}']:  # fmt: skip
            queue.sqs.send_message(QueueUrl=queue.url, MessageBody=body)

        wait_for(lambda: len(set(ocsf_ids(out / "ocsf.ndjson")) & set(Ledger("", good).expected))
                 >= len(good), 90, "the good records")  # fmt: skip
        wait_for(lambda: queue.counts() == (0, 0), 60, "every SQS message settled")
        wait_for(lambda: count_lines(out / "ocsf.ndjson") + count_lines(out / "dead-letter.ndjson")
                 >= len(good) + len(wrong), 60, "the wrong-type records")  # fmt: skip
        assert metric_ok(port)
        rss = peak_rss_mb(daemon.proc.pid)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.output()
    finally:
        daemon.stop()

    dead = dead_letter_entries(out / "dead-letter.ndjson")
    reasons = Counter(str(entry["reason"]) for entry in dead)
    by_file = Counter(
        str(entry["origin"]["partition"]).rsplit("/", 1)[-1].partition("#")[0] for entry in dead
    )  # a file path, or bucket/key#etag
    print(f"peak RSS {rss:.0f} MB; dead-letter reasons {dict(reasons)}")
    assert rss < 400, f"peak RSS {rss:.0f} MB"
    assert "gzip_bomb" in reasons and by_file["bomb.jsonl.gz"] >= 2  # from files and from S3
    assert reasons["line_too_long"] >= 1 and reasons["invalid_notification"] >= 6
    assert by_file["random.jsonl"] == 50
    for name in ("nested.jsonl", "badutf8.jsonl", "nul.jsonl", "huge.jsonl"):
        assert by_file[name] >= 1, name
    # Every wrong-type record is either delivered or dead-lettered: none vanished.
    delivered = read_ndjson(out / "ocsf.ndjson")
    wrong_out = sum(1 for doc in delivered if b"wrong" not in orjson.dumps(doc)) - len(good)
    assert wrong_out + by_file["wrong-types.jsonl"] == len(wrong), (wrong_out, by_file)
    settled = Ledger("hostile input", good).settle(ocsf_ids(out / "ocsf.ndjson"), len(dead))
    assert settled.lost == 0 and settled.duplicates == 0
