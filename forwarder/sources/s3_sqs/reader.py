"""One S3 object, streamed into chunks of events: never the whole object in memory.

GetObject's body is read `read_chunk_bytes` at a time into a StreamDecoder (gzip told
by its magic bytes, inflated step by step); lines become events in chunks of about
`chunk_events`, one Ack each. Every chunk ack feeds the message's ack (the message is
deleted only when all of them are done) and is tracked, in order, on the object's
progress lane, so a redelivered message resumes after the last committed line.

A body that breaks mid-stream is fetched again (up to `_ATTEMPTS` times) and the
decoder skips what was already handed over. 404/403/412 are permanent: the object is
dead-lettered with the reason. Other errors leave the message for SQS to redeliver.
"""

from __future__ import annotations

import asyncio
import enum
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from botocore.exceptions import ClientError

from forwarder.acks import Ack
from forwarder.aws import TRANSIENT_ERRORS, error_code, http_status
from forwarder.decode import (
    Line,
    RawRecord,
    StreamDecoder,
    decode_document,
    looks_like_document,
)
from forwarder.errors import DecodeError, StateError
from forwarder.events import Batch, Event, Origin, Status
from forwarder.sources.lines import append_line_events
from forwarder.sources.s3_sqs.notifications import ObjectRef, log_type_from_key
from forwarder.sources.s3_sqs.progress import Progress, progress_key

if TYPE_CHECKING:
    from forwarder.sources.base import SourceContext
    from forwarder.sources.s3_sqs.source import S3SqsSource

log = structlog.get_logger(__name__)

_ATTEMPTS = 3
_DOCUMENT_LIMIT = 64 << 20  # a pretty-printed JSON document is read whole, up to this
# Errors that say "try again" while fetching or streaming a body.


class Outcome(enum.Enum):
    DONE = "done"  # every line handed over (or the object dead-lettered)
    INTERRUPTED = "interrupted"  # stopping: the rest is read after the restart
    FAILED = "failed"  # transient trouble: the message must come back


class _LaneErrored(Exception):
    """A chunk of this object ended ERRORED: stop, the message will be redelivered."""


class _ObjectRun:
    """One read of one object in this process; its ack collects the read's chunk acks.

    S3 may announce an object twice (and moto always does for multipart uploads): a
    second message for an object that is being read here waits for the first read to
    settle and, if every chunk of it was delivered, counts the object as done.
    """

    def __init__(self, registry: dict[str, _ObjectRun]) -> None:
        self.registry = registry
        self.ack = Ack()
        self.settled = asyncio.Event()
        self.ok = False
        self.lane: str | None = None

    def close(self, outcome: Outcome) -> None:
        def settle(ack: Ack) -> None:
            self.ok = outcome is Outcome.DONE and not ack.errored
            self.settled.set()
            if self.lane is not None and self.registry.get(self.lane) is self:
                del self.registry[self.lane]

        self.ack.on_done(settle)
        self.ack.seal()


