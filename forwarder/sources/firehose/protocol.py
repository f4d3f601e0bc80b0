"""The Firehose HTTP endpoint delivery contract, as pure functions (PROTOCOLS.md 4.8).

Request: POST, `X-Amz-Firehose-Request-Id` (the same on every retry),
`X-Amz-Firehose-Access-Key`, `Content-Encoding: gzip` when configured, and the body
`{"requestId", "timestamp" (ms), "records": [{"data": "<base64>"}]}`.
Response: `application/json`, no Content-Encoding, `{"requestId", "timestamp" (ms),
"errorMessage"?}`. Only 200 is success; 413 is permanent (Firehose drops the batch);
every other status is retried with backoff, then backed up to S3 by Firehose.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from forwarder.acks import Ack
from forwarder.decode import gunzip, split_blob
from forwarder.errors import DecodeError
from forwarder.events import Event, Origin

REQUEST_ID_HEADER = "X-Amz-Firehose-Request-Id"
ACCESS_KEY_HEADER = "X-Amz-Firehose-Access-Key"
MAX_ERROR_MESSAGE = 8192  # characters, per the spec
_SECONDS_BEFORE = 10**11  # a timestamp below this is in seconds (moto), not milliseconds


class RequestError(Exception):
    """A request answered with `status` and `message` before any of it reached a sink."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class FirehoseRequest:
    request_id: str
    timestamp_ms: int | None
    records: list[Any]  # the `records` array as sent; each item decoded on its own


def answer_body(request_id: str, error: str | None = None) -> bytes:
    body: dict[str, Any] = {"requestId": request_id, "timestamp": int(time.time() * 1000)}
    if error is not None:
        body["errorMessage"] = error[:MAX_ERROR_MESSAGE]
    return orjson.dumps(body)


def check_access_key(expected: str | None, sent: str | None) -> None:
    """Constant time; the Secrets Manager form `{"api_key": "..."}` is accepted too."""
    if expected is None:
        return
    if sent is None:
        raise RequestError(401, f"missing {ACCESS_KEY_HEADER}")
    candidate = sent
    if sent.startswith("{"):
        try:
            wrapped = orjson.loads(sent)
        except orjson.JSONDecodeError:
            wrapped = None
        if isinstance(wrapped, dict) and isinstance(wrapped.get("api_key"), str):
            candidate = wrapped["api_key"]
    if not hmac.compare_digest(candidate.encode(), expected.encode()):
        raise RequestError(403, f"invalid {ACCESS_KEY_HEADER}")


def inflate(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body without its Content-Encoding; at most `limit` bytes once inflated."""
    coding = (encoding or "").strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in ("gzip", "x-gzip"):
        raise RequestError(415, f"unsupported Content-Encoding {encoding!r} (gzip or none)")
    try:
        return gunzip(body, limit, "too_large")
    except DecodeError as exc:
        if exc.reason == "too_large":
            raise RequestError(413, f"body inflates past {limit} bytes") from None
        raise RequestError(400, f"body is not valid gzip: {exc.detail}") from None


def parse_body(body: bytes, request_id: str) -> FirehoseRequest:
    """The JSON envelope; a body that is not one can never succeed: 400."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RequestError(400, "request body is not a JSON object")
    body_id = doc.get("requestId")
    if body_id is not None and body_id != request_id:
        raise RequestError(400, f"requestId in the body does not match {REQUEST_ID_HEADER}")
    records = doc.get("records")
    if not isinstance(records, list):
        raise RequestError(400, "request body has no records array")
    timestamp = doc.get("timestamp")
    if type(timestamp) is not int:
        timestamp = None
    elif timestamp < _SECONDS_BEFORE:
        timestamp *= 1000
    return FirehoseRequest(request_id, timestamp, records)


def record_events(
    request: FirehoseRequest,
    source_id: str,
    ack: Ack,
    log_type: str | None,
    group_log_type: Callable[[str], str | None],
    max_inflated_bytes: int,
) -> list[Event]:
    """Every event the request's records carry; undecodable records become events
    preset for dead-letter, so each one is accounted for.

    `group_log_type(name)` names the log type a CloudWatch log group name implies.
    """
    events: list[Event] = []
    budget = max_inflated_bytes
    fallback = request.timestamp_ms / 1000.0 if request.timestamp_ms else 0.0
    for index, item in enumerate(request.records):
        origin = Origin(source_id, request.request_id, index)
        data = item.get("data") if isinstance(item, dict) else None
        try:
            blob = _record_bytes(data)
            records = split_blob(blob, max_inflated_bytes=max(budget, 0))
        except DecodeError as exc:
            raw = data.encode() if isinstance(data, str) else orjson.dumps(item)
            events.append(Event(raw, origin, ack, error=exc.reason, error_detail=exc.detail))
            continue
        for record in records:
            budget -= len(record.raw)
            kind = log_type
            if record.log_group is not None:
                kind = group_log_type(record.log_group) or log_type
            when = record.time_ms / 1000.0 if record.time_ms else fallback
            events.append(Event(record.raw, origin, ack, log_type=kind, time=when))
    return events


def _record_bytes(data: Any) -> bytes:
    if isinstance(data, str):
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            text = data.strip()
            if text[:1] in ("{", "["):
                return text.encode()  # JSON sent unencoded; decode defensively (4.3)
            raise DecodeError("invalid_base64", "records[].data is not base64") from None
    if isinstance(data, dict | list):
        # The spec's "CWLog sourced request" example shows `data` as an object.
        return orjson.dumps(data)
    raise DecodeError("invalid_firehose_record", "a record without a data string")
