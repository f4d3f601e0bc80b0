"""The firehose_http source: an HTTP(S) endpoint for Amazon Data Firehose.

Firehose pushes; there is nothing to poll and nothing to checkpoint. One request is
one ack unit, and the answer is the commit: 200 goes out only once every sink has
acknowledged every event of the request (or dead-lettered it). A sink that fails
(ERRORED) or is slower than `request_timeout` gets a 500, and Firehose sends the
request again, with the same request id, for as long as its retry duration allows.
A full sink queue makes `pipeline.send` wait, which delays the answer: that is the
backpressure Firehose sees.

The ledger keeps one delivery per request id in flight (a retry joins it) and
remembers the ids answered 200 for `dedupe_window`, so a retry whose first answer
was lost is not delivered twice.

Shutdown: the listener closes, requests in flight are answered as their acks
resolve, within the daemon's grace; those still waiting then get a 503 (Firehose
retries them). `run --drain` returns at once: a push source has no backlog to drain.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from dataclasses import dataclass, field

import structlog
from aiohttp import web

from forwarder.config import FirehoseHttpSourceConfig, secret
from forwarder.events import Batch
from forwarder.sources.base import Source, SourceContext, observe_lag
from forwarder.sources.cloudwatch.groups import log_type_from_group
from forwarder.sources.firehose.ledger import Answer, Delivery, RequestLedger
from forwarder.sources.firehose.protocol import (
    ACCESS_KEY_HEADER,
    REQUEST_ID_HEADER,
    FirehoseRequest,
    RequestError,
    answer_body,
    check_access_key,
    inflate,
    parse_body,
    record_events,
)

log = structlog.get_logger(__name__)

_READ_CHUNK = 256 << 10
_OFF_LOOP_BYTES = 256 << 10  # bodies larger than this are parsed in a worker thread
_MAX_HEADER_BYTES = 128 << 10  # X-Amz-Firehose-Common-Attributes: up to 50 entries
_SHUTTING_DOWN = Answer(503, "the endpoint is shutting down; retry")


@dataclass
class FirehoseStats:
    answers: Counter[int] = field(default_factory=Counter)  # by HTTP status
    duplicates: int = 0  # answered 200 again from the ledger
    joined: int = 0  # retries that joined an attempt still in flight
    records: int = 0


class FirehoseHttpSource(Source):
    def __init__(self, config: FirehoseHttpSourceConfig) -> None:
        self.id = config.id
        self.config = config
        self.stats = FirehoseStats()
        self.ledger = RequestLedger(config.dedupe_window)
        self.listening = asyncio.Event()
        self.port: int | None = None  # the bound port, once listening (listen may say 0)
        self._access_key = secret(config.access_key)
        self._ctx: SourceContext | None = None
        self._group: asyncio.TaskGroup | None = None
        self._slots = asyncio.Semaphore(config.max_concurrent_requests)
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._observed = False

    # -- Source contract: the 200 is the commit ---------------------------------------

    async def commit_loop(self, ctx: SourceContext) -> None:
        return None

    async def flush(self) -> None:
        return None

    def in_flight(self) -> int:
        return len(self.ledger)

    # -- serving ---------------------------------------------------------------------

    async def run(self, ctx: SourceContext) -> None:
        if ctx.drain:
            log.info("firehose_source_nothing_to_drain", source=self.id)
            return
        self._ctx = ctx
        self._observe(ctx)
        if self._access_key is None:
            log.warning("firehose_no_access_key", source=self.id,
                        hint="anyone who reaches the port can submit events")  # fmt: skip
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=5.0,
            auto_decompress=False,  # inflated here, bounded: a gzip bomb must not get far
            max_field_size=_MAX_HEADER_BYTES,
        )  # fmt: skip
        await runner.setup()
        host, _, port = self.config.listen.rpartition(":")
        try:
            # Started outside the task group: a port in use or a bad certificate is
            # raised as itself (the runtime logs it and restarts the source later).
            # `workers: N` processes share the port (SO_REUSEPORT; the kernel spreads
            # connections); each keeps its own ledger, so a retry landing on another
            # worker may be delivered twice: at least once, as everywhere.
            site = web.TCPSite(runner, host.strip("[]"), int(port),
                               ssl_context=self._tls_context(),
                               reuse_port=ctx.replicas > 1 or None)  # fmt: skip
            await site.start()
            self.port = int(runner.addresses[0][1])
            async with asyncio.TaskGroup() as group:
                self._group = group
                log.info("firehose_listening", source=self.id, host=host, port=self.port,
                         tls=self.config.tls is not None)  # fmt: skip
                self.listening.set()
                await ctx.stopping.wait()
                await site.stop()  # no new connections; requests in flight are answered
                await self._idle.wait()
        finally:
            self._group = None
            self.listening.clear()
            for delivery in self.ledger.deliveries():
                delivery.settle(_SHUTTING_DOWN)
            await runner.cleanup()

    def _tls_context(self) -> ssl.SSLContext | None:
        tls = self.config.tls
        if tls is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(tls.cert_file, tls.key_file)
        return context

    async def _handle(self, request: web.Request) -> web.Response:
        self._active += 1
        self._idle.clear()
        try:
            request_id = request.headers.get(REQUEST_ID_HEADER, "")
            answer = await self._serve(request, request_id)
        finally:
            self._active -= 1
            if not self._active:
                self._idle.set()
        self.stats.answers[answer.status] += 1
        if answer.status != 200:
            log.warning("firehose_request_failed", source=self.id, request_id=request_id,
                        status=answer.status, error=answer.error)  # fmt: skip
        headers = {"Allow": "POST"} if answer.status == 405 else None
        return web.Response(
            body=answer_body(request_id, answer.error), status=answer.status,
            content_type="application/json", headers=headers,
        )  # fmt: skip

    async def _serve(self, request: web.Request, request_id: str) -> Answer:
        loop = asyncio.get_running_loop()
        started = loop.time()
        if request.method != "POST":
            return Answer(405, "only POST is accepted")
        try:
            check_access_key(self._access_key, request.headers.get(ACCESS_KEY_HEADER))
        except RequestError as exc:
            return Answer(exc.status, exc.message)
        if not request_id:
            return Answer(400, f"missing {REQUEST_ID_HEADER}")
        if self.ledger.answered(request_id):
            self.stats.duplicates += 1
            return Answer(200)
        delivery = self.ledger.in_flight(request_id)
        if delivery is not None:
            self.stats.joined += 1
        else:
            if self._group is None or self._stopping():
                return _SHUTTING_DOWN
            # Claimed before the body is read, so a concurrent retry joins this attempt.
            delivery = self.ledger.start(request_id)
            answer = await self._begin(request, delivery)
            if answer is not None:
                return answer
        remaining = self.config.request_timeout - (loop.time() - started)
        try:
            return await asyncio.wait_for(asyncio.shield(delivery.answer), max(remaining, 0.0))
        except TimeoutError:
            return Answer(500, f"not every sink acknowledged the records within "
                               f"{self.config.request_timeout:g}s; retry")  # fmt: skip

    async def _begin(self, request: web.Request, delivery: Delivery) -> Answer | None:
        """Read and parse the body, start the delivery; an Answer if it ends here."""
        try:
            parsed = await self._read(request, delivery.request_id)
        except RequestError as exc:
            answer = Answer(exc.status, exc.message)
        except asyncio.CancelledError:
            self.ledger.finish(delivery, _SHUTTING_DOWN)
            raise
        except Exception as exc:  # the connection broke mid-body, and the like
            answer = Answer(400, f"the request body could not be read: {exc!r}")
        else:
            if self._group is not None and not self._stopping():
                self._group.create_task(self._deliver(delivery, parsed))
                return None
            answer = _SHUTTING_DOWN
        self.ledger.finish(delivery, answer)
        return answer

    def _stopping(self) -> bool:
        return self._ctx is None or self._ctx.stopping.is_set()

    async def _read(self, request: web.Request, request_id: str) -> FirehoseRequest:
        limit = self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise RequestError(413, f"body of {request.content_length} bytes exceeds "
                                    f"max_body_bytes={limit}")  # fmt: skip
        body = bytearray()
        async for chunk in request.content.iter_chunked(_READ_CHUNK):
            body += chunk
            if len(body) > limit:
                raise RequestError(413, f"body exceeds max_body_bytes={limit}")
        encoding = request.headers.get("Content-Encoding")
        if len(body) > _OFF_LOOP_BYTES:
            return await asyncio.to_thread(_parse, bytes(body), encoding, limit, request_id)
        return _parse(bytes(body), encoding, limit, request_id)

    async def _deliver(self, delivery: Delivery, request: FirehoseRequest) -> None:
        """Decode and hand over; the ack's resolution answers the request."""
        ctx = self._ctx
        assert ctx is not None
        config = self.config
        try:
            async with self._slots:
                args = (request, self.id, delivery.ack, config.log_type, log_type_from_group,
                        config.max_inflated_bytes)  # fmt: skip
                if len(request.records) > 100:
                    events = await asyncio.to_thread(record_events, *args)
                else:
                    events = record_events(*args)
                if events:
                    self.stats.records += len(events)
                    ctx.metrics.records_read.add(len(events), {"source": self.id})
                    observe_lag(ctx, self.id, delivery.ack, events)
                    await ctx.pipeline.send(Batch(events))
        except asyncio.CancelledError:
            self.ledger.finish(delivery, _SHUTTING_DOWN)
            raise
        except Exception as exc:  # the pipeline closed under it; nothing was committed
            log.exception("firehose_delivery_failed", source=self.id,
                          request_id=delivery.request_id)  # fmt: skip
            self.ledger.finish(delivery, Answer(500, f"{type(exc).__name__}: {exc}"))
            return
        # Sealed only once every event is handed over (see FilesSource).
        delivery.ack.on_done(lambda ack: self._acknowledged(delivery))
        delivery.ack.seal()

    def _acknowledged(self, delivery: Delivery) -> None:
        if delivery.ack.errored:
            if self._ctx is not None:
                self._ctx.errored_units += 1
            answer = Answer(500, "a sink could not take every record (it was retried until "
                                 "retry.max_elapsed); retry")  # fmt: skip
        else:
            answer = Answer(200)  # DELIVERED, or REJECTED and already dead-lettered
        self.ledger.finish(delivery, answer)

    def _observe(self, ctx: SourceContext) -> None:
        if self._observed:
            return
        self._observed = True
        stats, attrs = self.stats, {"source": self.id}
        # 200 and 500 (the two Firehose acts on) exported from the start, others once seen.
        ctx.metrics.add_gauge("wmf_firehose_requests", lambda: [
            (float(stats.answers[code]), {**attrs, "code": str(code)})
            for code in sorted({200, 500} | set(stats.answers))
        ])  # fmt: skip
        ctx.metrics.add_gauge(
            "wmf_firehose_requests_in_flight", lambda: [(float(len(self.ledger)), attrs)]
        )


def _parse(body: bytes, encoding: str | None, limit: int, request_id: str) -> FirehoseRequest:
    return parse_body(inflate(body, encoding, limit), request_id)
