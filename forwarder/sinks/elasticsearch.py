"""Elasticsearch and OpenSearch: `_bulk` `create` into data streams.

Protocol (PROTOCOLS.md section 2; Elasticsearch "Bulk API" and "Use a data stream"):
NDJSON action/source pairs, `create` only (data streams are append-only), `_id` the
deterministic event id so a replay answers 409 "already exists" (counted as
delivered). Items are judged one by one: 201/409 delivered, 429/5xx retried (only
those items), any other 4xx dead-lettered with the item's error.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import structlog

from forwarder.config import ElasticsearchSinkConfig
from forwarder.errors import SinkFatalError
from forwarder.events import Event, Status
from forwarder.mapping import KIND_BY_LOG_TYPE
from forwarder.mapping.common import iso_ms
from forwarder.sinks._http import build_client, gzip_body, retry_after, short, transient
from forwarder.sinks.base import SendResult, Sink
from forwarder.sinks.bodies import Body, es_body, prefix_table

log = structlog.get_logger(__name__)


def data_stream_name(log_type: str, namespace: str) -> str:
    """`logs-aws.workmail_<kind>-<namespace>` (CONTRACT.md; ECS data_stream fields)."""
    return f"logs-aws.workmail_{KIND_BY_LOG_TYPE[log_type]}-{namespace}"


class ElasticsearchSink(Sink):
    def __init__(self, config: ElasticsearchSinkConfig) -> None:
        self.id = config.id
        self.view = config.view
        self.config = config
        self._bulk_url = f"{str(config.url).rstrip('/')}/_bulk"
        self._headers = {"Content-Type": "application/x-ndjson", **_auth_header(config)}
        if config.gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._actions: dict[str, bytes] = {}
        for log_type in KIND_BY_LOG_TYPE:
            target = config.data_stream or data_stream_name(log_type, config.data_stream_namespace)
            self._actions[log_type] = b'{"create":{"_index":' + orjson.dumps(target) + b',"_id":"'
        # ECS documents carry @timestamp; OCSF and raw ones get it spliced in, since a
        # data stream refuses documents without it.
        self._needs_timestamp = config.schema_ != "ecs"
        self._action_table = prefix_table(self._actions)
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = build_client(self.config.tls, self.config.timeout, self.config.max_in_flight)
        if self.config.bootstrap:
            from forwarder.sinks.es_templates import install_templates

            await install_templates(self._client, str(self.config.url), self._headers, self.config)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def encode(self, event: Event) -> bytes:
        doc = event.docs[self.view]
        if self._needs_timestamp:
            # Event.time is a whole number of ms / 1000: format those ms exactly
            # (datetime.fromtimestamp rounds through microseconds and lost a ms for
            # times past ~2200).
            stamp = iso_ms(round(event.time * 1000))
            doc = b'{"@timestamp":"' + stamp.encode() + b'",' + doc[1:]
        action = self._actions.get(event.log_type or "", self._actions["AUTHENTICATION_LOGS"])
        return action + event.id.encode() + b'"}}\n' + doc + b"\n"

    async def send(self, events: list[Event]) -> SendResult:
        if self._client is None:
            raise RuntimeError("sink not started")
        statuses: list[Status] = [Status.ERRORED] * len(events)
        reasons: dict[int, str] = {}
        lines = es_body(events, self.view, self._action_table, self._needs_timestamp, self.encode)
        hint = await self._bulk(lines, 0, len(events), statuses, reasons)
        return SendResult(statuses, reasons, hint)

    async def _bulk(
        self,
        lines: Body,
        start: int,
        end: int,
        statuses: list[Status],
        reasons: dict[int, str],
    ) -> float | None:
        assert self._client is not None
        body = lines.part(start, end)
        if self.config.gzip:
            body = gzip_body(body, 1)
        response = await self._client.post(self._bulk_url, content=body, headers=self._headers)
        if response.status_code in (401, 403):
            raise SinkFatalError(short(response))
        if response.status_code == 200:
            self._judge_items(response, start, end, statuses, reasons)
            return None
        if transient(response.status_code):
            for index in range(start, end):
                reasons[index] = short(response)
            return retry_after(response)
        if response.status_code in (400, 413) and end - start > 1:
            # The request as a whole was refused (too large, or one line unparseable):
            # halve it until the culprit stands alone.
            middle = (start + end) // 2
            first = await self._bulk(lines, start, middle, statuses, reasons)
            second = await self._bulk(lines, middle, end, statuses, reasons)
            return first if first is not None else second
        if response.status_code in (400, 413):
            statuses[start] = Status.REJECTED
            reasons[start] = short(response)
            return None
        for index in range(start, end):  # an unexpected answer: retry, never drop
            reasons[index] = short(response)
        return retry_after(response)

    def _judge_items(
        self,
        response: httpx.Response,
        start: int,
        end: int,
        statuses: list[Status],
        reasons: dict[int, str],
    ) -> None:
        try:
            items = orjson.loads(response.content)["items"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            items = None
        if not isinstance(items, list) or len(items) != end - start:
            # Without one answer per action nothing can be trusted: send it all again
            # (409 turns the ones that did land into deliveries).
            for index in range(start, end):
                reasons[index] = f"bulk answer without one item per action: {short(response)}"
            return
        for offset, item in enumerate(items):
            index = start + offset
            result: dict[str, Any] = next(iter(item.values()), {}) if isinstance(item, dict) else {}
            status = result.get("status")
            if status in (200, 201, 409):
                statuses[index] = Status.DELIVERED
            elif isinstance(status, int) and (status == 429 or status >= 500):
                reasons[index] = _item_error(result)
            else:
                statuses[index] = Status.REJECTED
                reasons[index] = _item_error(result)


def _item_error(result: dict[str, Any]) -> str:
    error = result.get("error")
    if isinstance(error, dict):
        return f"{result.get('status')} {error.get('type')}: {error.get('reason')}"[:500]
    return f"{result.get('status')}: {error}"[:500]


def _auth_header(config: ElasticsearchSinkConfig) -> dict[str, str]:
    if config.api_key is not None:
        return {"Authorization": f"ApiKey {config.api_key.get_secret_value()}"}
    if config.username is not None and config.password is not None:
        pair = f"{config.username}:{config.password.get_secret_value()}".encode()
        return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
    return {}
