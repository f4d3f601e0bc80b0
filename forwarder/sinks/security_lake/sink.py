"""The Security Lake sink: a batch becomes Parquet objects, one per class and UTC day.

`send` sorts the batch's events into partitions (OCSF class x eventDay), encodes each
partition in a worker thread into Parquet files in the spool directory (encode.py),
uploads each file with PutObject (multipart past `MULTIPART_BYTES`, never more than a
part of an object in memory) and answers per event: DELIVERED once the object holding it is in S3,
ERRORED (retried by the runner, with the same object key) when its upload failed.
Nothing is acknowledged before S3 has it, so a crash loses nothing; what a crash
repeats is what was stored but not yet committed upstream, and objects formed again
from the same events land on the same keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import structlog
from botocore.exceptions import ClientError

from forwarder import aws
from forwarder.config import AwsEndpoint, SecurityLakeSinkConfig
from forwarder.errors import SinkFatalError
from forwarder.events import Event, Status
from forwarder.sinks.base import SendResult, Sink
from forwarder.sinks.security_lake.columns import lake_classes
from forwarder.sinks.security_lake.encode import Encoded, LakeObject, encode
from forwarder.sinks.security_lake.layout import (
    CLASS_BY_LOG_TYPE,
    CLASSES,
    Location,
    event_day,
    parse_location,
    partition_prefix,
    source_name,
)

log = structlog.get_logger(__name__)

MULTIPART_BYTES = 16 << 20  # larger objects go up in parts
PART_BYTES = 8 << 20  # S3: every part but the last at least 5 MiB
UPLOADS_IN_FLIGHT = 4
CONTENT_TYPE = "application/vnd.apache.parquet"
# S3 answers that no retry fixes: an operator must change credentials, policy or bucket.
_FATAL_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket",
     "AllAccessDisabled", "InvalidBucketName", "AccountProblem", "KMS.AccessDeniedException"}
)  # fmt: skip
_SPOOL = re.compile(r"^wmf-lake-.+-(\d+)-[0-9a-z_]+$")


def locations(config: SecurityLakeSinkConfig) -> dict[int, Location]:
    """Per class, the custom source's S3 location."""
    found = {}
    for uid in CLASSES:
        uri = config.locations.get(str(uid))
        if uri is None:
            name = source_name(config.source_name, uid)
            uri = f"s3://{config.bucket}/ext/{name}/{config.source_version}/"
        found[uid] = Location(*parse_location(uri))
    return found


