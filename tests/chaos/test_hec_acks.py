"""Chaos 4: indexer acks never come for the channel the forwarder starts with.

The HEC peer stores the data but its ackIds on the first channel it sees stay false
forever (`ack_drop_channel: "first"`), as when an indexer loses a channel's pending
acks. After `ack_timeout` (3 s) the forwarder must treat those batches as not
delivered, rotate to a new channel (forwarder/sinks/splunk_hec.py) and send them
again there. Zero loss; the duplicates are exactly what the peer stored on the lost
channel, each sent again once.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from tests.chaos.ledger import Ledger
from tests.chaos.rig import (
    Clock,
    dead_letters,
    hec_sink,
    log_events,
    s3_source,
    stored_ids,
    upload,
    write_config,
)
from tests.conftest import variants
from tests.e2e.helpers import Daemon, expected_ids, wait_for
from tests.e2e.test_s3_sqs_daemon import Queue
from tests.peers import moto as moto_peer
from tests.peers.fixtures import PeerProcess
from tests.peers.moto import MotoServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120)]

moto = moto_peer.moto

QUEUE_EVENTS = 2000


def test_lost_acks_on_one_channel_are_sent_again_on_a_new_one(
    tmp_path: Path, moto: MotoServer, hec_ack_peer: PeerProcess
) -> None:
    clock = Clock()
    peer = hec_ack_peer
    peer.control("faults", {"ack_drop_channel": "first"})
    queue = Queue(moto, visibility=10)
    records = variants(200, "acks-")  # 9,000 records
    upload(queue, "AWSLogs/acks", records, 1500)
    sink = hec_sink(peer.url, ack_timeout="3s", timeout="3s",
                    queue={"max_events": QUEUE_EVENTS, "max_bytes": "16MiB"})  # fmt: skip
    config = write_config(tmp_path, s3_source(queue, chunk_events=250), sink)
    want = set(expected_ids(records))
    daemon = Daemon(config, cwd=tmp_path)
    try:
        wait_for(lambda: want <= set(stored_ids(peer)), 60, "every event")
        wait_for(lambda: queue.counts() == (0, 0), 30, "the messages to be deleted")
        delivered_at = clock()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.output()[-3000:]
    finally:
        daemon.stop()

    (lost_channel,) = peer.control("faults", {})["ack_drop_channels"]
    stored = peer.control("events")
    channels = Counter(str(event["channel"]) for event in stored)
    on_lost = [str(e["envelope"]["fields"]["event_id"]) for e in stored
               if e["channel"] == lost_channel]  # fmt: skip
    elsewhere = Counter(str(e["envelope"]["fields"]["event_id"]) for e in stored
                        if e["channel"] != lost_channel)  # fmt: skip
    print(f"[{clock()}s] all delivered after {delivered_at}s; events per channel: "
          f"{dict(channels)}, acks lost on {lost_channel}")  # fmt: skip
    output = daemon.output()
    assert on_lost, "the first channel carried data"
    assert len(on_lost) <= QUEUE_EVENTS  # unacknowledged data is bounded by the sink queue
    assert "hec_ack_timeout" in output
    rotations = log_events(output, "hec_channel_rotated")
    assert [r["old"] for r in rotations] == [lost_channel], rotations  # rotated once
    assert all(elsewhere[event_id] >= 1 for event_id in on_lost)  # each sent again
    settled = Ledger("hec acks lost on the first channel, s3/sqs -> hec (acks)", records).settle(
        stored_ids(peer), dead_letters(tmp_path)
    )
    assert settled.lost == 0
    assert settled.dead_lettered == 0
    # Sent again once each, on a channel whose acks come: no more copies than that.
    assert settled.duplicates == len(on_lost), (settled.duplicates, len(on_lost))
