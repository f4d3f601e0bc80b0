"""/metrics, /healthz and /readyz over real HTTP; secrets never reach the log."""

from __future__ import annotations

import asyncio
import io
import time
from contextlib import redirect_stderr

import httpx
import pytest

from forwarder.errors import StateError
from forwarder.telemetry import Health, Metrics, configure_logging, serve
from tests.conftest import free_port

pytestmark = pytest.mark.timeout(20)


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        for _ in range(100):
            try:
                return await client.get(url)
            except httpx.ConnectError:
                await asyncio.sleep(0.02)
    raise AssertionError(f"{url} never answered")


async def test_endpoints() -> None:
    metrics, health = Metrics(), Health()
    port = free_port()
    server = asyncio.create_task(serve(f"127.0.0.1:{port}", metrics, health))
    try:
        metrics.delivered.add(3, {"sink": "a"})
        base = f"http://127.0.0.1:{port}"
        response = await _get(f"{base}/metrics")
        assert response.status_code == 200
        assert 'wmf_sink_events_delivered_total{sink="a"} 3.0' in response.text

        assert (await _get(f"{base}/healthz")).json()["status"] == "ok"

        not_ready = await _get(f"{base}/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["reasons"] == ["sources not started"]

        health.sources_started = True
        assert (await _get(f"{base}/readyz")).status_code == 200

        health.fatal_sinks["splunk"] = "HTTP 403: invalid token"
        body = (await _get(f"{base}/readyz")).json()
        assert body["reasons"] == ["sink splunk: HTTP 403: invalid token"]
        health.fatal_sinks.clear()

        async def broken() -> None:
            raise StateError("database or disk is full")

        health.state_ping = broken
        body = (await _get(f"{base}/readyz")).json()
        assert body["reasons"] == ["state store unreachable: database or disk is full"]

        health.loop_heartbeat = time.monotonic() - 60
        stalled = await _get(f"{base}/healthz")
        assert stalled.status_code == 503 and stalled.json()["status"] == "stalled"
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)


def test_secrets_are_redacted_from_logs() -> None:
    import structlog

    buffer = io.StringIO()
    with redirect_stderr(buffer):
        configure_logging("json")
        structlog.get_logger("t").info("configured", token="s3cr3t", api_key="k3y", sink="a")
    structlog.reset_defaults()
    text = buffer.getvalue()
    assert "s3cr3t" not in text and "k3y" not in text
    assert '"sink":"a"' in text


def test_s3_source_counters_and_lag_are_exported() -> None:
    from forwarder.config import S3SqsSourceConfig
    from forwarder.sources.s3_sqs.source import S3SqsSource

    metrics = Metrics()
    source = S3SqsSource(S3SqsSourceConfig(id="s3", type="s3_sqs", queue_url="http://q"))
    from forwarder.sources.s3_sqs.metrics import observe

    observe(source, metrics)
    source.stats.messages_deleted = 3
    source.stats.objects_missing = 1
    source.stats.bytes_read = 10
    metrics.source_lag.record(12.0, {"source": "s3"})
    text = metrics.render().decode()
    assert 'wmf_s3_messages_total{outcome="deleted",source="s3"} 3.0' in text
    assert 'wmf_s3_objects_total{outcome="missing",source="s3"} 1.0' in text
    assert 'wmf_s3_bytes_read_total{source="s3"} 10.0' in text
    assert 'wmf_source_lag_seconds_count{source="s3"} 1.0' in text