class ObjectReader:
    def __init__(self, source: S3SqsSource, ctx: SourceContext, s3: Any) -> None:
        self.source = source
        self.config = source.config
        self.ctx = ctx
        self.s3 = s3
        self._reading: dict[str, _ObjectRun] = {}

    async def read(self, ref: ObjectRef, message_ack: Ack, message_id: str) -> Outcome:
        run = _ObjectRun(self._reading)
        outcome = Outcome.FAILED
        try:
            outcome = await self._read(ref, message_ack, message_id, run)
        finally:
            run.close(outcome)
        return outcome

    async def _read(
        self, ref: ObjectRef, message_ack: Ack, message_id: str, run: _ObjectRun
    ) -> Outcome:
        start: Progress | None = None
        if ref.etag is not None:
            lane = progress_key(self.source.id, ref.bucket, ref.key, ref.etag, ref.version_id)
            start = await self._start(run, lane)
            if start is None or start.done:
                return Outcome.FAILED if start is None else Outcome.DONE
        keys = [ref.key] + ([ref.alternate_key] if ref.alternate_key else [])
        builder: _ChunkBuilder | None = None
        attempt = 0
        while True:
            error: BaseException
            try:
                response = await self._get(ref, keys[0])
            except ClientError as exc:
                if _missing(exc) and len(keys) > 1:
                    keys.pop(0)
                    continue
                refused = await self._refused(ref, message_ack, message_id, exc)
                if refused is not None:
                    return refused
                error = exc
            except TRANSIENT_ERRORS as exc:
                error = exc
            else:
                body = response["Body"]
                try:
                    if start is None:  # the notification had no ETag: the response has it
                        etag = str(response.get("ETag", "")).strip('"')
                        version = response.get("VersionId") or ref.version_id
                        lane = progress_key(self.source.id, ref.bucket, ref.key, etag, version)
                        start = await self._start(run, lane)
                        if start is None or start.done:
                            return Outcome.FAILED if start is None else Outcome.DONE
                    if builder is None:
                        builder = self._builder(ref, run, start, message_ack)
                    return await self._stream_or_fail(body, builder)
                except _LaneErrored:
                    return Outcome.FAILED
                except TRANSIENT_ERRORS as exc:
                    error = exc  # fetched again below; the decoder skips what was taken
                finally:
                    body.close()
            attempt += 1
            if attempt >= _ATTEMPTS:
                self._log_failed(ref, error)
                return Outcome.FAILED
            await asyncio.sleep(0.5 * attempt)

    async def _start(self, run: _ObjectRun, lane: str) -> Progress | None:
        """Where to start (done if another read here just finished it); None: no state."""
        while (other := self._reading.get(lane)) is not None and other is not run:
            await other.settled.wait()
            if other.ok:
                self.source.stats.objects_already_done += 1
                return Progress(done=True)
        self._reading[lane] = run
        run.lane = lane
        saved = await self._load(lane)
        if saved is not None and saved.done:
            self.source.stats.objects_already_done += 1
        return saved

    def _builder(
        self, ref: ObjectRef, run: _ObjectRun, start: Progress, message_ack: Ack
    ) -> _ChunkBuilder:
        assert run.lane is not None  # set by _start
        self.source.reopen_lane(run.lane)
        if start.offset:
            self.source.stats.objects_resumed += 1
        return _ChunkBuilder(self, ref, run.lane, start, (message_ack, run.ack))

    async def _stream_or_fail(self, body: Any, builder: _ChunkBuilder) -> Outcome:
        try:
            return await self._stream(body, builder)
        except DecodeError as exc:
            await builder.flush()
            await builder.fail_object(exc)
            return Outcome.DONE

    async def _refused(
        self, ref: ObjectRef, message_ack: Ack, message_id: str, exc: ClientError
    ) -> Outcome | None:
        """Permanent refusals dead-letter the object (DONE); None: worth another try."""
        code, status = error_code(exc), http_status(exc)
        stats = self.source.stats
        if _missing(exc):
            await self._dead_letter(ref, message_ack, message_id, "s3_object_missing", exc)
            stats.objects_missing += 1
        elif code == "AccessDenied" or status == 403:
            await self._access_denied(ref, message_ack, message_id, exc)
        elif code == "PreconditionFailed" or status == 412:
            # Overwritten since the notification: the announced content is gone, and the
            # new content comes with its own notification.
            await self._dead_letter(ref, message_ack, message_id, "s3_object_changed", exc)
            stats.objects_changed += 1
        elif code == "InvalidObjectState":
            await self._dead_letter(ref, message_ack, message_id, "s3_object_archived", exc)
        else:
            return None
        return Outcome.DONE

    async def _get(self, ref: ObjectRef, key: str) -> dict[str, Any]:
        params: dict[str, Any] = {"Bucket": ref.bucket, "Key": key}
        if ref.etag:
            params["IfMatch"] = ref.etag
        if ref.version_id:
            params["VersionId"] = ref.version_id
        response: dict[str, Any] = await self.s3.get_object(**params)
        return response

    async def _load(self, lane: str) -> Progress | None:
        """The committed progress (zero if none); None if the store cannot be read."""
        try:
            item = await self.ctx.state.get(lane)
        except StateError as exc:
            log.error("s3_progress_unreadable", source=self.source.id, key=lane, error=str(exc))
            return None
        if item is None:
            return Progress()
        try:
            return Progress.from_value(item.value)
        except (KeyError, TypeError, ValueError):
            log.warning("s3_progress_invalid", source=self.source.id, key=lane)
            return Progress()

    async def _stream(self, body: Any, builder: _ChunkBuilder) -> Outcome:
        config, ctx, stats = self.config, self.ctx, self.source.stats
        decoder = StreamDecoder(
            max_line_bytes=config.max_line_bytes, max_inflated_bytes=config.max_inflated_bytes
        )
        decoder.skip_to(builder.end)
        document = builder.end == 0
        read_size = config.read_chunk_bytes
        while True:
            if ctx.stopping.is_set():
                await builder.flush()
                return Outcome.INTERRUPTED
            data = await body.read(read_size)
            if not data:
                break
            stats.bytes_read += len(data)
            lines = decoder.feed(data)
            if document and lines:
                document = False
                if not lines[0].oversize and looks_like_document(lines[0].data):
                    return await self._read_document(body, decoder, lines, builder)
            await builder.add_lines(lines)
        await builder.add_lines(decoder.finish())
        await builder.flush(finished=True)
        self.source.stats.objects_read += 1
        return Outcome.DONE

    async def _read_document(
        self, body: Any, decoder: StreamDecoder, first: list[Line], builder: _ChunkBuilder
    ) -> Outcome:
        """A pretty-printed JSON document (an array, a payload): read whole, bounded."""
        limit = min(self.config.max_inflated_bytes, _DOCUMENT_LIMIT)
        parts = [line.data for line in first]
        size = sum(len(part) for part in parts)
        while data := await body.read(self.config.read_chunk_bytes):
            self.source.stats.bytes_read += len(data)
            for line in decoder.feed(data):
                parts.append(line.data)
                size += len(line.data)
            if size > limit:
                raise DecodeError("document_too_large", f"over {limit} bytes")
        parts.extend(line.data for line in decoder.finish())
        records = decode_document(b"\n".join(parts), max_bytes=limit + len(parts))
        await builder.add_document(records, decoder.offset)
        self.source.stats.objects_read += 1
        return Outcome.DONE

    async def _access_denied(
        self, ref: ObjectRef, message_ack: Ack, message_id: str, exc: ClientError
    ) -> None:
        action = "s3:GetObjectVersion" if ref.version_id else "s3:GetObject"
        self.source.stats.objects_denied += 1
        log.error(
            "s3_access_denied", source=self.source.id, bucket=ref.bucket, key=ref.key,
            missing_permission=action,
            hint=f"grant {action} on arn:aws:s3:::{ref.bucket}/*, and kms:Decrypt if the "
            "object is SSE-KMS encrypted",
        )  # fmt: skip
        await self._dead_letter(ref, message_ack, message_id, "s3_access_denied", exc,
                                extra=f"missing permission {action}")  # fmt: skip

    async def _dead_letter(
        self, ref: ObjectRef, message_ack: Ack, message_id: str, reason: str,
        exc: Exception, extra: str = "",
    ) -> None:  # fmt: skip
        # The dead-letter writer logs the one line for it (reason, detail, partition).
        detail = f"{exc}; {extra}" if extra else str(exc)
        raw = orjson.dumps({**ref.as_dict(), "message_id": message_id})
        origin = Origin(self.source.id, _partition(ref), 0)
        event = Event(raw=raw, origin=origin, ack=message_ack, error=reason, error_detail=detail)
        await self.ctx.pipeline.send(Batch([event]))

    def _log_failed(self, ref: ObjectRef, exc: BaseException) -> None:
        self.source.stats.objects_failed += 1
        log.warning("s3_object_read_failed", source=self.source.id, bucket=ref.bucket,
                    key=ref.key, error=f"{type(exc).__name__}: {exc}",
                    action="left for SQS to redeliver")  # fmt: skip


