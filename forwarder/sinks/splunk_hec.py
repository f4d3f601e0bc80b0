"""Splunk HTTP Event Collector: /services/collector/event with optional indexer acks.

Protocol (PROTOCOLS.md section 1; Splunk "Format events for HTTP Event Collector",
"HTTP Event Collector REST API endpoints", "About HTTP Event Collector Indexer
Acknowledgment"): a request is concatenated JSON envelopes, `Authorization: Splunk
<token>`, gzip allowed. With indexer acknowledgement the 200 answer only carries an
ackId; the events count as delivered once /services/collector/ack reports it true.
An ackId that stays false past `ack_timeout` is treated as lost and the events are
sent again (Splunk's guidance): duplicates are possible, loss is not.

A lost ack on a channel that otherwise answers is found sooner. HEC numbers a
channel's ackIds in the order it accepted the requests, and an indexer confirms them
roughly in that order; so once a higher ackId of the same channel has been reported
true, a lower one still false is given `_LOST_AFTER_ROUNDS` more poll rounds (slack for
out-of-order indexing) and is then declared lost: its batch is sent again at once, on
the same channel (the channel is answering: no rotation). A channel with no later ack
confirmed keeps the plain `ack_timeout` rule (and rotates when it expires).
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import httpx
import orjson
import structlog

from forwarder.config import SplunkHecSinkConfig
from forwarder.errors import SinkFatalError
from forwarder.events import Event, Status
from forwarder.mapping import KIND_BY_LOG_TYPE
from forwarder.sinks._http import build_client, gzip_body, retry_after, short, transient
from forwarder.sinks.base import SendResult, Sink
from forwarder.sinks.bodies import Body, hec_body, prefix_table

log = structlog.get_logger(__name__)

# HEC answers that no retry of the same data can fix: the configuration must change.
_CONFIG_CODES = {1: "token disabled", 7: "incorrect index", 10: "data channel is missing",
                 11: "invalid data channel", 14: "ACK is disabled on the token",
                 16: "query string authorization is not enabled"}  # fmt: skip
# HEC answers that blame the data: the event they point at is dead-lettered.
_DATA_CODES = {5, 6, 12, 13, 15}
# Many acknowledged requests may wait for their ackId at once; the HTTP requests
# themselves stay limited by max_in_flight.
_MAX_PENDING_ACKS = 256
# Poll rounds a false ackId is still waited for once a later ackId of its channel is true.
_LOST_AFTER_ROUNDS = 3


class SplunkHecSink(Sink):
    def __init__(self, config: SplunkHecSinkConfig) -> None:
        self.id = config.id
        self.view = config.view
        self.config = config
        self.channel = str(uuid.uuid4())  # one channel per sink instance (per connection pool)
        base = str(config.url).rstrip("/")
        self._event_url = f"{base}/services/collector/event"
        self._ack_url = f"{base}/services/collector/ack"
        self._headers = {
            "Authorization": f"Splunk {config.token.get_secret_value()}",
            "X-Splunk-Request-Channel": self.channel,
            "Content-Type": "application/json",
        }
        if config.gzip_level:
            self._headers["Content-Encoding"] = "gzip"
        self._requests = asyncio.Semaphore(config.max_in_flight)
        self._prefixes = self._envelope_prefixes()
        self._prefix_table = prefix_table(self._prefixes)
        self._client: httpx.AsyncClient | None = None
        self._acks = _AckPoller(self) if config.indexer_ack else None
        if config.indexer_ack:
            self.max_pending = _MAX_PENDING_ACKS
            self.send_timeout = config.timeout + config.ack_timeout + config.ack_poll_interval

    def rotate_channel(self, stale: str) -> None:
        """A channel whose acks never come may be stuck on the indexer side: the
        batches sent again go on a fresh channel (the old one's ackIds are abandoned)."""
        if self.channel == stale:
            self.channel = str(uuid.uuid4())
            self._headers["X-Splunk-Request-Channel"] = self.channel
            log.warning("hec_channel_rotated", sink=self.id, old=stale, new=self.channel)

    def _envelope_prefixes(self) -> dict[str, bytes]:
        """Per log type, the constant head of an envelope (JSON-escaped once, not per event)."""
        config = self.config
        host = config.host or socket.gethostname()
        prefixes: dict[str, bytes] = {}
        for log_type, kind in KIND_BY_LOG_TYPE.items():
            head: dict[str, Any] = {
                "host": host,
                "source": config.source or f"workmail:{log_type}",
                "sourcetype": config.sourcetypes.get(log_type, f"aws:workmail:{kind}"),  # type: ignore[call-overload]
            }
            if config.index:
                head["index"] = config.index
            # `fields` are indexed fields: event_id and log_type searchable without parsing.
            prefixes[log_type] = (
                orjson.dumps(head)[:-1]
                + b',"fields":{"log_type":'
                + orjson.dumps(log_type)
                + b',"event_id":"'
            )
        return prefixes

    def encode(self, event: Event) -> bytes:
        log_type = event.log_type or ""
        prefix = self._prefixes.get(log_type) or self._prefixes["AUTHENTICATION_LOGS"]
        return b'%s%s"},"time":%.3f,"event":%s}' % (
            prefix,
            event.id.encode(),
            event.time,
            event.docs[self.view],
        )

    async def start(self) -> None:
        self._client = build_client(
            self.config.tls, self.config.timeout, self.config.max_in_flight + 1
        )

    async def close(self) -> None:
        if self._acks is not None:
            await self._acks.close()
        if self._client is not None:
            await self._client.aclose()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("sink not started")
        return self._client

    async def send(self, events: list[Event]) -> SendResult:
        body = hec_body(events, self.view, self._prefix_table, self.encode)
        statuses: list[Status] = [Status.ERRORED] * len(events)
        reasons: dict[int, str] = {}
        hint = await self._send_range(body, 0, len(events), statuses, reasons)
        return SendResult(statuses, reasons, hint)

    async def _send_range(
        self,
        bodies: Body,
        start: int,
        end: int,
        statuses: list[Status],
        reasons: dict[int, str],
    ) -> float | None:
        """POST events [start, end); halves it when HEC blames the data without saying where."""
        limit = self.config.batch.max_bytes
        if bodies.size(start, end) > limit and end - start > 1:  # keep requests under max_bytes
            middle = (start + end) // 2
            first = await self._send_range(bodies, start, middle, statuses, reasons)
            second = await self._send_range(bodies, middle, end, statuses, reasons)
            return first if first is not None else second
        payload = bodies.part(start, end)
        if self.config.gzip_level:
            payload = gzip_body(payload, self.config.gzip_level)
        channel = self.channel  # the ackId below belongs to the channel it was sent on
        headers = {**self._headers, "X-Splunk-Request-Channel": channel}
        async with self._requests:
            response = await self.client.post(self._event_url, content=payload, headers=headers)
        code, answer = _hec_answer(response)
        if response.status_code == 200 and code == 0:
            if self._acks is None:
                statuses[start:end] = [Status.DELIVERED] * (end - start)
                return None
            ack_id = answer.get("ackId")
            if not isinstance(ack_id, int):
                raise SinkFatalError(
                    "indexer_ack is on but HEC answered without an ackId: "
                    "is indexer acknowledgement (useACK) enabled on the token?"
                )
            # The ack may take seconds: the request's bytes must not be held that long
            # by every pending batch (40 batches of 1 MB at the default queue bound).
            del payload, response  # httpx keeps the request (and its body) on the response
            if start == 0 and end == bodies.count:
                bodies.release()
            acked = await self._acks.wait(ack_id, channel)
            statuses[start:end] = [Status.DELIVERED if acked else Status.ERRORED] * (end - start)
            if not acked:
                for index in range(start, end):
                    reasons[index] = f"no indexer ack for ackId {ack_id} on channel {channel}"
            return None
        if response.status_code in (401, 403) or code in _CONFIG_CODES:
            raise SinkFatalError(
                f"{short(response)} ({_CONFIG_CODES.get(code or -1, 'credentials refused')})"
            )
        if transient(response.status_code):
            for index in range(start, end):
                reasons[index] = short(response)
            return retry_after(response)
        blamed = answer.get("invalid-event-number")
        if response.status_code == 413 or (response.status_code == 400 and code in _DATA_CODES):
            if isinstance(blamed, int) and 0 <= blamed < end - start:
                # Nothing of the request was indexed: the blamed event is dead-lettered,
                # the others go again without it.
                statuses[start + blamed] = Status.REJECTED
                reasons[start + blamed] = short(response)
                for index in range(start, end):
                    if index != start + blamed:
                        reasons[index] = "sent again without an event HEC rejected"
                return None
            if end - start == 1:
                statuses[start] = Status.REJECTED
                reasons[start] = short(response)
                return None
            middle = (start + end) // 2
            await self._send_range(bodies, start, middle, statuses, reasons)
            await self._send_range(bodies, middle, end, statuses, reasons)
            return None
        # Anything else (an unexpected 4xx): retry with backoff rather than drop.
        for index in range(start, end):
            reasons[index] = short(response)
        return retry_after(response)


def _hec_answer(response: httpx.Response) -> tuple[int | None, dict[str, Any]]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None, {}
    if not isinstance(body, dict):
        return None, {}
    code = body.get("code")
    return (code if isinstance(code, int) else None), body


class _AckPoller:
    """Polls /services/collector/ack for every pending ackId, one request per channel a round."""

    def __init__(self, sink: SplunkHecSink) -> None:
        self._sink = sink
        self._waiting: dict[tuple[str, int], asyncio.Future[bool]] = {}
        self._task: asyncio.Task[None] | None = None
        self._highest_true: dict[str, int] = {}  # channel -> highest ackId reported true
        self._overtaken: dict[tuple[str, int], int] = {}  # false ackId -> rounds since overtaken
        self.proven_lost = 0

    async def wait(self, ack_id: int, channel: str) -> bool:
        """True once HEC reports the ackId indexed; False after ack_timeout."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        key = (channel, ack_id)
        self._waiting[key] = future
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll())
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._sink.config.ack_timeout)
        except TimeoutError:
            log.warning("hec_ack_timeout", sink=self._sink.id, ack_id=ack_id, channel=channel)
            self._sink.rotate_channel(channel)
            return False
        finally:
            self._waiting.pop(key, None)
            self._overtaken.pop(key, None)

    async def _poll(self) -> None:
        while self._waiting:
            await asyncio.sleep(self._sink.config.ack_poll_interval)
            for channel in sorted({channel for channel, _ in self._waiting}):
                await self._poll_channel(channel)

    async def _poll_channel(self, channel: str) -> None:
        sink = self._sink
        ids = sorted(ack_id for chan, ack_id in self._waiting if chan == channel)
        if not ids:
            return
        headers = {k: v for k, v in sink._headers.items() if k != "Content-Encoding"}
        headers["X-Splunk-Request-Channel"] = channel
        try:
            response = await sink.client.post(
                sink._ack_url, content=orjson.dumps({"acks": ids}), headers=headers
            )
        except httpx.HTTPError as exc:
            log.warning("hec_ack_poll_failed", sink=sink.id, error=str(exc))
            return
        if response.status_code != 200:
            log.warning("hec_ack_poll_failed", sink=sink.id, error=short(response))
            return
        try:
            acks = orjson.loads(response.content).get("acks", {})
        except (orjson.JSONDecodeError, AttributeError):
            return
        for key, done in acks.items():
            future = self._waiting.get((channel, int(key))) if str(key).isdigit() else None
            if done is True and future is not None and not future.done():
                future.set_result(True)
                if int(key) > self._highest_true.get(channel, -1):
                    self._highest_true[channel] = int(key)
        self._settle_overtaken(channel)

    def _settle_overtaken(self, channel: str) -> None:
        """Declare lost the ackIds a later, confirmed ackId of the channel has overtaken."""
        highest = self._highest_true.get(channel, -1)
        for (chan, ack_id), future in list(self._waiting.items()):
            if chan != channel or future.done() or ack_id >= highest:
                continue
            rounds = self._overtaken.get((chan, ack_id), 0) + 1
            self._overtaken[(chan, ack_id)] = rounds
            if rounds > _LOST_AFTER_ROUNDS:
                self.proven_lost += 1
                log.warning("hec_ack_lost", sink=self._sink.id, ack_id=ack_id, channel=channel,
                            confirmed_after=highest)  # fmt: skip
                future.set_result(False)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
