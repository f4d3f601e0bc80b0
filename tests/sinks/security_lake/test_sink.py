"""The Security Lake sink against moto's S3 (behind the Security Lake peer), through the
pipeline and a SinkRunner: layout, rows, schema, day boundaries, replays, outages."""

from __future__ import annotations

import asyncio
import io
import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from forwarder.acks import Ack
from forwarder.errors import SinkFatalError
from forwarder.events import Event, Origin, Status
from forwarder.pipeline import map_events
from forwarder.sinks import build_sink
from forwarder.sinks.security_lake import sink as lake_sink
from forwarder.sinks.security_lake.columns import lake_classes
from forwarder.sinks.security_lake.layout import CLASSES
from forwarder.sinks.security_lake.sink import SecurityLakeSink
from tests.conftest import sample_records, variants
from tests.fakes import MemorySink
from tests.peers.fixtures import PeerProcess
from tests.peers.moto import REGION, MotoServer
from tests.sinks.security_lake.conftest import ACCOUNT, at, lake_config, list_objects
from tests.sinks.security_lake.lake import document, expected, read_rows, stored_schema
from tests.sinks.security_lake.ocsf_1_3_validator import validate_ocsf_1_3
from tests.test_runner import Rig, batch_of

pytestmark = pytest.mark.timeout(60)

KEY = re.compile(
    r"^ext/workmail-(?P<cls>auth|web|api|entity|email)/1\.0/region=us-east-1/"
    rf"accountId={ACCOUNT}/eventDay=(?P<day>\d{{8}})/(?P<first>\d{{13}})-[0-9a-f]{{32}}\.parquet$"
)
SHORT = {short: uid for uid, (short, _, _) in CLASSES.items()}
DAY_END = 1_718_236_799_999  # 2024-06-12T23:59:59.999Z
RUNNER = {"batch": {"max_events": 5000, "max_wait": "50ms"}}


async def deliver(tmp_path: Path, sink: SecurityLakeSink, raws: list[bytes], **runner: Any
                  ) -> tuple[Ack, MemorySink]:  # fmt: skip
    """Send `raws` as one ack unit to the lake sink and a memory sink; wait for the ack."""
    memory = MemorySink("mem", "ocsf")
    await sink.start()
    rig = Rig(tmp_path, [sink, memory], **{**RUNNER, **runner})  # type: ignore[list-item]
    rig.start()
    ack = Ack()
    try:
        await rig.pipeline.send(batch_of(raws, ack))
        ack.seal()
        await asyncio.wait_for(ack.wait(), 30)
        await rig.finish()
    finally:
        for task in rig.tasks:
            task.cancel()
        await sink.close()
    return ack, memory


def records_over_midnight() -> list[bytes]:
    """Every sample record twice: a millisecond before and at 2024-06-13T00:00:00Z."""
    out = []
    for n, record in enumerate(sample_records()):
        out.append(orjson.dumps(at(record, DAY_END - n)))
        later = dict(at(record, DAY_END + 1 + n))
        for key in ("request_id", "traceId"):
            if key in later:
                later[key] = f"{later[key]}-next-day"
        out.append(orjson.dumps(later))
    return out


