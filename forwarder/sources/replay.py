"""Replay: dead-letter entries fed back through the pipeline (`replay-dead-letter`).

Reads dead-letter NDJSON (gzip or not) from a file, a directory tree of them, or an
`s3://bucket/prefix/`, and hands each entry's original bytes to the pipeline as an
event with the entry's origin and log type. Mapping, every sink, retries, acks and the
dead letter then work exactly as in `run --drain`. One ack per entry tells, entry by
entry, whether it was delivered, dead-lettered again or left undelivered. Nothing is
committed or deleted: the input stays as it was.

What is read is fixed when reading starts (a file up to its size then, the objects
listed then), so replaying into the dead letter being read never loops.

An `s3_object_missing` entry holds the notification, not the data: replaying it fetches
the object again (GetObject with the entry's bucket, key and version) and sends its
records, under the entry's one ack. Still missing, or unreadable, the entry is
dead-lettered again as it was (its reason, with why in the detail).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections import Counter
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import structlog
from botocore.exceptions import ClientError

from forwarder import aws, mapping
from forwarder.acks import Ack
from forwarder.config import AwsEndpoint
from forwarder.decode import Line, StreamDecoder
from forwarder.errors import DecodeError
from forwarder.events import Batch, Event, Origin, Status
from forwarder.sources.base import Source, SourceContext
from forwarder.sources.lines import append_line_events
from forwarder.sources.s3_sqs.notifications import log_type_from_key

log = structlog.get_logger(__name__)

SOURCE_ID = "replay"
_SUFFIXES = (".ndjson", ".jsonl", ".json", ".ndjson.gz", ".jsonl.gz", ".json.gz")
_READ_BYTES = 256 << 10
_INVALID = "invalid_dead_letter_entry"
_READ_ERRORS = (OSError, DecodeError, ClientError, *aws.TRANSIENT_ERRORS)
_MISSING = "s3_object_missing"  # its entry names an object to fetch again


@dataclass(slots=True)
class Entry:
    """One dead-letter entry, ready to become an event again."""

    raw: bytes
    origin: Origin
    reason: str  # why it was dead-lettered; "" when the entry itself is unreadable
    log_type: str | None = None
    sink: str | None = None
    error: str | None = None  # set when the entry cannot be replayed as it is
    error_detail: str = ""

    def event(self, ack: Ack) -> Event:
        return Event(
            raw=self.raw, origin=self.origin, ack=ack, log_type=self.log_type,
            error=self.error, error_detail=self.error_detail,
        )  # fmt: skip


def parse_entry(data: bytes, where: Origin) -> Entry:
    """A dead-letter line as an Entry; an unreadable line becomes an Entry preset to fail."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return _invalid(data, where, f"not JSON: {exc}")
    if not isinstance(doc, dict) or not isinstance(doc.get("reason"), str):
        return _invalid(data, where, "not a dead-letter entry (no reason)")
    raw: bytes
    if isinstance(doc.get("raw"), str):
        raw = doc["raw"].encode("utf-8")
    elif isinstance(doc.get("raw_base64"), str):
        try:
            raw = base64.b64decode(doc["raw_base64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            return _invalid(data, where, f"raw_base64: {exc}")
    else:
        return _invalid(data, where, "no raw or raw_base64")
    log_type = doc.get("log_type")
    entry = Entry(
        raw=raw,
        origin=_origin(doc.get("origin"), where),
        reason=doc["reason"],
        log_type=mapping.normalize_log_type(log_type) if isinstance(log_type, str) else None,
        sink=doc["sink"] if isinstance(doc.get("sink"), str) else None,
    )
    truncated = doc.get("raw_truncated_from")
    if truncated is not None:
        entry.error = "raw_truncated"
        entry.error_detail = (
            f"the dead letter kept {len(raw)} of {truncated} bytes; the original is not there"
        )
    return entry


def _invalid(data: bytes, where: Origin, detail: str) -> Entry:
    return Entry(
        raw=data, origin=where, reason="", error=_INVALID,
        error_detail=f"{where.partition} at offset {where.offset}: {detail}",
    )  # fmt: skip


def _origin(value: Any, fallback: Origin) -> Origin:
    if not isinstance(value, dict):
        return fallback
    source_id, partition, offset = (
        value.get("source_id"),
        value.get("partition"),
        value.get("offset"),
    )
    if not isinstance(source_id, str) or not isinstance(partition, str):
        return fallback
    return Origin(source_id, partition, offset if isinstance(offset, int) else 0)


# -- reading ---------------------------------------------------------------------------


def local_files(path: Path) -> list[Path]:
    """The dead-letter files at `path`: the file itself, or those under the directory."""
    if path.is_dir():
        found = (p for p in path.rglob("*") if p.name.endswith(_SUFFIXES) and p.is_file())
        return sorted(found)
    return [path]


class DeadLetterInput:
    """The files or S3 objects `replay-dead-letter PATH` reads, fixed when listed."""

    def __init__(self, location: str, endpoint: AwsEndpoint) -> None:
        self.location = location
        self.endpoint = endpoint
        self._stack = contextlib.AsyncExitStack()
        self._s3: Any = None

    @property
    def is_s3(self) -> bool:
        return self.location.startswith("s3://")

    async def __aenter__(self) -> DeadLetterInput:
        if self.is_s3:
            self._s3 = await self._stack.enter_async_context(aws.client("s3", self.endpoint))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def list(self) -> list[tuple[str, int]]:
        """(name, bytes to read) per file or object, in key / path order."""
        if not self.is_s3:
            paths = await asyncio.to_thread(local_files, Path(self.location))
            return [(str(path), (await asyncio.to_thread(path.stat)).st_size) for path in paths]
        bucket, prefix = self._bucket_prefix()
        found: list[tuple[str, int]] = []
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        async for page in pages:
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):
                    found.append((f"s3://{bucket}/{item['Key']}", int(item["Size"])))
        return sorted(found)

    async def chunks(self, name: str, size: int) -> AsyncGenerator[bytes, None]:
        """The first `size` bytes of a file or object (what is appended later is not ours)."""
        if self.is_s3:
            bucket, key = name[len("s3://") :].split("/", 1)
            response = await self._s3.get_object(Bucket=bucket, Key=key)
            body = response["Body"]
            try:
                while data := await body.read(_READ_BYTES):
                    yield data
            finally:
                body.close()
            return
        handle: BinaryIO = await asyncio.to_thread(Path(name).open, "rb")
        try:
            left = size
            while left > 0 and (
                data := await asyncio.to_thread(handle.read, min(_READ_BYTES, left))
            ):
                left -= len(data)
                yield data
        finally:
            await asyncio.to_thread(handle.close)

    def _bucket_prefix(self) -> tuple[str, str]:
        bucket, _, prefix = self.location[len("s3://") :].partition("/")
        return bucket, prefix


async def read_entries(
    location: str, endpoint: AwsEndpoint, *, max_line_bytes: int, stats: ReplayStats
) -> AsyncGenerator[Entry, None]:
    """Every entry at `location`; a file or object that cannot be read is counted, skipped."""
    async with DeadLetterInput(location, endpoint) as source:
        try:
            listing = await source.list()
        except _READ_ERRORS as exc:
            stats.read_failures += 1
            log.error("replay_list_failed", location=location, error=_describe(exc))
            return
        for name, size in listing:
            decoder = StreamDecoder(max_line_bytes=max_line_bytes)
            try:
                async with contextlib.aclosing(source.chunks(name, size)) as chunks:
                    async for data in chunks:
                        for line in decoder.feed(data):
                            yield line_entry(name, line, max_line_bytes)
                for line in decoder.finish():
                    yield line_entry(name, line, max_line_bytes)
            except _READ_ERRORS as exc:
                stats.read_failures += 1
                log.error("replay_read_failed", input=name, error=_describe(exc))


def line_entry(name: str, line: Line, max_line_bytes: int) -> Entry:
    where = Origin(SOURCE_ID, name, line.start)
    if line.oversize:
        return Entry(
            raw=line.data, origin=where, reason="", error="line_too_long",
            error_detail=f"{name} at offset {line.start}: a dead-letter line longer than "
            f"{max_line_bytes} bytes; first 1024 bytes kept",
        )  # fmt: skip
    return parse_entry(line.data, where)


# -- the source ------------------------------------------------------------------------


@dataclass
class ReplayStats:
    read: int = 0  # entries read (and lines that were not entries)
    skipped: int = 0  # not matching --reason
    delivered: int = 0  # every sink has it now
    rejected_again: int = 0  # dead-lettered anew
    undelivered: int = 0  # a sink gave up (retry.max_elapsed): still only in the input
    read_failures: int = 0  # files or objects that could not be read to the end
    reasons: Counter[str] = field(default_factory=Counter)  # replayed, by original reason

    @property
    def replayed(self) -> int:
        return self.read - self.skipped

    @property
    def failed(self) -> bool:
        return bool(self.rejected_again or self.undelivered or self.read_failures)


class ReplaySource(Source):
    """Dead-letter entries as a source; with drain semantics it ends when they are all sent."""

    def __init__(
        self,
        location: str,
        endpoint: AwsEndpoint,
        *,
        reasons: Iterable[str] = (),
        max_line_bytes: int,
        chunk_events: int = 500,
    ) -> None:
        self.id = SOURCE_ID
        self.location = location
        self.endpoint = endpoint
        self.reasons = frozenset(reasons)
        self.max_line_bytes = max_line_bytes
        self.chunk_events = chunk_events
        self.stats = ReplayStats()
        self._outstanding = 0
        self._ctx: SourceContext | None = None
        self.objects_fetched = 0  # s3_object_missing entries whose object was read again

    async def run(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        events: list[Event] = []
        async with contextlib.AsyncExitStack() as stack:
            s3: Any = None
            entries = await stack.enter_async_context(contextlib.aclosing(self.entries()))
            async for entry in entries:
                if ctx.stopping.is_set():
                    break
                ref = _object_ref(entry)
                if ref is None:
                    events.append(entry.event(self._ack()))
                    if len(events) >= self.chunk_events:
                        await self._send(ctx, events)
                        events = []
                    continue
                await self._send(ctx, events)
                events = []
                if s3 is None:
                    s3 = await stack.enter_async_context(aws.client("s3", self.endpoint))
                await self._fetch_again(ctx, s3, entry, ref)
        await self._send(ctx, events)

    async def _fetch_again(
        self, ctx: SourceContext, s3: Any, entry: Entry, ref: dict[str, str]
    ) -> None:
        """Send the records of the object an `s3_object_missing` entry names, one ack."""
        ack = self._ack()
        request = {"Bucket": ref["bucket"], "Key": ref["key"]}
        if ref.get("version_id"):
            request["VersionId"] = ref["version_id"]
        try:
            response = await s3.get_object(**request)
        except _READ_ERRORS as exc:
            entry.error = entry.reason
            entry.error_detail = f"fetched again for the replay: {_describe(exc)}"
            await self._send(ctx, [entry.event(ack)])
            return
        origin_id = entry.origin.source_id
        partition = f"{ref['bucket']}/{ref['key']}#{ref.get('etag', '')}"
        log_type = entry.log_type or log_type_from_key(ref["key"])
        decoder = StreamDecoder(max_line_bytes=self.max_line_bytes)
        body = response["Body"]
        events: list[Event] = []
        sent = 0

        async def lines(found: list[Line]) -> None:
            nonlocal events, sent
            for line in found:
                append_line_events(events, line, Origin(origin_id, partition, line.start), ack,
                                   log_type, max_line_bytes=self.max_line_bytes)  # fmt: skip
                if len(events) >= self.chunk_events:
                    sent += len(events)
                    await self._hand_over(ctx, events)
                    events = []

        try:
            while data := await body.read(_READ_BYTES):
                await lines(decoder.feed(data))
            await lines(decoder.finish())
        except _READ_ERRORS as exc:  # part of it went: the entry counts as undelivered
            log.error("replay_object_read_failed", bucket=ref["bucket"], key=ref["key"],
                      error=_describe(exc))  # fmt: skip
            ack.expect(1)
            ack.resolve(Status.ERRORED)
        finally:
            body.close()
        await self._hand_over(ctx, events)
        self.objects_fetched += 1
        log.info("replay_object_fetched", bucket=ref["bucket"], key=ref["key"],
                 records=sent + len(events))  # fmt: skip
        ack.seal()

    async def _hand_over(self, ctx: SourceContext, events: list[Event]) -> None:
        if events:
            ctx.metrics.records_read.add(len(events), {"source": self.id})
            await ctx.pipeline.send(Batch(events))

    async def entries(self) -> AsyncGenerator[Entry, None]:
        """The entries to replay (matching --reason), counted in `stats`."""
        stats = self.stats
        found = read_entries(
            self.location, self.endpoint, max_line_bytes=self.max_line_bytes, stats=stats
        )
        async with contextlib.aclosing(found) as entries:
            async for entry in entries:
                stats.read += 1
                if self.reasons and entry.reason not in self.reasons:
                    stats.skipped += 1
                    continue
                stats.reasons[entry.reason or entry.error or ""] += 1
                yield entry

    def _ack(self) -> Ack:
        ack = Ack()
        self._outstanding += 1
        ack.on_done(self._settled)
        return ack

    def _settled(self, ack: Ack) -> None:
        self._outstanding -= 1
        if ack.errored:
            self.stats.undelivered += 1
            if self._ctx is not None:
                self._ctx.errored_units += 1
        elif ack.status is Status.REJECTED:
            self.stats.rejected_again += 1
        else:
            self.stats.delivered += 1

    async def _send(self, ctx: SourceContext, events: list[Event]) -> None:
        if not events:
            return
        ctx.metrics.records_read.add(len(events), {"source": self.id})
        await ctx.pipeline.send(Batch(events))
        for event in events:
            event.ack.seal()  # only once handed over: an interrupted send never completes

    async def commit_loop(self, ctx: SourceContext) -> None:
        # Nothing to commit upstream: the input is left as it was.
        self._ctx = ctx
        await asyncio.get_running_loop().create_future()

    async def flush(self) -> None:
        return None

    def in_flight(self) -> int:
        return self._outstanding


def _object_ref(entry: Entry) -> dict[str, str] | None:
    """Bucket, key (and version, etag) of an `s3_object_missing` entry; None otherwise."""
    if entry.reason != _MISSING or entry.error is not None:
        return None
    try:
        doc = orjson.loads(entry.raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    if not isinstance(doc.get("bucket"), str) or not isinstance(doc.get("key"), str):
        return None
    return {name: doc[name] for name in ("bucket", "key", "version_id", "etag")
            if isinstance(doc.get(name), str)}  # fmt: skip


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return f"{aws.error_code(exc)}: {exc}"
    return f"{type(exc).__name__}: {exc}"
