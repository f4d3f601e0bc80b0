"""The Splunk HEC test peer against its documented behaviour (hec.py docstring has sources)."""

from __future__ import annotations

import base64
import gzip
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.peers.faults import FLAP_KINDS, Flap
from tests.peers.fixtures import HEC_TOKEN, PeerProcess

AUTH = {"Authorization": f"Splunk {HEC_TOKEN}"}
EVENT = "/services/collector/event"


@pytest.fixture(scope="module")
def shared() -> Iterator[PeerProcess]:
    with PeerProcess("hec", "--token", HEC_TOKEN, "--indexes", "main,workmail") as peer:
        yield peer


@pytest.fixture
def hec(shared: PeerProcess) -> PeerProcess:
    shared.control("reset")
    return shared


def post(peer: PeerProcess, body: bytes | str, path: str = EVENT, **headers: str) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return httpx.post(peer.url + path, content=content, headers={**AUTH, **headers}, timeout=10)


def envelopes(peer: PeerProcess) -> list[dict[str, Any]]:
    return [stored["envelope"] for stored in peer.control("events")]


def test_batch_of_concatenated_envelopes_is_stored(hec: PeerProcess) -> None:
    body = (
        '{"event":"a","time":1433188255.500}\n{"event":{"x":1},"index":"workmail"}  {"event":"b"}'
    )
    answer = post(hec, body)
    assert answer.status_code == 200
    assert answer.json() == {"text": "Success", "code": 0}
    assert answer.headers["Content-Type"] == "application/json; charset=UTF-8"
    stored = hec.control("events")
    assert [s["envelope"]["event"] for s in stored] == ["a", {"x": 1}, "b"]
    assert [s["index"] for s in stored] == ["main", "workmail", "main"]
    for path in ("/services/collector", "/services/collector/event/1.0"):
        assert post(hec, '{"event":"c"}', path).status_code == 200
    assert hec.control("stats")["events"] == 5


@pytest.mark.parametrize(
    ("headers", "status", "body"),
    [
        ({}, 401, {"text": "Token is required", "code": 2}),
        (
            {"Authorization": f"Bearer {HEC_TOKEN}"},
            401,
            {"text": "Invalid authorization", "code": 3},
        ),
        ({"Authorization": "Splunk not-the-token"}, 403, {"text": "Invalid token", "code": 4}),
    ],
)
def test_auth_failures(
    hec: PeerProcess, headers: dict[str, str], status: int, body: dict[str, Any]
) -> None:
    answer = httpx.post(hec.url + EVENT, content=b'{"event":"x"}', headers=headers)
    assert (answer.status_code, answer.json()) == (status, body)
    assert envelopes(hec) == []


def test_basic_auth_with_token_as_password_and_query_token(hec: PeerProcess) -> None:
    basic = base64.b64encode(f"anyone:{HEC_TOKEN}".encode()).decode()
    assert post(hec, '{"event":"x"}', Authorization=f"Basic {basic}").status_code == 200
    answer = httpx.post(f"{hec.url}{EVENT}?token={HEC_TOKEN}", content=b'{"event":"x"}')
    assert (answer.status_code, answer.json()["code"]) == (400, 16)


@pytest.mark.parametrize(
    ("body", "code", "number"),
    [
        ("", 5, None),
        ("  \n ", 5, None),
        ('{"event":"ok"}{"event":', 6, 1),
        ('{"event":"ok"} [{"event":"x"}]', 6, 1),
        ('{"event":NaN}', 6, 0),
        ('{"event":"ok"}{"time":1}', 12, 1),
        ('{"event":null}', 12, 0),
        ('{"event":"ok"}{"event":""}', 13, 1),
        ('{"event":"   "}', 13, 0),
        ('{"event":"x","host":5}', 6, 0),
        ('{"event":"x","index":"secret"}', 7, 0),
        ('{"event":"x","time":1.75248e9}', 15, 0),
        ('{"event":"x","time":"2024-01-01T00:00:00Z"}', 15, 0),
        ('{"event":"x","time":-1}', 15, 0),
        ('{"event":"x","time":true}', 15, 0),
        ('{"event":"x","fields":{"a":{"b":"c"}}}', 15, 0),
        ('{"event":"x","fields":{"a":1}}', 15, 0),
        ('{"event":"x","fields":["a"]}', 15, 0),
    ],
)
def test_invalid_requests_index_nothing(
    hec: PeerProcess, body: str, code: int, number: int | None
) -> None:
    answer = post(hec, body)
    assert answer.status_code == 400
    expected: dict[str, Any] = {"code": code}
    if number is not None:
        expected["invalid-event-number"] = number
    assert {k: v for k, v in answer.json().items() if k != "text"} == expected
    assert envelopes(hec) == []  # all-or-nothing: the valid events before are not indexed
    assert hec.control("stats")["rejected_requests"] == 1


