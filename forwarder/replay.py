"""`replay-dead-letter PATH`: dead-lettered records through the pipeline again.

For after the operator fixed the cause (a sink's mapping, a log type, a permission).
The replay is the ordinary daemon in drain mode with one source, `ReplaySource`, in
place of the configured ones: mapping, every configured sink, retries, acks and the
configured dead letter (where whatever fails again goes) all work as in `run --drain`.
The state store is kept in memory and the telemetry listener is off, so a replay can
run next to the daemon with the same configuration file.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from forwarder.acks import Ack
from forwarder.config import AwsEndpoint, Config, DeadLetterConfig, StateConfig, TelemetryConfig
from forwarder.engine import map_events
from forwarder.events import Event
from forwarder.sources import Source
from forwarder.sources.replay import ReplaySource, ReplayStats

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
_DRY_RUN_CHUNK = 500

Serve = Callable[[Config, Sequence[Source]], int]


def entry_line_limit(max_raw_bytes: int) -> int:
    """Longest dead-letter line to read: JSON escapes a raw byte into at most 6 bytes."""
    return max_raw_bytes * 6 + (1 << 20)


def replay_command(
    location: str,
    config: Config | None,
    *,
    serve: Serve,
    reasons: Iterable[str] = (),
    dry_run: bool = False,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> int:
    """Replay (or with `dry_run`, only read and map) the entries at `location`."""
    if not location.startswith("s3://") and not Path(location).exists():
        print(f"replay-dead-letter: {location}: no such file or directory", file=sys.stderr)
        return EXIT_USAGE
    if config is None and not dry_run:
        print(
            "replay-dead-letter: --config FILE is required (the sinks and the dead letter "
            "to replay into); --dry-run works without it",
            file=sys.stderr,
        )
        return EXIT_USAGE
    dead_letter = config.dead_letter if config is not None else DeadLetterConfig()
    endpoint = AwsEndpoint(
        region=region or dead_letter.region,
        endpoint_url=endpoint_url or dead_letter.endpoint_url,
    )
    source = ReplaySource(
        location,
        endpoint,
        reasons=reasons,
        max_line_bytes=entry_line_limit(dead_letter.max_raw_bytes),
    )
    if dry_run:
        views = sorted({s.view for s in config.sinks}) if config else ["ecs", "ocsf"]
        would_fail = asyncio.run(_dry_run(source, views))
        print(_dry_run_summary(location, source.stats, would_fail))
        return EXIT_FAILURE if source.stats.read_failures else EXIT_OK
    assert config is not None
    replay_config = config.model_copy(
        update={
            "state": StateConfig(backend="memory"),
            "telemetry": TelemetryConfig(listen=None),
            "workers": 1,
        }
    )
    code = serve(replay_config, [source])
    print(_summary(location, source.stats, dead_letter.path))
    return EXIT_FAILURE if code != EXIT_OK or source.stats.failed else EXIT_OK


async def _dry_run(source: ReplaySource, views: Sequence[str]) -> Counter[str]:
    """What mapping would reject again (sinks are not asked), by reason."""
    would_fail: Counter[str] = Counter()
    ack = Ack()  # never sealed: nothing is sent anywhere

    def check(events: list[Event]) -> None:
        _, rejected = map_events(events, views)
        would_fail.update(rejection.reason for rejection in rejected)

    events: list[Event] = []
    async for entry in source.entries():
        events.append(entry.event(ack))
        if len(events) >= _DRY_RUN_CHUNK:
            check(events)
            events = []
    check(events)
    return would_fail


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{reason or '?'}={n}" for reason, n in sorted(counter.items()))


def _tail(stats: ReplayStats) -> str:
    text = f"; skipped {stats.skipped} (--reason)"
    if stats.read_failures:
        text += f"; {stats.read_failures} input(s) could not be read (see the log)"
    return text


def _summary(location: str, stats: ReplayStats, dead_letter: str) -> str:
    text = (
        f"replay-dead-letter: {location}: {stats.read} entries; "
        f"replayed {stats.replayed} ({_counts(stats.reasons) or 'none'}): "
        f"delivered {stats.delivered}, rejected again {stats.rejected_again}, "
        f"undelivered {stats.undelivered}"
    )
    text += _tail(stats)
    if stats.rejected_again:
        text += f"; what was rejected again is in {dead_letter}"
    return text


def _dry_run_summary(location: str, stats: ReplayStats, would_fail: Counter[str]) -> str:
    failing = sum(would_fail.values())
    text = (
        f"replay-dead-letter (dry run): {location}: {stats.read} entries; "
        f"would replay {stats.replayed} ({_counts(stats.reasons) or 'none'}); "
        f"would fail mapping again {failing}"
    )
    if failing:
        text += f" ({_counts(would_fail)})"
    return text + _tail(stats)
