"""A strict Splunk HTTP Event Collector peer (aiohttp), for tests and benchmarks.

``python -m tests.peers.hec --port N --token TOKEN [--ack] [--indexes a,b] [--fast [--fast-ids]]
[--max-content-length BYTES] [--max-event-size BYTES] [--host 127.0.0.1]``
(``--port 0``: a free port; the bound URL is printed as ``listening http://HOST:PORT``).

What is modelled, and where it comes from (see /work/shared/PROTOCOLS.md section 1):

* Endpoints: POST ``/services/collector``, ``/services/collector/event`` and
  ``/event/1.0``; POST ``/services/collector/ack``; GET ``/services/collector/health``
  (``/health/1.0``) -> 200 code 17 (503 code 18 while a ``busy`` fault is armed).
  help.splunk.com "HTTP Event Collector REST API endpoints".
* Auth: ``Authorization: Splunk <token>`` or Basic with the token as password (any user).
  Missing header 401 code 2, another scheme 401 code 3, unknown token 403 code 4, a
  ``?token=`` query without a header 400 code 16. dev.splunk.com SP-CAAAE6P, fluent-bit
  PR #12043, gjanders/SplunkAdmins ``splunkadmins_hec_reply_code_lookup.csv`` (all texts).
* Body: concatenated JSON objects (whitespace allowed between), parsed with a
  ``JSONDecoder.raw_decode`` loop (dev.splunk.com SP-CAAAE6P "batches"); NaN/Infinity are
  not JSON and are refused. Errors name the 0-based ``invalid-event-number`` as Splunk
  does (fluent-bit #2881, splunk-connect-for-kubernetes #565, Cribl HEC docs):
  empty body 400 code 5; unparseable or non-object 400 code 6; no ``event`` (or null)
  code 12; ``event`` "" or whitespace code 13 (OTel splunkhecreceiver; greptimedb HEC);
  ``host``/``source``/``sourcetype`` not strings code 6; ``index`` not allowed for the
  token code 7; ``fields`` not a flat object of strings / string arrays code 15 (OTel
  receiver ``responseErrHandlingIndexedFields``); ``time`` not non-negative epoch seconds
  (a JSON number without exponent, or a numeric string like "1433188255.500") code 15:
  firezone/firezone PR #14129 ("HEC rejects scientific-notation timestamps with 400 code
  15") and Vigil-SOC/vigil #32 (ISO strings -> code 15). One event longer than
  ``--max-event-size`` (inputs.conf maxEventSize, 5 MB) -> code 6 (signalfx
  splunk-otel-collector-chart #696).
* All-or-nothing: a request that fails validation indexes nothing (the splunkd log in
  splunk-otel-collector-chart #696 shows ``reply=6, events_processed=0``).
* gzip: ``Content-Encoding: gzip`` accepted (PROTOCOLS 1.6: strongly corroborated, not
  from Splunk docs); any other encoding -> 415, as one report says Splunk 10.4.3 answers
  ``deflate`` (the OTel receiver answers 400 instead); a corrupt gzip body -> 400 code 6.
* Size: a request over ``--max-content-length`` (default 1,000,000 bytes, the Splunk
  Cloud / pre-6.5 ``[http_input] max_content_length``) is refused whole with 413,
  measured on the wire (compressed) bytes. The 413 body is **[unverified]**: plain text
  here, so clients must key on the status only.
* Indexer ack (``--ack``): channel from ``X-Splunk-Request-Channel`` or ``?channel=``,
  missing 400 code 10, not a GUID 400 code 11; success ``{"text":"Success","code":0,
  "ackId":N}`` with ackIds per channel from 0; ``POST /services/collector/ack``
  ``{"acks":[..]}`` -> ``{"acks":{"0":true,..}}``; a true ackId is forgotten (then false);
  ack queries without ``--ack`` 400 code 14. Without ``--ack`` a channel is accepted and
  ignored. vectordotdev/vector RFC 2021-10-29-9465, docs.splunk.com AboutHECIDXAck.
  An ackId becomes true ``ack_delay`` seconds (fault, default 0) after its request;
  never for an ackId taken by the ``ack_drop_next`` fault, and
  never on a channel named by the ``ack_drop_channel`` fault (a GUID, or ``"first"``:
  the first channel an accepted data request carries after it is armed).
* Busy 503 ``{"text":"Server is busy","code":9,"invalid-event-number":0}`` (Cribl's
  documented body); 500 code 8. Both via faults.py (counted, or at random with ``flap``).

Stored for assertions (``GET /__peer__/events``): ``[{"channel", "ackId", "index",
"envelope"}]`` in arrival order. ``--fast`` (benchmarks) stores nothing and counts
events without building them one by one: the forwarder's envelopes are counted by
their ``"event_id":"`` indexed-field key (unescaped quotes cannot occur inside a JSON
string, so this is exact for OCSF and ECS documents and costs a byte scan; the
``raw`` view carries its own ``event_id`` key, benchmarks send OCSF); other bodies have
their ``}\\s*{``
boundaries turned into ``},{`` and are parsed once by orjson as an array (a ``}{``
inside a string stays a valid string); envelopes are not validated.
Not modelled: ``/services/collector/raw``, per-token disabled state (code 1), ack
channel limits and channel cleanup, ``auto_extract_timestamp``, the 404 of a detained
indexer.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.peers.faults import (
    HANDLER_ARGS,
    PeerBase,
    add_control_routes,
    basic_credentials,
    fault_middleware,
    inflate,
    json_response,
    read_limited,
    serve,
)

TEXTS = {0: "Success", 2: "Token is required", 3: "Invalid authorization", 4: "Invalid token",
         5: "No data", 6: "Invalid data format", 7: "Incorrect index", 8: "Internal server error",
         9: "Server is busy", 10: "Data channel is missing", 11: "Invalid data channel",
         12: "Event field is required", 13: "Event field cannot be blank", 14: "ACK is disabled",
         15: "Error in handling indexed fields", 16: "Query string authorization is not enabled",
         17: "HEC is healthy", 18: "HEC is unhealthy, queues are full"}  # fmt: skip
STATUS = {0: 200, 2: 401, 3: 401, 4: 403, 8: 500, 9: 503, 17: 200, 18: 503}  # others: 400
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
EPOCH = re.compile(r"^\d+(\.\d+)?$")
WHITESPACE = re.compile(r"[ \t\n\r]*")
BOUNDARY = re.compile(rb"}\s*{")
DATA_PATHS = frozenset({"/services/collector", "/services/collector/event",
                        "/services/collector/event/1.0", "/services/collector/ack"})  # fmt: skip
STATE: web.AppKey[HecState] = web.AppKey("hec_state")


class _Exponent(float):
    """A JSON number written with an exponent (HEC refuses those as ``time``)."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _float(text: str) -> float:
    return _Exponent(text) if "e" in text or "E" in text else float(text)


