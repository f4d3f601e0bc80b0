"""Fault injection and the test-only control API shared by the HEC and ES peers.

Control endpoints (no auth, test-only, always under ``/__peer__/``):

* ``POST /__peer__/faults`` with a JSON object; every key is optional and adds to
  (counts) or replaces (settings) what is armed. ``{}`` answers the current faults.

  ========================= =================================================================
  ``busy: N``               next N data requests: HEC 503 ``{"text":"Server is busy","code":9}``
                            / ES 429 ``es_rejected_execution_exception`` (whole request)
  ``retry_after: S``        add ``Retry-After: S`` to busy answers (``null`` removes it)
  ``error_500: N``          next N data requests: HEC 500 code 8 / ES 500 ``internal_server_error``
  ``drop_connections: N``   next N data requests: close the socket, no response, nothing stored
  ``drop_after_store: N``   next N data requests are processed (stored!) and then the socket is
                            closed without a response: the "indexed but the answer was lost" case
  ``delay: S, delay_count`` the next ``delay_count`` (default 1) data requests wait S seconds
                            before being processed normally (the server keeps working after the
                            client gave up, as aiohttp does not cancel handlers by default)
  ``item_429: N``           ES: the next N bulk items answer a per-item 429
  ``item_400_match: "s"``   ES: items whose source line contains ``s`` answer a per-item 400
                            mapping error (``null`` clears it)
  ``ack_drop_channel: g``   HEC: ackIds on channel ``g`` never become true (lost data);
                            ``"first"``: the first channel an accepted data request carries
                            from now on
  ``ack_drop_next: N``      HEC: the ackIds of the next N accepted data requests never become
                            true (lost acks), while the channel's other ackIds do
  ``ack_delay: S``          HEC: an ackId becomes true S seconds after its request (default 0)
  ``flap: {rate, hang,``    a flapping server, until ``flap: null``: each data request, with
  ``seed, kinds}``          probability ``rate`` (seeded ``random.Random(seed)``, so a run can be
                            replayed), gets one of ``kinds`` picked at random (default all):
                            ``busy`` (as above), ``error_500``, ``drop`` (as drop_connections)
                            or ``hang`` (received in full, then held ``hang`` seconds, default 20,
                            before it is processed normally, as ``delay``). Counted faults above
                            are served first; a request a flap spares is answered faithfully.
                            Stats count each as ``flap_<kind>``, and the hung requests
                            processed since as ``flap_hang_released``
  ========================= =================================================================

  Data requests are the ones that carry data: HEC ``/services/collector[/event[/1.0]]`` and
  ``/services/collector/ack``, ES ``_bulk``. Health, version, template and control
  requests never consume faults.
* ``GET /__peer__/events``: what the peer stored (shape per peer, see hec.py / es.py).
* ``GET /__peer__/stats``: counters (``requests``, ``events``, ``rejected_requests``, ...).
* ``POST /__peer__/reset``: clears stored data, counters and faults (ES keeps templates).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gzip
import random
import sys
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_EARLY_BODY: web.RequestKey[bytes] = web.RequestKey("peer_early_body", bytes)
_COUNTS = ("busy", "error_500", "drop_connections", "drop_after_store", "item_429",
           "ack_drop_next")  # fmt: skip
_SETTINGS = ("delay", "delay_count", "retry_after", "item_400_match", "ack_drop_channel",
             "ack_delay", "flap")  # fmt: skip
FLAP_KINDS = ("busy", "error_500", "drop", "hang")
FIRST_CHANNEL = "first"  # ack_drop_channel: the first channel seen from then on


@dataclass
class Flap:
    """A server that fails a random share of its data requests (seeded: replayable)."""

    rate: float
    hang: float = 20.0
    seed: int | None = None
    kinds: tuple[str, ...] = FLAP_KINDS
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @classmethod
    def parse(cls, spec: Any) -> Flap:
        if not isinstance(spec, dict):
            raise ValueError("flap must be an object {rate, hang, seed, kinds} or null")
        unknown = set(spec) - {"rate", "hang", "seed", "kinds"}
        if unknown:
            raise ValueError(f"unknown flap setting(s): {sorted(unknown)}")
        rate = spec.get("rate")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ValueError("flap.rate must be a number from 0 to 1")
        hang = spec.get("hang", 20.0)
        if isinstance(hang, bool) or not isinstance(hang, int | float) or hang < 0:
            raise ValueError("flap.hang must be a non-negative number of seconds")
        seed = spec.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("flap.seed must be an integer or null")
        kinds = spec.get("kinds", list(FLAP_KINDS))
        if (not isinstance(kinds, list) or not kinds
                or not all(isinstance(k, str) and k in FLAP_KINDS for k in kinds)):  # fmt: skip
            raise ValueError(f"flap.kinds must be a non-empty list of {list(FLAP_KINDS)}")
        return cls(float(rate), float(hang), seed, tuple(kinds), random.Random(seed))

    def pick(self) -> str | None:
        """The failure for the next data request, or None to answer it faithfully."""
        if self.rng.random() >= self.rate:
            return None
        return self.rng.choice(self.kinds)

    def describe(self) -> dict[str, Any]:
        return {"rate": self.rate, "hang": self.hang, "seed": self.seed, "kinds": list(self.kinds)}


@dataclass
class Faults:
    busy: int = 0
    retry_after: float | None = None
    error_500: int = 0
    drop_connections: int = 0
    drop_after_store: int = 0
    delay: float = 0.0
    delay_count: int = 0
    item_429: int = 0
    item_400_match: str | None = None
    ack_drop_channels: set[str] = field(default_factory=set)
    ack_drop_next: int = 0
    lost_acks: set[tuple[str, int]] = field(default_factory=set)  # (channel, ackId)
    ack_delay: float = 0.0
    flap: Flap | None = None

    def update(self, spec: dict[str, Any]) -> None:
        for name in _COUNTS:
            if name in spec:
                setattr(self, name, getattr(self, name) + _count(spec, name))
        if "delay" in spec:
            self.delay = float(spec["delay"])
            self.delay_count = _count(spec, "delay_count") if "delay_count" in spec else 1
        if "retry_after" in spec:
            self.retry_after = None if spec["retry_after"] is None else float(spec["retry_after"])
        if "item_400_match" in spec:
            match = spec["item_400_match"]
            self.item_400_match = None if match is None else str(match)
        if "ack_drop_channel" in spec:
            self.ack_drop_channels.add(str(spec["ack_drop_channel"]).lower())
        if "ack_delay" in spec:
            self.ack_delay = float(spec["ack_delay"])
        if "flap" in spec:
            self.flap = None if spec["flap"] is None else Flap.parse(spec["flap"])
        unknown = set(spec) - {*_COUNTS, *_SETTINGS}
        if unknown:
            raise ValueError(f"unknown fault(s): {sorted(unknown)}")

    def drop_acks_of_first(self, channel: str) -> None:
        """Called on every data request's channel: resolves ``ack_drop_channel: "first"``."""
        if FIRST_CHANNEL in self.ack_drop_channels and channel != FIRST_CHANNEL:
            self.ack_drop_channels.discard(FIRST_CHANNEL)
            self.ack_drop_channels.add(channel)

    def take(self, name: str) -> bool:
        """Consume one unit of a counted fault; True when it was armed."""
        left: int = getattr(self, name)
        if left > 0:
            setattr(self, name, left - 1)
            return True
        return False

    def describe(self) -> dict[str, Any]:
        skip = ("ack_drop_channels", "lost_acks", "flap")
        out = {k: v for k, v in self.__dict__.items() if k not in skip}
        out["ack_drop_channels"] = sorted(self.ack_drop_channels)
        out["lost_acks"] = sorted(list(key) for key in self.lost_acks)
        out["flap"] = None if self.flap is None else self.flap.describe()
        return out


