"""The real CLI against moto_server: S3 notifications on SQS, crash resume, heartbeat,
two replicas on one queue, and a 200 MB gzip object streamed with flat memory."""

from __future__ import annotations

import gzip
import signal
import threading
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ndjson, variants
from tests.e2e.helpers import Daemon, count_lines, ecs_ids, expected_ids, ocsf_ids, wait_for
from tests.peers import moto as moto_peer
from tests.peers.moto import MotoServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

moto = moto_peer.moto  # the session-scoped moto_server fixture


class Queue:
    """A bucket announcing ObjectCreated directly to a fresh queue."""

    def __init__(self, server: MotoServer, visibility: int = 30) -> None:
        self.server = server
        self.s3, self.sqs = server.client("s3"), server.client("sqs")
        self.bucket = MotoServer.unique("bkt")
        self.url = self.sqs.create_queue(
            QueueName=MotoServer.unique("q"), Attributes={"VisibilityTimeout": str(visibility)}
        )["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        self.s3.create_bucket(Bucket=self.bucket)
        self.s3.put_bucket_notification_configuration(
            Bucket=self.bucket,
            NotificationConfiguration={"QueueConfigurations": [
                {"QueueArn": arn["Attributes"]["QueueArn"], "Events": ["s3:ObjectCreated:*"]}
            ]},
        )  # fmt: skip

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def counts(self) -> tuple[int, int]:
        """(visible, in flight) messages."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    def config(self, root: Path, *, ecs: bool = True, sink_path: Path | None = None,
               queue_events: int = 20_000, **source: Any) -> Path:  # fmt: skip
        batch = {"max_events": 500, "max_wait": "50ms"}
        retry = {"initial_backoff": "100ms", "max_backoff": "1s"}
        queue = {"max_events": queue_events, "max_bytes": "16MiB"}
        sinks: list[dict[str, Any]] = [
            {"id": "ocsf", "type": "file", "path": str(sink_path or root / "out" / "ocsf.ndjson"),
             "schema": "ocsf", "batch": batch, "retry": retry, "queue": queue},
        ]  # fmt: skip
        if ecs:
            sinks.append({"id": "ecs", "type": "file", "path": str(root / "out" / "ecs.ndjson"),
                          "schema": "ecs", "batch": batch, "retry": retry, "queue": queue})  # fmt: skip
        config = {
            "state": {"backend": "sqlite", "path": str(root / "state" / "forwarder.db")},
            "sources": [{"id": "s3", "type": "s3_sqs", "queue_url": self.url,
                         "region": "us-east-1", "endpoint_url": self.server.endpoint_url,
                         "wait_time": "1s", **source}],
            "sinks": sinks,
            "dead_letter": {"path": str(root / "out" / "dead-letter.ndjson")},
            "telemetry": {"listen": None},
            "shutdown_grace": "20s",
        }  # fmt: skip
        root.mkdir(parents=True, exist_ok=True)
        path = root / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        return path


def test_sigkill_mid_object_then_restart_resumes_without_loss(
    tmp_path: Path, moto: MotoServer
) -> None:
    queue = Queue(moto, visibility=5)
    records = variants(2000, "k")  # 90,000 records, one gzip object
    queue.put("AWSLogs/111122223333/WorkMail/big one.jsonl.gz", gzip.compress(ndjson(records), 6))
    chunk_events, queue_events = 1000, 2000
    config = queue.config(tmp_path, chunk_events=chunk_events, queue_events=queue_events)
    out = tmp_path / "out"

    first = Daemon(config, cwd=tmp_path)
    try:
        wait_for(lambda: count_lines(out / "ecs.ndjson") > 20_000, 60, "a good part of the object")
        first.signal(signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.stop()
    delivered_first = count_lines(out / "ocsf.ndjson")
    assert delivered_first < len(records), "SIGKILL should land mid-object"
    assert queue.counts() == (0, 1)  # the message is held until its visibility lapses

    # --drain waits for the killed daemon's message to come back, then resumes it.
    second = Daemon(config, "--drain", cwd=tmp_path)
    assert second.wait(120) == 0, second.output()
    assert '"objects_resumed":1' in second.output().replace(" ", "")

    want = Counter(expected_ids(records))
    for got in (Counter(ocsf_ids(out / "ocsf.ndjson")), Counter(ecs_ids(out / "ecs.ndjson"))):
        assert not want - got, f"lost {sum((want - got).values())} events"
        duplicates = sum((got - want).values())
        # Only what was delivered but not yet committed when the process died comes twice:
        # the chunks in flight, bounded by the sink queue plus one chunk.
        assert duplicates <= queue_events + chunk_events, duplicates
        print(f"delivered before SIGKILL={delivered_first} duplicates={duplicates}")
    assert queue.counts() == (0, 0)
    assert count_lines(out / "dead-letter.ndjson") == 0


def test_sink_outage_longer_than_visibility_timeout_causes_no_redelivery(
    tmp_path: Path, moto: MotoServer
) -> None:
    queue = Queue(moto, visibility=4)
    records = variants(40, "o")
    queue.put("outage/a.jsonl", ndjson(records[:900]))
    queue.put("outage/b.jsonl.gz", gzip.compress(ndjson(records[900:])))
    # The file sink cannot create its directory while a plain file sits in the way (root
    # ignores permissions, so chmod would not do): a sink that is down until it goes.
    blocker = tmp_path / "blocked"
    blocker.write_bytes(b"")
    config = queue.config(tmp_path, ecs=False, sink_path=blocker / "ocsf.ndjson",
                          visibility_timeout="4s")  # fmt: skip
    daemon = Daemon(config, cwd=tmp_path)
    try:
        wait_for(lambda: queue.counts()[1] >= 2, 30, "the messages to be received")
        samples = []
        deadline = time.monotonic() + 10  # 2.5 visibility timeouts
        while time.monotonic() < deadline:
            samples.append(queue.counts())
            time.sleep(0.25)
        assert max(visible for visible, _ in samples) == 0, samples
        assert min(hidden for _, hidden in samples) == 2, samples
        blocker.unlink()
        wait_for(lambda: count_lines(blocker / "ocsf.ndjson") >= len(records), 30, "delivery")
        wait_for(lambda: queue.counts() == (0, 0), 30, "the messages to be deleted")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.output()
    finally:
        daemon.stop()
    assert Counter(ocsf_ids(blocker / "ocsf.ndjson")) == Counter(expected_ids(records))
    text = daemon.output()
    assert "sink_retry" in text and "s3_message_errored" not in text
    assert "sqs_visibility_extend" not in text  # no failed or refused extension


def test_two_daemons_on_one_queue_deliver_every_event(tmp_path: Path, moto: MotoServer) -> None:
    queue = Queue(moto)
    records = variants(300, "t")  # 13,500 records in 27 objects, a third gzip
    per_object = 500
    for index, start in enumerate(range(0, len(records), per_object)):
        data = ndjson(records[start : start + per_object])
        if index % 3 == 2:
            queue.put(f"two/part {index:03d}.jsonl.gz", gzip.compress(data))
        else:
            queue.put(f"two/part {index:03d}.jsonl", data)
    daemons = [
        Daemon(queue.config(tmp_path / name, ecs=False, workers=2), "--drain", cwd=tmp_path)
        for name in ("a", "b")
    ]
    try:
        for daemon in daemons:
            assert daemon.wait(120) == 0, daemon.output()
    finally:
        for daemon in daemons:
            daemon.stop()
    got_a = Counter(ocsf_ids(tmp_path / "a" / "out" / "ocsf.ndjson"))
    got_b = Counter(ocsf_ids(tmp_path / "b" / "out" / "ocsf.ndjson"))
    want = Counter(expected_ids(records))
    assert not want - (got_a + got_b), "events lost"
    assert got_a + got_b == want  # no visibility lapse, so not even a duplicate
    print(f"daemon a delivered {got_a.total()}, daemon b {got_b.total()}")
    assert queue.counts() == (0, 0)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _upload_gzip_stream(queue: Queue, key: str, target_bytes: int) -> int:
    """Generate records and multipart-upload them gzip'd, holding one part at a time."""
    s3 = queue.s3
    upload = s3.create_multipart_upload(Bucket=queue.bucket, Key=key)["UploadId"]
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    parts: list[dict[str, Any]] = []
    pending: list[bytes] = []
    size = records = total = 0
    copy = 0

    def send(data: bytes) -> None:
        number = len(parts) + 1
        etag = s3.upload_part(Bucket=queue.bucket, Key=key, UploadId=upload,
                              PartNumber=number, Body=data)["ETag"]  # fmt: skip
        parts.append({"PartNumber": number, "ETag": etag})

    while total < target_bytes:
        batch = variants(20, f"r{copy}-", padding=4096)
        copy += 1
        records += len(batch)
        compressed = packer.compress(ndjson(batch))
        if compressed:
            pending.append(compressed)
            size += len(compressed)
            total += len(compressed)
        if size >= 16 << 20:
            send(b"".join(pending))
            pending, size = [], 0
    pending.append(packer.flush())
    send(b"".join(pending))
    s3.complete_multipart_upload(Bucket=queue.bucket, Key=key, UploadId=upload,
                                 MultipartUpload={"Parts": parts})  # fmt: skip
    return records


def test_200mb_gzip_object_streams_with_flat_memory(tmp_path: Path, moto: MotoServer) -> None:
    queue = Queue(moto)
    config = queue.config(tmp_path, ecs=False, queue_events=2000, chunk_events=500)
    daemon = Daemon(config, cwd=tmp_path)
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(_rss_kib(daemon.proc.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    try:
        time.sleep(3)  # started and idle: the baseline
        idle = _rss_kib(daemon.proc.pid)
        records = _upload_gzip_stream(queue, "big/200mb.jsonl.gz", 200 << 20)
        head = queue.s3.head_object(Bucket=queue.bucket, Key="big/200mb.jsonl.gz")
        assert head["ContentLength"] >= 200 << 20
        sampler.start()
        out = tmp_path / "out" / "ocsf.ndjson"
        wait_for(lambda: count_lines(out) >= records, 150, "the whole object")
        wait_for(lambda: queue.counts() == (0, 0), 30, "the message to be deleted")
        stop.set()
        sampler.join()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.output()
    finally:
        stop.set()
        daemon.stop()
        # moto keeps objects in memory: give the rest of the session its RAM back.
        queue.s3.delete_object(Bucket=queue.bucket, Key="big/200mb.jsonl.gz")
    peak = max(samples)
    print(f"object {head['ContentLength'] >> 20} MiB gzip, {records} records; "
          f"RSS idle {idle >> 10} MiB, peak {peak >> 10} MiB")  # fmt: skip
    assert count_lines(out) == records
    # Bounded by the read chunk, the chunk of events and the sink queue: far below the
    # object's 200 MB (or its ~270 MB inflated), and flat from the start to the end.
    assert peak - idle < 120 << 10, (idle, peak)
    quarter = samples[: max(1, len(samples) // 4)]
    assert peak - max(quarter) < 40 << 10, (max(quarter), peak)
