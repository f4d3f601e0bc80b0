"""Group checkpoints: ids per millisecond, bounded size, rewind, pruning."""

from __future__ import annotations

from forwarder.sources.cloudwatch.tracker import GroupCheckpoint, GroupTracker, PageToken

LOOK_BACK = 300_000


def tracker_with(events: list[tuple[str, int, int]]) -> GroupTracker:
    tracker = GroupTracker("/g", 0, LOOK_BACK)
    for event_id, ts, seq in events:
        tracker.seen[event_id] = (ts, seq)
        tracker.seq = max(tracker.seq, seq)
        tracker.high_ts = max(tracker.high_ts, ts)
    return tracker


def test_a_checkpoint_holds_the_ids_of_acknowledged_pages_only() -> None:
    tracker = tracker_with([("a", 1_000_000, 1), ("b", 1_000_000, 1), ("c", 1_000_005, 2)])
    checkpoint = tracker.checkpoint(PageToken(1, 1_000_000, 1_000_000), max_ids=100)
    assert checkpoint.ts == 1_000_000
    assert checkpoint.since == 1_000_000 - LOOK_BACK
    assert {ts: sorted(ids) for ts, ids in checkpoint.ids.items()} == {1_000_000: ["a", "b"]}


def test_a_checkpoint_round_trips_through_json_values() -> None:
    saved = GroupCheckpoint(5, 1, {5: ["x", "y"], 3: ["z"]}, created=42)
    assert GroupCheckpoint.from_value(saved.as_value()) == saved


def test_too_many_ids_keep_whole_milliseconds_and_raise_since() -> None:
    events = [(f"e{i}", 1_000_000 + i // 3, 1) for i in range(30)]  # 3 ids per ms
    tracker = tracker_with(events)
    checkpoint = tracker.checkpoint(PageToken(1, 1_000_009, 1_000_009), max_ids=10)
    kept = sum(len(ids) for ids in checkpoint.ids.values())
    assert kept == 9  # three whole milliseconds; the fourth would be cut
    assert checkpoint.since == 1_000_007
    assert all(len(ids) == 3 for ids in checkpoint.ids.values())


def test_restore_skips_saved_ids_and_searches_the_look_back_once() -> None:
    saved = GroupCheckpoint(2_000_000, 2_000_000 - LOOK_BACK, {2_000_000: ["a"]}, created=7)
    tracker = GroupTracker.restore("/g", saved, LOOK_BACK)
    assert "a" in tracker.seen and tracker.created == 7
    assert tracker.query_start(look_back=False) == 2_000_000 - LOOK_BACK
    tracker.force_look_back = False
    assert tracker.query_start(look_back=False) == 2_000_000  # inclusive: same ms by id


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
    recent = [(f"new{i}", now - i, 2) for i in range(2000)]
    tracker = tracker_with(old + recent)
    tracker.committed(PageToken(2, now, now))
    tracker.prune(max_ids=1500)
    assert not any(i.startswith("old") for i in tracker.seen)
    assert len(tracker.seen) == 1500 and "new0" in tracker.seen


def test_prune_keeps_ids_of_pages_not_yet_committed() -> None:
    now = 10_000_000
    tracker = tracker_with([("late", now - LOOK_BACK - 50, 2), ("x", now, 2)])
    tracker.committed(PageToken(1, now - LOOK_BACK - 100, 0))
    tracker.prune(max_ids=1000)
    assert "late" in tracker.seen
