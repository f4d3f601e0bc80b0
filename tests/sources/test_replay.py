"""ReplaySource: dead-letter entries (file, directory, S3) through the pipeline again."""

from __future__ import annotations

import asyncio
import base64
import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from forwarder import mapping
from forwarder.acks import Ack
from forwarder.config import AwsEndpoint, DeadLetterConfig
from forwarder.deadletter import DeadLetter, Rejection
from forwarder.deadletter_s3 import S3DeadLetter
from forwarder.events import Event, Origin, Status
from forwarder.sources.replay import ReplaySource, parse_entry
from forwarder.state.memory import MemoryStateStore
from tests.conftest import sample_records
from tests.fakes import MemorySink
from tests.peers import moto as moto_peer
from tests.peers.moto import MotoServer
from tests.sources.helpers import drain_source

pytestmark = pytest.mark.timeout(60)

moto = moto_peer.moto  # the session-scoped moto_server fixture

RECORDS = list(sample_records())[:6]
GARBAGE = b'{"no": "log type"}'
WHERE = Origin("replay", "dl.ndjson", 7)


def rejected(raw: bytes, reason: str, offset: int, log_type: str | None = None,
             sink: str | None = None) -> Rejection:  # fmt: skip
    event = Event(raw=raw, origin=Origin("inbox", "/in/a.jsonl", offset), ack=Ack(),
                  log_type=log_type)  # fmt: skip
    return Rejection(event, reason, "why", sink)


def entries() -> list[Rejection]:
    """What a daemon dead-lettered: sink rejections of good records, and one garbage line."""
    out = [
        rejected(orjson.dumps(r), "sink_rejected", i, mapping.detect_log_type(r), sink="es")
        for i, r in enumerate(RECORDS)
    ]
    out.append(rejected(GARBAGE, "unknown_log_type", 99))
    return out


async def write_file(path: Path, rejections: list[Rejection]) -> Path:
    dead_letter = DeadLetter(DeadLetterConfig(path=path))
    await dead_letter.write(rejections)
    await dead_letter.close()
    return path


def source(
    location: Path | str, *reasons: str, endpoint: AwsEndpoint | None = None
) -> ReplaySource:
    return ReplaySource(str(location), endpoint or AwsEndpoint(), reasons=reasons,
                        max_line_bytes=1 << 20, chunk_events=4)  # fmt: skip


def ocsf_ids(sink: MemorySink) -> list[str]:
    return [orjson.loads(doc)["metadata"]["uid"] for doc in sink.received]


def expected_ids(records: list[dict[str, Any]]) -> list[str]:
    ids = []
    for record in records:
        log_type = mapping.detect_log_type(record)
        assert log_type is not None
        ids.append(mapping.event_id(record, log_type))
    return ids


# -- entries -----------------------------------------------------------------------------


def test_an_entry_gives_back_the_original_bytes_origin_and_log_type() -> None:
    line = orjson.dumps({
        "time": 1.0, "reason": "sink_rejected", "detail": "x", "sink": "es",
        "origin": {"source_id": "cw", "partition": "g/s", "offset": 3},
        "log_type": "authentication", "raw": '{"a": 1}',
    })  # fmt: skip
    entry = parse_entry(line, WHERE)
    assert entry.raw == b'{"a": 1}' and entry.reason == "sink_rejected" and entry.sink == "es"
    assert entry.origin == Origin("cw", "g/s", 3)
    assert entry.log_type == "AUTHENTICATION_LOGS" and entry.error is None


def test_binary_truncated_and_broken_entries() -> None:
    binary = parse_entry(
        orjson.dumps(
            {"reason": "invalid_json", "raw_base64": base64.b64encode(b"\xff\x00").decode()}
        ),
        WHERE,
    )
    assert binary.raw == b"\xff\x00" and binary.origin == WHERE and binary.log_type is None
    cut = parse_entry(orjson.dumps({"reason": "r", "raw": "{", "raw_truncated_from": 5000}), WHERE)
    assert cut.error == "raw_truncated" and "1 of 5000" in cut.error_detail
    for line in (b"not json", b"[1]", b'{"reason": "r"}', b'{"raw": "x"}',
                 b'{"reason": "r", "raw_base64": "***"}'):  # fmt: skip
        broken = parse_entry(line, WHERE)
        assert broken.error == "invalid_dead_letter_entry" and broken.raw == line
        assert broken.reason == "" and "dl.ndjson at offset 7" in broken.error_detail


