"""OTLP push: `telemetry.otlp_endpoint` makes the daemon POST its metrics to /v1/metrics.

The receiver is a real HTTP listener on loopback (tests/deploy/otlp_receiver.py).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

from forwarder.config import TelemetryConfig, parse_config
from forwarder.errors import ConfigError
from forwarder.telemetry import Metrics
from tests.conftest import free_port, sample_files, sample_records
from tests.deploy.otlp_receiver import Receiver
from tests.e2e.helpers import Daemon, write_config

pytestmark = pytest.mark.timeout(60)


async def _until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_endpoint_forms() -> None:
    assert TelemetryConfig().otlp_endpoint is None
    assert TelemetryConfig(otlp_endpoint="").otlp_endpoint is None
    base = TelemetryConfig(otlp_endpoint="http://collector:4318")
    assert base.otlp_endpoint == "http://collector:4318/v1/metrics"
    assert (
        TelemetryConfig(otlp_endpoint="https://c:4318/").otlp_endpoint
        == "https://c:4318/v1/metrics"
    )
    custom = TelemetryConfig(otlp_endpoint="https://otlp.example.com/otlp/v1/metrics")
    assert custom.otlp_endpoint == "https://otlp.example.com/otlp/v1/metrics"
    assert base.otlp_interval == 15.0


@pytest.mark.parametrize(
    ("telemetry", "problem"),
    [
        ({"otlp_endpoint": "collector:4318"}, "telemetry.otlp_endpoint: 'collector:4318'"),
        ({"otlp_endpoint": "grpc://c:4317"}, "telemetry.otlp_endpoint: 'grpc://c:4317'"),
        (
            {"otlp_endpoint": "http://c:4318", "otlp_interval": "0s"},
            "telemetry.otlp_interval: must be",
        ),
        (
            {"otlp_endpoint": "http://c:4318", "otlp_timeot": "1s"},
            "telemetry.otlp_timeot: unknown key",
        ),
    ],
)
def test_bad_otlp_settings_name_their_key(telemetry: dict[str, object], problem: str) -> None:
    data = {
        "sources": [{"id": "in", "type": "files", "path": "in"}],
        "sinks": [{"id": "out", "type": "file", "path": "out.ndjson"}],
        "telemetry": telemetry,
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(data, env={})
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


async def test_metrics_push_over_otlp_and_gauges_are_read_on_the_loop() -> None:
    receiver = Receiver()
    port = free_port()
    await receiver.start(port)
    gauge_threads: set[int] = set()

    def queued() -> list[tuple[float, dict[str, str]]]:
        gauge_threads.add(threading.get_ident())
        return [(7.0, {"sink": "a"})]

    telemetry = TelemetryConfig(
        otlp_endpoint=f"http://127.0.0.1:{port}",
        otlp_interval="100ms",  # type: ignore[arg-type]
        otlp_headers={"authorization": "Bearer t0k3n"},  # type: ignore[dict-item]
    )
    metrics = Metrics(telemetry)
    try:
        metrics.add_gauge("wmf_sink_queued_events", queued)
        metrics.delivered.add(3, {"sink": "a"})
        await _until(lambda: receiver.latest("wmf_sink_events_delivered"), 10, "an OTLP export")
        export = receiver.exports[-1]
        assert export.headers["content-encoding"] == "gzip"
        assert export.headers["authorization"] == "Bearer t0k3n"
        assert export.resource()["service.name"] == "workmail-forwarder"
        assert receiver.latest("wmf_sink_events_delivered") == [(3.0, {"sink": "a"})]
        assert receiver.latest("wmf_sink_queued_events") == [(7.0, {"sink": "a"})]
        # The OTLP reader runs in its own thread; the gauge must still be read on the loop.
        assert gauge_threads == {threading.get_ident()}
        metrics.delivered.add(2, {"sink": "a"})
    finally:
        # The final collection exports what was added since; from a thread, as the
        # receiver needs this loop to answer.
        await asyncio.to_thread(metrics.shutdown)
        await receiver.stop()
    assert receiver.latest("wmf_sink_events_delivered") == [(5.0, {"sink": "a"})]
    assert not receiver.rejected


async def test_shutdown_is_bounded_when_the_collector_is_down() -> None:
    telemetry = TelemetryConfig(
        otlp_endpoint=f"http://127.0.0.1:{free_port()}",
        otlp_timeout="1s",  # type: ignore[arg-type]
    )
    metrics = Metrics(telemetry)
    metrics.delivered.add(1, {"sink": "a"})
    started = time.monotonic()
    metrics.shutdown()
    assert time.monotonic() - started < 4.0


@pytest.mark.e2e
async def test_the_daemon_posts_to_the_configured_endpoint(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for path in sample_files():
        shutil.copy(path, inbox / path.name)
    records = len(list(sample_records()))
    config = write_config(tmp_path / "config.yaml", tmp_path, port=None)
    data = yaml.safe_load(config.read_text())
    otlp_port = free_port()
    data["telemetry"] = {"listen": None, "otlp_endpoint": f"http://127.0.0.1:{otlp_port}",
                         "otlp_interval": "300ms"}  # fmt: skip
    config.write_text(yaml.safe_dump(data))

    receiver = Receiver()
    await receiver.start(otlp_port)
    daemon = Daemon(config, cwd=tmp_path)
    try:

        def delivered() -> dict[str, float]:
            return {a["sink"]: v for v, a in receiver.latest("wmf_sink_events_delivered")}

        await _until(
            lambda: delivered() == {"ocsf": records, "ecs": records}, 30, "delivery counts"
        )
        assert {"wmf_source_records_read", "wmf_sink_request_seconds", "wmf_sink_queued_events",
                "wmf_checkpoint_commits"} <= receiver.exports[-1].names()  # fmt: skip
        read = receiver.latest("wmf_source_records_read")
        assert read == [(float(records), {"source": "inbox"})]
        daemon.signal(signal.SIGTERM)
        code = await asyncio.to_thread(daemon.wait, 20)
        assert code == 0, daemon.output()
    finally:
        daemon.stop()
        await receiver.stop()
    assert not receiver.rejected
