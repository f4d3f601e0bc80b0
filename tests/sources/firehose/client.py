"""A Firehose HTTP endpoint delivery client written to the spec (PROTOCOLS.md 4.8).

moto's Firehose sends no X-Amz-Firehose-* headers, seconds instead of milliseconds and
never gzip, and ignores the answer, so it cannot exercise the contract; this client
sends what AWS sends and checks every answer against what AWS accepts.
"""

from __future__ import annotations

import base64
import gzip
import json
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

SOURCE_ARN = "arn:aws:firehose:us-east-1:111122223333:deliverystream/workmail-audit"


def envelope(records: list[bytes], request_id: str, *, timestamp_ms: int | None = None) -> bytes:
    body = {
        "requestId": request_id,
        "timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
        "records": [{"data": base64.b64encode(data).decode()} for data in records],
    }
    return json.dumps(body).encode()


def cloudwatch_payload(messages: list[str], *, kind: str = "DATA_MESSAGE",
                       group: str = "/aws/vendedlogs/workmail/test") -> bytes:  # fmt: skip
    """A subscription filter payload as CloudWatch hands it to Firehose: gzip level 6."""
    doc = {
        "messageType": kind, "owner": "111122223333", "logGroup": group,
        "logStream": "stream-1", "subscriptionFilters": ["to-firehose"],
        "logEvents": [{"id": str(i), "timestamp": 1_700_000_000_000 + i, "message": m}
                      for i, m in enumerate(messages)],
    }  # fmt: skip
    return gzip.compress(json.dumps(doc).encode(), compresslevel=6)


@dataclass
class Reply:
    status: int
    headers: httpx.Headers
    body: dict[str, Any]
    raw: bytes
    elapsed: float


class FirehoseClient:
    def __init__(self, url: str, access_key: str | None = None, *, gzip_body: bool = False,
                 verify: ssl.SSLContext | bool = True, timeout: float = 30.0) -> None:  # fmt: skip
        self.url = url
        self.access_key = access_key
        self.gzip_body = gzip_body
        self._http = httpx.AsyncClient(verify=verify, timeout=timeout)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> FirehoseClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def headers(self, request_id: str) -> dict[str, str]:
        headers = {
            "X-Amz-Firehose-Protocol-Version": "1.0",
            "X-Amz-Firehose-Request-Id": request_id,
            "X-Amz-Firehose-Source-Arn": SOURCE_ARN,
            "X-Amz-Firehose-Common-Attributes": json.dumps({"commonAttributes": {"env": "test"}}),
            "Content-Type": "application/json",
        }
        if self.access_key is not None:
            headers["X-Amz-Firehose-Access-Key"] = self.access_key
        if self.gzip_body:
            headers["Content-Encoding"] = "gzip"
        return headers

    async def deliver(self, records: list[bytes], request_id: str | None = None) -> Reply:
        """One delivery attempt of `records`; a retry passes the same `request_id`."""
        request_id = request_id or str(uuid.uuid4())
        body = envelope(records, request_id)
        if self.gzip_body:
            body = gzip.compress(body)
        return await self.post(body, self.headers(request_id))

    async def post(self, body: bytes, headers: dict[str, str], method: str = "POST") -> Reply:
        started = time.monotonic()
        response = await self._http.request(method, self.url, content=body, headers=headers)
        elapsed = time.monotonic() - started
        parsed = json.loads(response.content) if response.content else {}
        return Reply(response.status_code, response.headers, parsed, response.content, elapsed)


def check_contract(reply: Reply, request_id: str) -> None:
    """What Firehose requires of an answer, or it counts the answer as a 500."""
    assert reply.headers["content-type"] == "application/json", reply.headers
    assert "content-encoding" not in reply.headers
    assert int(reply.headers["content-length"]) == len(reply.raw)
    assert len(reply.raw) <= 1 << 20
    body = reply.body
    assert set(body) <= {"requestId", "timestamp", "errorMessage"}, body
    assert body["requestId"] == request_id
    assert isinstance(body["timestamp"], int)
    assert abs(body["timestamp"] - time.time() * 1000) < 60_000  # milliseconds, now
    if reply.status == 200:
        assert "errorMessage" not in body
    else:
        assert isinstance(body["errorMessage"], str) and 0 < len(body["errorMessage"]) <= 8192
