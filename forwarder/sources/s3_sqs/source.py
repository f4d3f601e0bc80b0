"""The S3-via-SQS source: notifications in, objects streamed, messages deleted last.

One SQS message is one unit of deletion. Its Ack collects every chunk ack of every
object it announces (each chunk expects one resolution on it), plus the dead-letter
entries written for it; the message is deleted (UnorderedCommitter) only when that ack
is done without an ERRORED resolution. While it is unresolved the VisibilityKeeper
keeps the message invisible. Per object, chunk acks also advance the object's
progress in the state store (ProgressCommitter, in order), which is what lets a
redelivered message resume inside a large object instead of sending it again.

The SQS and S3 clients live in `commit_loop` (started before `run` and stopped after
`flush`), so deletes and visibility changes still work while the runtime drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from dataclasses import asdict
from typing import Any

import structlog
from botocore.exceptions import ClientError

from forwarder import aws
from forwarder.acks import Ack, UnorderedCommitter
from forwarder.aws import TRANSIENT_ERRORS
from forwarder.config import S3SqsSourceConfig
from forwarder.events import Batch, Event, Origin, Status
from forwarder.sources.base import Source, SourceContext
from forwarder.sources.s3_sqs.messages import Message, S3SqsStats, stall_reason
from forwarder.sources.s3_sqs.metrics import observe
from forwarder.sources.s3_sqs.notifications import parse_body
from forwarder.sources.s3_sqs.progress import PROGRESS_TTL, Progress, ProgressCommitter
from forwarder.sources.s3_sqs.reader import ObjectReader, Outcome
from forwarder.sources.s3_sqs.visibility import VisibilityKeeper
from forwarder.tasks import first_of

log = structlog.get_logger(__name__)

_DEFAULT_VISIBILITY = 30.0
_ATTRIBUTES = ["ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp", "SentTimestamp"]
_DRAIN_RECEIVE_FAILURES = 5  # a drain run gives up after this many failed receives in a row


class S3SqsSource(Source):
    def __init__(self, config: S3SqsSourceConfig) -> None:
        self.id = config.id
        self.config = config
        self.stats = S3SqsStats()
        self._key_regex = re.compile(config.key_regex) if config.key_regex else None
        self._ctx: SourceContext | None = None
        self._sqs: Any = None
        self._s3: Any = None
        self._keeper: VisibilityKeeper | None = None
        self._clients_ready = asyncio.Event()
        self._messages: dict[str, Message] = {}
        self._busy = 0
        self._slot_freed = asyncio.Event()
        self._deleter: UnorderedCommitter[Message] = UnorderedCommitter(
            self._delete, self._on_errored
        )
        self._progress = ProgressCommitter(self._commit_progress, self._on_lane_errored)
        self._deleting = asyncio.Lock()
        self._errored_lanes: set[str] = set()
        # Messages that ended ERRORED here and were not received again since: SQS holds
        # them until their timeout, and a drain must not wait for them.
        self._errored_messages: set[str] = set()

    # -- clients, commits ----------------------------------------------------------

    async def commit_loop(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        workers = self.config.workers
        async with contextlib.AsyncExitStack() as stack:
            try:
                sqs = await stack.enter_async_context(
                    aws.client(
                        "sqs",
                        self.config,
                        max_pool_connections=workers + 10,
                        connect_timeout=self.config.connect_timeout,
                        read_timeout=self.config.read_timeout,
                    )
                )
                s3 = await stack.enter_async_context(
                    aws.client(
                        "s3",
                        self.config,
                        max_pool_connections=workers + 4,
                        connect_timeout=self.config.connect_timeout,
                        read_timeout=self.config.read_timeout,
                    )
                )
            except Exception as exc:  # no region, bad endpoint URL: say which source
                log.error("aws_client_failed", source=self.id, error=f"{type(exc).__name__}: {exc}")
                raise
            timeout = await self._visibility_timeout(sqs)
            self._keeper = VisibilityKeeper(sqs, self.config.queue_url, timeout, self.id)
            self._sqs, self._s3 = sqs, s3
            self._clients_ready.set()
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._deleter.run())
                    group.create_task(self._progress.run())
                    group.create_task(self._keeper.run())
            finally:
                self._sqs = self._s3 = None
                self._clients_ready.clear()

    async def _visibility_timeout(self, sqs: Any) -> float:
        if self.config.visibility_timeout is not None:
            return self.config.visibility_timeout
        try:
            response = await sqs.get_queue_attributes(
                QueueUrl=self.config.queue_url, AttributeNames=["VisibilityTimeout"]
            )
            return float(response["Attributes"]["VisibilityTimeout"])
        except (ClientError, *TRANSIENT_ERRORS, KeyError, ValueError) as exc:
            log.warning("sqs_visibility_timeout_unknown", source=self.id, error=str(exc),
                        assumed=_DEFAULT_VISIBILITY)  # fmt: skip
            return _DEFAULT_VISIBILITY

    async def _delete(self, messages: list[Message]) -> None:
        async with self._deleting:
            await self._delete_batches(messages)

    async def _delete_batches(self, messages: list[Message]) -> None:
        sqs = self._sqs
        if sqs is None:
            raise RuntimeError("SQS client closed")
        retry = False
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            response = await sqs.delete_message_batch(
                QueueUrl=self.config.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m.receipt_handle}
                         for i, m in enumerate(chunk)],
            )  # fmt: skip
            self.stats.messages_deleted += len(response.get("Successful", []))
            for failed in response.get("Failed", []):
                message = chunk[int(failed["Id"])]
                if failed.get("SenderFault", True):
                    # A stale handle: the message comes back, finds its objects done,
                    # and is deleted then.
                    log.warning("sqs_delete_refused", source=self.id,
                                message_id=message.message_id, code=failed.get("Code"))  # fmt: skip
                else:
                    retry = True
        if retry:
            raise RuntimeError("SQS failed some deletes; retrying")

    async def _on_errored(self, messages: list[Message]) -> None:
        ctx = self._require_ctx()
        ctx.errored_units += len(messages)
        self.stats.messages_errored += len(messages)
        for message in messages:
            self._errored_messages.add(message.message_id)
            log.warning("s3_message_errored", source=self.id, message_id=message.message_id,
                        action="left for SQS to redeliver")  # fmt: skip

    async def _commit_progress(self, lane: str, progress: Progress) -> None:
        ctx = self._require_ctx()
        try:
            await ctx.state.put(lane, progress.as_value(), ttl=PROGRESS_TTL)
        except Exception:
            ctx.metrics.checkpoint_failures.add(1, {"source": self.id})
            raise
        ctx.metrics.checkpoint_commits.add(1, {"source": self.id})

    def _on_lane_errored(self, lane: str, _last: Progress | None) -> None:
        # A chunk will never be delivered by this receive: nothing after it may commit.
        self._errored_lanes.add(lane)

    # -- what the object reader calls ----------------------------------------------

    def track_progress(self, lane: str, ack: Ack, progress: Progress) -> None:
        self._progress.track(lane, ack, progress)

    def lane_errored(self, lane: str) -> bool:
        return lane in self._errored_lanes

    def reopen_lane(self, lane: str) -> None:
        """A new read of an object: forget that an earlier read of it ended ERRORED."""
        if lane in self._errored_lanes:
            self._errored_lanes.discard(lane)
            self._progress.forget(lane)

    async def flush(self) -> None:
        await self._progress.flush()
        if self._sqs is None or self._keeper is None:
            return
        await self._deleter.flush()
        # The commit loop may be in the middle of a delete it took from the committer:
        # wait for it (the loop is cancelled right after this), then retry what failed.
        async with self._deleting:
            pass
        await self._deleter.flush()
        # Work that cannot finish now: hand it back at once rather than at its timeout.
        unfinished = [m for m in self._messages.values() if not m.ack.done]
        for message in unfinished:
            self._keeper.release(message.message_id)
        if unfinished:
            await self._keeper.give_back([m.receipt_handle for m in unfinished])
        log.info("s3_sqs_source_flushed", source=self.id, given_back=len(unfinished),
                 **{k: v for k, v in asdict(self.stats).items() if v})  # fmt: skip

    def in_flight(self) -> int:
        return self._deleter.in_flight() + self._progress.in_flight()

    def _require_ctx(self) -> SourceContext:
        if self._ctx is None:
            raise RuntimeError("source not started")
        return self._ctx

    # -- receiving -----------------------------------------------------------------

    async def run(self, ctx: SourceContext) -> None:
        if self._ctx is None:
            observe(self, ctx.metrics)
        self._ctx = ctx
        if not await self._wait_for_clients(ctx):
            return
        reader = ObjectReader(self, ctx, self._s3)
        log.info("s3_sqs_source_started", source=self.id, queue_url=self.config.queue_url,
                 workers=self.config.workers, drain=ctx.drain)  # fmt: skip
        failures = 0
        async with asyncio.TaskGroup() as group:
            while not ctx.stopping.is_set():
                free = self.config.workers - self._busy
                if free <= 0:
                    self._slot_freed.clear()
                    await first_of(self._slot_freed.wait(), ctx.stopping.wait())
                    continue
                messages = await self._receive(ctx, min(self.config.max_messages, free))
                if messages is None:
                    failures += 1
                    if ctx.drain and failures >= _DRAIN_RECEIVE_FAILURES:
                        raise RuntimeError(f"SQS receive failed {failures} times in a row")
                    await ctx.sleep_unless_stopping(min(30.0, 0.5 * 2**failures))
                    continue
                failures = 0
                if not messages:
                    if ctx.drain and self._busy == 0 and await self._queue_drained():
                        break
                    if self.config.wait_time < 1:  # short polling: do not spin on SQS
                        await ctx.sleep_unless_stopping(1.0)
                    continue
                for raw in messages:
                    self._busy += 1
                    group.create_task(self._work(ctx, reader, raw))

    async def _wait_for_clients(self, ctx: SourceContext) -> bool:
        await first_of(self._clients_ready.wait(), ctx.stopping.wait())
        return self._clients_ready.is_set() and not ctx.stopping.is_set()

    async def _receive(self, ctx: SourceContext, count: int) -> list[dict[str, Any]] | None:
        """Up to `count` messages ([] when none came, or stopping); None on failure."""
        params: dict[str, Any] = {
            "QueueUrl": self.config.queue_url,
            "MaxNumberOfMessages": count,
            "WaitTimeSeconds": int(self.config.wait_time),
            "MessageSystemAttributeNames": _ATTRIBUTES,
        }
        if self.config.visibility_timeout is not None:
            params["VisibilityTimeout"] = max(1, math.ceil(self.config.visibility_timeout))
        receive = asyncio.ensure_future(self._sqs.receive_message(**params))
        stop = asyncio.ensure_future(ctx.stopping.wait())
        try:
            await asyncio.wait({receive, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not receive.done():
                # Messages in a cancelled response come back after their visibility timeout.
                receive.cancel()
                await asyncio.wait({receive})
        if receive.cancelled():
            return []
        try:
            response = receive.result()
        except ClientError as exc:
            self._receive_failed(exc, aws.error_code(exc))
            return None
        except TRANSIENT_ERRORS as exc:
            self._receive_failed(exc, type(exc).__name__)
            return None
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _receive_failed(self, exc: Exception, code: str) -> None:
        self.stats.receive_errors += 1
        hint = {}
        if code in ("AccessDenied", "AccessDeniedException"):
            hint["missing_permission"] = "sqs:ReceiveMessage"
        log.error("sqs_receive_failed", source=self.id, code=code, error=str(exc), **hint)

    async def _queue_drained(self) -> bool:
        """Nothing visible, delayed, or held by anyone but us (a backfill is finished).

        Messages another consumer holds (or a predecessor that was killed) are waited
        for: they come back when their visibility lapses, and resume where it stopped.
        """
        try:
            response = await self._sqs.get_queue_attributes(
                QueueUrl=self.config.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )
            attrs = response["Attributes"]
            visible = int(attrs["ApproximateNumberOfMessages"])
            hidden = int(attrs["ApproximateNumberOfMessagesNotVisible"])
            delayed = int(attrs.get("ApproximateNumberOfMessagesDelayed", 0))
        except (ClientError, *TRANSIENT_ERRORS, KeyError, ValueError) as exc:
            log.warning("sqs_queue_attributes_failed", source=self.id, error=str(exc))
            return False
        ours = self._deleter.in_flight() + len(self._errored_messages)
        return visible == 0 and delayed == 0 and hidden <= ours

    async def _work(self, ctx: SourceContext, reader: ObjectReader, raw: dict[str, Any]) -> None:
        try:
            await self._handle(ctx, reader, raw)
        finally:
            self._busy -= 1
            self._slot_freed.set()

    # -- one message -----------------------------------------------------------------

    async def _handle(self, ctx: SourceContext, reader: ObjectReader, raw: dict[str, Any]) -> None:
        keeper = self._keeper
        assert keeper is not None  # clients are ready before the first receive
        attrs = raw.get("Attributes", {})
        message_id, handle = str(raw["MessageId"]), str(raw["ReceiptHandle"])
        first = attrs.get("ApproximateFirstReceiveTimestamp")
        first_ms = int(first) if first is not None and str(first).isdigit() else None
        self.stats.messages_received += 1
        self._errored_messages.discard(message_id)
        known = self._messages.get(message_id)
        if known is not None:
            # Its visibility lapsed while we still work on it: carry on with the new handle.
            known.receipt_handle = handle
            keeper.hold(message_id, handle, first_ms)
            self.stats.messages_received_again += 1
            return
        message = Message(message_id, handle, int(attrs.get("ApproximateReceiveCount", 1)),
                           str(raw.get("Body", "")))  # fmt: skip
        self._messages[message_id] = message
        keeper.hold(message_id, handle, first_ms)
        message.ack.on_done(lambda ack: self._settled(message, ack))
        self._deleter.track(message.ack, message)
        try:
            await self._process(ctx, reader, message)
        except Exception as exc:  # a bug must cost one message (for now), not the source
            log.exception("s3_message_failed", source=self.id, message_id=message_id,
                          error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            if not message.ack.done:
                message.ack.expect(1)
                message.ack.resolve(Status.ERRORED)
            message.seal()

    def _settled(self, message: Message, ack: Ack) -> None:
        if self._keeper is not None:
            self._keeper.release(message.message_id)
        if self._messages.get(message.message_id) is message:
            del self._messages[message.message_id]
        if not ack.errored and message.event_time is not None:
            self.stats.lag_seconds = max(0.0, time.time() - message.event_time)
            if self._ctx is not None:
                self._ctx.metrics.source_lag.record(self.stats.lag_seconds, {"source": self.id})

    async def _process(self, ctx: SourceContext, reader: ObjectReader, message: Message) -> None:
        """Read what the message announces; sealed unless interrupted by stopping."""
        notification = parse_body(message.body)
        if notification.kind == "test":
            self.stats.messages_test += 1
            log.info("s3_test_event", source=self.id, message_id=message.message_id)
            message.seal()
            return
        if notification.kind == "ignored":
            self.stats.messages_ignored += 1
            message.seal()
            return
        if notification.kind == "invalid":
            await self._dead_letter_message(ctx, message, "invalid_notification",
                                            notification.reason)  # fmt: skip
            message.seal()
            return
        refs = [ref for ref in notification.objects if self._wanted(ref.key)]
        self.stats.objects_filtered += len(notification.objects) - len(refs)
        if self.config.max_receives is not None and message.receive_count > 1:
            stalled = await stall_reason(
                ctx.state, self.id, message, refs, self.config.max_receives
            )
            if stalled:
                await self._dead_letter_message(ctx, message, "max_receives_exceeded", stalled)
                message.seal()
                return
        times = [ref.event_time for ref in refs if ref.event_time is not None]
        message.event_time = max(times) if times else None
        failed = False
        for ref in refs:
            if ctx.stopping.is_set():
                return
            outcome = await reader.read(ref, message.ack, message.message_id)
            if outcome is Outcome.INTERRUPTED:
                return
            failed = failed or outcome is Outcome.FAILED
        if failed:
            message.ack.expect(1)
            message.ack.resolve(Status.ERRORED)
        message.seal()

    def _wanted(self, key: str) -> bool:
        prefix = self.config.key_prefix
        if prefix is not None and not key.startswith(prefix):
            return False
        return self._key_regex is None or self._key_regex.search(key) is not None

    async def _dead_letter_message(
        self, ctx: SourceContext, message: Message, reason: str, detail: str
    ) -> None:
        # The dead-letter writer logs the one line for it (reason, detail, partition).
        self.stats.messages_dead_lettered += 1
        origin = Origin(self.id, f"sqs/{message.message_id}", message.receive_count)
        event = Event(raw=message.body.encode("utf-8", "replace"), origin=origin,
                      ack=message.ack, error=reason, error_detail=detail)  # fmt: skip
        await ctx.pipeline.send(Batch([event]))