async def test_every_class_lands_partitioned_and_every_row_is_the_ocsf_document(
    tmp_path: Path, moto: MotoServer, lake_peer: PeerProcess, lake_bucket: str
) -> None:
    sink = SecurityLakeSink(lake_config(lake_peer.url, lake_bucket))
    raws = records_over_midnight()
    ack, memory = await deliver(tmp_path, sink, raws)
    assert ack.status is Status.DELIVERED
    objects = list_objects(moto, lake_bucket)
    by_uid = {orjson.loads(doc)["metadata"]["uid"]: orjson.loads(doc) for doc in memory.received}
    assert len(by_uid) == len(raws)

    seen: Counter[str] = Counter()
    partitions = set()
    for key, data in objects.items():
        match = KEY.match(key)
        assert match, key
        uid = SHORT[match["cls"]]
        partitions.add((uid, match["day"]))
        lake = lake_classes()[uid]
        metadata = pq.ParquetFile(io.BytesIO(data)).metadata
        schema, rows = read_rows(data)
        # The class's fixed schema, field for field (types, nesting, metadata).
        assert schema.equals(stored_schema(lake.schema), check_metadata=True)
        group = metadata.row_group(0)
        for i in range(group.num_columns):  # zstd where there are values (empty: none)
            chunk = group.column(i)
            filled = chunk.statistics.null_count < group.num_rows
            assert chunk.compression == ("ZSTD" if filled else "UNCOMPRESSED"), chunk.path_in_schema
        times = [row["time"] for row in rows]
        assert times == sorted(times)  # records ordered by time (the custom-source rules)
        assert int(match["first"]) == times[0]
        for row in rows:
            doc = document(row, schema)
            original = by_uid[doc["metadata"]["uid"]]
            assert doc == expected(original)
            validate_ocsf_1_3(doc)
            assert doc["class_uid"] == uid
            day = "20240612" if row["time"] <= DAY_END else "20240613"
            assert match["day"] == day
            seen[doc["metadata"]["uid"]] += 1
    assert seen == Counter(dict.fromkeys(by_uid, 1))  # each event once, none missing
    # Five classes x two days: the day boundary splits every class's partition.
    assert partitions == {(uid, day) for uid in CLASSES for day in ("20240612", "20240613")}


async def test_the_same_events_make_the_same_objects_so_a_replay_overwrites(
    tmp_path: Path, moto: MotoServer, lake_peer: PeerProcess, lake_bucket: str
) -> None:
    # A stated event time each: an email event without one is timed when it is read.
    raws = [orjson.dumps(at(r, DAY_END - n)) for n, r in enumerate(variants(4, tag="replay"))]
    await deliver(tmp_path / "1", SecurityLakeSink(lake_config(lake_peer.url, lake_bucket)), raws)
    first = list_objects(moto, lake_bucket)
    await deliver(tmp_path / "2", SecurityLakeSink(lake_config(lake_peer.url, lake_bucket)), raws)
    assert list_objects(moto, lake_bucket) == first  # same keys, same bytes
    assert len(first) == len(CLASSES)


