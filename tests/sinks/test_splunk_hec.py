"""The Splunk HEC sink through the SinkRunner against the strict HEC peer (a subprocess)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from forwarder.acks import Ack
from forwarder.config import SplunkHecSinkConfig
from forwarder.events import Event, Status
from forwarder.sinks.splunk_hec import SplunkHecSink
from tests.conftest import sample_records
from tests.peers.fixtures import HEC_TOKEN, PeerProcess
from tests.sinks.helpers import deliver_through
from tests.test_runner import Rig, batch_of

pytestmark = pytest.mark.timeout(60)

RECORDS = [orjson.dumps(r) for r in sample_records()]
FAST_RETRY = {"initial_backoff": "10ms", "max_backoff": "50ms"}


def hec_config(peer: PeerProcess, **overrides: Any) -> SplunkHecSinkConfig:
    base: dict[str, Any] = {"id": "hec", "type": "splunk_hec", "url": peer.url, "token": HEC_TOKEN,
                            "index": "workmail", "batch": {"max_events": 20, "max_wait": "20ms"},
                            "retry": FAST_RETRY, "ack_poll_interval": "50ms"}  # fmt: skip
    base.update(overrides)
    return SplunkHecSinkConfig.model_validate(base)


async def deliver(tmp_path: Path, config: SplunkHecSinkConfig, raws: list[bytes],
                  timeout: float = 20) -> tuple[Ack, Rig, SplunkHecSink]:  # fmt: skip
    sink = SplunkHecSink(config)
    retry = config.retry.model_dump()
    ack, rig = await deliver_through(
        tmp_path, sink, raws, timeout, retry=retry, timeout=config.timeout
    )
    return ack, rig, sink


def stored(peer: PeerProcess) -> list[dict[str, Any]]:
    return peer.control("events")  # type: ignore[no-any-return]


@pytest.mark.parametrize("gzip_level", [6, 0])
async def test_delivers_every_event_with_the_envelope(
    tmp_path: Path, hec_peer: PeerProcess, gzip_level: int
) -> None:
    ack, _, _ = await deliver(tmp_path, hec_config(hec_peer, gzip_level=gzip_level), RECORDS)
    assert ack.status is Status.DELIVERED
    events = stored(hec_peer)
    assert len(events) == len(RECORDS)
    for item in events:
        envelope = item["envelope"]
        assert envelope["index"] == "workmail"
        log_type = envelope["fields"]["log_type"]
        assert envelope["sourcetype"].startswith("aws:workmail:")
        assert envelope["source"] == f"workmail:{log_type}"
        assert envelope["event"]["metadata"]["uid"] == envelope["fields"]["event_id"]
        assert envelope["event"]["metadata"]["log_name"] == log_type
        assert envelope["time"] == envelope["event"]["time"] / 1000


async def test_wrong_token_is_fatal_and_nothing_commits(
    tmp_path: Path, hec_peer: PeerProcess
) -> None:
    config = hec_config(hec_peer, token="wrong")
    with pytest.raises(TimeoutError):
        await deliver(tmp_path, config, RECORDS[:3], timeout=1.0)
    assert stored(hec_peer) == []


async def test_busy_server_is_retried_without_loss(tmp_path: Path, hec_peer: PeerProcess) -> None:
    hec_peer.control("faults", {"busy": 3, "retry_after": 0})
    ack, _, _ = await deliver(tmp_path, hec_config(hec_peer), RECORDS)
    assert ack.status is Status.DELIVERED
    assert (
        Counter(e["envelope"]["fields"]["event_id"] for e in stored(hec_peer)).most_common(1)[0][1]
        == 1
    )
    assert len(stored(hec_peer)) == len(RECORDS)
    assert hec_peer.control("stats")["busy"] == 3


async def test_dropped_connections_and_500s_are_retried(
    tmp_path: Path, hec_peer: PeerProcess
) -> None:
    hec_peer.control("faults", {"drop_connections": 2, "error_500": 2})
    ack, _, _ = await deliver(tmp_path, hec_config(hec_peer), RECORDS)
    assert ack.status is Status.DELIVERED
    assert len({e["envelope"]["fields"]["event_id"] for e in stored(hec_peer)}) == len(RECORDS)


async def test_indexer_ack_delivers_after_the_ack(
    tmp_path: Path, hec_ack_peer: PeerProcess
) -> None:
    hec_ack_peer.control("faults", {"ack_delay": 0.3})
    ack, _, _ = await deliver(tmp_path, hec_config(hec_ack_peer, indexer_ack=True), RECORDS)
    assert ack.status is Status.DELIVERED
    events = stored(hec_ack_peer)
    assert len(events) == len(RECORDS)
    assert hec_ack_peer.control("stats")["acks_true"] >= 1


async def test_lost_acks_are_sent_again_on_a_new_channel(
    tmp_path: Path, hec_ack_peer: PeerProcess
) -> None:
    config = hec_config(hec_ack_peer, indexer_ack=True, ack_timeout="500ms",
                        batch={"max_events": 100, "max_wait": "20ms"})  # fmt: skip
    sink = SplunkHecSink(config)
    first_channel = sink.channel
    hec_ack_peer.control("faults", {"ack_drop_channel": first_channel})
    await sink.start()
    rig = Rig(tmp_path, [sink], retry=FAST_RETRY, timeout=30)
    rig.start()
    ack = Ack()
    await rig.pipeline.send(batch_of(RECORDS, ack))
    ack.seal()
    assert await asyncio.wait_for(ack.wait(), 20) is Status.DELIVERED
    await rig.finish()
    await sink.close()
    events = stored(hec_ack_peer)
    channels = Counter(e["channel"] for e in events)
    assert channels[first_channel] == len(RECORDS)  # indexed, but never acknowledged
    assert sink.channel != first_channel and channels[sink.channel] == len(RECORDS)


async def test_a_bad_event_is_dead_lettered_the_rest_delivered(
    tmp_path: Path, hec_peer: PeerProcess
) -> None:
    sink = SplunkHecSink(hec_config(hec_peer))
    await sink.start()
    rig = Rig(tmp_path, [sink], retry=FAST_RETRY)
    rig.start()
    ack = Ack()
    good, bad = rig.pipeline.map_batch(batch_of(RECORDS[:5], ack).events)
    assert not bad
    good[2].docs[sink.view] = b'{"broken": '  # what HEC calls "Invalid data format"
    ack.expect(len(good))
    for event in good:
        await rig.queues[0].put([event], len(event.docs[sink.view]))
    ack.seal()
    assert await asyncio.wait_for(ack.wait(), 20) is Status.REJECTED
    await rig.finish()
    await sink.close()
    assert len(stored(hec_peer)) == 4
    [entry] = rig.dead_letters()
    assert entry["reason"] == "sink_rejected" and "code" in entry["detail"]


async def test_requests_stay_under_max_bytes(tmp_path: Path, hec_peer: PeerProcess) -> None:
    big = [orjson.dumps({**orjson.loads(r), "request_id": f"r{i}", "user_agent": "x" * 4000})
           for i, r in enumerate(RECORDS[:40] * 10)]  # fmt: skip
    config = hec_config(
        hec_peer, gzip_level=0, batch={"max_events": 500, "max_bytes": "64KiB", "max_wait": "50ms"}
    )
    ack, _, _ = await deliver(tmp_path, config, big)
    assert ack.status is Status.DELIVERED
    stats = hec_peer.control("stats")
    assert stats.get("rejected_requests", 0) == 0
    assert len(stored(hec_peer)) == len(big)


def test_envelope_bytes_are_valid_json() -> None:
    config = SplunkHecSinkConfig.model_validate(
        {"id": "h", "type": "splunk_hec", "url": "http://127.0.0.1:1", "token": "t", "host": 'a"b'}
    )
    sink = SplunkHecSink(config)
    event = Event(
        raw=b"{}",
        origin=None,
        ack=Ack(),
        log_type="AUTHENTICATION_LOGS",
        id="abc",
        time=1718182800.611,
    )  # type: ignore[arg-type]
    event.docs[sink.view] = b'{"k":1}'
    envelope = orjson.loads(sink.encode(event))
    assert envelope == {
        "host": 'a"b', "source": "workmail:AUTHENTICATION_LOGS", "sourcetype": "aws:workmail:authentication",
        "fields": {"log_type": "AUTHENTICATION_LOGS", "event_id": "abc"}, "time": 1718182800.611, "event": {"k": 1},
    }  # fmt: skip


async def test_a_lost_ack_is_proven_by_later_acks_long_before_ack_timeout(
    tmp_path: Path, hec_ack_peer: PeerProcess
) -> None:
    # ack_timeout is 5 minutes: the batch must come back far sooner, because the
    # channel goes on confirming the batches sent after it.
    config = hec_config(hec_ack_peer, indexer_ack=True, ack_timeout="300s",
                        ack_poll_interval="50ms", max_in_flight=1,
                        batch={"max_events": 2, "max_wait": "10ms"})  # fmt: skip
    sink = SplunkHecSink(config)
    channel = sink.channel
    hec_ack_peer.control("faults", {"ack_drop_next": 1})  # the first request's ack is lost
    await sink.start()
    rig = Rig(tmp_path, [sink], retry=FAST_RETRY, timeout=30)
    rig.start()
    ack = Ack()
    started = asyncio.get_running_loop().time()
    await rig.pipeline.send(batch_of(RECORDS, ack))
    ack.seal()
    assert await asyncio.wait_for(ack.wait(), 20) is Status.DELIVERED
    elapsed = asyncio.get_running_loop().time() - started
    await rig.finish()
    await sink.close()
    assert elapsed < 10, elapsed
    assert sink._acks is not None and sink._acks.proven_lost == 1
    events = stored(hec_ack_peer)
    assert {e["channel"] for e in events} == {channel}  # answering: no rotation
    ids = Counter(e["envelope"]["fields"]["event_id"] for e in events)
    assert len(ids) == len(RECORDS)
    lost = {e["envelope"]["fields"]["event_id"] for e in events if e["ackId"] == 0}
    assert lost and {i for i, n in ids.items() if n == 2} == lost  # only the lost batch twice
    assert set(ids.values()) == {1, 2}