DECODER = json.JSONDecoder(parse_float=_float, parse_constant=_no_constant)


class Reject(Exception):
    def __init__(self, code: int, event_number: int | None = None) -> None:
        super().__init__(TEXTS[code])
        self.code = code
        self.event_number = event_number


def reply(code: int, event_number: int | None = None, **extra: Any) -> web.Response:
    body: dict[str, Any] = {"text": TEXTS[code], "code": code}
    if event_number is not None:
        body["invalid-event-number"] = event_number
    body.update(extra)
    return json_response(body, status=STATUS.get(code, 400))


@dataclass
class HecState(PeerBase):
    token: str = "00000000-0000-0000-0000-000000000000"
    ack: bool = False
    indexes: tuple[str, ...] = ("main",)
    fast: bool = False
    # --fast-ids: in fast mode, also keep each event's `fields.event_id` (16 bytes each),
    # so a flood of millions can be settled exactly without storing envelopes.
    ids: bytearray | None = None
    max_content_length: int = 1_000_000
    max_event_size: int = 5_242_880
    events: list[dict[str, Any]] = field(default_factory=list)
    next_ack: dict[str, int] = field(default_factory=dict)
    pending: dict[str, dict[int, float]] = field(default_factory=dict)  # channel->ackId->ready

    def clear(self) -> None:
        super().clear()
        self.events, self.next_ack, self.pending = [], {}, {}

    def stored(self) -> list[dict[str, Any]]:
        return self.events


