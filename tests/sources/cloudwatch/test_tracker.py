"""Group checkpoints: ids per millisecond, bounded size, rewind, pruning."""

from __future__ import annotations

import orjson

from forwarder.sources.cloudwatch.tracker import (
    GroupCheckpoint,
    GroupTracker,
    PageToken,
    digest,
)

LOOK_BACK = 300_000


def tracker_with(events: list[tuple[str, int, int]]) -> GroupTracker:
    """A tracker that dispatched these (eventId, timestamp, page seq) events."""
    tracker = GroupTracker("/g", 0, LOOK_BACK)
    pages: dict[int, list[tuple[int, str]]] = {}
    for event_id, ts, seq in events:
        pages.setdefault(seq, []).append((ts, event_id))
    for seq, ids in sorted(pages.items()):
        tracker.add_page(seq, max(ts for ts, _ in ids), ids)
        tracker.seq = seq
        tracker.high_ts = max(tracker.high_ts, *(ts for ts, _ in ids))
    return tracker


def test_a_checkpoint_holds_the_ids_of_acknowledged_pages_only() -> None:
    tracker = tracker_with([("a", 1_000_000, 1), ("b", 1_000_000, 1), ("c", 1_000_005, 2)])
    checkpoint = tracker.checkpoint(PageToken(1, 1_000_000, 1_000_000), max_ids=100)
    assert checkpoint.ts == 1_000_000
    assert checkpoint.since == 1_000_000 - LOOK_BACK
    assert {ts: sorted(ids) for ts, ids in checkpoint.ids.items()} == {
        1_000_000: sorted([digest("a"), digest("b")])
    }


def test_a_checkpoint_round_trips_through_json_values() -> None:
    saved = GroupCheckpoint(5, 1, {3: [digest("z")], 5: [digest("x"), digest("y")]}, created=42)
    assert GroupCheckpoint.from_value(orjson.loads(orjson.dumps(saved.as_value()))) == saved


def test_twenty_thousand_ids_fit_a_dynamodb_item() -> None:
    ids = {1_000_000 + i: [digest(f"event-{i}")] for i in range(20_000)}  # one per ms
    value = GroupCheckpoint(1_019_999, 1_000_000, ids).as_value()
    assert len(orjson.dumps(value)) < 350_000  # DynamoDB: 400 KB an item


def test_too_many_ids_keep_whole_milliseconds_and_raise_since() -> None:
    events = [(f"e{i}", 1_000_000 + i // 3, 1) for i in range(30)]  # 3 ids per ms
    tracker = tracker_with(events)
    checkpoint = tracker.checkpoint(PageToken(1, 1_000_009, 1_000_009), max_ids=10)
    kept = sum(len(ids) for ids in checkpoint.ids.values())
    assert kept == 9  # three whole milliseconds; the fourth would be cut
    assert checkpoint.since == 1_000_007
    assert all(len(ids) == 3 for ids in checkpoint.ids.values())


def test_restore_skips_saved_ids_and_searches_the_look_back_once() -> None:
    since = 2_000_000 - LOOK_BACK
    saved = GroupCheckpoint(2_000_000, since, {2_000_000: [digest("a")]}, created=7)
    tracker = GroupTracker.restore("/g", saved, LOOK_BACK)
    assert tracker.created == 7
    assert tracker.known("a", 2_000_000) and not tracker.known("b", 2_000_000)
    assert "a" in tracker.seen  # found again: remembered by its id from now on
    assert tracker.query_start(look_back=False) == 2_000_000 - LOOK_BACK
    tracker.force_look_back = False
    assert tracker.query_start(look_back=False) == 2_000_000  # inclusive: same ms by id


def test_restored_digests_not_found_again_stay_in_the_next_checkpoint() -> None:
    since = 2_000_000 - LOOK_BACK
    saved = GroupCheckpoint(2_000_000, since, {1_999_000: [digest("old")]})
    tracker = GroupTracker.restore("/g", saved, LOOK_BACK)
    tracker.add_page(1, 2_000_500, [(2_000_500, "new")])
    checkpoint = tracker.checkpoint(PageToken(1, 2_000_500, 2_000_500), max_ids=100)
    assert checkpoint.ids == {1_999_000: [digest("old")], 2_000_500: [digest("new")]}


def test_rewind_forgets_in_flight_ids_and_goes_back_to_the_commit() -> None:
    tracker = tracker_with([("a", 1_000, 1), ("b", 2_000, 2), ("c", 3_000, 3)])
    tracker.committed(PageToken(1, 1_000, 1_000))
    tracker.rewind()
    assert set(tracker.seen) == {"a"}
    assert tracker.seq == 1 and tracker.high_ts == 1_000 and tracker.force_look_back


def test_rewind_before_any_commit_starts_over() -> None:
    tracker = tracker_with([("a", 1_000, 1)])
    tracker.rewind()
    assert tracker.seen == {} and tracker.query_start(look_back=False) == 0


def test_prune_drops_committed_ids_older_than_the_window_and_caps_the_rest() -> None:
    now = 10_000_000
    old = [(f"old{i}", now - LOOK_BACK - 10 - i, 1) for i in range(5)]
    recent = [(f"new{i}", now - i, 21 - i // 100) for i in range(2000)]  # 20 pages of 100
    tracker = tracker_with(old + recent)
    tracker.committed(PageToken(21, now, now))
    tracker.prune(max_ids=1500)
    assert not any(i.startswith("old") for i in tracker.seen)
    # Whole pages go, oldest first, until what is remembered fits.
    assert len(tracker.seen) == 1500 and "new0" in tracker.seen and "new1999" not in tracker.seen


def test_prune_keeps_ids_of_pages_not_yet_committed() -> None:
    now = 10_000_000
    tracker = tracker_with([("late", now - LOOK_BACK - 50, 2), ("x", now, 2)])
    tracker.committed(PageToken(1, now - LOOK_BACK - 100, 0))
    tracker.prune(max_ids=1000)
    assert "late" in tracker.seen


def test_a_checkpoint_reads_only_the_newest_pages_it_needs() -> None:
    # 200 pages of 1,000 events, all inside the window: the checkpoint keeps the 5,000
    # newest and must not walk the 200,000 (it stops after about six pages).
    now = 50_000_000
    tracker = GroupTracker("/g", 0, LOOK_BACK)
    for seq in range(1, 201):
        base = now - (200 - seq) * 1000
        tracker.add_page(seq, base + 999, [(base + i, f"p{seq}e{i}") for i in range(1000)])
    visited = 0
    original = list.__iter__

    class CountingList(list[tuple[int, str]]):
        def __iter__(self):  # type: ignore[no-untyped-def]
            nonlocal visited
            visited += 1
            return original(self)

    for page in tracker.pages.values():
        page.ids = CountingList(page.ids)
    checkpoint = tracker.checkpoint(PageToken(200, now + 999, now + 999), max_ids=5000)
    assert sum(len(v) for v in checkpoint.ids.values()) == 5000
    assert checkpoint.since == now + 999 - 4999
    assert visited <= 7