# -- replaying ---------------------------------------------------------------------------


async def test_replay_from_a_file_delivers_and_dead_letters_again(tmp_path: Path) -> None:
    path = await write_file(tmp_path / "in" / "dead-letter.ndjson", entries())
    sink = MemorySink()
    replay = source(path)
    rig, ctx = await drain_source(tmp_path, replay, MemoryStateStore(), [sink])
    assert sorted(ocsf_ids(sink)) == sorted(expected_ids(RECORDS))
    stats = replay.stats
    assert (stats.read, stats.replayed, stats.delivered, stats.rejected_again) == (7, 7, 6, 1)
    assert stats.failed and replay.in_flight() == 0 and ctx.errored_units == 0
    [again] = rig.dead_letters()
    assert again["reason"] == "unknown_log_type" and again["raw"] == GARBAGE.decode()
    assert again["origin"] == {"source_id": "inbox", "partition": "/in/a.jsonl", "offset": 99}


async def test_replay_filters_by_reason(tmp_path: Path) -> None:
    path = await write_file(tmp_path / "in.ndjson", entries())
    sink = MemorySink()
    replay = source(path, "sink_rejected")
    rig, _ = await drain_source(tmp_path, replay, MemoryStateStore(), [sink])
    assert len(sink.received) == 6 and rig.dead_letters() == []
    stats = replay.stats
    assert (stats.read, stats.skipped, stats.delivered) == (7, 1, 6) and not stats.failed
    assert dict(stats.reasons) == {"sink_rejected": 6}


async def test_replay_uses_the_recorded_log_type(tmp_path: Path) -> None:
    auth = next(r for r in sample_records() if "auth_successful" in r)
    bare = {k: v for k, v in auth.items() if k not in ("auth_successful", "method")}
    assert mapping.detect_log_type(bare) is None  # only the recorded log type can tell
    typed = rejected(orjson.dumps(bare), "sink_rejected", 0, "AUTHENTICATION_LOGS")
    untyped = rejected(orjson.dumps(bare), "sink_rejected", 1)
    path = await write_file(tmp_path / "in.ndjson", [typed, untyped])
    sink = MemorySink()
    rig, _ = await drain_source(tmp_path, source(path), MemoryStateStore(), [sink])
    [doc] = [orjson.loads(doc) for doc in sink.received]
    assert doc["metadata"]["log_name"] == "AUTHENTICATION_LOGS"
    assert [e["reason"] for e in rig.dead_letters()] == ["unknown_log_type"]


async def test_replay_from_a_directory_of_plain_and_gzip_files(tmp_path: Path) -> None:
    directory = tmp_path / "dl"
    all_entries = entries()
    await write_file(directory / "a.ndjson", all_entries[:3])
    plain = await write_file(tmp_path / "b.ndjson", all_entries[3:])
    nested = directory / "2024" / "06" / "b.ndjson.gz"
    nested.parent.mkdir(parents=True)
    nested.write_bytes(gzip.compress(plain.read_bytes()))
    (directory / "notes.txt").write_text("not a dead letter")
    sink = MemorySink()
    replay = source(directory)
    rig, _ = await drain_source(tmp_path, replay, MemoryStateStore(), [sink])
    assert sorted(ocsf_ids(sink)) == sorted(expected_ids(RECORDS))
    assert replay.stats.read == 7 and len(rig.dead_letters()) == 1


async def test_a_sink_that_rejects_again_dead_letters_again(tmp_path: Path) -> None:
    path = await write_file(tmp_path / "in.ndjson", entries()[:3])
    sink = MemorySink()
    sink.verdict = lambda event: Status.REJECTED if event.origin.offset == 1 else Status.DELIVERED
    replay = source(path)
    rig, _ = await drain_source(tmp_path, replay, MemoryStateStore(), [sink])
    assert (replay.stats.delivered, replay.stats.rejected_again) == (2, 1)
    [again] = rig.dead_letters()
    assert again["sink"] == "mem" and again["origin"]["offset"] == 1


async def test_replaying_into_the_dead_letter_being_read_does_not_loop(tmp_path: Path) -> None:
    path = await write_file(tmp_path / "dl.ndjson", entries())  # the rig's own dead letter
    before = path.read_bytes()
    replay = source(path)
    await asyncio.wait_for(drain_source(tmp_path, replay, MemoryStateStore(), [MemorySink()]), 20)
    assert replay.stats.read == 7 and replay.stats.rejected_again == 1
    after = path.read_bytes()
    assert after.startswith(before) and after.count(b"\n") == before.count(b"\n") + 1