def check_auth(request: web.Request, state: HecState) -> web.Response | None:
    header = request.headers.get("Authorization")
    if header is None:
        return reply(16 if "token" in request.query else 2)
    scheme, _, credential = header.strip().partition(" ")
    if scheme == "Splunk":
        token = credential.strip()
    elif scheme == "Basic" and (pair := basic_credentials(credential)) != ("", ""):
        token = pair[1]
    else:
        return reply(3)
    return None if token == state.token else reply(4)


def channel_of(request: web.Request, state: HecState) -> str | None:
    """The request's channel (lower-cased); raises Reject 10/11 when ack needs one."""
    channel = request.headers.get("X-Splunk-Request-Channel") or request.query.get("channel")
    if not state.ack:
        return channel
    if not channel:
        raise Reject(10)
    if not GUID.match(channel):
        raise Reject(11)
    return channel.lower()


async def read_body(request: web.Request, state: HecState) -> bytes | web.Response:
    raw = await read_limited(request, state.max_content_length)
    if raw is None:
        state.stats["too_large"] += 1
        text = f"Content-Length too large (maximum is {state.max_content_length})"
        return web.Response(status=413, text=text)
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        return web.Response(status=415, text=f"Unsupported Content-Encoding: {encoding}")
    state.stats["gzip_requests" if encoding == "gzip" else "plain_requests"] += 1
    try:
        return inflate(raw, encoding)
    except ValueError:
        raise Reject(6, 0) from None


def valid_time(value: Any) -> bool:
    if isinstance(value, bool | _Exponent):
        return False
    if isinstance(value, int | float):
        return value >= 0
    return isinstance(value, str) and EPOCH.match(value) is not None


