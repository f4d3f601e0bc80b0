"""The units that move through the pipeline: Status, Origin, Event, Batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forwarder.acks import Ack


class Status(IntEnum):
    """Outcome of delivering one event to one sink; when outcomes merge, the worst wins."""

    DELIVERED = 0  # the sink has it (an Elasticsearch 409 on create counts)
    ERRORED = 1  # transient: do not commit, the source redelivers
    REJECTED = 2  # permanent: dead-lettered, then committed so it never blocks a stream


class Origin:
    """Where a record came from, precisely enough to find it again.

    A plain slots class, not a frozen dataclass: one is made per record on the hot
    path, and a frozen dataclass's __init__ (object.__setattr__ per field) costs four
    times as much. Treat it as immutable.
    """

    __slots__ = ("offset", "partition", "source_id")

    def __init__(self, source_id: str, partition: str, offset: int) -> None:
        self.source_id = source_id
        self.partition = partition  # file path, `group/stream` or `bucket/key#etag`
        self.offset = offset  # byte offset of the record's line, or the record index

    def as_dict(self) -> dict[str, Any]:
        return {"source_id": self.source_id, "partition": self.partition, "offset": self.offset}

    def _key(self) -> tuple[str, str, int]:
        return (self.source_id, self.partition, self.offset)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Origin) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Origin(source_id={self.source_id!r}, partition={self.partition!r}, "
            f"offset={self.offset!r})"
        )


@dataclass(slots=True)
class Event:
    """One WorkMail record on its way to the sinks.

    Sources fill `raw`, `origin`, `ack` and, when they know it, `log_type`. The
    pipeline's mapping stage fills `id`, `time`, `log_type` and `docs`: the mapped
    document per schema (`ocsf`, `ecs`, `raw`), already encoded as JSON bytes so that
    each sink only splices bytes and never re-serialises.
    """

    raw: bytes
    origin: Origin
    ack: Ack
    log_type: str | None = None
    id: str = ""
    time: float = 0.0  # epoch seconds
    docs: dict[str, bytes] = field(default_factory=dict)
    # Set by a source for bytes it already knows are bad (oversize line, corrupt
    # gzip): the pipeline dead-letters the event with this reason instead of mapping it.
    error: str | None = None
    error_detail: str = ""


@dataclass(slots=True)
class Batch:
    """Events a source hands to the pipeline in one go; all share acks from one source."""

    events: list[Event]

    def __len__(self) -> int:
        return len(self.events)
