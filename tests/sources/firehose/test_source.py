"""FirehoseHttpSource in-process, driven by a client written to the Firehose spec."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import orjson
import pytest

from forwarder.config import FirehoseHttpSourceConfig
from forwarder.events import Status
from forwarder.sources.firehose import FirehoseHttpSource
from forwarder.state.memory import MemoryStateStore
from tests.conftest import sample_records
from tests.fakes import MemorySink
from tests.sources.firehose.client import (
    FirehoseClient,
    check_contract,
    cloudwatch_payload,
    envelope,
)
from tests.sources.helpers import Following

pytestmark = pytest.mark.timeout(60)

RECORDS = [orjson.dumps(r) for r in sample_records()]
KEY = "firehose-test-key-0123456789"
FAST_RETRY = {"retry": {"initial_backoff": "1ms", "max_backoff": "5ms"}}


class Endpoint:
    def __init__(self, following: Following, source: FirehoseHttpSource, scheme: str) -> None:
        self.following = following
        self.source = source
        self.url = f"{scheme}://127.0.0.1:{source.port}/firehose"

    @property
    def dead_letters(self) -> list[dict[str, object]]:
        return self.following.rig.dead_letters()


@asynccontextmanager
async def endpoint(tmp_path: Path, sinks: list[MemorySink], *, sink_overrides: dict[str, object] | None = None,
                   **options: object) -> AsyncIterator[Endpoint]:  # fmt: skip
    config = FirehoseHttpSourceConfig.model_validate(
        {"id": "fh", "type": "firehose_http", "listen": "127.0.0.1:0", "access_key": KEY, **options}
    )
    source = FirehoseHttpSource(config)
    async with Following(tmp_path, source, MemoryStateStore(), sinks,
                         **(sink_overrides or FAST_RETRY)) as following:  # fmt: skip
        await asyncio.wait_for(source.listening.wait(), 10)
        scheme = "https" if config.tls else "http"
        yield Endpoint(following, source, scheme)


def ocsf_uids(sink: MemorySink) -> list[str]:
    return [orjson.loads(doc)["metadata"]["uid"] for doc in sink.received]


async def test_answers_200_only_after_every_sink_has_the_events(tmp_path: Path) -> None:
    slow, fast = MemorySink("slow", "ocsf"), MemorySink("fast", "ecs")
    slow.hang = 0.6
    async with endpoint(tmp_path, [slow, fast]) as ep, FirehoseClient(ep.url, KEY) as client:
        request_id = str(uuid.uuid4())
        pending = asyncio.create_task(client.deliver(RECORDS[:25], request_id))
        await asyncio.sleep(0.3)
        assert not pending.done()  # the slow sink has not acknowledged yet
        reply = await pending
        assert reply.status == 200
        check_contract(reply, request_id)
        # At the moment of the 200 both sinks already hold every event.
        assert len(slow.received) == len(fast.received) == 25
        assert reply.elapsed >= 0.6
        assert ep.source.in_flight() == 0


async def test_gzip_request_body(tmp_path: Path) -> None:
    sink = MemorySink()
    async with (
        endpoint(tmp_path, [sink]) as ep,
        FirehoseClient(ep.url, KEY, gzip_body=True) as client,
    ):
        request_id = str(uuid.uuid4())
        reply = await client.deliver(RECORDS[:10], request_id)
        check_contract(reply, request_id)
        assert reply.status == 200
        assert len(sink.received) == 10


async def test_record_framings_ndjson_array_and_cloudwatch_payloads(tmp_path: Path) -> None:
    sink = MemorySink()
    ndjson = b"\n".join(RECORDS[0:3]) + b"\n"
    array = b"[" + b",".join(RECORDS[3:5]) + b"]"
    payload = cloudwatch_payload([r.decode() for r in RECORDS[5:9]])
    control = cloudwatch_payload([], kind="CONTROL_MESSAGE")
    # A payload a producer base64-encoded itself, and one sent as a bare JSON object.
    double = base64.b64encode(cloudwatch_payload([RECORDS[9].decode()]))
    async with endpoint(tmp_path, [sink]) as ep, FirehoseClient(ep.url, KEY) as client:
        request_id = str(uuid.uuid4())
        reply = await client.deliver([RECORDS[10], ndjson, array, payload, control, double],
                                     request_id)  # fmt: skip
        check_contract(reply, request_id)
        assert reply.status == 200
        body = json.loads(envelope([], "object-data"))
        body["records"] = [{"data": json.loads(RECORDS[11])}]
        object_reply = await client.post(json.dumps(body).encode(), client.headers("object-data"))
        assert object_reply.status == 200
    assert sorted(ocsf_uids(sink)) == sorted(expected_uids(RECORDS[:12]))
    assert ep.dead_letters == []


async def test_only_a_control_message_is_answered_200_with_nothing_sent(tmp_path: Path) -> None:
    sink = MemorySink()
    async with endpoint(tmp_path, [sink]) as ep, FirehoseClient(ep.url, KEY) as client:
        request_id = str(uuid.uuid4())
        reply = await client.deliver([cloudwatch_payload([], kind="CONTROL_MESSAGE")], request_id)
        check_contract(reply, request_id)
        assert reply.status == 200
    assert sink.received == [] and sink.requests == 0


async def test_records_that_are_not_workmail_are_dead_lettered_and_answered_200(
    tmp_path: Path,
) -> None:
    sink = MemorySink()
    async with endpoint(tmp_path, [sink]) as ep, FirehoseClient(ep.url, KEY) as client:
        request_id = str(uuid.uuid4())
        body = json.loads(envelope([RECORDS[0], b'{"not": "workmail"}', b"plain text"], request_id))
        body["records"].append({"data": "@@not base64@@"})
        body["records"].append({"nodata": 1})
        reply = await client.post(json.dumps(body).encode(), client.headers(request_id))
        check_contract(reply, request_id)
        assert reply.status == 200
        reasons = sorted(str(entry["reason"]) for entry in ep.dead_letters)
    assert reasons == ["invalid_base64", "invalid_firehose_record", "invalid_json",
                       "unknown_log_type"]  # fmt: skip
    assert len(sink.received) == 1


@pytest.mark.parametrize(
    ("key", "status"),
    [
        (None, 401),
        ("wrong-key", 403),
        ("", 403),
        (KEY, 200),
        (json.dumps({"api_key": KEY}), 200),
    ],
)
async def test_access_key(tmp_path: Path, key: str | None, status: int) -> None:
    sink = MemorySink()
    async with endpoint(tmp_path, [sink]) as ep, FirehoseClient(ep.url, key) as client:
        request_id = str(uuid.uuid4())
        reply = await client.deliver(RECORDS[:2], request_id)
        check_contract(reply, request_id)
        assert reply.status == status
    assert len(sink.received) == (2 if status == 200 else 0)


async def test_without_an_access_key_configured_any_request_is_taken(tmp_path: Path) -> None:
    sink = MemorySink()
    async with endpoint(tmp_path, [sink], access_key=None) as ep, FirehoseClient(ep.url) as client:
        reply = await client.deliver(RECORDS[:1])
        assert reply.status == 200


async def test_oversize_bodies_are_413(tmp_path: Path) -> None:
    sink = MemorySink()
    async with (
        endpoint(tmp_path, [sink], max_body_bytes="4KiB") as ep,
        FirehoseClient(ep.url, KEY) as client,
    ):
        request_id = str(uuid.uuid4())
        reply = await client.deliver(RECORDS[:40], request_id)  # Content-Length says it
        check_contract(reply, request_id)
        assert reply.status == 413
        assert "max_body_bytes" in reply.body["errorMessage"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
            body = envelope(RECORDS[:40], request_id)
            for at in range(0, len(body), 1000):
                yield body[at : at + 1000]

        response = await client._http.post(
            ep.url, content=chunks(), headers=client.headers(request_id)
        )
        assert response.status_code == 413

        # Small on the wire, too large inflated: a gzip bomb is refused the same way.
        bomb = gzip.compress(envelope([b" " * 50_000], request_id))
        assert len(bomb) < 4096
        reply = await client.post(bomb, {**client.headers(request_id), "Content-Encoding": "gzip"})
        check_contract(reply, request_id)
        assert reply.status == 413
        # A request id answered 413 is not remembered: a smaller retry goes through.
        reply = await client.deliver(RECORDS[:1], request_id)
        assert reply.status == 200
    assert len(sink.received) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b'{"requestId": "ID", "timestamp": 1}', "no records array"),
        (b'{"requestId": "other", "timestamp": 1, "records": []}', "does not match"),
    ],
)
async def test_malformed_bodies_are_400(tmp_path: Path, body: bytes, message: str) -> None:
    sink = MemorySink()
    async with endpoint(tmp_path, [sink]) as ep, FirehoseClient(ep.url, KEY) as client:
        reply = await client.post(body, client.headers("ID"))
        check_contract(reply, "ID")
        assert reply.status == 400
        assert message in reply.body["errorMessage"]


async def test_bad_gzip_missing_request_id_and_wrong_method(tmp_path: Path) -> None:
    async with endpoint(tmp_path, [MemorySink()]) as ep, FirehoseClient(ep.url, KEY) as client:
        headers = {**client.headers("ID"), "Content-Encoding": "gzip"}
        reply = await client.post(b"not gzip at all", headers)
        check_contract(reply, "ID")
        assert reply.status == 400

        headers = {**client.headers("ID"), "Content-Encoding": "br"}
        reply = await client.post(envelope([], "ID"), headers)
        assert reply.status == 415

        headers = client.headers("ID")
        del headers["X-Amz-Firehose-Request-Id"]
        reply = await client.post(envelope([], "ID"), headers)
        check_contract(reply, "")
        assert reply.status == 400

        reply = await client.post(b"", client.headers("ID"), method="GET")
        check_contract(reply, "ID")
        assert reply.status == 405
        assert reply.headers["allow"] == "POST"


async def test_sink_errored_is_500_and_the_retry_delivers(tmp_path: Path) -> None:
    sink = MemorySink()
    sink.down = True
    overrides = {"retry": {"initial_backoff": "1ms", "max_backoff": "5ms", "max_elapsed": "100ms"}}
    async with (
        endpoint(tmp_path, [sink], sink_overrides=overrides) as ep,
        FirehoseClient(ep.url, KEY) as client,
    ):
        request_id = str(uuid.uuid4())
        reply = await client.deliver(RECORDS[:5], request_id)
        check_contract(reply, request_id)
        assert reply.status == 500
        assert ep.following.ctx.errored_units == 1
        sink.down = False
        reply = await client.deliver(RECORDS[:5], request_id)  # Firehose retries, same id
        check_contract(reply, request_id)
        assert reply.status == 200
    assert len(sink.received) == 5


async def test_rejected_by_a_sink_is_dead_lettered_and_200(tmp_path: Path) -> None:
    sink = MemorySink()
    sink.verdict = lambda event: Status.REJECTED
    async with endpoint(tmp_path, [sink]) as ep, FirehoseClient(ep.url, KEY) as client:
        reply = await client.deliver(RECORDS[:3])
        assert reply.status == 200
        assert len(ep.dead_letters) == 3


async def test_slower_than_request_timeout_is_500_and_the_retry_joins(tmp_path: Path) -> None:
    sink = MemorySink()
    sink.hang = 1.0
    async with (
        endpoint(tmp_path, [sink], request_timeout="300ms") as ep,
        FirehoseClient(ep.url, KEY) as client,
    ):
        request_id = str(uuid.uuid4())
        reply = await client.deliver(RECORDS[:5], request_id)
        check_contract(reply, request_id)
        assert reply.status == 500
        assert "300ms" in reply.body["errorMessage"] or "0.3s" in reply.body["errorMessage"]
        assert ep.source.in_flight() == 1
        # The retry joins the attempt still on its way instead of sending it again.
        for _ in range(10):
            reply = await client.deliver(RECORDS[:5], request_id)
            if reply.status == 200:
                break
        assert reply.status == 200
        assert ep.source.stats.joined >= 1
    assert len(sink.received) == 5


async def test_concurrent_attempts_of_one_request_are_delivered_once(tmp_path: Path) -> None:
    sink = MemorySink()
    sink.hang = 0.2
    async with endpoint(tmp_path, [sink]) as ep, FirehoseClient(ep.url, KEY) as client:
        request_id = str(uuid.uuid4())
        replies = await asyncio.gather(*(client.deliver(RECORDS[:7], request_id) for _ in range(3)))
        assert [r.status for r in replies] == [200, 200, 200]
        for reply in replies:
            check_contract(reply, request_id)
        assert ep.source.stats.joined == 2
    assert len(sink.received) == 7


async def test_a_retry_after_success_is_answered_200_without_sending_again(tmp_path: Path) -> None:
    sink = MemorySink()
    async with endpoint(tmp_path, [sink]) as ep, FirehoseClient(ep.url, KEY) as client:
        request_id = str(uuid.uuid4())
        assert (await client.deliver(RECORDS[:4], request_id)).status == 200
        reply = await client.deliver(RECORDS[:4], request_id)
        check_contract(reply, request_id)
        assert reply.status == 200
        assert ep.source.stats.duplicates == 1
        assert (await client.deliver(RECORDS[:4])).status == 200  # a new id is new data
    assert len(sink.received) == 8


async def test_stop_refuses_new_connections_and_answers_requests_in_flight(tmp_path: Path) -> None:
    sink = MemorySink()
    sink.hang = 0.5
    async with endpoint(tmp_path, [sink]) as ep, FirehoseClient(ep.url, KEY) as client:
        pending = asyncio.create_task(client.deliver(RECORDS[:3]))
        await asyncio.sleep(0.2)
        stopping = asyncio.create_task(ep.following.stop())
        reply = await pending
        assert reply.status == 200  # answered once the sink had it, stop or not
        await stopping
        async with FirehoseClient(ep.url, KEY) as late:
            with pytest.raises(httpx.ConnectError):
                await late.deliver(RECORDS[:1])
    assert len(sink.received) == 3


async def test_drain_mode_returns_at_once(tmp_path: Path) -> None:
    from tests.sources.helpers import drain_source

    config = FirehoseHttpSourceConfig.model_validate(
        {"id": "fh", "type": "firehose_http", "listen": "127.0.0.1:0"}
    )
    source = FirehoseHttpSource(config)
    await asyncio.wait_for(drain_source(tmp_path, source, MemoryStateStore(), [MemorySink()]), 5)
    assert source.port is None


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with openssl."""
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


