"""The Firehose contract's pure parts: config, access key, body parsing, ledger."""

from __future__ import annotations

import gzip
import json

import orjson
import pytest

from forwarder.acks import Ack
from forwarder.config import parse_config
from forwarder.errors import ConfigError
from forwarder.sources.firehose.ledger import Answer, RequestLedger
from forwarder.sources.firehose.protocol import (
    RequestError,
    answer_body,
    check_access_key,
    inflate,
    parse_body,
    record_events,
)
from tests.sources.firehose.client import cloudwatch_payload, envelope

pytestmark = pytest.mark.timeout(30)


def config_with(source: dict[str, object]) -> dict[str, object]:
    return {
        "sources": [{"id": "fh", "type": "firehose_http", **source}],
        "sinks": [{"id": "f", "type": "file", "path": "out.ndjson"}],
    }


def test_config_defaults_and_environment() -> None:
    config = parse_config(config_with({"access_key": "${KEY:-}"}), env={})
    [source] = config.sources
    assert source.type == "firehose_http"
    assert source.access_key is None  # "" means no key
    assert source.listen == "0.0.0.0:8443"
    assert source.max_body_bytes == 64 << 20
    assert source.request_timeout == 170.0
    assert source.dedupe_window == 600.0
    keyed = parse_config(config_with({"access_key": "${KEY}"}), env={"KEY": "s3cret"})
    assert keyed.sources[0].access_key.get_secret_value() == "s3cret"  # type: ignore[union-attr]
    assert "s3cret" not in repr(keyed)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"listen": "8443"}, "sources[0].listen: '8443' is not host:port"),
        ({"request_timeout": "5m"}, "sources[0].request_timeout"),
        ({"tls": {"cert_file": "a.crt"}}, "sources[0].tls.key_file: Field required"),
        ({"access_key": "k" * 4097}, "sources[0].access_key"),
        ({"max_body_bytes": 0}, "sources[0].max_body_bytes"),
        ({"unknown": 1}, "sources[0].unknown: unknown key"),
    ],
)
def test_config_problems_name_their_key(options: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(config_with(options), env={})
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_access_key_check() -> None:
    check_access_key(None, None)  # no key configured: anything goes
    check_access_key("k", "k")
    check_access_key("k", '{"api_key": "k"}')  # the Secrets Manager form
    with pytest.raises(RequestError) as info:
        check_access_key("k", None)
    assert info.value.status == 401
    for wrong in ("K", "", "k ", '{"api_key": "x"}', "{"):
        with pytest.raises(RequestError) as info:
            check_access_key("k", wrong)
        assert info.value.status == 403


def test_answer_body_shape() -> None:
    ok = orjson.loads(answer_body("id-1"))
    assert set(ok) == {"requestId", "timestamp"} and ok["requestId"] == "id-1"
    failed = orjson.loads(answer_body("id-2", "x" * 10_000))
    assert len(failed["errorMessage"]) == 8192


def test_inflate_bounds_and_encodings() -> None:
    body = envelope([b"{}"], "r")
    assert inflate(body, None, 100) == body
    assert inflate(gzip.compress(body), "gzip", 1000) == body
    assert inflate(gzip.compress(body), "x-gzip", 1000) == body
    for encoding, data, status in [("gzip", gzip.compress(b" " * 2000), 413),
                                   ("gzip", b"garbage", 400), ("deflate", body, 415)]:  # fmt: skip
        with pytest.raises(RequestError) as info:
            inflate(data, encoding, 1000)
        assert info.value.status == status


def test_parse_body_timestamps() -> None:
    parsed = parse_body(envelope([b"{}"], "r", timestamp_ms=1_700_000_000_123), "r")
    assert parsed.timestamp_ms == 1_700_000_000_123 and len(parsed.records) == 1
    # moto sends seconds: read as such.
    assert parse_body(envelope([], "r", timestamp_ms=1_700_000_000), "r").timestamp_ms == (
        1_700_000_000_000
    )
    assert parse_body(b'{"records": []}', "r").timestamp_ms is None


def test_record_events_log_type_and_time_from_cloudwatch_payloads() -> None:
    record = {"event_timestamp": 1, "request_id": "x"}
    payload = cloudwatch_payload([json.dumps(record)], group="/wm/m-0123/AUTHENTICATION_LOGS")
    request = parse_body(envelope([payload, b'{"a": 1}'], "r", timestamp_ms=1_700_000_000_000), "r")
    ack = Ack()
    events = record_events(
        request, "fh", ack, None, lambda g: "AUTHENTICATION_LOGS" if "AUTH" in g else None, 1 << 20
    )
    assert [e.log_type for e in events] == ["AUTHENTICATION_LOGS", None]
    assert events[0].time == 1_700_000_000.0  # the CloudWatch event's timestamp
    assert events[1].time == 1_700_000_000.0  # the request's timestamp
    assert [(e.origin.partition, e.origin.offset) for e in events] == [("r", 0), ("r", 1)]


def test_record_events_inflation_budget() -> None:
    big = gzip.compress(b'{"a": "' + b"x" * 10_000 + b'"}')
    request = parse_body(envelope([big, big], "r"), "r")
    events = record_events(request, "fh", Ack(), None, lambda g: None, 15_000)
    assert events[0].error is None
    assert events[1].error == "gzip_bomb"


async def test_ledger_joins_remembers_and_forgets() -> None:
    now = [0.0]
    ledger = RequestLedger(window=600, max_remembered=2, clock=lambda: now[0])
    first = ledger.start("a")
    assert ledger.in_flight("a") is first and len(ledger) == 1
    with pytest.raises(ValueError, match="in flight"):
        ledger.start("a")
    ledger.finish(first, Answer(500, "sink down"))
    assert first.answer.result() == Answer(500, "sink down")
    assert not ledger.answered("a") and ledger.in_flight("a") is None  # a failure is forgotten
    again = ledger.start("a")
    ledger.finish(again, Answer(200))
    assert ledger.answered("a")
    now[0] = 601
    assert not ledger.answered("a")  # past the window
    for name in ("b", "c", "d"):
        ledger.finish(ledger.start(name), Answer(200))
    assert not ledger.answered("b") and ledger.answered("c") and ledger.answered("d")  # bounded
    disabled = RequestLedger(window=0)
    disabled.finish(disabled.start("x"), Answer(200))
    assert not disabled.answered("x")
