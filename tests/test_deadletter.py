"""The dead letter: the file form, and the S3 form against a real moto_server.

At least once is the point: a rejected event's ack resolves (letting its source
commit) only after its entry is durably stored, in the file (fsynced) or in S3 (the
PutObject succeeded). While S3 is out, acks stay pending and nothing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from forwarder.acks import Ack
from forwarder.config import DeadLetterConfig, parse_config
from forwarder.deadletter import DeadLetter, Rejection, open_dead_letter
from forwarder.deadletter_s3 import S3DeadLetter
from forwarder.events import Event, Origin, Status
from forwarder.pipeline import Pipeline, SinkPort, SinkQueue
from forwarder.runtime import StopSignal, run
from forwarder.state.sqlite import SqliteStateStore
from forwarder.telemetry import Metrics
from tests.peers import moto as moto_peer
from tests.peers.moto import MotoServer

pytestmark = pytest.mark.timeout(60)

moto = moto_peer.moto  # the session-scoped moto_server fixture

KEY = re.compile(
    r"^dl/(\d{4})/(\d{2})/(\d{2})/(\d{2})/(\d{13})-[A-Za-z0-9._-]+-\d+-[0-9a-f]{6}-(\d{6})\.ndjson\.gz$"
)


def rejections(n: int, *, start: int = 0, sink: str | None = "es") -> list[Rejection]:
    out = []
    for i in range(start, start + n):
        ack = Ack()
        ack.expect(1)
        raw = b"\xff\xfe binary" if i % 5 == 4 else orjson.dumps({"n": i})
        event = Event(raw=raw, origin=Origin("inbox", "file.jsonl", i), ack=ack, log_type=None)
        out.append(Rejection(event, "sink_rejected" if sink else "invalid_json", f"bad {i}", sink))
    return out


def pipeline(dead_letter: Any) -> Pipeline:
    return Pipeline([SinkPort("mem", "ocsf", SinkQueue(10, 1 << 20))], dead_letter, Metrics())


def s3_config(server: MotoServer, bucket: str, **overrides: Any) -> DeadLetterConfig:
    data: dict[str, Any] = {
        "path": f"s3://{bucket}/dl/",
        "endpoint_url": server.endpoint_url,
        "region": moto_peer.REGION,
        "batch": {"max_events": 4, "max_wait": "100ms"},
        "retry": {"initial_backoff": "50ms", "max_backoff": "200ms"},
        "timeout": "5s",
    }
    data.update(overrides)
    return DeadLetterConfig.model_validate(data)


@contextlib.asynccontextmanager
async def running(dead_letter: S3DeadLetter) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(dead_letter.run())
    try:
        yield task
    finally:
        dead_letter.finish()
        try:
            await asyncio.wait_for(asyncio.shield(task), 10)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def objects(server: MotoServer, bucket: str) -> dict[str, list[dict[str, Any]]]:
    s3 = server.client("s3")
    out: dict[str, list[dict[str, Any]]] = {}
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        out[item["Key"]] = [orjson.loads(line) for line in gzip.decompress(body).splitlines()]
    return out


async def eventually(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# -- config ------------------------------------------------------------------------------


def test_the_path_names_a_file_or_an_s3_prefix() -> None:
    assert not DeadLetterConfig().is_s3
    assert DeadLetterConfig(path=Path("/tmp/x.ndjson")).file_path == Path("/tmp/x.ndjson")
    config = DeadLetterConfig(path="s3://my-bucket/audit/dead-letter")
    assert config.is_s3 and config.s3_location == ("my-bucket", "audit/dead-letter/")
    assert DeadLetterConfig(path="s3://my-bucket").s3_location == ("my-bucket", "")
    with pytest.raises(ValueError, match="bucket"):
        DeadLetterConfig(path="s3://No_Such/prefix/")
    assert isinstance(open_dead_letter(DeadLetterConfig(path="s3://my-bucket/x/")), S3DeadLetter)


# -- file --------------------------------------------------------------------------------


async def test_file_entries_are_on_disk_before_acks_resolve(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dl.ndjson"
    dead_letter = DeadLetter(DeadLetterConfig(path=path, max_raw_bytes=8))
    batch = rejections(5)
    seen: list[int] = []

    def stored(part: list[Rejection]) -> None:
        seen.append(path.read_bytes().count(b"\n"))  # on disk when told
        for rejection in part:
            rejection.event.ack.resolve(Status.REJECTED)

    await dead_letter.submit(batch, stored)
    await dead_letter.close()
    assert seen == [5] and all(r.event.ack.pending == 0 for r in batch)
    entries = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert entries[0]["raw"] == '{"n":0}' and entries[0]["sink"] == "es"
    assert entries[4]["raw_base64"] and entries[4]["raw_truncated_from"] == 9
    assert entries[1]["origin"] == {"source_id": "inbox", "partition": "file.jsonl", "offset": 1}


# -- S3 ----------------------------------------------------------------------------------


async def test_s3_objects_are_gzip_ndjson_with_sortable_unique_keys(moto: MotoServer) -> None:
    bucket = MotoServer.unique("dl")
    moto.client("s3").create_bucket(Bucket=bucket)
    dead_letter = S3DeadLetter(s3_config(moto, bucket))
    router = pipeline(dead_letter)
    batch = rejections(10)
    async with running(dead_letter):
        await router.reject(batch[:6])
        await router.reject(batch[6:])
        for rejection in batch:
            rejection.event.ack.seal()
        await asyncio.wait_for(asyncio.gather(*(r.event.ack.wait() for r in batch)), 10)
    assert all(r.event.ack.status is Status.REJECTED for r in batch)
    found = objects(moto, bucket)
    keys = list(found)
    assert len(keys) == 3 and len(set(keys)) == 3  # 4 + 4 + 2 entries
    assert all(KEY.match(key) for key in keys), keys
    assert keys == sorted(keys)
    assert [m.group(6) for m in map(KEY.match, keys) if m] == ["000000", "000001", "000002"]
    entries = [entry for key in keys for entry in found[key]]
    assert [e["detail"] for e in entries] == [f"bad {i}" for i in range(10)]
    first = entries[0]
    assert first["reason"] == "sink_rejected" and first["sink"] == "es"
    assert first["raw"] == '{"n":0}' and first["origin"]["offset"] == 0 and "time" in first
    assert entries[4]["raw_base64"]  # not UTF-8: kept byte for byte
    assert dead_letter.written == 10 and dead_letter.pending == 0


async def test_s3_a_lone_entry_leaves_after_max_wait(moto: MotoServer) -> None:
    bucket = MotoServer.unique("dl")
    moto.client("s3").create_bucket(Bucket=bucket)
    dead_letter = S3DeadLetter(s3_config(moto, bucket, batch={"max_wait": "200ms"}))
    async with running(dead_letter):
        [rejection] = rejections(1, sink=None)
        started = asyncio.get_running_loop().time()
        await dead_letter.write([rejection])
        waited = asyncio.get_running_loop().time() - started
    assert 0.15 < waited < 5
    [entries] = objects(moto, bucket).values()
    assert entries[0]["reason"] == "invalid_json" and "sink" not in entries[0]


async def test_s3_missing_bucket_keeps_acks_pending_until_it_exists(moto: MotoServer) -> None:
    bucket = MotoServer.unique("dl")
    dead_letter = S3DeadLetter(s3_config(moto, bucket))
    router = pipeline(dead_letter)
    batch = rejections(3)
    async with running(dead_letter):
        await router.reject(batch)
        for rejection in batch:
            rejection.event.ack.seal()
        await eventually(lambda: dead_letter.put_failures >= 3)
        assert not any(r.event.ack.done for r in batch)  # not stored: no commit
        assert dead_letter.pending == 3
        moto.client("s3").create_bucket(Bucket=bucket)
        await asyncio.wait_for(asyncio.gather(*(r.event.ack.wait() for r in batch)), 10)
    assert all(r.event.ack.status is Status.REJECTED for r in batch)
    assert [len(entries) for entries in objects(moto, bucket).values()] == [3]


async def test_s3_down_then_back_loses_nothing(
    tmp_path_factory: pytest.TempPathFactory, moto: MotoServer
) -> None:
    server = MotoServer(tmp_path_factory.mktemp("moto-a"))
    port = server.port
    bucket = MotoServer.unique("dl")
    try:
        server.client("s3").create_bucket(Bucket=bucket)
        dead_letter = S3DeadLetter(s3_config(server, bucket))
        router = pipeline(dead_letter)
        batch = rejections(2)
        async with running(dead_letter):
            server.stop()  # S3 is unreachable: connection refused
            await router.reject(batch)
            for rejection in batch:
                rejection.event.ack.seal()
            await eventually(lambda: dead_letter.put_failures >= 2)
            assert not any(r.event.ack.done for r in batch)
            server = MotoServer(tmp_path_factory.mktemp("moto-b"), port=port)  # back
            server.client("s3").create_bucket(Bucket=bucket)  # a new moto starts empty
            await asyncio.wait_for(asyncio.gather(*(r.event.ack.wait() for r in batch)), 20)
        assert [len(entries) for entries in objects(server, bucket).values()] == [2]
    finally:
        server.stop()


async def test_s3_pending_bytes_bound_makes_rejecting_wait(moto: MotoServer) -> None:
    bucket = MotoServer.unique("dl")
    dead_letter = S3DeadLetter(s3_config(moto, bucket, max_pending_bytes=200))
    router = pipeline(dead_letter)
    async with running(dead_letter):
        await router.reject(rejections(2))  # taken although past the bound: nothing held
        blocked = asyncio.create_task(router.reject(rejections(2, start=2)))
        await asyncio.sleep(0.3)
        assert not blocked.done()  # S3 is out and the bound is reached: backpressure
        moto.client("s3").create_bucket(Bucket=bucket)
        await asyncio.wait_for(blocked, 10)
        await eventually(lambda: dead_letter.pending == 0)
    assert sum(len(e) for e in objects(moto, bucket).values()) == 4


async def test_s3_finish_stores_what_is_pending_at_once(moto: MotoServer) -> None:
    bucket = MotoServer.unique("dl")
    moto.client("s3").create_bucket(Bucket=bucket)
    dead_letter = S3DeadLetter(s3_config(moto, bucket, batch={"max_wait": "1h"}))
    task = asyncio.create_task(dead_letter.run())
    stored: list[Rejection] = []
    await dead_letter.submit(rejections(2), stored.extend)
    dead_letter.finish()
    await asyncio.wait_for(task, 10)
    assert len(stored) == 2
    with pytest.raises(OSError, match="closed"):
        await dead_letter.submit(rejections(1), stored.extend)


# -- in the runtime ------------------------------------------------------------------------


async def test_drain_waits_for_s3_to_store_rejections_then_commits(
    tmp_path: Path, moto: MotoServer
) -> None:
    bucket = MotoServer.unique("dl")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_bytes(b"not json\n" + orjson.dumps({"no": "log type"}) + b"\n")
    config = parse_config({
        "state": {"path": str(tmp_path / "state.db")},
        "sources": [{"id": "inbox", "type": "files", "path": str(inbox)}],
        "sinks": [{"id": "f", "type": "file", "path": str(tmp_path / "out.ndjson")}],
        "dead_letter": s3_config(moto, bucket).model_dump(mode="json"),
        "telemetry": {"listen": None},
    })  # fmt: skip
    daemon = asyncio.create_task(run(config, StopSignal(), drain=True))
    await asyncio.sleep(1.0)
    assert not daemon.done()  # the bucket does not exist yet: nothing may commit
    await asyncio.to_thread(moto.client("s3").create_bucket, Bucket=bucket)
    assert await asyncio.wait_for(daemon, 20) == 0
    [entries] = (await asyncio.to_thread(objects, moto, bucket)).values()
    assert sorted(e["reason"] for e in entries) == ["invalid_json", "unknown_log_type"]
    store = SqliteStateStore(tmp_path / "state.db")
    try:
        [saved] = (await store.scan("files/inbox/")).values()
    finally:
        await store.close()
    assert saved.value["offset"] == (inbox / "a.jsonl").stat().st_size
