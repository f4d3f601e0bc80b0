"""Which engine maps the events: the native one (Rust, `wmf_native`) or the reference.

The pure-Python mapper (forwarder.mapping, driven by forwarder.pipeline.map_events) is
the reference and the fallback. The native engine maps a whole chunk in one call with
the GIL released and must produce the same bytes; for a record it does not reproduce
exactly (a float, a parse error whose text only orjson knows...) it answers DEFERRED
and that one record is mapped here by the reference, so the output is the reference's
either way (tests/native prove it).

`WMF_ENGINE=python` forces the reference; `WMF_ENGINE=native` makes a missing native
module an error instead of a silent fallback. The choice is made once, at import.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from types import ModuleType

from forwarder.deadletter import Rejection
from forwarder.events import Event
from forwarder.reference_engine import map_events as reference_map

ENV_VAR = "WMF_ENGINE"


class EngineUnavailable(RuntimeError):
    """WMF_ENGINE asks for an engine this installation does not have."""


def _load_native() -> tuple[ModuleType | None, str]:
    """(the native module or None, why it is not used when None)."""
    wanted = os.environ.get(ENV_VAR, "").strip().lower()
    if wanted not in ("", "native", "python"):
        raise EngineUnavailable(f"{ENV_VAR}={wanted!r}: expected 'native' or 'python'")
    if wanted == "python":
        return None, f"{ENV_VAR}=python"
    try:
        import wmf_native
    except ImportError as exc:
        if wanted == "native":
            raise EngineUnavailable(
                f"{ENV_VAR}=native but the native engine is not installed ({exc}); "
                "build it with `make native` (needs cargo)"
            ) from exc
        return None, "native module not installed"
    return wmf_native, ""


_NATIVE, FALLBACK_REASON = _load_native()
NAME = "native" if _NATIVE is not None else "python"


def describe() -> str:
    """`engine=native (wmf_native 0.1.0)` / `engine=python (WMF_ENGINE=python)`."""
    if _NATIVE is not None:
        return f"engine=native (wmf_native {_NATIVE.ENGINE_VERSION})"
    return f"engine=python ({FALLBACK_REASON})"


def map_events(events: list[Event], views: Sequence[str]) -> tuple[list[Event], list[Rejection]]:
    """Map a chunk on the chosen engine; the same result as the reference's map_events."""
    if _NATIVE is None or not events:
        return reference_map(events, views)
    return _map_native(events, views)


def _map_native(
    events: list[Event],
    views: Sequence[str],
) -> tuple[list[Event], list[Rejection]]:
    import wmf_native as native  # loaded already: only called when _NATIVE is set

    # Events a source already judged bad keep the reference's handling (and order).
    now_ms = int(time.time() * 1000)
    first = events[0].origin.source_id
    if any(e.error is not None or e.origin.source_id != first for e in events):
        return _map_mixed(events, views)
    view_list = list(views)
    chunk = native.map_chunk(
        [e.raw for e in events],
        [e.log_type for e in events],
        [e.time for e in events],
        [e.origin.partition for e in events],
        [e.origin.offset for e in events],
        view_list,
        first,
        now_ms,
    )
    statuses: bytes = chunk.statuses
    docs: list[list[bytes]] = chunk.docs
    rejected_at = {index: (reason, detail) for index, reason, detail in chunk.rejections}
    deferred_good: set[int] = set()
    deferred_rejections: dict[int, Rejection] = {}
    if chunk.deferred:
        deferred = [i for i, status in enumerate(statuses) if status == native.DEFERRED]
        good_d, rejected_d = reference_map([events[i] for i in deferred], views)
        deferred_good = {id(e) for e in good_d}
        deferred_rejections = {id(r.event): r for r in rejected_d}
    good: list[Event] = []
    rejected: list[Rejection] = []
    ids, times, types = chunk.ids, chunk.times_ms, chunk.log_types
    mapped = native.MAPPED
    for index, event in enumerate(events):
        status = statuses[index]
        if status == mapped:
            event.id = ids[index]
            event.time = times[index] / 1000.0
            event.log_type = types[index]
            event.docs = {view: docs[v][index] for v, view in enumerate(view_list)}
            good.append(event)
        elif index in rejected_at:
            reason, detail = rejected_at[index]
            rejected.append(Rejection(event, reason, detail))
        elif id(event) in deferred_good:
            good.append(event)
        else:
            rejected.append(deferred_rejections[id(event)])
    return good, rejected


def _map_mixed(
    events: list[Event],
    views: Sequence[str],
) -> tuple[list[Event], list[Rejection]]:
    """A chunk with pre-judged events or several sources: the clean runs go native."""
    good: list[Event] = []
    rejected: list[Rejection] = []
    run: list[Event] = []

    def flush() -> None:
        if run:
            g, r = _map_native(list(run), views)
            good.extend(g)
            rejected.extend(r)
            run.clear()

    for event in events:
        if event.error is not None:
            flush()
            rejected.append(Rejection(event, event.error, event.error_detail))
        elif run and event.origin.source_id != run[0].origin.source_id:
            flush()
            run.append(event)
        else:
            run.append(event)
    flush()
    return good, rejected
