"""Both engines on the same records: wmf_native.map_chunk and the reference's
map_events, reduced to one comparable outcome per record.

An outcome is ("mapped", id, time, log type, documents per view), ("rejected",
reason, detail) or DEFERRED (native only: the reference maps that record). The
reference's clock is pinned to NOW_MS so records without a time of their own get
the same fallback from both engines.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from forwarder import reference_engine
from forwarder.acks import Ack
from forwarder.events import Event, Origin

wmf_native = pytest.importorskip(
    "wmf_native", reason="the native engine is not built (make native needs cargo)"
)

ALL_VIEWS = ("ocsf", "ocsf:noraw", "ecs", "ecs:noraw", "raw")
# Each view alone too: the raw view skips map_record's time and email checks.
VIEW_SETS = (ALL_VIEWS, *((view,) for view in ALL_VIEWS))
NOW_MS = 1_718_236_800_000
SOURCE = "inbox"
PARTITION = "logs/2024-06-12.jsonl"
DEFERRED: tuple[Any, ...] = ("deferred",)

Outcome = tuple[Any, ...]


@dataclass(frozen=True)
class Record:
    """One record as a source hands it over: its bytes, the log type the source
    knows (None: detect it), the source's own time (0.0: none) and where it was read."""

    raw: bytes
    log_type: str | None = None
    time: float = 0.0
    partition: str = PARTITION


@contextmanager
def pinned_clock() -> Iterator[None]:
    """The reference's `time.time()` returns NOW_MS for the duration."""
    real = getattr(reference_engine, "time")  # noqa: B009 (the module's own import)
    setattr(reference_engine, "time", types.SimpleNamespace(time=lambda: NOW_MS / 1000))  # noqa: B010
    try:
        yield
    finally:
        setattr(reference_engine, "time", real)  # noqa: B010


def reference(records: Sequence[Record], views: Sequence[str]) -> list[Outcome]:
    events = [
        Event(
            raw=r.raw,
            origin=Origin(SOURCE, r.partition, i),
            ack=Ack(),
            log_type=r.log_type,
            time=r.time,
        )
        for i, r in enumerate(records)
    ]
    with pinned_clock():
        good, rejected = reference_engine.map_events(events, views)
    found: dict[int, Outcome] = {}
    for e in good:
        found[id(e)] = ("mapped", e.id, e.time, e.log_type, tuple(e.docs[v] for v in views))
    for r in rejected:
        found[id(r.event)] = ("rejected", r.reason, r.detail)
    return [found[id(e)] for e in events]


def native(records: Sequence[Record], views: Sequence[str]) -> list[Outcome]:
    n = len(records)
    chunk = wmf_native.map_chunk(
        [r.raw for r in records],
        [r.log_type for r in records],
        [r.time for r in records],
        [r.partition for r in records],
        list(range(n)),
        list(views),
        SOURCE,
        NOW_MS,
    )
    rejections = {i: (reason, detail) for i, reason, detail in chunk.rejections}
    assert chunk.deferred == chunk.statuses.count(wmf_native.DEFERRED)
    out: list[Outcome] = []
    for i in range(n):
        status = chunk.statuses[i]
        if status == wmf_native.MAPPED:
            docs = tuple(chunk.docs[v][i] for v in range(len(views)))
            out.append(
                ("mapped", chunk.ids[i], chunk.times_ms[i] / 1000.0, chunk.log_types[i], docs)
            )
        elif status == wmf_native.REJECTED:
            out.append(("rejected", *rejections[i]))
        else:
            assert status == wmf_native.DEFERRED
            out.append(DEFERRED)
    return out


def _explain(record: Record, ref: Outcome, nat: Outcome, views: Sequence[str]) -> str:
    lines = [f"record {record.raw[:300]!r} (log type {record.log_type!r}, time {record.time!r})"]
    if ref[0] == nat[0] == "mapped":
        lines.append(f"  reference {ref[:4]}\n  native    {nat[:4]}")
        for view, a, b in zip(views, ref[4], nat[4], strict=True):
            if a != b:
                lines.append(
                    f"  view {view}:\n    reference {a[:2000]!r}\n    native    {b[:2000]!r}"
                )
    else:
        lines.append(f"  reference {ref[:3]!r}\n  native    {nat[:3]!r}")
    return "\n".join(lines)


def compare(records: Sequence[Record], views: Sequence[str] = ALL_VIEWS) -> list[int]:
    """Assert that every record the native engine maps or rejects, it maps or
    rejects exactly as the reference does; the indices it deferred."""
    ref, nat = reference(records, views), native(records, views)
    deferred = []
    for i, (record, r, n) in enumerate(zip(records, ref, nat, strict=True)):
        if n == DEFERRED:
            deferred.append(i)
        else:
            assert n == r, _explain(record, r, n, views)
    return deferred
