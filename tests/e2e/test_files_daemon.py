"""The real CLI as a subprocess on a temp inbox: lossless across SIGTERM and restart."""

from __future__ import annotations

import gzip
import shutil
import signal
import urllib.request
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.conftest import free_port, sample_files, sample_records, variants
from tests.e2e.helpers import (
    Daemon,
    count_lines,
    ecs_ids,
    expected_ids,
    ocsf_ids,
    read_ndjson,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def write_inbox(inbox: Path, records: list[dict[str, object]], per_file: int) -> None:
    inbox.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(records), per_file):
        chunk = records[start : start + per_file]
        data = b"".join(orjson.dumps(r) + b"\n" for r in chunk)
        name = inbox / f"part-{start // per_file:04d}.jsonl"
        if (start // per_file) % 3 == 2:
            (name.with_suffix(".jsonl.gz")).write_bytes(gzip.compress(data))
        else:
            name.write_bytes(data)


def test_sigterm_midway_then_restart_delivers_every_record_exactly_once(tmp_path: Path) -> None:
    records = variants(1200)  # 54,000 records
    write_inbox(tmp_path / "inbox", records, per_file=2000)
    port = free_port()
    config = write_config(tmp_path / "config.yaml", tmp_path, port=port)
    out = tmp_path / "out"

    first = Daemon(config, cwd=tmp_path)
    try:
        wait_for(lambda: count_lines(out / "ocsf.ndjson") > 0, 60, "first events")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
            assert orjson.loads(response.read())["status"] == "ok"
        first.signal(signal.SIGTERM)
        assert first.wait(40) == 0, first.output()
    finally:
        first.stop()
    delivered_first = count_lines(out / "ocsf.ndjson")
    assert 0 < delivered_first < len(records), "SIGTERM should land mid-way"
    assert '"stopping"' in first.output()

    second = Daemon(config, "--drain", cwd=tmp_path)
    assert second.wait(120) == 0, second.output()

    want = Counter(expected_ids(records))
    assert len(want) == len(records)
    for got in (Counter(ocsf_ids(out / "ocsf.ndjson")), Counter(ecs_ids(out / "ecs.ndjson"))):
        assert got == want, f"missing={len(want - got)} duplicated={sum((got - want).values())}"
    assert count_lines(out / "dead-letter.ndjson") == 0


def test_second_run_writes_nothing_twice(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for path in sample_files():
        shutil.copy(path, inbox / path.name)
    config = write_config(tmp_path / "config.yaml", tmp_path, port=None)
    out = tmp_path / "out"
    assert Daemon(config, "--drain", cwd=tmp_path).wait(60) == 0
    first = (out / "ocsf.ndjson").read_bytes()
    assert first.count(b"\n") == len(list(sample_records()))
    assert Daemon(config, "--drain", cwd=tmp_path).wait(60) == 0
    assert (out / "ocsf.ndjson").read_bytes() == first
    assert count_lines(out / "ecs.ndjson") == len(list(sample_records()))


def test_bad_input_is_dead_lettered_never_crashes(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good = list(sample_records())
    lines = [orjson.dumps(r) for r in good[:5]]
    (inbox / "mixed.jsonl").write_bytes(
        lines[0] + b"\nthis is not json\n" + lines[1] + b"\n{\"no\": \"log type\"}\n"
        + b"[1, 2\n" + b"\xff\xfe\x00garbage\x00\n" + lines[2] + b"\n   \n" + lines[3] + b"\n"
    )  # fmt: skip
    (inbox / "empty.jsonl").write_bytes(b"")
    (inbox / "binary.ndjson").write_bytes(bytes(range(256)) * 40)
    (inbox / "huge.jsonl").write_bytes(b'{"a": "' + b"x" * (5 << 20) + b'"}\n' + lines[4] + b"\n")
    (inbox / "corrupt.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 64)
    payload = {
        "messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": "/aws/workmail/x",
        "logStream": "s", "subscriptionFilters": ["f"],
        "logEvents": [{"id": str(i), "timestamp": 1718182800000 + i, "message": orjson.dumps(r).decode()}
                      for i, r in enumerate(good[5:8])],
    }  # fmt: skip
    (inbox / "cw.json").write_bytes(orjson.dumps(payload) + b"\n")
    (inbox / "cw.json.gz").write_bytes(
        gzip.compress(orjson.dumps({**payload, "messageType": "CONTROL_MESSAGE"}))
    )
    config = write_config(tmp_path / "config.yaml", tmp_path, port=None)
    daemon = Daemon(config, "--drain", cwd=tmp_path)
    assert daemon.wait(60) == 0, daemon.output()

    out = tmp_path / "out"
    assert sorted(ocsf_ids(out / "ocsf.ndjson")) == sorted(expected_ids(good[:8]))
    reasons = Counter(entry["reason"] for entry in read_ndjson(out / "dead-letter.ndjson"))
    assert reasons["line_too_long"] == 1
    assert reasons["unknown_log_type"] == 1
    assert reasons["invalid_gzip"] + reasons["truncated_gzip"] == 1
    assert reasons["invalid_json"] >= 3  # the text line, the broken array, the garbage
    for entry in read_ndjson(out / "dead-letter.ndjson"):
        assert entry["origin"]["source_id"] == "inbox"  # type: ignore[index]
        assert "raw" in entry or "raw_base64" in entry
    text = daemon.output()
    assert "dead_lettered" in text and "Traceback" not in text


def test_daemon_picks_up_new_appended_and_replaced_files(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    records = variants(3)
    a, b, c = records[:40], records[40:80], records[80:120]
    config = write_config(tmp_path / "config.yaml", tmp_path, port=None)
    out = tmp_path / "out"
    daemon = Daemon(config, cwd=tmp_path)
    try:
        (inbox / "later.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in a))
        wait_for(lambda: count_lines(out / "ocsf.ndjson") == 40, 30, "a new file")
        with (inbox / "later.jsonl").open("ab") as handle:
            handle.write(b"".join(orjson.dumps(r) + b"\n" for r in b[:20]))
            handle.write(orjson.dumps(b[20])[:30])  # a writer mid-line
        wait_for(lambda: count_lines(out / "ocsf.ndjson") == 60, 30, "appended lines")
        with (inbox / "later.jsonl").open("ab") as handle:
            handle.write(orjson.dumps(b[20])[30:] + b"\n")
            handle.write(b"".join(orjson.dumps(r) + b"\n" for r in b[21:]))
        wait_for(lambda: count_lines(out / "ocsf.ndjson") == 80, 30, "the completed line")
        replacement = inbox / "later.jsonl.tmp"
        replacement.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in c))
        replacement.rename(inbox / "later.jsonl")  # replaced: new inode, read from start
        wait_for(lambda: count_lines(out / "ocsf.ndjson") == 120, 30, "the replaced file")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        daemon.stop()
    assert sorted(ocsf_ids(out / "ocsf.ndjson")) == sorted(expected_ids(a + b + c))
    assert count_lines(out / "dead-letter.ndjson") == 0
