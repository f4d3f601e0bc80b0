"""Per log group: where reading stands, which events were already delivered, the checkpoint.

FilterLogEvents is queried by event timestamp, and CloudWatch accepts events late
(a timestamp older than events already searchable). So a checkpoint is not a single
timestamp. It is:

- `ts`: the newest event timestamp over the contiguous acknowledged pages,
- `ids`: the ids of delivered events with a timestamp >= `since`, grouped by timestamp.
  Equal-millisecond events and events that arrived late inside the look-back window
  are then skipped by eventId on the next query, never repeated and never lost,
- `created`: the group's creationTime, which tells a recreated group from the old one.

The ids saved are bounded (`max_checkpoint_ids`, newest first). When the look-back
window holds more delivered events than that, `since` moves up and a restart may
deliver again what lies between `ts - look_back` and `since`: a duplicate, never a loss.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PageToken:
    """What the ordered committer holds per page: the page's position in the group."""

    seq: int
    ts: int  # newest event timestamp dispatched up to and including this page
    last_event_ts: int  # newest event timestamp in this page (for the lag metric)


@dataclass(slots=True)
class GroupCheckpoint:
    ts: int
    since: int
    ids: dict[int, list[str]]
    created: int | None = None

    def as_value(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "since": self.since,
            "ids": {str(ts): ids for ts, ids in self.ids.items()},
            "created": self.created,
        }

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> GroupCheckpoint:
        ids = {int(ts): [str(i) for i in group] for ts, group in dict(value["ids"]).items()}
        created = value.get("created")
        return cls(
            ts=int(value["ts"]),
            since=int(value["since"]),
            ids=ids,
            created=None if created is None else int(created),
        )


@dataclass
class GroupTracker:
    """In-memory state of one group: the ids seen (delivered or in flight) and the cursor."""

    name: str
    start: int  # epoch ms the group is read from when nothing was committed
    look_back_ms: int
    created: int | None = None
    high_ts: int = -1  # newest timestamp dispatched; -1 before the first page
    # eventId -> (timestamp, page seq); seq 0 = restored from a checkpoint
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    seq: int = 0
    committed_seq: int = 0
    committed_ts: int | None = None
    acked_event_ts: int | None = None  # newest event timestamp acknowledged (lag)
    last_ingestion_lag: float | None = None
    force_look_back: bool = False
    gone: bool = False  # FilterLogEvents said the group does not exist
    state_version: int = 0  # of the checkpoint item: replicas write it compare-and-set
    window_shrunk_logged: bool = False

    @classmethod
    def restore(cls, name: str, checkpoint: GroupCheckpoint, look_back_ms: int) -> GroupTracker:
        tracker = cls(name, checkpoint.since, look_back_ms, created=checkpoint.created)
        tracker.high_ts = checkpoint.ts
        tracker.committed_ts = checkpoint.ts
        for ts, ids in checkpoint.ids.items():
            for event_id in ids:
                tracker.seen[event_id] = (ts, 0)
        # Search the look-back window once: events that arrived late while the
        # forwarder was down are found there; the saved ids keep the rest from repeating.
        tracker.force_look_back = True
        return tracker

    def query_start(self, look_back: bool) -> int:
        if self.high_ts < 0:
            return self.start
        if look_back or self.force_look_back:
            return max(0, self.high_ts - self.look_back_ms)
        return self.high_ts  # inclusive: events in the same ms are skipped by id

    def next_page(self) -> int:
        self.seq += 1
        return self.seq

    def committed(self, token: PageToken) -> None:
        self.committed_seq = token.seq
        self.committed_ts = token.ts
        if self.acked_event_ts is None or token.last_event_ts > self.acked_event_ts:
            self.acked_event_ts = token.last_event_ts

    def checkpoint(self, token: PageToken, max_ids: int) -> GroupCheckpoint:
        """The checkpoint once every page up to `token` is acknowledged."""
        floor = max(0, token.ts - self.look_back_ms)
        delivered = [
            (ts, event_id)
            for event_id, (ts, seq) in self.seen.items()
            if seq <= token.seq and ts >= floor
        ]
        since = floor
        if len(delivered) > max_ids:
            newest = heapq.nlargest(max_ids + 1, delivered)
            cut = newest[-1][0]  # the newest timestamp that cannot be kept whole
            since = cut + 1
            delivered = [item for item in newest if item[0] >= since]
        ids: dict[int, list[str]] = {}
        for ts, event_id in delivered:
            ids.setdefault(ts, []).append(event_id)
        return GroupCheckpoint(token.ts, since, ids, self.created)

    def rewind(self) -> None:
        """A page ended ERRORED: read again from the last commit, forget what was in flight."""
        self.seen = {i: v for i, v in self.seen.items() if v[1] <= self.committed_seq}
        self.seq = self.committed_seq  # pages after it are dropped by the committer
        if self.committed_ts is None:
            self.high_ts = -1
        else:
            self.high_ts = self.committed_ts
            self.force_look_back = True

    def prune(self, max_ids: int) -> None:
        """Forget ids older than the look-back window that are committed."""
        floor = self.high_ts - self.look_back_ms
        seen = self.seen
        old = [i for i, (ts, seq) in seen.items() if ts < floor and seq <= self.committed_seq]
        for event_id in old:
            del seen[event_id]
        if len(seen) <= max_ids:
            return
        # More events inside the window than we may remember: keep the newest.
        # An event arriving later than the window then kept may be delivered twice.
        committed = [(ts, i) for i, (ts, seq) in seen.items() if seq <= self.committed_seq]
        excess = len(seen) - max_ids
        for _ts, event_id in heapq.nsmallest(excess, committed):
            del seen[event_id]
        if not self.window_shrunk_logged:
            self.window_shrunk_logged = True
            log.warning("cloudwatch_dedup_window_shrunk", log_group=self.name, max_ids=max_ids)