async def test_a_large_partition_is_split_at_the_target_object_size(
    tmp_path: Path,
    moto: MotoServer,
    lake_peer: PeerProcess,
    lake_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("forwarder.sinks.security_lake.encode.ROW_GROUP_ROWS", 20)
    sink = SecurityLakeSink(lake_config(lake_peer.url, lake_bucket, target_object_size=1))
    records = [r for r in variants(30, tag="split") if "event_timestamp" in r and r.get("user")]
    raws = [orjson.dumps(at(r, DAY_END - 1000 * n)) for n, r in enumerate(records)]
    await deliver(tmp_path, sink, raws)
    objects = list_objects(moto, lake_bucket)
    counts = [len(read_rows(data)[1]) for data in objects.values()]
    assert sum(counts) == len(raws)
    assert len(objects) > 1 and all(n <= 20 for n in counts)


async def test_large_objects_go_up_in_parts(
    tmp_path: Path,
    moto: MotoServer,
    lake_peer: PeerProcess,
    lake_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lake_sink, "MULTIPART_BYTES", 1 << 20)
    monkeypatch.setattr(lake_sink, "PART_BYTES", 5 << 20)  # S3's smallest part
    sink = SecurityLakeSink(lake_config(lake_peer.url, lake_bucket))
    # Incompressible padding (in raw_data and unmapped): ~15 MB of JSON, one class and day.
    records = [r for r in variants(50, tag="big", padding=20_000) if "auth_successful" in r]
    raws = [orjson.dumps(at(r, DAY_END - n)) for n, r in enumerate(records)]
    await deliver(tmp_path, sink, raws, batch={"max_events": 5000, "max_bytes": 64 << 20,
                                               "max_wait": "2s"})  # fmt: skip
    objects = list_objects(moto, lake_bucket)
    assert len(objects) == 1
    key, data = next(iter(objects.items()))
    assert len(data) > 5 << 20
    head = moto.client("s3").head_object(Bucket=lake_bucket, Key=key, PartNumber=1)
    assert head["PartsCount"] >= 2
    assert len(read_rows(data)[1]) == len(raws)


async def test_an_s3_outage_holds_the_ack_until_s3_is_back(
    tmp_path: Path, moto: MotoServer, lake_peer: PeerProcess, lake_bucket: str
) -> None:
    sink = SecurityLakeSink(lake_config(lake_peer.url, lake_bucket))
    await sink.start()
    rig = Rig(tmp_path, [sink], batch={"max_events": 100, "max_wait": "20ms"},  # type: ignore[list-item]
              retry={"initial_backoff": "50ms", "max_backoff": "200ms"})  # fmt: skip
    await lake_peer.acontrol("faults", {"s3": "503"})
    rig.start()
    ack = Ack()
    try:
        await rig.pipeline.send(batch_of([orjson.dumps(r) for r in variants(1, "outage")], ack))
        ack.seal()
        await asyncio.sleep(2.0)
        assert not ack.done  # nothing acknowledged while S3 refuses
        assert (await lake_peer.acontrol("stats"))["s3_failed"] >= 2  # retried, not dropped
        assert list_objects(moto, lake_bucket) == {}
        await lake_peer.acontrol("faults", {"s3": None})
        assert await asyncio.wait_for(ack.wait(), 20) is Status.DELIVERED
        await rig.finish()
    finally:
        for task in rig.tasks:
            task.cancel()
        await sink.close()
    rows = sum(len(read_rows(data)[1]) for data in list_objects(moto, lake_bucket).values())
    assert rows == len(list(sample_records()))


async def test_role_arn_is_assumed_for_the_uploads(
    tmp_path: Path, moto: MotoServer, lake_peer: PeerProcess, lake_bucket: str
) -> None:
    def role(name: str) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/AmazonSecurityLake-Provider-workmail-{name}-{REGION}"

    roles = {"auth": role("auth"), "6003": role("api")}  # the rest: role_arn
    config = lake_config(lake_peer.url, lake_bucket, role_arn=role("all"), role_arns=roles,
                         external_id="wmf")  # fmt: skip
    sink = build_sink(config)
    assert isinstance(sink, SecurityLakeSink)
    ack, _ = await deliver(tmp_path, sink, [orjson.dumps(r) for r in variants(1, "role")])
    assert ack.status is Status.DELIVERED
    classes = {KEY.match(key)["cls"] for key in list_objects(moto, lake_bucket)}  # type: ignore[index]
    assert classes == {short for short, _, _ in CLASSES.values()}
    assert (await lake_peer.acontrol("stats"))["services"]["sts"] == 3  # AssumeRole, per role


class _DeniedS3:
    async def put_object(self, **kwargs: Any) -> None:
        error = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                 "ResponseMetadata": {"HTTPStatusCode": 403}}  # fmt: skip
        raise ClientError(error, "PutObject")  # type: ignore[arg-type]


async def test_access_denied_is_fatal_and_leaves_no_spool_files(tmp_path: Path) -> None:
    sink = SecurityLakeSink(lake_config("http://127.0.0.1:9", "b-1", spool_dir=tmp_path / "spool"))
    sink._spool = lake_sink._make_spool(tmp_path / "spool", sink.id)
    sink._s3 = dict.fromkeys(CLASSES, _DeniedS3())
    events = []
    for n, record in enumerate(sample_records()):
        event = Event(raw=orjson.dumps(record), origin=Origin("t", "p", n), ack=Ack())
        events.append(event)
    good, _ = map_events(events, ("ocsf",))
    with pytest.raises(SinkFatalError, match="AccessDenied"):
        await sink.send(good)
    assert list(sink._spool.iterdir()) == []


async def test_events_without_a_lake_class_are_rejected_not_retried(tmp_path: Path) -> None:
    sink = SecurityLakeSink(lake_config("http://127.0.0.1:9", "b-1"))
    sink._spool = lake_sink._make_spool(tmp_path, sink.id)
    event = Event(raw=b"{}", origin=Origin("t", "p", 0), ack=Ack(), log_type="SOMETHING_ELSE")
    result = await sink.send([event])
    assert result.statuses == [Status.REJECTED]
    assert "no OCSF class" in result.reasons[0]


def test_stale_spool_directories_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / "wmf-lake-lake-999999999-abc_1"
    dead.mkdir()
    (dead / "x.parquet.part").write_bytes(b"x")
    mine = lake_sink._make_spool(tmp_path, "lake")
    assert not dead.exists() and mine.exists()
    assert lake_sink._make_spool(tmp_path, "lake") != mine and mine.exists()  # alive: kept
