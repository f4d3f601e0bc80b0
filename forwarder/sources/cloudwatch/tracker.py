"""Per log group: where reading stands, which events were already delivered, the checkpoint.

FilterLogEvents is queried by event timestamp, and CloudWatch accepts events late
(a timestamp older than events already searchable). So a checkpoint is not a single
timestamp. It is:

- `ts`: the newest event timestamp over the contiguous acknowledged pages,
- `ids`: the delivered events with a timestamp >= `since`, grouped by timestamp, each
  as an 8-byte digest of its eventId (a CloudWatch eventId is 56 digits; packed with
  their timestamps, 20,000 fit in a DynamoDB item of 400 KB). Equal-millisecond events and events
  that arrived late inside the look-back window are then skipped by eventId on the
  next query, never repeated and never lost,
- `created`: the group's creationTime, which tells a recreated group from the old one.

The ids saved are bounded (`max_checkpoint_ids`, newest first). When the look-back
window holds more delivered events than that, `since` moves up and a restart may
deliver again what lies between `ts - look_back` and `since`: a duplicate, never a loss.

In memory, the ids are also indexed per page (`PageIds`), so a checkpoint reads only
the few newest pages it needs and pruning drops whole pages: both stay cheap however
many events the look-back window holds.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import struct
from collections.abc import Iterator
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
class PageIds:
    """The events one page delivered: (timestamp, eventId), and the newest timestamp."""

    newest: int
    ids: list[tuple[int, str]]


DIGEST_BYTES = 8
# One saved id: its timestamp as milliseconds after `since` (4 bytes: up to 49 days of
# look-back) and its digest. 16 base64 characters an id: 20,000 fit a DynamoDB item.
_PACKED = struct.Struct(">I8s")


def digest(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=DIGEST_BYTES).digest()


@dataclass(slots=True)
class GroupCheckpoint:
    ts: int
    since: int
    ids: dict[int, list[bytes]]  # timestamp -> eventId digests
    created: int | None = None

    def as_value(self) -> dict[str, Any]:
        packed = b"".join(
            _PACKED.pack(ts - self.since, event_digest)
            for ts, digests in sorted(self.ids.items())
            for event_digest in digests
        )
        return {
            "ts": self.ts,
            "since": self.since,
            "ids": base64.b64encode(packed).decode("ascii"),
            "created": self.created,
        }

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> GroupCheckpoint:
        since = int(value["since"])
        raw = base64.b64decode(str(value["ids"]), validate=True)
        if len(raw) % _PACKED.size:
            raise ValueError("ids are not whole (offset, digest) records")
        ids: dict[int, list[bytes]] = {}
        for offset, event_digest in _PACKED.iter_unpack(raw):
            ids.setdefault(since + offset, []).append(event_digest)
        created = value.get("created")
        return cls(
            ts=int(value["ts"]),
            since=since,
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
    # eventId -> page seq (0: found again after a restart), for de-duplication
    seen: dict[str, int] = field(default_factory=dict)
    # After a restart: the checkpoint's digests (digest -> timestamp), until pruned.
    restored: dict[bytes, int] = field(default_factory=dict)
    pages: dict[int, PageIds] = field(default_factory=dict)  # seq -> what it delivered
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
        tracker.restored = {d: ts for ts, group in checkpoint.ids.items() for d in group}
        tracker.add_page(0, checkpoint.ts, [])
        # Search the look-back window once: events that arrived late while the
        # forwarder was down are found there; the saved ids keep the rest from repeating.
        tracker.force_look_back = True
        return tracker

    def known(self, event_id: str, ts: int) -> bool:
        """Delivered already? A match on a restored digest joins page 0 (delivered before)."""
        if event_id in self.seen:
            return True
        restored = self.restored
        if restored and restored.pop(digest(event_id), None) is not None:
            self.seen[event_id] = 0
            self.pages[0].ids.append((ts, event_id))
            return True
        return False

    def add_page(self, seq: int, newest: int, ids: list[tuple[int, str]]) -> None:
        seen = self.seen
        for _ts, event_id in ids:
            seen[event_id] = seq
        page = self.pages.get(seq)
        if page is None:
            self.pages[seq] = PageIds(newest, ids)
        else:  # seq 0 (restored) only
            page.ids.extend(ids)
            page.newest = max(page.newest, newest)

    def record_page(
        self, seq: int, newest: int, ids: list[tuple[int, str]], ingestion_lag_ms: int
    ) -> PageToken:
        """A page of new events was dispatched (its ids are in `seen` already)."""
        self.seq = seq
        self.pages[seq] = PageIds(newest, ids)
        self.high_ts = max(self.high_ts, newest)
        self.last_ingestion_lag = ingestion_lag_ms / 1000.0
        return PageToken(seq, self.high_ts, newest)

    def query_start(self, look_back: bool) -> int:
        if self.high_ts < 0:
            return self.start
        if look_back or self.force_look_back:
            return max(0, self.high_ts - self.look_back_ms)
        return self.high_ts  # inclusive: events in the same ms are skipped by id

    def committed(self, token: PageToken) -> None:
        self.committed_seq = token.seq
        self.committed_ts = token.ts
        if self.acked_event_ts is None or token.last_event_ts > self.acked_event_ts:
            self.acked_event_ts = token.last_event_ts

    def checkpoint(self, token: PageToken, max_ids: int) -> GroupCheckpoint:
        """The checkpoint once every page up to `token` is acknowledged.

        Reads pages newest first and stops as soon as no older page can hold one of
        the `max_ids` newest ids.
        """
        floor = max(0, token.ts - self.look_back_ms)
        groups: list[tuple[int, Iterator[tuple[int, bytes]]]] = [
            (page.newest, _digested(page.ids))
            for seq, page in self.pages.items()
            if seq <= token.seq and page.newest >= floor
        ]
        if self.restored:  # digests not found again yet: still delivered
            newest = max(self.restored.values())
            groups.append((newest, ((ts, d) for d, ts in self.restored.items())))
        groups.sort(key=lambda group: group[0], reverse=True)
        top: list[tuple[int, bytes]] = []  # min-heap of the newest max_ids + 1
        for newest, items in groups:
            if len(top) > max_ids and newest < top[0][0]:
                break
            for item in items:
                if item[0] < floor:
                    continue
                if len(top) <= max_ids:
                    heapq.heappush(top, item)
                elif item > top[0]:
                    heapq.heapreplace(top, item)
        since = floor
        if len(top) > max_ids:
            since = top[0][0] + 1  # the newest timestamp that cannot be kept whole
        ids: dict[int, list[bytes]] = {}
        for ts, event_digest in top:
            if ts >= since:
                ids.setdefault(ts, []).append(event_digest)
        return GroupCheckpoint(token.ts, since, ids, self.created)

    def rewind(self) -> None:
        """A page ended ERRORED: read again from the last commit, forget what was in flight."""
        for seq in [s for s in self.pages if s > self.committed_seq]:
            for _ts, event_id in self.pages.pop(seq).ids:
                if self.seen.get(event_id) == seq:
                    del self.seen[event_id]
        self.seq = self.committed_seq  # pages after it are dropped by the committer
        if self.committed_ts is None:
            self.high_ts = -1
        else:
            self.high_ts = self.committed_ts
            self.force_look_back = True

    def prune(self, max_ids: int) -> None:
        """Forget committed pages older than the look-back window; cap what is remembered.

        The floor follows the committed timestamp, not the newest dispatched one: a
        checkpoint still to be written may need any id the window of its page holds.
        """
        if self.committed_ts is None:
            return
        floor = self.committed_ts - self.look_back_ms
        committed = [(page.newest, seq) for seq, page in self.pages.items()
                     if seq <= self.committed_seq]  # fmt: skip
        for newest, seq in committed:
            if newest < floor and seq != 0:
                self._forget_page(seq)
        if self.restored:
            self.restored = {d: ts for d, ts in self.restored.items() if ts >= floor}
        if len(self.seen) <= max_ids:
            return
        # More events inside the window than we may remember: forget the oldest pages.
        # An event arriving later than the window then kept may be delivered twice.
        for _newest, seq in sorted(committed):
            if len(self.seen) <= max_ids:
                break
            if seq in self.pages:
                self._forget_page(seq)
        if not self.window_shrunk_logged:
            self.window_shrunk_logged = True
            log.warning("cloudwatch_dedup_window_shrunk", log_group=self.name, max_ids=max_ids)

    def _forget_page(self, seq: int) -> None:
        for _ts, event_id in self.pages.pop(seq).ids:
            if self.seen.get(event_id) == seq:
                del self.seen[event_id]


def _digested(ids: list[tuple[int, str]]) -> Iterator[tuple[int, bytes]]:
    """(timestamp, digest) of a page's ids, computed only if the page is read."""
    for ts, event_id in ids:
        yield ts, digest(event_id)