class SecurityLakeSink(Sink):
    def __init__(self, config: SecurityLakeSinkConfig) -> None:
        self.id = config.id
        self.view = config.view
        self.config = config
        self.send_timeout = config.timeout
        self.locations = locations(config)
        self._classes = lake_classes()
        self._endpoint = AwsEndpoint(region=config.region, endpoint_url=config.endpoint_url)
        self._roles = {uid: _role(config, uid) for uid in CLASSES}
        self._stack = AsyncExitStack()
        self._s3: dict[int, Any] = {}  # per class: its S3 client (one per distinct role)
        self._spool: Path | None = None
        self._uploads = asyncio.Semaphore(UPLOADS_IN_FLIGHT)
        self.objects_written = 0

    async def start(self) -> None:
        self._spool = _make_spool(self.config.spool_dir, self.id)
        clients: dict[aws.AssumeRole | None, Any] = {}
        for uid, role in self._roles.items():
            if role not in clients:
                clients[role] = await self._stack.enter_async_context(
                    aws.client("s3", self._endpoint, max_attempts=3, role=role)
                )
            self._s3[uid] = clients[role]

    async def close(self) -> None:
        await self._stack.aclose()
        if self._spool is not None:
            shutil.rmtree(self._spool, ignore_errors=True)
            self._spool = None

    async def send(self, events: list[Event]) -> SendResult:
        statuses = [Status.ERRORED] * len(events)
        reasons: dict[int, str] = {}
        partitions: dict[tuple[int, str], list[int]] = {}
        for index, event in enumerate(events):
            uid = CLASS_BY_LOG_TYPE.get(event.log_type or "")
            if uid is None:
                statuses[index] = Status.REJECTED
                reasons[index] = f"log type {event.log_type!r} has no OCSF class in the lake"
                continue
            day = event_day(round(event.time * 1000))
            partitions.setdefault((uid, day), []).append(index)
        encoded = await self._encode(events, partitions)
        try:
            pending: list[tuple[LakeObject, str, str, int]] = []
            for (uid, day), result in encoded.items():
                for index, reason in result.rejected.items():
                    statuses[index], reasons[index] = Status.REJECTED, reason
                location = self.locations[uid]
                prefix = partition_prefix(location, self.config.region, self.config.account_id, day)
                pending += [
                    (obj, location.bucket, prefix + obj.name, uid) for obj in result.objects
                ]
            outcomes = await asyncio.gather(
                *(
                    self._upload(self._s3[uid], obj, bucket, key)
                    for obj, bucket, key, uid in pending
                ),
                return_exceptions=True,
            )
        finally:
            for result in encoded.values():
                for obj in result.objects:
                    obj.path.unlink(missing_ok=True)
        fatal: SinkFatalError | None = None
        for (obj, *_), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, SinkFatalError):
                fatal = outcome
            if isinstance(outcome, BaseException):
                reason = _describe(outcome)
                for index in obj.indices:
                    reasons[index] = reason
            else:
                for index in obj.indices:
                    statuses[index] = Status.DELIVERED
        if fatal is not None:
            raise fatal
        return SendResult(statuses, reasons)

    async def _encode(
        self, events: list[Event], partitions: dict[tuple[int, str], list[int]]
    ) -> dict[tuple[int, str], Encoded]:
        """Every partition encoded in one worker thread; files cleaned up if cancelled."""
        spool = self._spool
        if spool is None:
            raise RuntimeError("sink not started")
        config, classes, view = self.config, self._classes, self.view

        def work() -> dict[tuple[int, str], Encoded]:
            done: dict[tuple[int, str], Encoded] = {}
            try:
                for (uid, day), indices in partitions.items():
                    done[(uid, day)] = encode(
                        classes[uid], events, indices, view, spool,
                        target_size=config.target_object_size, compression=config.compression,
                    )  # fmt: skip
            except BaseException:
                _discard(done)
                raise
            return done

        task = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # The thread cannot be stopped: its files are removed when it finishes.
            task.add_done_callback(_discard_when_done)
            raise

    async def _upload(self, s3: Any, obj: LakeObject, bucket: str, key: str) -> None:
        async with self._uploads:
            try:
                if obj.size <= MULTIPART_BYTES:
                    body = await asyncio.to_thread(obj.path.read_bytes)
                    await s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=CONTENT_TYPE)
                else:
                    await self._multipart(s3, obj.path, bucket, key)
            except ClientError as exc:
                code, status = aws.error_code(exc), aws.http_status(exc)
                what = f"{exc.operation_name} s3://{bucket}/{key}: {code or status}"
                if code in _FATAL_CODES or status in (401, 403):
                    raise SinkFatalError(f"{what}: {exc}") from exc
                raise
        self.objects_written += 1
        log.info("security_lake_object_written", sink=self.id, bucket=bucket, key=key,
                 rows=obj.rows, bytes=obj.size)  # fmt: skip

    async def _multipart(self, s3: Any, path: Path, bucket: str, key: str) -> None:
        upload = await s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=CONTENT_TYPE)
        upload_id = upload["UploadId"]
        try:
            parts = []
            with path.open("rb") as file:
                number = 1
                while chunk := await asyncio.to_thread(file.read, PART_BYTES):
                    answer = await s3.upload_part(
                        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                    )
                    parts.append({"PartNumber": number, "ETag": answer["ETag"]})
                    number += 1
            await s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise


def _role(config: SecurityLakeSinkConfig, uid: int) -> aws.AssumeRole | None:
    arn = config.role_arns.get(str(uid)) or config.role_arn
    return aws.AssumeRole(arn, config.external_id) if arn else None


def _discard(encoded: dict[tuple[int, str], Encoded]) -> None:
    for result in encoded.values():
        for obj in result.objects:
            obj.path.unlink(missing_ok=True)


def _discard_when_done(task: asyncio.Future[dict[tuple[int, str], Encoded]]) -> None:
    if not task.cancelled() and task.exception() is None:
        _discard(task.result())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return f"{aws.error_code(exc) or 'ClientError'}: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _make_spool(parent: Path | None, sink_id: str) -> Path:
    """A fresh spool directory; those of processes that are gone are removed first."""
    root = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", sink_id)
    for stale in root.glob(f"wmf-lake-{safe}-*"):
        match = _SPOOL.match(stale.name)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"wmf-lake-{safe}-{os.getpid()}-", dir=root))


def _alive(pid: int, probe: Callable[[int, int], None] = os.kill) -> bool:
    try:
        probe(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