async def test_tls_with_a_self_signed_certificate(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    sink = MemorySink()
    tls = {"cert_file": str(cert), "key_file": str(key)}
    async with endpoint(tmp_path, [sink], tls=tls) as ep:
        assert ep.url.startswith("https://")
        trusted = ssl.create_default_context(cafile=str(cert))
        async with FirehoseClient(ep.url, KEY, verify=trusted, gzip_body=True) as client:
            request_id = str(uuid.uuid4())
            reply = await client.deliver(RECORDS[:3], request_id)
            check_contract(reply, request_id)
            assert reply.status == 200
        async with FirehoseClient(ep.url, KEY) as untrusting:  # the system CAs only
            with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusting.deliver(RECORDS[:1])
        async with FirehoseClient(ep.url.replace("https", "http"), KEY) as plain:
            with pytest.raises(Exception):  # noqa: B017, PT011 - plain HTTP is not spoken
                await plain.deliver(RECORDS[:1])
    assert len(sink.received) == 3


def expected_uids(raws: list[bytes]) -> list[str]:
    from forwarder import mapping

    out = []
    for raw in raws:
        record = orjson.loads(raw)
        log_type = mapping.detect_log_type(record)
        assert log_type is not None
        out.append(mapping.event_id(record, log_type))
    return out


async def test_a_port_in_use_is_raised_as_itself(tmp_path: Path) -> None:
    import socket

    from forwarder.sources import SourceContext
    from tests.test_runner import Rig

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = FirehoseHttpSourceConfig.model_validate(
            {"id": "fh", "type": "firehose_http", "listen": f"127.0.0.1:{port}"}
        )
        rig = Rig(tmp_path, [MemorySink()])
        ctx = SourceContext(rig.pipeline, MemoryStateStore(), rig.metrics)
        with pytest.raises(OSError, match="in use"):
            await FirehoseHttpSource(config).run(ctx)


async def test_requests_still_waiting_when_the_grace_ends_get_503(tmp_path: Path) -> None:
    import contextlib

    sink = MemorySink()
    sink.hang = 1.0
    async with endpoint(tmp_path, [sink]) as ep, FirehoseClient(ep.url, KEY) as client:
        request_id = str(uuid.uuid4())
        pending = asyncio.create_task(client.deliver(RECORDS[:2], request_id))
        await asyncio.sleep(0.2)
        ep.following.ctx.stopping.set()
        await asyncio.sleep(0.1)
        reader = ep.following._reader
        reader.cancel()  # what the runtime does once shutdown_grace is over
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        reply = await asyncio.wait_for(pending, 5)
        check_contract(reply, request_id)
        assert reply.status == 503
        assert ep.source.in_flight() == 1  # not acknowledged: Firehose sends it again
        await ep.following.rig.finish()
