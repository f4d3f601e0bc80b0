"""Syslog sink against a real rsyslogd (tests/peers/rsyslog.py) over TCP, TLS and UDP.

The tests assert what rsyslog parsed (the peer writes its parsed fields as JSON), not
what we meant to send. Encoder-level tests live in test_syslog_encoding.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from forwarder.acks import Ack
from forwarder.config import DeadLetterConfig, SyslogSinkConfig
from forwarder.deadletter import DeadLetter
from forwarder.errors import SinkFatalError
from forwarder.events import Batch, Event, Origin, Status
from forwarder.pipeline import Pipeline, SinkPort, SinkQueue
from forwarder.runner import SinkRunner
from forwarder.sinks.cef import cef_message, doc_severity_id
from forwarder.sinks.syslog import BOM, SYSLOG_SEVERITY, SyslogSink, msgid_for, rfc3339_ms
from forwarder.telemetry import Health, Metrics
from tests.conftest import free_port
from tests.peers.rsyslog import RsyslogPeer, make_ca, running_rsyslog
from tests.sinks.test_syslog_encoding import (
    FACILITY,
    HOSTILE,
    PID,
    RECORDS,
    encoder,
    mapped,
    parse_cef,
    synthetic,
    syslog_config,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def peer(tmp_path: Path) -> AsyncIterator[RsyslogPeer]:
    async with running_rsyslog(tmp_path / "rsyslog") as running:
        yield running


def tls_config(peer: RsyslogPeer, url: str | None = None, **overrides: Any) -> SyslogSinkConfig:
    tls = {"ca_file": str(peer.ca_file), **overrides.pop("tls", {})}
    return syslog_config(url or peer.tls_url, tls=tls, **overrides)


def sd_of(record: dict[str, Any]) -> dict[str, str]:
    params: dict[str, str] = orjson.loads(record["sd"])["workmail@32473"]
    return params


def assert_parsed_as_sent(record: dict[str, Any], event: Event, view: str = "ocsf") -> None:
    schema = view.partition(":")[0]
    severity = SYSLOG_SEVERITY[doc_severity_id(orjson.loads(event.docs[view]), schema)]
    assert record["pri"] == str(FACILITY * 8 + severity)
    assert (record["facility"], record["severity"]) == (str(FACILITY), str(severity))
    assert record["version"] == "1" and record["timestamp"] == rfc3339_ms(event.time)
    assert (record["hostname"], record["app_name"], record["procid"]) == (
        "test-host", "workmail-forwarder", PID,
    )  # fmt: skip
    assert record["msgid"] == msgid_for(event.log_type)
    assert sd_of(record) == {"event_id": event.id, "log_type": event.log_type}
    assert record["msg"].encode() == BOM + event.docs[view]  # rsyslog keeps the BOM


async def test_tcp_delivers_and_rsyslog_parses_every_field(peer: RsyslogPeer) -> None:
    events = [mapped(r) for r in RECORDS]
    sink = SyslogSink(syslog_config(peer.tcp_url))
    try:
        for start in range(0, len(events), 10):
            result = await sink.send(events[start : start + 10])
            assert result.statuses == [Status.DELIVERED] * len(events[start : start + 10])
    finally:
        await sink.close()
    records = await peer.wait_records(len(events))
    assert len(records) == len(events)
    for record, event in zip(records, events, strict=True):
        assert record["input"] == "tcp"
        assert_parsed_as_sent(record, event)
    lines = (peer.out / "rfc5424.log").read_bytes().splitlines()
    assert len(lines) == len(events) and lines[0].startswith(b"<110>1 ")


async def test_tls_carries_a_64k_event_whole(peer: RsyslogPeer) -> None:
    doc = {"class_uid": 3002, "severity_id": 1, "raw_data": ""}
    doc["raw_data"] = "é" * ((64 * 1024 - len(orjson.dumps(doc))) // 2)
    big = synthetic(doc, event_id="big")
    assert len(big.docs["ocsf"]) == 64 * 1024
    small = mapped(RECORDS[0])
    sink = SyslogSink(tls_config(peer, max_message_bytes="128KiB"))
    try:
        result = await sink.send([small, big, small])
    finally:
        await sink.close()
    assert result.statuses == [Status.DELIVERED] * 3
    records = await peer.wait_records(3)
    assert [r["input"] for r in records] == ["tls"] * 3
    assert_parsed_as_sent(records[1], big)
    assert_parsed_as_sent(records[2], small)


async def test_udp_sends_one_message_per_datagram(peer: RsyslogPeer) -> None:
    events = [mapped(r) for r in RECORDS[:20]]
    sink = SyslogSink(syslog_config(peer.udp_url, udp_max_bytes="8KiB"))
    try:
        assert (await sink.send(events)).statuses == [Status.DELIVERED] * 20
    finally:
        await sink.close()
    records = await peer.wait_records(20)
    by_id = {sd_of(r)["event_id"]: r for r in records}
    for event in events:
        assert by_id[event.id]["input"] == "udp"
        assert_parsed_as_sent(by_id[event.id], event)


class SyslogRig:
    """A pipeline with one real SyslogSink behind a SinkRunner."""

    def __init__(self, tmp_path: Path, config: SyslogSinkConfig) -> None:
        self.sink = SyslogSink(config)
        self.metrics = Metrics()
        self.health = Health()
        self.dead_letter_path = tmp_path / "dead-letter.ndjson"
        self.queue = SinkQueue(10_000, 1 << 30)
        dead_letter = DeadLetter(DeadLetterConfig(path=self.dead_letter_path))
        port = SinkPort(self.sink.id, self.sink.view, self.queue)
        self.pipeline = Pipeline([port], dead_letter, self.metrics)
        runner = SinkRunner(self.sink, config, self.queue, self.pipeline, self.metrics,
                            self.health)  # fmt: skip
        self.task = asyncio.create_task(runner.run())

    async def send(self, records: list[dict[str, Any]]) -> Ack:
        ack = Ack()
        events = [Event(orjson.dumps(r), Origin("t", "p", i), ack) for i, r in enumerate(records)]
        await self.pipeline.send(Batch(events))
        ack.seal()
        return ack

    async def finish(self) -> None:
        self.queue.close()
        try:
            await asyncio.wait_for(self.task, 10)
        finally:
            await self.sink.close()

    def dead_letters(self) -> list[dict[str, Any]]:
        if not self.dead_letter_path.exists():
            return []
        return [orjson.loads(x) for x in self.dead_letter_path.read_bytes().splitlines()]


def message_size(record: dict[str, Any]) -> int:
    return len(encoder().encode(mapped(record)))


async def test_udp_oversize_is_dead_lettered_not_truncated(
    peer: RsyslogPeer, tmp_path: Path
) -> None:
    small, big = sorted(RECORDS, key=message_size)[:: len(RECORDS) - 1]
    limit = (message_size(small) + message_size(big)) // 2
    rig = SyslogRig(tmp_path, syslog_config(peer.udp_url, udp_max_bytes=limit))
    try:
        small_ack, big_ack = await rig.send([small]), await rig.send([big])
        assert await asyncio.wait_for(small_ack.wait(), 10) is Status.DELIVERED
        assert await asyncio.wait_for(big_ack.wait(), 10) is Status.REJECTED
    finally:
        await rig.finish()
    [entry] = rig.dead_letters()
    assert entry["reason"] == "sink_rejected" and entry["sink"] == "syslog"
    assert f"{message_size(big)} bytes exceeds udp_max_bytes={limit}" in entry["detail"]
    await peer.wait_records(1)
    await asyncio.sleep(0.3)
    [record] = peer.records()
    assert sd_of(record)["event_id"] == mapped(small).id


@pytest.mark.parametrize("scheme", ["tcp", "tls"])
async def test_stream_oversize_is_rejected_not_truncated(peer: RsyslogPeer, scheme: str) -> None:
    small, big = mapped(RECORDS[0]), mapped(RECORDS[0])
    big.id = "big"
    big.docs["ocsf"] = orjson.dumps({"severity_id": 1, "pad": "x" * 10_000})
    limit = 5000
    config = (tls_config(peer, max_message_bytes=limit) if scheme == "tls"
              else syslog_config(peer.tcp_url, max_message_bytes=limit))  # fmt: skip
    sink = SyslogSink(config)
    try:
        result = await sink.send([big, small])
    finally:
        await sink.close()
    assert result.statuses == [Status.REJECTED, Status.DELIVERED]
    assert "exceeds max_message_bytes=5000; not truncated" in result.reasons[0]
    await peer.wait_records(1)
    await asyncio.sleep(0.3)
    assert [sd_of(r)["event_id"] for r in peer.records()] == [small.id]


async def test_cef_reaches_rsyslog_intact(peer: RsyslogPeer) -> None:
    hostile = synthetic(HOSTILE, event_id="cef-1")
    samples = [mapped(r) for r in RECORDS[:5]]
    sink = SyslogSink(syslog_config(peer.tcp_url, format="cef"))
    try:
        assert (await sink.send([hostile, *samples])).statuses == [Status.DELIVERED] * 6
    finally:
        await sink.close()
    records = await peer.wait_records(6)
    header, ext = parse_cef(records[0]["msg"])
    assert records[0]["msg"] == cef_message(hostile, HOSTILE, "ocsf", 4)
    assert header[4:] == ["CODE|1", "Auth|Logon \\ x=y", "7"]
    assert ext["suser"] == "ali|ce=x\\y\nzé 日本 😀"
    assert records[0]["pri"] == str(FACILITY * 8 + 3)  # OCSF High -> syslog Error
    assert sd_of(records[0]) == {"event_id": "cef-1", "log_type": "AUTHENTICATION_LOGS"}
    for record, event in zip(records[1:], samples, strict=True):
        assert parse_cef(record["msg"])[1]["externalId"] == event.id


@pytest.mark.parametrize("scheme", ["tcp", "tls"])
async def test_peer_restart_mid_stream_every_event_arrives(
    peer: RsyslogPeer, tmp_path: Path, scheme: str
) -> None:
    """The sink holds a live connection when the peer goes away; the next batch must not
    vanish into it: it is retried until the restarted peer has it, then acked.

    The peer is stopped between batches (after it wrote the first one out): bytes in
    flight at the moment a TCP peer dies are lost without a trace, which no syslog
    sender can detect (see the module docstring of forwarder/sinks/syslog.py).
    """
    config = tls_config(peer) if scheme == "tls" else syslog_config(peer.tcp_url)
    rig = SyslogRig(tmp_path, config)
    try:
        first = await rig.send(RECORDS[:15])
        assert await asyncio.wait_for(first.wait(), 10) is Status.DELIVERED
        await peer.wait_records(15)
        await peer.stop()
        second = await rig.send(RECORDS[15:35])
        await asyncio.sleep(0.5)
        assert not second.done  # refused and retried meanwhile
        await peer.start()
        third = await rig.send(RECORDS[35:])
        assert await asyncio.wait_for(second.wait(), 15) is Status.DELIVERED
        assert await asyncio.wait_for(third.wait(), 15) is Status.DELIVERED
    finally:
        await rig.finish()
    expected = {mapped(r).id for r in RECORDS}
    records = await peer.wait_records(len(expected))
    assert {sd_of(r)["event_id"] for r in records} == expected
    assert all(r["input"] == scheme for r in records)


async def test_connection_refused_is_transient_then_recovers(peer: RsyslogPeer) -> None:
    events = [mapped(r) for r in RECORDS[:3]]
    sink = SyslogSink(syslog_config(peer.tcp_url))
    try:
        await peer.stop()
        with pytest.raises(ConnectionRefusedError):
            await sink.send(events)
        await peer.start()
        assert (await sink.send(events)).statuses == [Status.DELIVERED] * 3
    finally:
        await sink.close()
    assert len(await peer.wait_records(3)) == 3


async def test_untrusted_tls_peer_is_fatal_and_nothing_is_delivered(
    peer: RsyslogPeer, tmp_path: Path
) -> None:
    wrong_ca = make_ca(tmp_path / "other", "other")
    events = [mapped(r) for r in RECORDS[:2]]
    sink = SyslogSink(tls_config(peer, tls={"ca_file": str(wrong_ca)}))
    with pytest.raises(SinkFatalError, match="not trusted: unable to get local issuer certificate"):
        await sink.send(events)
    await sink.close()
    unverified = SyslogSink(tls_config(peer, tls={"ca_file": str(wrong_ca), "verify": False}))
    try:
        assert (await unverified.send(events[:1])).statuses == [Status.DELIVERED]
    finally:
        await unverified.close()
    await peer.wait_records(1)
    await asyncio.sleep(0.3)
    assert len(peer.records()) == 1  # only the unverified sink's event


async def test_mutual_tls_and_a_refused_client_certificate(peer: RsyslogPeer) -> None:
    events = [mapped(r) for r in RECORDS[:2]]
    client = {"cert_file": str(peer.client_cert), "key_file": str(peer.client_key)}
    sink = SyslogSink(tls_config(peer, peer.mtls_url, tls=client))
    try:
        assert (await sink.send(events)).statuses == [Status.DELIVERED] * 2
    finally:
        await sink.close()
    # TLS 1.3: the handshake completes before the server checks for a client cert, and
    # then it hangs up. Without the post-connect check this batch would be "delivered".
    anonymous = SyslogSink(tls_config(peer, peer.mtls_url))
    with pytest.raises(SinkFatalError, match="client certificate"):
        await anonymous.send(events)
    await anonymous.close()
    await asyncio.sleep(0.3)
    assert [r["input"] for r in peer.records()] == ["mtls", "mtls"]


async def test_concurrent_sends_do_not_interleave_frames(peer: RsyslogPeer) -> None:
    events = [mapped(r) for r in RECORDS[:40]]
    sink = SyslogSink(syslog_config(peer.tcp_url))
    try:
        results = await asyncio.gather(*(sink.send(events[i : i + 10]) for i in range(0, 40, 10)))
    finally:
        await sink.close()
    assert all(r.statuses == [Status.DELIVERED] * 10 for r in results)
    records = await peer.wait_records(40)
    by_id = {sd_of(r)["event_id"]: r for r in records}
    assert len(records) == 40 and set(by_id) == {e.id for e in events}
    for event in events:
        assert_parsed_as_sent(by_id[event.id], event)


async def test_close_sends_tls_close_notify(peer: RsyslogPeer) -> None:
    """rsyslog reports a TLS session that ends without close_notify; ours must not be one."""
    sink = SyslogSink(tls_config(peer))
    assert (await sink.send([mapped(RECORDS[0])])).statuses == [Status.DELIVERED]
    await sink.close()
    # The control: the same peer does notice a connection dropped without close_notify.
    _, writer = await asyncio.open_connection("127.0.0.1", peer.tls_port,
                                              ssl=peer.client_context())  # fmt: skip
    message = b"<14>1 - - control - control - dropped"
    writer.write(b"%d %b" % (len(message), message))
    await writer.drain()
    await peer.wait_records(2)
    writer.transport.abort()
    await asyncio.sleep(0.2)
    await peer.stop()
    assert peer.diagnostics().count("non-properly terminated") == 1


async def test_udp_icmp_refusal_surfaces_as_a_transient_error() -> None:
    port = free_port()  # nothing listens: loopback answers with ICMP port unreachable
    sink = SyslogSink(syslog_config(f"udp://127.0.0.1:{port}", udp_max_bytes="8KiB"))
    events = [mapped(r) for r in RECORDS[:5]]
    error: Exception | None = None
    try:
        for _ in range(20):  # the refusal arrives asynchronously, on a later send
            try:
                await sink.send(events)
            except ConnectionError as exc:
                error = exc
                break
            await asyncio.sleep(0.01)
    finally:
        await sink.close()
    assert error is not None and "Connection refused" in str(error)
