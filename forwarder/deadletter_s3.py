"""The dead letter in S3: entries batched into gzip NDJSON objects.

Keys sort by time and never collide across replicas, processes or restarts:

    <prefix>YYYY/MM/DD/HH/<epoch-ms>-<host>-<pid>-<random>-<seq>.ndjson.gz

A rejected event's ack resolves only after the PutObject holding its entry succeeded.
A failed PutObject is retried with backoff for ever, with the same key and body (a
retry of a put S3 did store only overwrites it with the same bytes). Meanwhile entries
wait in memory up to `max_pending_bytes`; past that `submit` waits, and so the sink
runners and sources behind it wait too: backpressure, never loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import os
import re
import secrets
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from botocore.exceptions import ClientError

from forwarder import aws
from forwarder.config import AwsEndpoint, DeadLetterConfig
from forwarder.deadletter import DeadLetterOutput, Rejection, Stored
from forwarder.retry import Backoff

log = structlog.get_logger(__name__)

_GZIP_LEVEL = 6


@dataclass(slots=True)
class _Pending:
    line: bytes  # the entry with its newline
    rejection: Rejection
    on_stored: Stored


def writer_name() -> str:
    """`<host>-<pid>-<random>`: unique per process, even for pid 1 in a restarted container."""
    host = re.sub(r"[^A-Za-z0-9.-]+", "_", socket.gethostname())[:63] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


class S3DeadLetter(DeadLetterOutput):
    def __init__(self, config: DeadLetterConfig, *, clock: Callable[[], float] = time.time) -> None:
        if not config.is_s3:
            raise ValueError(f"{config.path} is not an s3:// location")
        super().__init__(config)
        self.bucket, self.prefix = config.s3_location
        self._endpoint = AwsEndpoint(region=config.region, endpoint_url=config.endpoint_url)
        self._batch = config.batch
        self._retry = config.retry
        self._timeout = config.timeout
        self._max_pending = config.max_pending_bytes
        self._clock = clock
        self._queue: deque[_Pending] = deque()
        self._queued_bytes = 0
        self._held = 0  # entries queued or being stored
        self._held_bytes = 0
        self._opened_at: float | None = None  # monotonic time of the oldest queued entry
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._finishing = False
        self._writer = writer_name()
        self._seq = itertools.count()
        self.objects = 0  # objects stored
        self.put_failures = 0

    @property
    def pending(self) -> int:
        return self._held

    async def submit(self, rejections: list[Rejection], on_stored: Stored) -> None:
        if not rejections:
            return
        now = self._clock()
        lines = [self.entry(r, now) + b"\n" for r in rejections]
        nbytes = sum(len(line) for line in lines)
        # One submission larger than the whole bound is taken when nothing is held, so
        # an oversize batch can never deadlock.
        while self._held_bytes and self._held_bytes + nbytes > self._max_pending:
            if self._finishing:
                break
            self._space.clear()
            await self._space.wait()
        if self._finishing:
            raise OSError(f"dead letter {self.location} is closed")
        if not self._queue:
            self._opened_at = time.monotonic()
        self._queue.extend(
            _Pending(line, rejection, on_stored)
            for line, rejection in zip(lines, rejections, strict=True)
        )
        self._queued_bytes += nbytes
        self._held += len(rejections)
        self._held_bytes += nbytes
        self._wake.set()
        self.log_rejections(rejections, now)

    def finish(self) -> None:
        self._finishing = True
        self._wake.set()
        self._space.set()

    async def run(self) -> None:
        """Store batches until `finish` was called and nothing is left."""
        async with aws.client("s3", self._endpoint, max_attempts=2) as s3:
            while (batch := await self._next_batch()) is not None:
                await self._store(s3, batch)

    async def _next_batch(self) -> list[_Pending] | None:
        limits = self._batch
        while True:
            timeout: float | None = None
            if self._queue:
                assert self._opened_at is not None
                deadline = self._opened_at + limits.max_wait
                if (
                    self._finishing
                    or len(self._queue) >= limits.max_events
                    or self._queued_bytes >= limits.max_bytes
                    or time.monotonic() >= deadline
                ):
                    return self._take()
                timeout = deadline - time.monotonic()
            elif self._finishing:
                return None
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _take(self) -> list[_Pending]:
        limits = self._batch
        batch: list[_Pending] = []
        nbytes = 0
        while self._queue and len(batch) < limits.max_events:
            size = len(self._queue[0].line)
            if batch and nbytes + size > limits.max_bytes:
                break
            batch.append(self._queue.popleft())
            nbytes += size
        self._queued_bytes -= nbytes
        if not self._queue:
            self._opened_at = None  # what is left keeps its age: it leaves on time
        return batch

    def key(self, when: float) -> str:
        hour = datetime.fromtimestamp(when, UTC).strftime("%Y/%m/%d/%H")
        millis = int(when * 1000)
        return f"{self.prefix}{hour}/{millis:013d}-{self._writer}-{next(self._seq):06d}.ndjson.gz"

    async def _store(self, s3: Any, batch: list[_Pending]) -> None:
        key = self.key(self._clock())
        data = b"".join(item.line for item in batch)
        body = await asyncio.to_thread(gzip.compress, data, _GZIP_LEVEL)
        backoff = Backoff(self._retry.initial_backoff, self._retry.max_backoff)
        while True:
            try:
                await asyncio.wait_for(
                    s3.put_object(
                        Bucket=self.bucket, Key=key, Body=body, ContentType="application/gzip"
                    ),
                    self._timeout,
                )
                break
            except (ClientError, *aws.TRANSIENT_ERRORS) as exc:
                self.put_failures += 1
                delay = backoff.next_delay() or self._retry.max_backoff
                log.error(
                    "dead_letter_put_failed",
                    bucket=self.bucket,
                    key=key,
                    entries=len(batch),
                    attempt=backoff.attempt,
                    retry_in_s=round(delay, 3),
                    error=_describe(exc),
                )
                await asyncio.sleep(delay)
        self.objects += 1
        self.written += len(batch)
        self._held -= len(batch)
        self._held_bytes -= len(data)
        self._space.set()
        log.info("dead_letter_object_written", bucket=self.bucket, key=key, entries=len(batch))
        parts: dict[Stored, list[Rejection]] = {}
        for item in batch:
            parts.setdefault(item.on_stored, []).append(item.rejection)
        for on_stored, rejections in parts.items():
            on_stored(rejections)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return f"{aws.error_code(exc) or 'ClientError'}: {exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"
