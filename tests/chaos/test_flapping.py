"""Chaos 3: a flapping SIEM: 30% of HEC requests fail or hang for 20 s.

The HEC peer's `flap` fault (tests/peers/faults.py) answers a seeded 30% of its data
requests (event posts and ack polls alike) with 503 busy, 500, a dropped connection,
or holds them 20 s before processing them. The sink's `timeout` (3 s) must cut the
hung requests short and the batch be retried; everything arrives, nothing is lost.

Duplicates come from the requests the peer stored although the daemon saw them fail:
a hung request is indexed after the daemon gave up on it, and a batch whose ack polls
kept failing past `ack_timeout` is sent again. Each such request is one batch at most.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.chaos.ledger import Ledger
from tests.chaos.rig import (
    Clock,
    dead_letters,
    hec_sink,
    log_events,
    s3_source,
    seeded,
    stored_ids,
    upload,
    write_config,
)
from tests.conftest import variants
from tests.e2e.helpers import Daemon, expected_ids, wait_for
from tests.e2e.test_s3_sqs_daemon import Queue
from tests.peers import moto as moto_peer
from tests.peers.faults import FLAP_KINDS
from tests.peers.fixtures import PeerProcess
from tests.peers.moto import MotoServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(150)]

moto = moto_peer.moto

RATE, HANG, TIMEOUT = 0.3, 20.0, 3.0
BATCH = 100


def released(peer: PeerProcess) -> int:
    return int(peer.control("stats").get("flap_hang_released", 0))


def test_flapping_hec_with_hung_requests_delivers_everything(
    tmp_path: Path, moto: MotoServer, hec_ack_peer: PeerProcess
) -> None:
    seed, _ = seeded("flapping")
    clock = Clock()
    peer = hec_ack_peer
    peer.control("faults", {"flap": {"rate": RATE, "hang": HANG, "seed": seed}})
    queue = Queue(moto, visibility=10)
    records = variants(300, "flap-")  # 13,500 records
    upload(queue, "AWSLogs/flap", records, 1500)
    sink = hec_sink(peer.url, timeout=f"{TIMEOUT}s", ack_timeout="6s",
                    batch={"max_events": BATCH, "max_wait": "50ms"})  # fmt: skip
    config = write_config(tmp_path, s3_source(queue, chunk_events=250), sink)
    want = set(expected_ids(records))
    daemon = Daemon(config, cwd=tmp_path)
    try:
        wait_for(lambda: want <= set(stored_ids(peer)), 100, "every event")
        wait_for(lambda: queue.counts() == (0, 0), 30, "the messages to be deleted")
        delivered_at = clock()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.output()[-3000:]
    finally:
        daemon.stop()
    peer.control("faults", {"flap": None})
    # A hung request is indexed once its 20 s are over: wait for those copies too.
    wait_for(lambda: released(peer) == peer.control("stats").get("flap_hang", 0), HANG + 10,
             "the hung requests to be processed")  # fmt: skip
    stats = peer.control("stats")
    flaps = {kind: stats.get(f"flap_{kind}", 0) for kind in FLAP_KINDS}
    print(f"[{clock()}s] all delivered after {delivered_at}s; {stats['requests']} data "
          f"requests, flapped: {flaps}")  # fmt: skip
    output = daemon.output()
    assert all(flaps.values()), flaps  # every kind of failure happened
    # Hung requests were cut at the sink's timeout (httpx) and retried, not waited out.
    timeouts = [r for r in log_events(output, "sink_retry") if "ReadTimeout" in r["reason"]]
    assert timeouts, "no request was cut by the sink's timeout"
    settled = Ledger("flapping hec 30% (hang 20s), s3/sqs -> hec (acks)", records).settle(
        stored_ids(peer), dead_letters(tmp_path)
    )
    assert settled.lost == 0
    assert settled.dead_lettered == 0
    resent = flaps["hang"] + output.count("hec_ack_timeout")
    assert settled.duplicates <= BATCH * resent, (settled.duplicates, resent)
