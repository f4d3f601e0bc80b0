"""Chaos 2: the SIEM goes away for 2.5 SQS visibility timeouts, then comes back.

The HEC peer (indexer acks on) is stopped mid-delivery, so the daemon's requests and
ack polls meet a closed port; a new peer is started on the same port after 10 s, with
the visibility timeout at 4 s. While the sink is out the messages must stay held
(the visibility heartbeat), none may go back to the queue, and afterwards everything
is delivered: zero loss, each SQS message received exactly once.

Duplicates are possible, and bounded: what the first peer stored but had not yet
acknowledged when it went away is sent again (at most the sink's queue).
"""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.chaos.ledger import Ledger
from tests.chaos.rig import (
    Clock,
    dead_letters,
    hec_sink,
    log_events,
    s3_source,
    stored_count,
    stored_ids,
    upload,
    write_config,
)
from tests.conftest import variants
from tests.e2e.helpers import Daemon, expected_ids, wait_for
from tests.e2e.test_s3_sqs_daemon import Queue
from tests.peers import moto as moto_peer
from tests.peers.fixtures import HEC_TOKEN, PeerProcess
from tests.peers.moto import MotoServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120)]

moto = moto_peer.moto

VISIBILITY = 4  # seconds
OUTAGE = 2.5 * VISIBILITY
OBJECTS, QUEUE_EVENTS = 8, 1000


def hec_peer_on(port: int = 0) -> PeerProcess:
    # A later --port wins: the replacement binds the port the first one had.
    return PeerProcess("hec", "--token", HEC_TOKEN, "--indexes", "main,workmail", "--ack",
                       "--port", str(port)).start()  # fmt: skip


def flushed_stats(output: str) -> dict[str, Any]:
    """The S3/SQS source's counters, from its log line at shutdown."""
    (line,) = log_events(output, "s3_sqs_source_flushed")
    return line


def test_hec_down_for_two_visibility_timeouts_loses_nothing_and_redelivers_nothing(
    tmp_path: Path, moto: MotoServer
) -> None:
    clock = Clock()
    queue = Queue(moto, visibility=VISIBILITY)
    records = variants(240, "outage-")  # 10,800 records
    with contextlib.ExitStack() as stack:
        first = hec_peer_on()
        stack.callback(first.stop)
        port = urlsplit(first.url).port
        assert port is not None
        source = s3_source(queue, workers=OBJECTS, chunk_events=250)
        sink = hec_sink(first.url, ack_timeout="3s", timeout="3s",
                        queue={"max_events": QUEUE_EVENTS, "max_bytes": "16MiB"})  # fmt: skip
        config = write_config(tmp_path, source, sink)
        assert upload(queue, "AWSLogs/outage", records, len(records) // OBJECTS) == OBJECTS
        daemon = Daemon(config, cwd=tmp_path)
        stack.callback(daemon.stop)

        wait_for(lambda: stored_count(first) >= 2500, 30, "a part to be delivered")
        wait_for(lambda: queue.counts()[0] == 0, 10, "every message to be received")
        # The outage: from here on nothing reaches the first peer, then it goes away.
        first.control("faults", {"drop_connections": 1_000_000})
        before = stored_ids(first)
        first.stop()
        print(f"[{clock()}s] HEC down with {len(before)} events stored; "
              f"queue (visible, in flight) = {queue.counts()}")  # fmt: skip
        samples = []
        ends = time.monotonic() + OUTAGE
        while time.monotonic() < ends:
            samples.append(queue.counts())
            time.sleep(0.25)
        assert daemon.proc.poll() is None, daemon.output()[-3000:]
        # No message went back to the queue: the heartbeat held every one of them.
        assert max(visible for visible, _ in samples) == 0, samples
        assert min(hidden for _, hidden in samples) >= 1, samples  # the outage held work

        second = hec_peer_on(port)
        stack.callback(second.stop)
        print(f"[{clock()}s] HEC back after {OUTAGE:.0f}s; held messages {samples[-1][1]}")
        want = set(expected_ids(records))
        wait_for(lambda: want <= set(before) | set(stored_ids(second)), 60, "every event")
        wait_for(lambda: queue.counts() == (0, 0), 30, "the messages to be deleted")
        print(f"[{clock()}s] all delivered, every message deleted")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.output()[-3000:]
        after = stored_ids(second)

    output = daemon.output()
    stats = flushed_stats(output)
    print(f"source counters at shutdown: {stats}")
    # Each received once (S3 also sends one s3:TestEvent when notifications are set up).
    assert stats["messages_received"] == OBJECTS + stats.get("messages_test", 0), stats
    assert "messages_received_again" not in stats, stats
    assert "sqs_visibility_extend" not in output  # no failed or refused extension
    assert "sink_retry" in output  # the outage was seen
    settled = Ledger("hec down 2.5x visibility, s3/sqs -> hec (acks)", records).settle(
        before + after, dead_letters(tmp_path)
    )
    assert settled.lost == 0
    assert settled.dead_lettered == 0
    assert settled.duplicates <= QUEUE_EVENTS
