"""A slow AWS peer: an HTTP proxy in front of moto_server that answers late.

Every request is forwarded to moto unchanged; for the operations named in `ops` (the
last part of X-Amz-Target: `FilterLogEvents`, ...; every request when `ops` is empty)
the proxy first sleeps `delay` seconds, as a service that accepted the connection but
stopped answering would. A client whose read timeout is below `delay` gives up first.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


class AwsDelayProxy:
    def __init__(self, upstream: str, ops: set[str] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.ops = ops or set()
        self.delay = 0.0
        self.delayed = 0
        self.passed = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.endpoint_url = ""

    async def start(self) -> None:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
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

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2]
        body = await request.read()
        if self.delay > 0 and (not self.ops or operation in self.ops):
            self.delayed += 1
            await asyncio.sleep(self.delay)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body
        ) as upstream:
            payload = await upstream.read()
            out = {k: v for k, v in upstream.headers.items()
                   if k.lower() not in _HOP_HEADERS | {"content-encoding"}}  # fmt: skip
            self.passed += 1
            return web.Response(status=upstream.status, body=payload, headers=out)