def test_valid_time_and_fields_forms(hec: PeerProcess) -> None:
    body = ('{"event":"a","time":1433188255}{"event":"b","time":"1433188255.500"}'
            '{"event":"c","fields":{"k":"v","list":["x","y"]},"host":"h","source":"s","sourcetype":"t"}')  # fmt: skip
    assert post(hec, body).status_code == 200
    assert len(envelopes(hec)) == 3


def test_gzip_and_other_encodings(hec: PeerProcess) -> None:
    packed = gzip.compress(b'{"event":"zipped"}{"event":"twice"}')
    assert post(hec, packed, **{"Content-Encoding": "gzip"}).status_code == 200
    assert [e["event"] for e in envelopes(hec)] == ["zipped", "twice"]
    assert hec.control("stats")["gzip_requests"] == 1
    assert (
        post(hec, zlib.compress(b'{"event":"x"}'), **{"Content-Encoding": "deflate"}).status_code
        == 415
    )
    corrupt = post(hec, b"\x1f\x8bnot gzip", **{"Content-Encoding": "gzip"})
    assert (corrupt.status_code, corrupt.json()["code"]) == (400, 6)


def test_request_over_max_content_length_is_refused_whole(hec: PeerProcess) -> None:
    event = b'{"event":"' + b"x" * 1000 + b'"}'
    body = event * (1_000_000 // len(event) + 1)
    assert len(body) > 1_000_000
    assert post(hec, body).status_code == 413
    assert post(hec, body[: len(event) * 900]).status_code == 200  # under the limit
    assert len(envelopes(hec)) == 900


def test_max_event_size_is_code_6() -> None:
    with PeerProcess("hec", "--token", HEC_TOKEN, "--max-event-size", "100") as peer:
        answer = post(peer, '{"event":"small"}{"event":"' + "x" * 200 + '"}')
        assert answer.json() == {
            "text": "Invalid data format",
            "code": 6,
            "invalid-event-number": 1,
        }


def test_health(hec: PeerProcess) -> None:
    answer = httpx.get(hec.url + "/services/collector/health")
    assert (answer.status_code, answer.json()) == (200, {"text": "HEC is healthy", "code": 17})
    hec.control("faults", {"busy": 1})
    answer = httpx.get(hec.url + "/services/collector/health/1.0")
    assert (answer.status_code, answer.json()["code"]) == (503, 18)


def test_channel_without_ack_is_accepted_and_acks_are_disabled(hec_peer: PeerProcess) -> None:
    answer = post(hec_peer, '{"event":"x"}', **{"X-Splunk-Request-Channel": str(uuid.uuid4())})
    assert answer.json() == {"text": "Success", "code": 0}
    answer = post(hec_peer, '{"acks":[0]}', "/services/collector/ack")
    assert (answer.status_code, answer.json()) == (400, {"text": "ACK is disabled", "code": 14})


def test_ack_lifecycle(hec_ack_peer: PeerProcess) -> None:
    peer = hec_ack_peer
    assert post(peer, '{"event":"x"}').json() == {"text": "Data channel is missing", "code": 10}
    bad = post(peer, '{"event":"x"}', **{"X-Splunk-Request-Channel": "not-a-guid"})
    assert (bad.status_code, bad.json()) == (400, {"text": "Invalid data channel", "code": 11})
    one, two = str(uuid.uuid4()), str(uuid.uuid4()).upper()
    ids = [post(peer, '{"event":"x"}{"event":"y"}', **{"X-Splunk-Request-Channel": one}).json()
           for _ in range(2)]  # fmt: skip
    assert ids == [
        {"text": "Success", "code": 0, "ackId": 0},
        {"text": "Success", "code": 0, "ackId": 1},
    ]
    other = httpx.post(f"{peer.url}{EVENT}?channel={two}", content=b'{"event":"z"}', headers=AUTH)
    assert other.json()["ackId"] == 0  # ackIds count per channel
    query = {"X-Splunk-Request-Channel": one}
    assert post(peer, '{"acks":[0,7]}', "/services/collector/ack", **query).json() == {
        "acks": {"0": True, "7": False}
    }
    assert post(peer, '{"acks":[0,1]}', "/services/collector/ack", **query).json() == {
        "acks": {"0": False, "1": True}
    }
    assert post(peer, '{"acks":[0]}', "/services/collector/ack").json()["code"] == 10
    assert post(peer, '{"acks":"0"}', "/services/collector/ack", **query).json()["code"] == 6
    stored = peer.control("events")
    assert [(s["channel"], s["ackId"]) for s in stored] == [
        (one, 0),
        (one, 0),
        (one, 1),
        (one, 1),
        (two.lower(), 0),
    ]


def test_ack_delay_and_lost_channel(hec_ack_peer: PeerProcess) -> None:
    peer, slow, lost = hec_ack_peer, str(uuid.uuid4()), str(uuid.uuid4())
    peer.control("faults", {"ack_delay": 0.3, "ack_drop_channel": lost})
    for channel in (slow, lost):
        assert (
            post(peer, '{"event":"x"}', **{"X-Splunk-Request-Channel": channel}).json()["ackId"]
            == 0
        )

    def acked(channel: str) -> bool:
        answer = post(
            peer, '{"acks":[0]}', "/services/collector/ack", **{"X-Splunk-Request-Channel": channel}
        )
        return bool(answer.json()["acks"]["0"])

    assert not acked(slow)
    time.sleep(0.4)
    assert acked(slow)
    assert not acked(lost)
    assert len(peer.control("events")) == 2  # lost acks, not necessarily lost data


def test_ack_drop_first_channel(hec_ack_peer: PeerProcess) -> None:
    peer, first, second = hec_ack_peer, str(uuid.uuid4()), str(uuid.uuid4())
    assert peer.control("faults", {"ack_drop_channel": "first"})["ack_drop_channels"] == ["first"]
    bad = post(peer, '{"event":"x"}', **{"X-Splunk-Request-Channel": "not-a-guid"})
    assert bad.json()["code"] == 11  # a refused request names no channel
    for channel in (first, second):
        headers = {"X-Splunk-Request-Channel": channel}
        assert post(peer, '{"event":"x"}', **headers).json()["ackId"] == 0
    assert peer.control("faults", {})["ack_drop_channels"] == [first.lower()]
    for channel, acked in ((first, False), (second, True)):
        headers = {"X-Splunk-Request-Channel": channel}
        answer = post(peer, '{"acks":[0]}', "/services/collector/ack", **headers)
        assert answer.json() == {"acks": {"0": acked}}
    assert len(peer.control("events")) == 2


def test_flap_fails_a_seeded_share_of_data_requests(hec: PeerProcess) -> None:
    spec = {"rate": 0.5, "hang": 2.0, "seed": 7}  # 17 ok, 9 busy, 6 500, 6 hang, 2 drop
    assert hec.control("faults", {"flap": spec})["flap"] == {**spec, "kinds": list(FLAP_KINDS)}
    outcomes: list[str] = []
    with httpx.Client(timeout=1.0) as client:
        for number in range(40):
            try:
                answer = client.post(hec.url + EVENT, content=f'{{"event":"e{number}"}}',
                                     headers=AUTH)  # fmt: skip
            except httpx.TimeoutException:
                outcomes.append("hang")
            except httpx.TransportError:
                outcomes.append("drop")
            else:
                code = answer.json()["code"]
                outcomes.append({0: "ok", 8: "error_500", 9: "busy"}[code])
                assert answer.status_code == {0: 200, 8: 500, 9: 503}[code]
    # The same seed picks the same sequence: a flapping run can be replayed.
    rng = Flap.parse(spec)
    assert outcomes == [rng.pick() or "ok" for _ in range(40)]
    counts = Counter(outcomes)
    assert set(counts) == {"ok", *FLAP_KINDS}, counts
    stats = hec.control("stats")
    assert {kind: stats[f"flap_{kind}"] for kind in FLAP_KINDS} == {
        k: counts[k] for k in FLAP_KINDS
    }
    # A hung request is held, then indexed all the same (the client had given up).
    want = {f"e{n}" for n, o in enumerate(outcomes) if o in ("ok", "hang")}
    deadline = time.monotonic() + 10
    while {e["event"] for e in envelopes(hec)} != want and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {e["event"] for e in envelopes(hec)} == want
    assert hec.control("stats")["flap_hang_released"] == counts["hang"]
    # Health and control requests never flap; `null` disarms.
    for _ in range(10):
        assert httpx.get(hec.url + "/services/collector/health").status_code == 200
    assert hec.control("faults", {"flap": None})["flap"] is None
    assert all(post(hec, '{"event":"x"}').status_code == 200 for _ in range(10))


@pytest.mark.parametrize(
    "spec",
    [{}, {"rate": 2}, {"rate": 0.1, "hang": -1}, {"rate": 0.1, "kinds": ["explode"]},
     {"rate": 0.1, "kinds": []}, {"rate": 0.1, "seed": "x"}, {"rate": 0.1, "extra": 1}, 3],
)  # fmt: skip
def test_flap_spec_is_validated(hec: PeerProcess, spec: Any) -> None:
    assert httpx.post(hec.url + "/__peer__/faults", json={"flap": spec}).status_code == 400


def test_busy_error_and_retry_after(hec: PeerProcess) -> None:
    hec.control("faults", {"busy": 2, "retry_after": 3, "error_500": 1})
    for _ in range(2):
        busy = post(hec, '{"event":"x"}')
        assert (busy.status_code, busy.headers["Retry-After"]) == (503, "3")
        assert busy.json() == {"text": "Server is busy", "code": 9, "invalid-event-number": 0}
    failed = post(hec, '{"event":"x"}')
    assert (failed.status_code, failed.json()) == (
        500,
        {"text": "Internal server error", "code": 8},
    )
    assert post(hec, '{"event":"x"}').status_code == 200
    assert len(envelopes(hec)) == 1
    stats = hec.control("stats")
    assert (stats["busy"], stats["error_500"], stats["requests"]) == (2, 1, 4)


def test_dropped_connections(hec: PeerProcess) -> None:
    hec.control("faults", {"drop_connections": 1, "drop_after_store": 1})
    with pytest.raises(httpx.TransportError):
        post(hec, '{"event":"never"}')
    assert envelopes(hec) == []
    with pytest.raises(httpx.TransportError):
        post(hec, '{"event":"stored but unanswered"}')
    assert [e["event"] for e in envelopes(hec)] == ["stored but unanswered"]
    assert post(hec, '{"event":"fine"}').status_code == 200


def test_delay_times_the_client_out_but_the_server_still_indexes(hec: PeerProcess) -> None:
    hec.control("faults", {"delay": 0.5, "delay_count": 1})
    with pytest.raises(httpx.TimeoutException):
        httpx.post(hec.url + EVENT, content=b'{"event":"late"}', headers=AUTH, timeout=0.1)
    deadline = time.monotonic() + 5
    while not envelopes(hec) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e["event"] for e in envelopes(hec)] == ["late"]
    started = time.monotonic()
    assert post(hec, '{"event":"quick"}').status_code == 200
    assert time.monotonic() - started < 0.4