def valid_fields(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    for item in value.values():
        if isinstance(item, list):
            if not all(isinstance(part, str) for part in item):
                return False
        elif not isinstance(item, str):
            return False
    return True


def check_envelope(obj: Any, number: int, state: HecState) -> None:
    if not isinstance(obj, dict):
        raise Reject(6, number)
    event = obj.get("event")
    if event is None:
        raise Reject(12, number)
    if isinstance(event, str) and not event.strip():
        raise Reject(13, number)
    for key in ("host", "source", "sourcetype"):
        if key in obj and not isinstance(obj[key], str):
            raise Reject(6, number)
    if "index" in obj and obj["index"] not in state.indexes:
        raise Reject(7, number)
    if "time" in obj and not valid_time(obj["time"]):
        raise Reject(15, number)
    if "fields" in obj and not valid_fields(obj["fields"]):
        raise Reject(15, number)


def parse(body: bytes, state: HecState) -> list[dict[str, Any]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Reject(6, 0) from None
    envelopes: list[dict[str, Any]] = []
    pos, end = 0, len(text)
    while True:
        pos = WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= end:
            return envelopes
        number = len(envelopes)
        try:
            obj, stop = DECODER.raw_decode(text, pos)
        except ValueError:
            raise Reject(6, number) from None
        if stop - pos > state.max_event_size:
            raise Reject(6, number)
        check_envelope(obj, number, state)
        envelopes.append(obj)
        pos = stop


# The envelope's indexed field; inside `event` (a JSON document) quotes are escaped,
# so this pattern only matches the envelope's own `fields.event_id`.
EVENT_ID = re.compile(rb'"event_id":"([0-9a-f]{32})"')


def count_fast(body: bytes) -> int:
    # The forwarder tags every envelope with `"fields":{"event_id":"..."`; a quote
    # inside a JSON string is escaped, so that key's bytes appear once per envelope and
    # counting them is exact. Bodies without it (other clients) are parsed whole.
    tagged = body.count(b'"event_id":"')
    if tagged:
        return tagged
    try:
        return len(orjson.loads(b"[" + BOUNDARY.sub(b"},{", body.strip()) + b"]"))
    except orjson.JSONDecodeError:
        raise Reject(6, 0) from None


async def collect(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        if (denied := check_auth(request, state)) is not None:
            state.stats["rejected_requests"] += 1
            return denied
        channel = channel_of(request, state)
        body = await read_body(request, state)
        if isinstance(body, web.Response):
            state.stats["rejected_requests"] += 1
            return body
        if not body.strip():
            raise Reject(5)
        envelopes = None if state.fast else parse(body, state)
        count = count_fast(body) if envelopes is None else len(envelopes)
    except Reject as exc:
        state.stats["rejected_requests"] += 1
        return reply(exc.code, exc.event_number)
    if state.ids is not None:
        for match in EVENT_ID.finditer(body):
            state.ids += bytes.fromhex(match.group(1).decode())
    state.stats["events"] += count
    state.stats["accepted_requests"] += 1
    ack_id: int | None = None
    if state.ack and channel is not None:
        state.faults.drop_acks_of_first(channel)
        ack_id = state.next_ack.get(channel, 0)
        state.next_ack[channel] = ack_id + 1
        ready = time.monotonic() + state.faults.ack_delay
        state.pending.setdefault(channel, {})[ack_id] = ready
        if state.faults.take("ack_drop_next"):
            state.faults.lost_acks.add((channel, ack_id))
    for envelope in envelopes or ():
        index = envelope.get("index", state.indexes[0])
        state.events.append({"channel": channel, "ackId": ack_id, "index": index,
                             "envelope": envelope})  # fmt: skip
    return reply(0) if ack_id is None else reply(0, ackId=ack_id)


async def ack(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if (denied := check_auth(request, state)) is not None:
        return denied
    try:
        if not state.ack:
            raise Reject(14)
        channel = channel_of(request, state)
        body = await read_body(request, state)
        if isinstance(body, web.Response):
            return body
        try:
            ids = orjson.loads(body)["acks"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise Reject(6) from None
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids
        ):
            raise Reject(6)
    except Reject as exc:
        return reply(exc.code, exc.event_number)
    assert channel is not None
    now = time.monotonic()
    pending = state.pending.get(channel, {})
    lost = channel in state.faults.ack_drop_channels
    answer: dict[str, bool] = {}
    for ack_id in ids:
        ready = pending.get(ack_id)
        done = (ready is not None and ready <= now and not lost
                and (channel, ack_id) not in state.faults.lost_acks)  # fmt: skip
        if done:
            del pending[ack_id]
        answer[str(ack_id)] = done
    state.stats["ack_queries"] += 1
    state.stats["acks_true"] += sum(answer.values())
    return json_response({"acks": answer})


async def health(request: web.Request) -> web.Response:
    return reply(18 if request.app[STATE].faults.busy > 0 else 17)


def build_app(state: HecState) -> web.Application:
    middleware = fault_middleware(
        state,
        lambda request: request.method == "POST" and request.path in DATA_PATHS,
        lambda: reply(9, 0),
        lambda: reply(8),
    )
    # The body limit is enforced by read_limited (413); aiohttp's own cap is set above it.
    app = web.Application(
        middlewares=[middleware],
        client_max_size=state.max_content_length + 1,
        handler_args=HANDLER_ARGS,
    )
    app[STATE] = state
    for path in (
        "/services/collector",
        "/services/collector/event",
        "/services/collector/event/1.0",
    ):
        app.router.add_post(path, collect)
    app.router.add_post("/services/collector/ack", ack)
    app.router.add_get("/services/collector/health", health)
    app.router.add_get("/services/collector/health/1.0", health)
    add_control_routes(app, state)

    async def ids(_: web.Request) -> web.Response:
        """GET /__peer__/ids: the event ids seen (--fast-ids), 16 raw bytes each."""
        return web.Response(body=bytes(state.ids or b""), content_type="application/octet-stream")

    app.router.add_get("/__peer__/ids", ids)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.peers.hec", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--ack", action="store_true", help="indexer acknowledgement (useACK)")
    parser.add_argument(
        "--indexes", default="main", help="allowed indexes; the first is the default"
    )
    parser.add_argument("--fast", action="store_true", help="count events only (benchmarks)")
    parser.add_argument("--fast-ids", action="store_true",
                        help="with --fast: keep each event_id too (floods)")  # fmt: skip
    parser.add_argument("--max-content-length", type=int, default=1_000_000)
    parser.add_argument("--max-event-size", type=int, default=5_242_880)
    args = parser.parse_args(argv)
    indexes = tuple(name for name in args.indexes.split(",") if name)
    if not indexes:
        parser.error("--indexes needs at least one index")
    state = HecState(token=args.token, ack=args.ack, indexes=indexes, fast=args.fast,
                     max_content_length=args.max_content_length,
                     max_event_size=args.max_event_size,
                     ids=bytearray() if args.fast and args.fast_ids else None)  # fmt: skip
    serve(build_app(state), args.host, args.port)


if __name__ == "__main__":
    main()
