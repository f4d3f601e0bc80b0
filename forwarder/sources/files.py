"""Local files: the embedded default inbox, and backfills.

Watches one directory (by polling: portable, and fine at inbox scale) for NDJSON
files, gzip or not, and CloudWatch Logs subscription payloads. Per file it keeps a
cursor; the offset in the state store moves only over chunks every sink has
acknowledged (OrderedCommitter, one lane per file). A file that is replaced (new
inode or different first bytes) or truncated is read again from the start.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import time
from pathlib import Path
from typing import Any, BinaryIO

import structlog

from forwarder.acks import Ack, OrderedCommitter
from forwarder.config import FilesSourceConfig
from forwarder.decode import (
    Line,
    StreamDecoder,
    decode_document,
    looks_like_document,
)
from forwarder.errors import DecodeError
from forwarder.events import Batch, Event, Origin
from forwarder.leases import LeaseManager, replica_id
from forwarder.sources.base import LaneSource, SourceContext, observe_lag
from forwarder.sources.file_cursor import FINGERPRINT_BYTES, Cursor, FileCheckpoint, fingerprint
from forwarder.sources.lines import append_line_events
from forwarder.state.base import Versioned

log = structlog.get_logger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"


class FilesSource(LaneSource):
    def __init__(self, config: FilesSourceConfig) -> None:
        super().__init__()
        self.id = config.id
        self.config = config
        self.directory = config.path
        self._cursors: dict[str, Cursor] = {}
        self._committer: OrderedCommitter[FileCheckpoint] = OrderedCommitter(
            self._commit, self._on_errored
        )
        self._next_balance = 0.0
        self._greedy = False  # draining: claim every free lease, not just a fair share

    # -- state -----------------------------------------------------------------------

    def _state_key(self, lane: str) -> str:
        return f"files/{self.id}/{lane}"

    async def _commit(self, lane: str, checkpoint: FileCheckpoint) -> None:
        ctx = self._require_ctx()
        if self._leases is not None and not self._leases.owns(lane):
            return  # another replica reads this file now; its checkpoint is its own
        try:
            await ctx.state.put(self._state_key(lane), checkpoint.as_value())
        except Exception:
            ctx.metrics.checkpoint_failures.add(1, {"source": self.id})
            raise
        ctx.metrics.checkpoint_commits.add(1, {"source": self.id})

    def _on_errored(self, lane: str, last: FileCheckpoint | None) -> None:
        # A chunk could not be delivered within retry.max_elapsed: read the file again
        # from the last committed offset, so nothing after it is skipped.
        ctx = self._require_ctx()
        ctx.errored_units += 1
        cursor = self._cursors.get(lane)
        if cursor is None:
            return
        cursor.offset = last.offset if last is not None else 0
        cursor.finished = last.finished if last is not None else False
        cursor.dirty = True
        log.warning("file_rewind", source=self.id, path=lane, offset=cursor.offset)

    # -- reading ---------------------------------------------------------------------

    async def run(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self.directory.mkdir(parents=True, exist_ok=True)
        if ctx.state.shared:
            self._leases = LeaseManager(
                ctx.state, f"files/{self.id}", replica_id(),
                duration=self.config.lease_duration, min_replicas=ctx.replicas,
            )  # fmt: skip
        else:
            await self._load_checkpoints(ctx)
        log.info("files_source_started", source=self.id, path=str(self.directory), drain=ctx.drain)
        self._reading_done = False
        try:
            while not ctx.stopping.is_set():
                await self._poll(ctx)
                if ctx.drain:
                    # With replicas: then take over what nobody holds, until nothing is left.
                    while self._leases is not None and not ctx.stopping.is_set():
                        self._greedy = True
                        gained = self.lanes_gained
                        await self._poll(ctx)
                        if self.lanes_gained == gained:
                            break
                    return
                if await ctx.sleep_unless_stopping(self.config.poll_interval):
                    return
        finally:
            self._reading_done = True

    async def _load_checkpoints(self, ctx: SourceContext) -> None:
        prefix = self._state_key("")
        for key, item in (await ctx.state.scan(prefix)).items():
            self._restore(key[len(prefix) :], item.value)

    def _restore(self, lane: str, value: dict[str, Any]) -> None:
        try:
            saved = FileCheckpoint.from_value(value)
        except (KeyError, TypeError, ValueError):
            log.warning("file_checkpoint_unreadable", source=self.id, path=lane)
            return
        cursor = Cursor(
            Path(lane), saved.dev, saved.ino, saved.fingerprint, saved.fingerprint_len,
            saved.offset, saved.finished,
        )  # fmt: skip
        self._cursors[lane] = cursor
        self._committer.set_committed(lane, saved)

    async def _owned_entries(
        self,
        ctx: SourceContext,
        leases: LeaseManager,
        entries: list[tuple[Path, os.stat_result]],
    ) -> list[tuple[Path, os.stat_result]]:
        """Balance the file leases (every third of their duration); the files we read."""
        owned = leases.owned
        if time.monotonic() >= self._next_balance or ctx.drain:
            self._next_balance = time.monotonic() + leases.duration / 3
            lanes = [str(path) for path, _ in entries]
            owned = await self._balance_leases(ctx, leases, lanes, self._greedy)
        return [entry for entry in entries if str(entry[0]) in owned]

    def _forget_lane(self, lane: str) -> None:
        self._cursors.pop(lane, None)
        self._committer.forget(lane)

    def _restore_lane(self, lane: str, item: Versioned) -> None:
        self._restore(lane, item.value)

    def _matches(self, name: str) -> bool:
        return any(fnmatch.fnmatch(name, pattern) for pattern in self.config.patterns)

    async def _poll(self, ctx: SourceContext) -> None:
        try:
            entries = await asyncio.to_thread(self._list)
        except OSError as exc:
            log.error("files_list_failed", source=self.id, path=str(self.directory), error=str(exc))
            return
        if self._leases is not None:
            entries = await self._owned_entries(ctx, self._leases, entries)
        present = set()
        for path, stat in entries:
            if ctx.stopping.is_set():
                return
            lane = str(path)
            present.add(lane)
            cursor = self._cursors.get(lane)
            if cursor is None:
                cursor = self._cursors[lane] = Cursor(path)
            if self._due(cursor, stat, ctx.drain):
                await self._read(ctx, cursor)
        await self._forget_vanished(ctx, present)

    def _list(self) -> list[tuple[Path, os.stat_result]]:
        found: list[tuple[Path, os.stat_result]] = []
        with os.scandir(self.directory) as it:
            for entry in it:
                if not self._matches(entry.name):
                    continue
                try:
                    if not entry.is_file():
                        continue
                    found.append((Path(entry.path), entry.stat()))
                except FileNotFoundError:
                    continue  # gone between listing and stat
        found.sort(key=lambda item: (item[1].st_mtime_ns, item[0].name))
        return found

    def _due(self, cursor: Cursor, stat: os.stat_result, drain: bool) -> bool:
        now = time.monotonic()
        if stat.st_size != cursor.size_seen or stat.st_mtime_ns != cursor.mtime_seen:
            cursor.size_seen, cursor.mtime_seen, cursor.changed_at = (
                stat.st_size, stat.st_mtime_ns, now,
            )  # fmt: skip
            return True
        if cursor.dirty or drain:
            return True
        return cursor.partial and now - cursor.changed_at >= self.config.partial_line_grace

    async def _forget_vanished(self, ctx: SourceContext, present: set[str]) -> None:
        for lane in [lane for lane in self._cursors if lane not in present]:
            if self._committer.in_flight(lane):
                continue  # deleted while read: let its chunks settle first
            del self._cursors[lane]
            self._committer.forget(lane)
            try:
                await ctx.state.delete(self._state_key(lane))
            except Exception as exc:
                log.warning("file_checkpoint_delete_failed", path=lane, error=str(exc))

    async def _read(self, ctx: SourceContext, cursor: Cursor) -> None:
        lane = str(cursor.path)
        try:
            handle: BinaryIO = await asyncio.to_thread(open, cursor.path, "rb")
        except FileNotFoundError:
            return
        except OSError as exc:
            log.error("file_open_failed", source=self.id, path=lane, error=str(exc))
            return
        try:
            await self._read_open(ctx, cursor, handle)
        except OSError as exc:
            log.error("file_read_failed", source=self.id, path=lane, error=str(exc))
        finally:
            await asyncio.to_thread(handle.close)

    async def _identify(self, cursor: Cursor, handle: BinaryIO) -> bytes:
        """Check the open file is the one the cursor describes; reset the cursor if not."""
        stat = os.fstat(handle.fileno())
        head = await asyncio.to_thread(handle.read, FINGERPRINT_BYTES)
        lane = str(cursor.path)
        same_inode = (stat.st_dev, stat.st_ino) == (cursor.dev, cursor.ino)
        same_head = fingerprint(head[: cursor.fingerprint_len]) == cursor.fingerprint
        if cursor.ino != -1 and not (same_inode and same_head):
            log.info("file_replaced", source=self.id, path=lane)
            self._reset(cursor)
        elif not head.startswith(_GZIP_MAGIC) and stat.st_size < cursor.offset:
            log.info("file_truncated", source=self.id, path=lane, size=stat.st_size)
            self._reset(cursor)
        cursor.dev, cursor.ino = stat.st_dev, stat.st_ino
        cursor.fingerprint, cursor.fingerprint_len = fingerprint(head), len(head)
        return head

    def _reset(self, cursor: Cursor) -> None:
        lane = str(cursor.path)
        self._committer.forget(lane)
        cursor.offset, cursor.finished, cursor.partial = 0, False, False

    async def _read_open(self, ctx: SourceContext, cursor: Cursor, handle: BinaryIO) -> None:
        head = await self._identify(cursor, handle)
        cursor.dirty = False
        if cursor.finished:
            return
        compressed = head.startswith(_GZIP_MAGIC)
        quiet = time.monotonic() - cursor.changed_at >= self.config.partial_line_grace
        final = ctx.drain or quiet
        decoder = StreamDecoder(
            max_line_bytes=self.config.max_line_bytes,
            max_inflated_bytes=self.config.max_inflated_bytes,
            start_offset=0 if compressed else cursor.offset,
        )
        if compressed:
            await asyncio.to_thread(handle.seek, 0)
            decoder.skip_to(cursor.offset)
        else:
            await asyncio.to_thread(handle.seek, cursor.offset)
        reader = _ChunkBuilder(self, ctx, cursor)
        document = cursor.offset == 0 and cursor.path.name.endswith((".json", ".json.gz"))
        try:
            while not ctx.stopping.is_set():
                data = await asyncio.to_thread(handle.read, self.config.read_chunk_bytes)
                if not data:
                    break
                lines = decoder.feed(data)
                if document and lines:
                    if not lines[0].oversize and looks_like_document(lines[0].data):
                        if not final:
                            cursor.partial = True
                            return  # a document is read once its writer is done with it
                        await self._read_document(ctx, cursor, handle, decoder, lines)
                        return
                    document = False
                await reader.add_lines(lines)
            else:
                await reader.flush()
                return  # stopping: the rest is read after the restart
            if final:
                await reader.add_lines(decoder.finish())
                cursor.finished = compressed  # gzip members end; plain files may grow
        except DecodeError as exc:
            await reader.flush()
            await reader.fail_file(exc, decoder.offset)
            return
        await reader.flush(finished=cursor.finished)
        cursor.offset = decoder.offset
        # An unfinished gzip stream is looked at again once quiet: it either ends
        # cleanly or is dead-lettered as truncated.
        cursor.partial = decoder.pending_bytes > 0 or (compressed and not cursor.finished)

    async def _read_document(
        self,
        ctx: SourceContext,
        cursor: Cursor,
        handle: BinaryIO,
        decoder: StreamDecoder,
        first: list[Line],
    ) -> None:
        """A pretty-printed .json file: one JSON document, read whole (bounded)."""
        limit = self.config.max_inflated_bytes
        parts = [line.data for line in first]
        size = sum(len(part) for part in parts)
        reader = _ChunkBuilder(self, ctx, cursor)
        try:
            while data := await asyncio.to_thread(handle.read, self.config.read_chunk_bytes):
                for line in decoder.feed(data):
                    parts.append(line.data)
                    size += len(line.data)
                if size > min(limit, 64 << 20):
                    raise DecodeError("document_too_large", f"over {min(limit, 64 << 20)} bytes")
            parts.extend(line.data for line in decoder.finish())
            records = decode_document(b"\n".join(parts))
        except DecodeError as exc:
            await reader.fail_file(exc, decoder.offset)
            return
        origin = Origin(self.id, str(cursor.path), 0)
        events = [
            Event(raw=r.raw, origin=origin, ack=reader.ack, log_type=self.config.log_type,
                  time=r.time_ms / 1000.0 if r.time_ms else 0.0)
            for r in records
        ]  # fmt: skip
        reader.events.extend(events)
        reader.end = decoder.offset
        await reader.flush(finished=True)
        cursor.offset, cursor.finished = decoder.offset, True


class _ChunkBuilder:
    """Groups lines into ack units of about `chunk_events` records and sends them."""

    def __init__(self, source: FilesSource, ctx: SourceContext, cursor: Cursor) -> None:
        self.source = source
        self.ctx = ctx
        self.cursor = cursor
        self.lane = str(cursor.path)
        self.limit = source.config.chunk_events
        self.log_type = source.config.log_type
        self.ack = Ack()
        self.events: list[Event] = []
        self.end = cursor.offset

    async def add_lines(self, lines: list[Line]) -> None:
        source_id, lane, ack, log_type = self.source.id, self.lane, self.ack, self.log_type
        events = self.events
        max_line = self.source.config.max_line_bytes
        for line in lines:
            origin = Origin(source_id, lane, line.start)
            append_line_events(events, line, origin, ack, log_type, max_line_bytes=max_line)
            self.end = line.end
            if len(events) >= self.limit:
                await self.flush()
                ack, events = self.ack, self.events

    async def flush(self, finished: bool = False) -> None:
        """Send the open chunk and track its ack; a chunk of blank lines still commits."""
        if not self.events and self.end == self.cursor.offset and not finished:
            return
        events, ack = self.events, self.ack
        self.events, self.ack = [], Ack()
        self.source._committer.track(self.lane, ack, self.cursor.checkpoint(self.end, finished))
        self.cursor.offset = self.end
        if events:
            self.ctx.metrics.records_read.add(len(events), {"source": self.source.id})
            observe_lag(self.ctx, self.source.id, ack, events)
            # Sealed only once every event is handed over: an ack whose send was
            # interrupted must never complete, or its offset would be committed.
            await self.ctx.pipeline.send(Batch(events))
        ack.seal()

    async def fail_file(self, exc: DecodeError, offset: int) -> None:
        """The file as a whole is unreadable (corrupt gzip, bomb): dead-letter, move past it."""
        log.warning("file_unreadable", source=self.source.id, path=self.lane, reason=exc.reason)
        self.events.append(
            Event(raw=self.lane.encode(), origin=Origin(self.source.id, self.lane, offset),
                  ack=self.ack, error=exc.reason, error_detail=exc.detail or str(exc))
        )  # fmt: skip
        self.end = max(self.end, offset)
        await self.flush(finished=True)
        self.cursor.finished = True
