"""What the source keeps per SQS message, its counters, and the max_receives rule."""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from forwarder.acks import Ack
from forwarder.errors import StateError
from forwarder.sources.s3_sqs.notifications import ObjectRef
from forwarder.sources.s3_sqs.progress import PROGRESS_TTL, progress_key
from forwarder.state import StateStore

log = structlog.get_logger(__name__)


@dataclass
class S3SqsStats:
    """Counters of this source (the lead wires them into telemetry)."""

    messages_received: int = 0
    messages_received_again: int = 0  # received while still being worked on here
    messages_deleted: int = 0
    messages_errored: int = 0
    messages_dead_lettered: int = 0
    messages_test: int = 0
    messages_ignored: int = 0
    objects_read: int = 0
    objects_resumed: int = 0
    objects_already_done: int = 0
    objects_filtered: int = 0
    objects_missing: int = 0
    objects_denied: int = 0
    objects_changed: int = 0
    objects_failed: int = 0
    bytes_read: int = 0
    receive_errors: int = 0
    lag_seconds: float | None = None  # S3 event time to the last sink ack, last message


@dataclass(eq=False)
class Message:
    message_id: str
    receipt_handle: str
    receive_count: int
    body: str
    ack: Ack = field(default_factory=Ack)
    sealed: bool = False
    event_time: float | None = None

    def seal(self) -> None:
        if not self.sealed:
            self.sealed = True
            self.ack.seal()


async def stall_reason(
    state: StateStore, source_id: str, message: Message, refs: list[ObjectRef], limit: int
) -> str | None:
    """Why a message must be given up: received more than `limit` times without progress.

    Progress is the sum of its objects' committed progress, noted at every receive after
    the first under `sqs/<source_id>/<message_id>`, so a huge object that advances a
    little on every receive is never given up, and a poison one is, after `limit`.
    """
    count = message.receive_count
    try:
        total = 0
        for ref in refs:
            if ref.etag is None:
                continue
            key = progress_key(source_id, ref.bucket, ref.key, ref.etag, ref.version_id)
            item = await state.get(key)
            if item is not None:
                total += int(item.value.get("records", 0)) + int(item.value.get("offset", 0))
        marker_key = f"sqs/{source_id}/{message.message_id}"
        marker = await state.get(marker_key)
        if marker is None:
            last_progress = count - 1 if total > 0 else 0
        elif total > int(marker.value.get("seen", 0)):
            last_progress = count - 1
        else:
            last_progress = int(marker.value.get("last_progress", 0))
        await state.put(marker_key, {"seen": total, "last_progress": last_progress,
                                     "receives": count}, ttl=PROGRESS_TTL)  # fmt: skip
    except (StateError, TypeError, ValueError) as exc:
        log.warning("sqs_receive_marker_failed", source=source_id, error=str(exc))
        return None
    if count - last_progress > limit:
        return (f"received {count} times (max_receives={limit}), no progress since "
                f"receive {last_progress}")  # fmt: skip
    return None
