"""Per-object progress in the state store: how far into an object every sink has it.

Key `s3/<source_id>/<bucket>/<key>#<etag>#<version>`; value `{"offset", "records",
"done"}` where `offset` is the decompressed byte offset just past the last committed
line and `records` the number of records (events) those lines held. A redelivered
message resumes with `StreamDecoder.skip_to(offset)`: exact for multi-record lines
(JSON arrays, CloudWatch payloads), because commits fall on line boundaries only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from forwarder.acks import OrderedCommitter

# SQS keeps a message 14 days at most: progress older than that has nobody to resume it.
PROGRESS_TTL = 14 * 86400.0


@dataclass(frozen=True, slots=True)
class Progress:
    offset: int = 0  # logical (decompressed) offset of the first line not yet committed
    records: int = 0  # records committed: the events the lines before `offset` carried
    done: bool = False  # the object was read to its end (or dead-lettered as a whole)

    def as_value(self) -> dict[str, Any]:
        return {"offset": self.offset, "records": self.records, "done": self.done}

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> Progress:
        return cls(int(value["offset"]), int(value["records"]), bool(value.get("done", False)))


def progress_key(source_id: str, bucket: str, key: str, etag: str, version_id: str | None) -> str:
    return f"s3/{source_id}/{bucket}/{key}#{etag}#{version_id or ''}"


class ProgressCommitter(OrderedCommitter[Progress]):
    """An OrderedCommitter whose lanes (objects) are forgotten once they are done.

    Objects are read once: keeping the last committed token of every object ever read
    would grow without bound in a daemon that runs for months.
    """

    def __init__(
        self,
        commit: Callable[[str, Progress], Awaitable[None]],
        on_errored: Callable[[str, Progress | None], None],
        *,
        retry_interval: float = 1.0,
    ) -> None:
        self._finished: set[str] = set()

        async def commit_and_note(lane: str, token: Progress) -> None:
            await commit(lane, token)
            if token.done:
                self._finished.add(lane)

        super().__init__(commit_and_note, on_errored, retry_interval=retry_interval)

    async def flush(self) -> bool:
        ok = await super().flush()
        for lane in list(self._finished):
            if not self.in_flight(lane):
                self.forget(lane)
                self._finished.discard(lane)
        return ok
