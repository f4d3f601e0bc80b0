"""Chaos 1: SIGKILL at random moments, ten times, then a drain: nothing is lost.

Each round adds new data upstream (S3 objects announced on SQS, or a new CloudWatch
log stream), starts the real daemon, kills it with SIGKILL after a random delay (from
a seed printed for replay: WMF_CHAOS_SEED=N) and starts the next round at once. A
final `run --drain` delivers what is left. The sink is the strict HEC peer with
indexer acknowledgement, so an event counts as delivered only once its ackId was
reported; the ledger is settled from the events the peer stored.

What a kill may cost is a duplicate, never a loss: events the peer stored whose
commit (SQS delete / object progress, or the CloudWatch checkpoint) had not happened
yet are read and sent again.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.ledger import Ledger
from tests.chaos.rig import (
    Clock,
    cloudwatch_source,
    dead_letters,
    hec_sink,
    put_log_events,
    s3_source,
    seeded,
    stored_count,
    stored_ids,
    upload,
    write_config,
)
from tests.conftest import variants
from tests.e2e.helpers import Daemon
from tests.e2e.test_s3_sqs_daemon import Queue
from tests.peers import moto as moto_peer
from tests.peers.fixtures import PeerProcess
from tests.peers.moto import MotoServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(150)]

moto = moto_peer.moto

ROUNDS = 10
COPIES = 40  # variants() of the 45 samples: 1,800 records a round, 18,000 in all
KILL_AFTER = (0.3, 4.0)  # seconds after the start: from mid-startup to mid-stream
VISIBILITY = 4  # seconds: a killed daemon's messages come back quickly
QUEUE_EVENTS, CHUNK_EVENTS, WORKERS = 1000, 200, 4
# Indexer acks come 0.5 s after the data: a kill often lands on batches the peer has
# stored but not yet acknowledged (and paces delivery, so kills land mid-stream).
ACK_DELAY = 0.5


def kill_rounds(config: Path, root: Path, peer: PeerProcess, rng: random.Random,
                feed: Callable[[int], list[dict[str, Any]]]) -> list[dict[str, Any]]:  # fmt: skip
    """Feed, start, SIGKILL after a random delay, ROUNDS times; all records fed."""
    peer.control("faults", {"ack_delay": ACK_DELAY})
    clock = Clock()
    records: list[dict[str, Any]] = []
    for number in range(ROUNDS):
        records += feed(number)
        delay = rng.uniform(*KILL_AFTER)
        daemon = Daemon(config, cwd=root)
        try:
            time.sleep(delay)
            assert daemon.proc.poll() is None, daemon.output()[-3000:]
            daemon.signal(signal.SIGKILL)
            daemon.proc.wait(10)
        finally:
            daemon.stop()
        print(f"[{clock()}s] round {number}: SIGKILL after {delay:.2f}s; "
              f"{len(records)} records fed, the peer stored {stored_count(peer)}")  # fmt: skip
    final = Daemon(config, "--drain", cwd=root)
    assert final.wait(120) == 0, final.output()[-3000:]
    print(f"[{clock()}s] drained; the peer stored {stored_count(peer)}")
    return records


def settle(scenario: str, records: list[dict[str, Any]], peer: PeerProcess, root: Path) -> None:
    settled = Ledger(scenario, records).settle(stored_ids(peer), dead_letters(root))
    assert settled.lost == 0
    assert settled.dead_lettered == 0
    # Per kill, at most what the sink held (queued, in flight or awaiting its ack) plus
    # what the source had read past its last commit can come again.
    assert settled.duplicates <= ROUNDS * (QUEUE_EVENTS + WORKERS * CHUNK_EVENTS)


def test_sigkill_during_s3_sqs_delivery(
    tmp_path: Path, moto: MotoServer, hec_ack_peer: PeerProcess
) -> None:
    _, rng = seeded("sigkill s3/sqs")
    queue = Queue(moto, visibility=VISIBILITY)
    # max_receives: ten kills may each take a message before any of it commits; the
    # give-up rule (tested on its own) must not turn this scenario into dead letters.
    source = s3_source(queue, workers=WORKERS, chunk_events=CHUNK_EVENTS, max_receives=100)
    sink = hec_sink(hec_ack_peer.url, queue={"max_events": QUEUE_EVENTS, "max_bytes": "16MiB"})
    config = write_config(tmp_path, source, sink)

    def feed(number: int) -> list[dict[str, Any]]:
        records = variants(COPIES, f"s{number}-")
        # One object of several chunks (resumed inside) or a few small ones.
        upload(queue, f"AWSLogs/round-{number}", records, rng.choice((225, 450, len(records))))
        return records

    records = kill_rounds(config, tmp_path, hec_ack_peer, rng, feed)
    settle("sigkill x10, s3/sqs -> hec (acks)", records, hec_ack_peer, tmp_path)
    assert queue.counts() == (0, 0)


def test_sigkill_during_cloudwatch_delivery(
    tmp_path: Path, moto: MotoServer, hec_ack_peer: PeerProcess
) -> None:
    _, rng = seeded("sigkill cloudwatch")
    group = f"/aws/workmail/{MotoServer.unique('chaos')}"
    moto.client("logs").create_log_group(logGroupName=group)
    source = cloudwatch_source(moto, group)
    sink = hec_sink(hec_ack_peer.url, queue={"max_events": QUEUE_EVENTS, "max_bytes": "16MiB"})
    config = write_config(tmp_path, source, sink)
    # Ten events a second: the 5-minute look-back window then holds 3,000 events, fewer
    # than a checkpoint remembers (max_checkpoint_ids, 5,000). Denser streams are
    # delivered again in part on every restart, as tracker.py documents.
    spacing_ms = 100
    start_ms = [int(time.time() * 1000) - 3_600_000]

    def feed(number: int) -> list[dict[str, Any]]:
        records = variants(COPIES, f"c{number}-")
        start_ms[0] = put_log_events(moto, group, f"round-{number}", records, start_ms[0],
                                     spacing_ms)  # fmt: skip
        return records

    records = kill_rounds(config, tmp_path, hec_ack_peer, rng, feed)
    settle("sigkill x10, cloudwatch -> hec (acks)", records, hec_ack_peer, tmp_path)
