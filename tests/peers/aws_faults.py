"""A fault-injecting HTTP proxy in front of moto_server for the AWS JSON protocols.

Real AWS throttles FilterLogEvents at 5 requests/s per account and Region
(PROTOCOLS.md 4.1) with `ThrottlingException`; moto never does. This proxy forwards
every request to moto unchanged, except that for the operations named in
`throttle_ops` it answers the way the AWS JSON 1.1 protocol reports an error (HTTP
400, `{"__type": "ThrottlingException", "message": "Rate exceeded"}`, which botocore
parses into a ClientError with that code), either for the next `throttle_next`
requests or while `throttle_rate_over` is exceeded (a server-side rate limit).
"""

from __future__ import annotations

import time
from collections import deque

import aiohttp
from aiohttp import web

_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


class AwsFaultProxy:
    def __init__(self, upstream: str, throttle_ops: set[str]) -> None:
        self.upstream = upstream.rstrip("/")
        self.throttle_ops = throttle_ops
        self.throttle_next = 0  # throttle this many matching requests, then pass
        self.throttle_rate_over: float | None = None  # requests/s allowed (sliding 1 s)
        self.passed = 0
        self.throttled = 0
        self._recent: deque[float] = deque()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.endpoint_url = ""

    async def start(self) -> None:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _should_throttle(self) -> bool:
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return True
        if self.throttle_rate_over is not None:
            now = time.monotonic()
            while self._recent and now - self._recent[0] > 1.0:
                self._recent.popleft()
            if len(self._recent) >= self.throttle_rate_over:
                return True
            self._recent.append(now)
        return False

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        target = request.headers.get("X-Amz-Target", "")
        operation = target.rpartition(".")[2]
        if operation in self.throttle_ops and self._should_throttle():
            self.throttled += 1
            return web.json_response(
                {"__type": "ThrottlingException", "message": "Rate exceeded"},
                status=400,
                content_type="application/x-amz-json-1.1",
            )
        if operation in self.throttle_ops:
            self.passed += 1
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as upstream:
            payload = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS}
            out.pop("Content-Encoding", None)
            return web.Response(status=upstream.status, body=payload, headers=out)
