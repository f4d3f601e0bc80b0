"""S3SqsSource in-process against moto_server: shapes, resume, heartbeat, failures."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
from botocore.exceptions import ClientError, ResponseStreamingError

from forwarder import mapping
from forwarder.acks import Ack
from forwarder.config import S3SqsSourceConfig
from forwarder.events import Status
from forwarder.sources import SourceContext, build_source
from forwarder.sources.s3_sqs import S3SqsSource
from forwarder.sources.s3_sqs.notifications import ObjectRef
from forwarder.sources.s3_sqs.progress import progress_key
from forwarder.sources.s3_sqs.reader import ObjectReader, Outcome
from forwarder.sources.s3_sqs.visibility import VisibilityKeeper
from forwarder.state.memory import MemoryStateStore
from tests.conftest import ndjson, variants
from tests.fakes import MemorySink
from tests.peers import moto as moto_peer
from tests.peers.moto import MotoServer
from tests.sources.helpers import drain_source
from tests.test_runner import Rig

moto = moto_peer.moto  # the session-scoped moto_server fixture

pytestmark = pytest.mark.timeout(60)


def ids(records: list[dict[str, Any]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for record in records:
        log_type = mapping.detect_log_type(record)
        assert log_type is not None
        out[mapping.event_id(record, log_type)] += 1
    return out


def received_ids(sink: MemorySink) -> Counter[str]:
    return Counter(orjson.loads(doc)["metadata"]["uid"] for doc in sink.received)


@dataclass
class Bucket:
    """A bucket whose ObjectCreated notifications go to a queue (direct, SNS or EventBridge)."""

    moto: MotoServer
    name: str
    queue_url: str

    @property
    def s3(self) -> Any:
        return self.moto.client("s3")

    @property
    def sqs(self) -> Any:
        return self.moto.client("sqs")

    def put(self, key: str, data: bytes) -> str:
        return str(self.s3.put_object(Bucket=self.name, Key=key, Body=data)["ETag"]).strip('"')

    def attributes(self) -> dict[str, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return {k: int(v) for k, v in attrs.items()}

    def config(self, **overrides: Any) -> S3SqsSourceConfig:
        base: dict[str, Any] = {
            "id": "s3", "type": "s3_sqs", "queue_url": self.queue_url, "region": "us-east-1",
            "endpoint_url": self.moto.endpoint_url, "wait_time": "1s", "chunk_events": 7,
            "read_chunk_bytes": 4096,
        }  # fmt: skip
        base.update(overrides)
        return S3SqsSourceConfig.model_validate(base)


def make_bucket(server: MotoServer, via: str = "direct", visibility: int = 30) -> Bucket:
    s3, sqs = server.client("s3"), server.client("sqs")
    name = MotoServer.unique("bkt")
    queue_url = sqs.create_queue(
        QueueName=MotoServer.unique("q"), Attributes={"VisibilityTimeout": str(visibility)}
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    s3.create_bucket(Bucket=name)
    events = ["s3:ObjectCreated:*"]
    if via == "direct":
        notification = {"QueueConfigurations": [{"QueueArn": queue_arn, "Events": events}]}
    elif via in ("sns", "sns-raw"):
        sns = server.client("sns")
        topic = sns.create_topic(Name=MotoServer.unique("t"))["TopicArn"]
        attributes = {"RawMessageDelivery": "true"} if via == "sns-raw" else {}
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes)
        notification = {"TopicConfigurations": [{"TopicArn": topic, "Events": events}]}
    else:
        rules = server.client("events")
        rule = MotoServer.unique("r")
        pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"],
                   "detail": {"bucket": {"name": [name]}}}  # fmt: skip
        rules.put_rule(Name=rule, EventPattern=orjson.dumps(pattern).decode())
        rules.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue_arn}])
        notification = {"EventBridgeConfiguration": {}}
    s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration=notification)
    return Bucket(server, name, queue_url)


async def drain_once(
    tmp_path: Path, config: S3SqsSourceConfig, state: MemoryStateStore, sink: MemorySink,
    during: Any = None, **overrides: object,
) -> tuple[S3SqsSource, Rig, SourceContext]:  # fmt: skip
    """What `run --drain` does: read until the queue is empty, drain the sinks, commit."""
    source = build_source(config)
    assert isinstance(source, S3SqsSource)
    rig, ctx = await drain_source(tmp_path, source, state, [sink], during, **overrides)
    return source, rig, ctx


@pytest.mark.parametrize("via", ["direct", "sns", "sns-raw", "eventbridge"])
async def test_every_notification_shape_delivers_plain_and_gzip_objects(
    tmp_path: Path,
    moto: MotoServer,
    via: str,
) -> None:
    bucket = make_bucket(moto, via)
    plain, packed = variants(2, "p"), variants(3, "g")
    bucket.put("logs/2026/11/plain file é.jsonl", ndjson(plain))
    bucket.put("logs/2026/11/packed+1.jsonl.gz", gzip.compress(ndjson(packed)))
    sink, state = MemorySink(), MemoryStateStore()
    source, _, ctx = await drain_once(tmp_path, bucket.config(), state, sink)
    assert received_ids(sink) == ids(plain) + ids(packed)
    assert bucket.attributes() == {
        "ApproximateNumberOfMessages": 0, "ApproximateNumberOfMessagesNotVisible": 0,
    }  # fmt: skip
    assert source.stats.objects_read == 2 and ctx.errored_units == 0
    assert source.stats.messages_test == (0 if via == "eventbridge" else 1)
    progress = await state.scan("s3/s3/")
    assert len(progress) == 2 and all(item.value["done"] for item in progress.values())
    assert {item.value["records"] for item in progress.values()} == {len(plain), len(packed)}
    assert source.stats.lag_seconds is not None and 0 <= source.stats.lag_seconds < 60
    assert source.in_flight() == 0


async def test_an_object_announced_twice_at_once_is_read_once(
    tmp_path: Path, moto: MotoServer
) -> None:
    bucket = make_bucket(moto)
    records = variants(4, "d")
    s3 = bucket.s3
    # moto announces a multipart upload twice (Put and CompleteMultipartUpload): two
    # messages for one object, taken by two workers at the same time.
    upload = s3.create_multipart_upload(Bucket=bucket.name, Key="twice.jsonl")["UploadId"]
    part = s3.upload_part(Bucket=bucket.name, Key="twice.jsonl", UploadId=upload, PartNumber=1,
                          Body=ndjson(records))["ETag"]  # fmt: skip
    s3.complete_multipart_upload(Bucket=bucket.name, Key="twice.jsonl", UploadId=upload,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part}]})  # fmt: skip
    sink = MemorySink()
    source, _, _ = await drain_once(tmp_path, bucket.config(), MemoryStateStore(), sink)
    assert source.stats.messages_received == 3  # test event + the two announcements
    assert received_ids(sink) == ids(records)
    assert source.stats.objects_read == 1 and source.stats.objects_already_done == 1
    assert bucket.attributes()["ApproximateNumberOfMessagesNotVisible"] == 0


async def test_multi_record_lines_resume_exactly_after_the_committed_line(
    tmp_path: Path,
    moto: MotoServer,
) -> None:
    bucket = make_bucket(moto)
    records = variants(2, "m")
    payload = {"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "g", "logStream": "s",
               "subscriptionFilters": ["f"],
               "logEvents": [{"id": str(i), "timestamp": 1718182800000 + i,
                              "message": orjson.dumps(r).decode()}
                             for i, r in enumerate(records[3:6])]}  # fmt: skip
    lines = [orjson.dumps(records[:3]), orjson.dumps(payload)] + [
        orjson.dumps(r) for r in records[6:]
    ]
    data = b"\n".join(lines) + b"\n"
    etag = bucket.put("multi.json.gz", gzip.compress(data))
    state = MemoryStateStore()
    # A first receive committed the JSON array line (3 records) and then died.
    key = progress_key("s3", bucket.name, "multi.json.gz", etag, None)
    await state.put(key, {"offset": len(lines[0]) + 1, "records": 3, "done": False})
    sink = MemorySink()
    source, _, _ = await drain_once(tmp_path, bucket.config(), state, sink)
    assert received_ids(sink) == ids(records[3:])
    assert source.stats.objects_resumed == 1
    saved = await state.get(key)
    assert saved is not None
    assert saved.value == {"offset": len(data), "records": len(records), "done": True}


async def test_errored_chunk_is_not_committed_and_the_message_comes_back(
    tmp_path: Path, moto: MotoServer
) -> None:
    bucket = make_bucket(moto, visibility=3)
    records = variants(1, "e")[:20]
    raws = [orjson.dumps(r) for r in records]
    etag = bucket.put("e.jsonl", b"\n".join(raws) + b"\n")
    state = MemoryStateStore()
    sink = MemorySink()
    sink.verdict = lambda e: Status.ERRORED if e.raw == raws[10] else Status.DELIVERED
    give_up = {"initial_backoff": "1ms", "max_backoff": "2ms", "max_elapsed": "30ms"}
    source, _, ctx = await drain_once(tmp_path, bucket.config(), state, sink, retry=give_up)
    assert ctx.errored_units == 1 and source.stats.messages_errored == 1
    saved = await state.get(progress_key("s3", bucket.name, "e.jsonl", etag, None))
    assert saved is not None and saved.value["records"] == 7  # chunks of 7: only the first
    assert bucket.attributes()["ApproximateNumberOfMessagesNotVisible"] == 1  # not deleted

    again = MemorySink()  # the drain waits for the message to come back, then resumes it
    source, _, ctx = await drain_once(tmp_path, bucket.config(), state, again)
    assert ctx.errored_units == 0 and source.stats.objects_resumed == 1
    assert received_ids(again) == ids(records[7:])  # the rest, from the errored chunk on
    assert bucket.attributes() == {
        "ApproximateNumberOfMessages": 0, "ApproximateNumberOfMessagesNotVisible": 0,
    }  # fmt: skip


async def test_heartbeat_keeps_the_message_through_a_sink_outage_longer_than_visibility(
    tmp_path: Path,
    moto: MotoServer,
) -> None:
    bucket = make_bucket(moto, visibility=4)
    records = variants(2, "h")
    bucket.put("outage.jsonl", ndjson(records))
    sink = MemorySink()
    sink.down = True

    visible: list[int] = []  # sampled once the source holds the message

    async def outage() -> None:
        # Meanwhile, SQS must never show the message as available to another consumer.
        deadline = asyncio.get_running_loop().time() + 10
        while asyncio.get_running_loop().time() < deadline:
            attrs = await asyncio.to_thread(bucket.attributes)
            if visible or attrs["ApproximateNumberOfMessagesNotVisible"]:
                visible.append(attrs["ApproximateNumberOfMessages"])
            await asyncio.sleep(0.25)
        sink.down = False

    slow_retry = {"initial_backoff": "50ms", "max_backoff": "200ms"}
    started = asyncio.get_running_loop().time()
    source, _, ctx = await drain_once(tmp_path, bucket.config(visibility_timeout="4s"),
                                      MemoryStateStore(), sink, during=outage, retry=slow_retry)  # fmt: skip
    assert asyncio.get_running_loop().time() - started >= 10
    assert received_ids(sink) == ids(records)  # each exactly once
    assert source.stats.messages_received == 2  # test event + object: never redelivered
    assert source.stats.messages_received_again == 0
    assert len(visible) > 20 and max(visible) == 0
    assert source._keeper is not None
    assert source._keeper.stats.extensions >= 7 and source._keeper.stats.failures == 0
    assert ctx.errored_units == 0
    assert bucket.attributes()["ApproximateNumberOfMessagesNotVisible"] == 0


async def test_poison_missing_and_changed_objects_are_dead_lettered_and_deleted(
    tmp_path: Path,
    moto: MotoServer,
) -> None:
    bucket = make_bucket(moto)
    good = variants(1, "ok")[:5]
    etag = bucket.put("good.jsonl", ndjson(good))
    sqs = bucket.sqs
    sqs.send_message(QueueUrl=bucket.queue_url, MessageBody="this is not a notification")
    missing = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                            "eventTime": "2026-11-27T03:55:44.321Z",
                            "s3": {"bucket": {"name": bucket.name},
                                   "object": {"key": "gone%2Fnever+there.jsonl"}}}]}  # fmt: skip
    sqs.send_message(QueueUrl=bucket.queue_url, MessageBody=orjson.dumps(missing).decode())
    changed = orjson.loads(orjson.dumps(missing))
    changed["Records"][0]["s3"]["object"] = {"key": "good.jsonl", "eTag": "0" * 32}
    sqs.send_message(QueueUrl=bucket.queue_url, MessageBody=orjson.dumps(changed).decode())
    sink = MemorySink()
    with structlog.testing.capture_logs() as logs:
        source, rig, ctx = await drain_once(tmp_path, bucket.config(), MemoryStateStore(), sink)
    assert received_ids(sink) == ids(good)
    letters = {entry["reason"]: entry for entry in rig.dead_letters()}
    assert set(letters) == {"invalid_notification", "s3_object_missing", "s3_object_changed"}
    assert letters["invalid_notification"]["raw"] == "this is not a notification"
    assert orjson.loads(letters["s3_object_missing"]["raw"])["key"] == "gone/never there.jsonl"  # type: ignore[arg-type]
    assert "NoSuchKey" in str(letters["s3_object_missing"]["detail"])
    assert orjson.loads(letters["s3_object_changed"]["raw"])["etag"] == "0" * 32  # type: ignore[arg-type]
    assert etag != "0" * 32
    assert bucket.attributes()["ApproximateNumberOfMessagesNotVisible"] == 0
    assert bucket.attributes()["ApproximateNumberOfMessages"] == 0
    assert ctx.errored_units == 0 and source.stats.objects_missing == 1
    problems = [e for e in logs if e["log_level"] in ("warning", "error")]
    assert sorted(e["reason"] for e in problems) == sorted(letters)  # one line per problem


async def test_max_receives_without_progress_dead_letters_and_deletes(
    tmp_path: Path, moto: MotoServer
) -> None:
    bucket = make_bucket(moto, visibility=3)
    records = variants(1, "x")[:3]
    raws = [orjson.dumps(r) for r in records]
    bucket.put("stuck.jsonl", b"\n".join(raws) + b"\n")
    sink = MemorySink()
    sink.verdict = lambda e: Status.ERRORED if e.raw == raws[0] else Status.DELIVERED
    give_up = {"initial_backoff": "1ms", "max_backoff": "2ms", "max_elapsed": "20ms"}
    state = MemoryStateStore()
    config = bucket.config(max_receives=2)
    for receive in (1, 2):  # each drain takes the message once more and fails it
        _, rig, ctx = await drain_once(tmp_path, config, state, sink, retry=give_up)
        assert ctx.errored_units == 1, receive
        assert rig.dead_letters() == []
    source, rig, ctx = await drain_once(tmp_path, config, state, sink, retry=give_up)
    [letter] = rig.dead_letters()
    assert letter["reason"] == "max_receives_exceeded"
    assert "stuck.jsonl" in str(letter["raw"])
    assert "received 3 times" in str(letter["detail"])
    assert ctx.errored_units == 0 and source.stats.messages_dead_lettered == 1
    assert bucket.attributes() == {
        "ApproximateNumberOfMessages": 0, "ApproximateNumberOfMessagesNotVisible": 0,
    }  # fmt: skip


async def test_key_filters_skip_objects_but_delete_their_messages(
    tmp_path: Path,
    moto: MotoServer,
) -> None:
    bucket = make_bucket(moto)
    wanted = variants(1, "w")[:4]
    bucket.put("audit/keep/a.jsonl", ndjson(wanted))
    bucket.put("audit/other/b.jsonl", ndjson(variants(1, "n")[:4]))
    bucket.put("elsewhere/keep/c.jsonl", ndjson(variants(1, "z")[:4]))
    sink = MemorySink()
    config = bucket.config(key_prefix="audit/", key_regex=r"/keep/")
    source, _, _ = await drain_once(tmp_path, config, MemoryStateStore(), sink)
    assert received_ids(sink) == ids(wanted)
    assert source.stats.objects_filtered == 2
    assert bucket.attributes()["ApproximateNumberOfMessagesNotVisible"] == 0


# -- the object reader with scripted S3 answers (what moto cannot produce) -------------


class _Body:
    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self.data, self.pos, self.fail_after = data, 0, fail_after

    async def read(self, n: int) -> bytes:
        if self.fail_after is not None and self.pos >= self.fail_after:
            raise ResponseStreamingError(error="connection reset by peer")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk

    def close(self) -> None:
        pass


class _ScriptedS3:
    """Answers GetObject from a list of scripted results (a body or an exception)."""

    def __init__(self, answers: list[_Body | Exception]) -> None:
        self.answers = answers
        self.calls: list[dict[str, Any]] = []

    async def get_object(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return {"Body": answer, "ETag": '"abc"'}


async def read_with(tmp_path: Path, s3: _ScriptedS3, sink: MemorySink) -> tuple[Outcome, Rig, Ack]:
    rig = Rig(tmp_path, [sink])
    rig.start()
    config = S3SqsSourceConfig.model_validate(
        {"id": "s3", "type": "s3_sqs", "queue_url": "http://q", "chunk_events": 5,
         "read_chunk_bytes": 1000}
    )  # fmt: skip
    source = S3SqsSource(config)
    ctx = SourceContext(rig.pipeline, MemoryStateStore(), rig.metrics)
    source._ctx = ctx
    message_ack = Ack()
    outcome = await ObjectReader(source, ctx, s3).read(
        ObjectRef("bkt", "k.jsonl.gz", etag="abc"), message_ack, "m-1"
    )
    message_ack.seal()
    await rig.finish()
    return outcome, rig, message_ack


async def test_a_body_broken_mid_stream_is_fetched_again_and_resumed_without_duplicates(
    tmp_path: Path,
) -> None:
    records = variants(2, "b")
    data = gzip.compress(ndjson(records))
    s3 = _ScriptedS3([_Body(data, fail_after=len(data) // 2), _Body(data)])
    sink = MemorySink()
    outcome, _, ack = await read_with(tmp_path, s3, sink)
    assert outcome is Outcome.DONE and len(s3.calls) == 2
    assert s3.calls[0]["IfMatch"] == "abc"
    assert received_ids(sink) == ids(records)
    assert ack.done and not ack.errored


async def test_access_denied_is_dead_lettered_with_the_missing_permission(tmp_path: Path) -> None:
    denied = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
         "ResponseMetadata": {"HTTPStatusCode": 403}}, "GetObject",
    )  # fmt: skip
    with structlog.testing.capture_logs() as logs:
        outcome, rig, ack = await read_with(tmp_path, _ScriptedS3([denied]), MemorySink())
    assert outcome is Outcome.DONE
    [letter] = rig.dead_letters()
    assert letter["reason"] == "s3_access_denied"
    assert "s3:GetObject" in str(letter["detail"])
    [line] = [e for e in logs if e["event"] == "s3_access_denied"]
    assert line["missing_permission"] == "s3:GetObject"
    assert ack.status is Status.REJECTED and not ack.errored  # committable: the message goes


async def test_transient_get_errors_leave_the_message(tmp_path: Path) -> None:
    busy = ClientError(
        {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
         "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject",
    )  # fmt: skip
    outcome, rig, _ = await read_with(tmp_path, _ScriptedS3([busy, busy, busy]), MemorySink())
    assert outcome is Outcome.FAILED
    assert rig.dead_letters() == []


class _RecordingSqs:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    async def change_message_visibility_batch(
        self, QueueUrl: str, Entries: list[dict[str, Any]]
    ) -> dict[str, Any]:
        self.entries += Entries
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


async def test_heartbeat_uses_the_latest_handle_and_stops_at_the_12_hour_cap() -> None:
    sqs = _RecordingSqs()
    keeper = VisibilityKeeper(sqs, "q", timeout=3, source_id="s3")  # extends every second
    now_ms = int(time.time() * 1000)
    # First received nearly 12 hours ago (34 s left, 30 s of which are kept as margin).
    keeper.hold("old", "old-1", now_ms - (43_200 - 34) * 1000)
    keeper.hold("new", "new-1", now_ms)
    task = asyncio.create_task(keeper.run())
    try:
        await asyncio.sleep(1.3)
        keeper.hold("new", "new-2", now_ms)  # received again: SQS honours the latest handle
        await asyncio.sleep(2.5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    old = [e["VisibilityTimeout"] for e in sqs.entries if e["ReceiptHandle"] == "old-1"]
    assert old and all(seconds <= 3 for seconds in old)  # cut to what the cap leaves
    assert old[-1] < 3
    assert keeper.stats.capped == 1 and len(keeper) == 1
    new = [e for e in sqs.entries if e["ReceiptHandle"].startswith("new")]
    assert [e["ReceiptHandle"] for e in new][-1] == "new-2"
    assert all(e["VisibilityTimeout"] == 3 for e in new) and len(new) >= 3