def test_control_api(hec: PeerProcess) -> None:
    answer = httpx.post(hec.url + "/__peer__/faults", json={"explode": 1})
    assert answer.status_code == 400
    assert httpx.post(hec.url + "/__peer__/faults", json={"busy": -1}).status_code == 400
    assert hec.control("faults", {"busy": 1})["busy"] == 1
    assert hec.control("reset") == {"reset": True}
    assert hec.control("faults", {})["busy"] == 0
    assert httpx.get(hec.url + "/__peer__/nothing").status_code == 404


def test_fast_mode_counts_without_storing() -> None:
    with PeerProcess("hec", "--token", HEC_TOKEN, "--fast") as peer:
        body = '{"time":1,"event":"a}{b"} {"event":{"n":[1,2]}}\n{"event":"c"}'
        assert (
            post(peer, gzip.compress(body.encode()), **{"Content-Encoding": "gzip"}).status_code
            == 200
        )
        assert post(peer, '{"event":"x"}{"event"').json()["code"] == 6
        assert peer.control("stats")["events"] == 3
        assert peer.control("events") == []


def test_stop_ends_the_process() -> None:
    peer = PeerProcess("hec", "--token", HEC_TOKEN).start()
    process = peer.process
    assert process is not None and process.poll() is None
    peer.stop()
    assert process.poll() is not None
    peer.stop()  # idempotent


def test_fast_mode_counts_the_forwarders_envelopes_by_their_event_id_key() -> None:
    with PeerProcess("hec", "--token", HEC_TOKEN, "--fast") as peer:
        envelope = (
            '{"time":1,"event":{"raw_data":"{\\"event_id\\":\\"x\\"}"},"fields":{"event_id":"%s"}}'
        )
        body = "".join(envelope % f"{i:032x}" for i in range(5))
        assert post(peer, body).status_code == 200
        assert peer.control("stats")["events"] == 5  # the escaped key inside is not counted