def _missing(exc: ClientError) -> bool:
    return error_code(exc) in ("NoSuchKey", "NotFound", "404") or http_status(exc) == 404


def _partition(ref: ObjectRef) -> str:
    return f"{ref.bucket}/{ref.key}#{ref.etag or ''}"


class _ChunkBuilder:
    """Groups lines into ack units of about `chunk_events` records and sends them."""

    def __init__(
        self, reader: ObjectReader, ref: ObjectRef, lane: str, start: Progress,
        feeds: tuple[Ack, ...],
    ) -> None:  # fmt: skip
        source = reader.source
        self.reader = reader
        self.source = source
        self.ctx = reader.ctx
        self.lane = lane
        self.feeds = feeds  # the message's ack, the object read's ack
        self.partition = _partition(ref)
        self.limit = source.config.chunk_events
        self.max_line = source.config.max_line_bytes
        self.log_type = source.config.log_type or log_type_from_key(ref.key)
        self.fallback_time = ref.event_time or 0.0
        self.ack = Ack()
        self.events: list[Event] = []
        self.end = start.offset  # just past the last line taken
        self.records = start.records  # records in the lines before `end`
        self.tracked_end = start.offset

    async def add_lines(self, lines: list[Line]) -> None:
        source_id, partition, log_type = self.source.id, self.partition, self.log_type
        fallback_time = self.fallback_time
        ack, events = self.ack, self.events
        for line in lines:
            origin = Origin(source_id, partition, line.start)
            before = len(events)
            append_line_events(
                events, line, origin, ack, log_type,
                max_line_bytes=self.max_line, fallback_time=fallback_time,
            )  # fmt: skip
            self.records += len(events) - before
            self.end = line.end
            if len(events) >= self.limit:
                await self.flush()
                ack, events = self.ack, self.events

    async def add_document(self, records: list[RawRecord], end: int) -> None:
        """A whole document's records: committed only at its end (offset 0 until then)."""
        origin = Origin(self.source.id, self.partition, 0)
        for start in range(0, len(records), self.limit):
            for r in records[start : start + self.limit]:
                self.events.append(
                    Event(raw=r.raw, origin=origin, ack=self.ack, log_type=self.log_type,
                          time=r.time_ms / 1000.0 if r.time_ms else self.fallback_time)
                )  # fmt: skip
            if start + self.limit < len(records):
                await self.flush()
        self.records += len(records)
        self.end = end
        await self.flush(finished=True)

    async def flush(self, finished: bool = False) -> None:
        """Send the open chunk; its ack feeds the message's and the object's progress."""
        if not self.events and self.end == self.tracked_end and not finished:
            return
        if self.source.lane_errored(self.lane):
            raise _LaneErrored
        events, ack = self.events, self.ack
        self.events, self.ack = [], Ack()
        feeds = self.feeds
        for feed in feeds:
            feed.expect(1)

        def settle(chunk: Ack) -> None:
            status = Status.ERRORED if chunk.errored else chunk.status
            for feed in feeds:
                feed.resolve(status)

        ack.on_done(settle)
        self.source.track_progress(self.lane, ack, Progress(self.end, self.records, finished))
        self.tracked_end = self.end
        if events:
            self.ctx.metrics.records_read.add(len(events), {"source": self.source.id})
            # Sealed only once every event is handed over: an ack whose send was
            # interrupted must never complete, or its progress would be committed.
            await self.ctx.pipeline.send(Batch(events))
        ack.seal()

    async def fail_object(self, exc: DecodeError) -> None:
        """The object as a whole is unreadable (corrupt gzip, bomb): dead-letter, finish it."""
        log.warning("s3_object_unreadable", source=self.source.id, partition=self.partition,
                    reason=exc.reason)  # fmt: skip
        self.events.append(
            Event(raw=self.partition.encode(), origin=Origin(self.source.id, self.partition,
                  self.end), ack=self.ack, error=exc.reason, error_detail=exc.detail or str(exc))
        )  # fmt: skip
        self.records += 1
        await self.flush(finished=True)