async def test_an_unreadable_input_is_counted_and_the_rest_replayed(tmp_path: Path) -> None:
    directory = tmp_path / "dl"
    await write_file(directory / "a.ndjson", entries()[:2])
    (directory / "b.ndjson.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 32)
    sink = MemorySink()
    replay = source(directory)
    await drain_source(tmp_path, replay, MemoryStateStore(), [sink])
    assert len(sink.received) == 2 and replay.stats.read_failures == 1 and replay.stats.failed


async def test_replay_from_s3_reads_the_objects_under_the_prefix(
    moto: MotoServer, tmp_path: Path
) -> None:
    bucket = MotoServer.unique("dl")
    moto.client("s3").create_bucket(Bucket=bucket)
    config = DeadLetterConfig(path=f"s3://{bucket}/dl/", endpoint_url=moto.endpoint_url,
                              batch={"max_events": 3, "max_wait": "50ms"})  # fmt: skip
    dead_letter = S3DeadLetter(config)
    task = asyncio.create_task(dead_letter.run())
    await dead_letter.write(entries())
    dead_letter.finish()
    await asyncio.wait_for(task, 10)
    assert dead_letter.objects == 3
    moto.client("s3").put_object(Bucket=bucket, Key="other/x.ndjson", Body=b"not under the prefix")
    sink = MemorySink()
    endpoint = AwsEndpoint(endpoint_url=moto.endpoint_url)
    replay = source(f"s3://{bucket}/dl/", endpoint=endpoint)
    rig, _ = await drain_source(tmp_path, replay, MemoryStateStore(), [sink])
    assert sorted(ocsf_ids(sink)) == sorted(expected_ids(RECORDS))
    assert replay.stats.read == 7 and len(rig.dead_letters()) == 1


async def test_replay_from_a_missing_bucket_fails_cleanly(moto: MotoServer, tmp_path: Path) -> None:
    replay = source(
        "s3://no-such-bucket-here/dl/", endpoint=AwsEndpoint(endpoint_url=moto.endpoint_url)
    )
    await drain_source(tmp_path, replay, MemoryStateStore(), [MemorySink()])
    assert replay.stats.read_failures == 1 and replay.stats.read == 0


async def test_an_s3_object_missing_entry_fetches_the_object_again(
    moto: MotoServer, tmp_path: Path
) -> None:
    """The object came back (restored, or the notification raced its write): the replay
    reads it again, the version the entry names, not the notification text."""
    s3 = moto.client("s3")
    bucket = MotoServer.unique("missing")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key = "workmail/2024/06/12/part-0.jsonl"  # no log type token: detected per record
    wanted, later = RECORDS[:6], RECORDS[6:9]
    version = s3.put_object(Bucket=bucket, Key=key,
                            Body=b"\n".join(orjson.dumps(r) for r in wanted))["VersionId"]  # fmt: skip
    s3.put_object(Bucket=bucket, Key=key, Body=b"\n".join(orjson.dumps(r) for r in later))
    gone = {"bucket": bucket, "key": "workmail/never/there.jsonl"}
    notes = [{"bucket": bucket, "key": key, "version_id": version, "message_id": "m-1"}, gone]
    path = await write_file(
        tmp_path / "dl.ndjson",
        [rejected(orjson.dumps(n), "s3_object_missing", i) for i, n in enumerate(notes)],
    )
    replay = source(path, endpoint=AwsEndpoint(region="us-east-1", endpoint_url=moto.endpoint_url))
    sink = MemorySink()
    rig, _ = await drain_source(tmp_path, replay, MemoryStateStore(), [sink])
    assert sorted(ocsf_ids(sink)) == sorted(expected_ids(wanted))  # that version's records
    assert replay.objects_fetched == 1
    assert replay.stats.delivered == 1 and replay.stats.rejected_again == 1
    again = [e for e in rig.dead_letters() if e["detail"] != "why"]  # not the input's own
    assert [e["reason"] for e in again] == ["s3_object_missing"]
    assert orjson.loads(again[0]["raw"]) == gone  # the entry as it was, for a later replay
    assert "fetched again for the replay: NoSuchKey" in again[0]["detail"]