def _count(spec: dict[str, Any], name: str) -> int:
    value = spec[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


@dataclass
class PeerBase:
    """What every peer has: faults, counters, and what it stored (peer-specific)."""

    faults: Faults = field(default_factory=Faults)
    stats: Counter[str] = field(default_factory=Counter)

    def clear(self) -> None:  # overridden by the peers, which call super()
        self.faults = Faults()
        self.stats = Counter()

    def stored(self) -> Any:
        raise NotImplementedError


def basic_credentials(credential: str) -> tuple[str, str]:
    """(user, password) of a Basic credential; ("", "") when it does not decode."""
    try:
        user, _, password = (
            base64.b64decode(credential.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, password


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers,
        content_type="application/json", charset="UTF-8",
    )  # fmt: skip


def drop(request: web.Request) -> web.Response:
    """Close the connection without answering (the client sees a disconnect)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=599)  # never reaches the client


async def read_limited(request: web.Request, limit: int) -> bytes | None:
    """The raw body, or None when it is longer than `limit` bytes (on the wire)."""
    if (early := request.get(_EARLY_BODY)) is not None:
        return None if len(early) > limit else bytes(early)
    length = request.content_length
    if length is not None and length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def inflate(body: bytes, encoding: str) -> bytes:
    """Decode a Content-Encoding; raises ValueError on a corrupt stream."""
    try:
        if encoding in ("gzip", "x-gzip"):
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"corrupt {encoding} body: {exc}") from exc
    return body


def fault_middleware(
    peer: PeerBase,
    is_data: Callable[[web.Request], bool],
    busy: Callable[[], web.Response],
    error_500: Callable[[], web.Response],
) -> Any:
    def busy_answer() -> web.Response:
        peer.stats["busy"] += 1
        answer = busy()
        if peer.faults.retry_after is not None:
            answer.headers["Retry-After"] = f"{peer.faults.retry_after:g}"
        return answer

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_data(request):
            return await handler(request)
        faults = peer.faults
        peer.stats["requests"] += 1
        if faults.take("drop_connections"):
            peer.stats["dropped"] += 1
            return drop(request)
        if faults.delay_count > 0:
            faults.delay_count -= 1
            peer.stats["delayed"] += 1
            # Received in full first: the work goes on if the client gives up meanwhile.
            request[_EARLY_BODY] = await read_limited(request, sys.maxsize) or b""
            await asyncio.sleep(faults.delay)
        if faults.take("busy"):
            return busy_answer()
        if faults.take("error_500"):
            peer.stats["error_500"] += 1
            return error_500()
        flap = faults.flap
        kind = None if flap is None else flap.pick()
        if kind is not None:
            peer.stats[f"flap_{kind}"] += 1
            if kind == "busy":
                return busy_answer()
            if kind == "error_500":
                peer.stats["error_500"] += 1
                return error_500()
            if kind == "drop":
                peer.stats["dropped"] += 1
                return drop(request)
            assert flap is not None
            request[_EARLY_BODY] = await read_limited(request, sys.maxsize) or b""
            await asyncio.sleep(flap.hang)
            peer.stats["flap_hang_released"] += 1
        response = await handler(request)
        if faults.take("drop_after_store"):
            peer.stats["dropped_after_store"] += 1
            return drop(request)
        return response

    return middleware


# Bodies must reach the peers as sent: sizes are limits on the wire, and a corrupt
# gzip body is the peer's error to report (aiohttp would otherwise inflate it first).
HANDLER_ARGS = {"auto_decompress": False}


def add_control_routes(app: web.Application, peer: PeerBase) -> None:
    async def faults(request: web.Request) -> web.Response:
        try:
            spec = orjson.loads(await request.read() or b"{}")
            if not isinstance(spec, dict):
                raise ValueError("faults must be a JSON object")
            peer.faults.update(spec)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response(peer.faults.describe())

    async def events(_: web.Request) -> web.Response:
        return json_response(peer.stored())

    async def stats(_: web.Request) -> web.Response:
        return json_response(dict(peer.stats))

    async def reset(_: web.Request) -> web.Response:
        peer.clear()
        return json_response({"reset": True})

    app.router.add_post("/__peer__/faults", faults)
    app.router.add_get("/__peer__/events", events)
    app.router.add_get("/__peer__/stats", stats)
    app.router.add_post("/__peer__/reset", reset)


def serve(app: web.Application, host: str, port: int) -> None:
    """Run until SIGTERM/SIGINT; prints ``listening http://HOST:PORT`` once bound
    (``--port 0`` picks a free port, which is how fixtures.py avoids port races)."""
    import signal
    import socket

    async def main() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock, backlog=512).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        bound = sock.getsockname()
        print(f"listening http://{bound[0]}:{bound[1]}", flush=True)
        await stop.wait()
        await runner.cleanup()
        sys.stdout.flush()

    asyncio.run(main())
