"""Metrics (OpenTelemetry: Prometheus text on /metrics, OTLP push when configured),
logging, and /healthz /readyz."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from aiohttp import web
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from forwarder import __version__

if TYPE_CHECKING:
    from forwarder.config import TelemetryConfig

log = structlog.get_logger(__name__)

_SECRET_KEYS = ("token", "api_key", "password", "access_key", "secret", "authorization")


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Last line of defence: a key that names a secret never reaches the log."""
    for key in event:
        if any(word in key.lower() for word in _SECRET_KEYS):
            event[key] = "**redacted**"
    return event


def configure_logging(fmt: str | None = None, level: str = "info") -> None:
    """JSON lines when not on a terminal (containers, systemd), console on a TTY."""
    if fmt is None:
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer(serializer=lambda o, **_: orjson.dumps(o).decode())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


Gauge = Callable[[], Iterable[tuple[float, dict[str, str]]]]

# The dead-letter reasons (stage "pipeline") each source type can produce: the mapping
# stage's for every source, then what the source itself finds unreadable. A sink's
# permanent rejections are `sink_rejected` with the sink as the stage.
_MAPPING_REASONS = ("invalid_json", "not_an_object", "unknown_log_type", "invalid_record",
                    "mapping_failed")  # fmt: skip
_DECODE_REASONS = ("line_too_long", "document_too_large", "invalid_gzip", "truncated_gzip",
                   "gzip_bomb")  # fmt: skip
SOURCE_DEAD_LETTER_REASONS: dict[str, tuple[str, ...]] = {
    "files": _MAPPING_REASONS + _DECODE_REASONS,
    "s3_sqs": _MAPPING_REASONS + _DECODE_REASONS + (
        "invalid_cloudwatch_payload", "invalid_notification", "s3_object_missing",
        "s3_object_changed", "s3_object_archived", "s3_access_denied",
    ),
    "cloudwatch": (*_MAPPING_REASONS, "empty_message"),
    "firehose_http": (*_MAPPING_REASONS, "invalid_firehose_record",
                      "invalid_cloudwatch_payload", "gzip_bomb"),
    "replay": _MAPPING_REASONS + _DECODE_REASONS + ("raw_truncated",),
}  # fmt: skip


class Metrics:
    """Every instrument the daemon records; one instance per runtime.

    A private Prometheus registry per instance keeps tests that start several
    runtimes in one process from colliding on metric names. With
    `telemetry.otlp_endpoint` set, the same instruments are also pushed over OTLP/HTTP
    every `otlp_interval`.
    """

    def __init__(self, telemetry: TelemetryConfig | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._reader = PrometheusMetricReader(registry=self.registry, scope_info_enabled=False)
        readers: list[MetricReader] = [self._reader]
        self._otlp_timeout = 0.0
        if telemetry is not None and telemetry.otlp_endpoint:
            readers.append(_otlp_reader(telemetry))
            self._otlp_timeout = telemetry.otlp_timeout
        # Gauges read state that the event loop mutates; the OTLP reader collects from
        # its own thread, so its callbacks are run on the loop (see _on_loop).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = threading.get_ident()
        with contextlib.suppress(RuntimeError):  # built outside a loop (tests): read in place
            self._loop = asyncio.get_running_loop()
        self._provider = MeterProvider(
            metric_readers=readers,
            resource=Resource.create(
                {"service.name": "workmail-forwarder", "service.version": __version__}
            ),
        )
        meter = self._provider.get_meter("workmail_forwarder")
        self.records_read = meter.create_counter(
            "wmf_source_records_read", unit="{record}", description="Records read per source"
        )
        self.delivered = meter.create_counter(
            "wmf_sink_events_delivered", unit="{event}", description="Events a sink acknowledged"
        )
        self.retried = meter.create_counter(
            "wmf_sink_events_retried",
            unit="{event}",
            description="Events sent again after a transient failure",
        )
        self.dead_lettered = meter.create_counter(
            "wmf_events_dead_lettered",
            unit="{event}",
            description="Events written to dead-letter, by reason",
        )
        self.given_up = meter.create_counter(
            "wmf_sink_events_errored",
            unit="{event}",
            description="Events left undelivered after retry.max_elapsed; the source redelivers",
        )
        self.batch_size = meter.create_histogram(
            "wmf_sink_batch_events",
            unit="{event}",
            description="Events per request",
            explicit_bucket_boundaries_advisory=[1, 10, 50, 100, 250, 500, 1000, 2500, 5000],
        )
        self.request_latency = meter.create_histogram(
            "wmf_sink_request_seconds",
            unit="s",
            description="Sink request latency",
            explicit_bucket_boundaries_advisory=[
                0.001,
                0.005,
                0.01,
                0.025,
                0.05,
                0.1,
                0.25,
                0.5,
                1,
                2.5,
                5,
                10,
                30,
            ],
        )
        self.checkpoint_commits = meter.create_counter(
            "wmf_checkpoint_commits",
            unit="{commit}",
            description="Checkpoints written to the state store",
        )
        self.checkpoint_failures = meter.create_counter(
            "wmf_checkpoint_commit_failures",
            unit="{commit}",
            description="Checkpoint writes the state store refused",
        )
        self.source_lag = meter.create_histogram(
            "wmf_source_lag_seconds",
            unit="s",
            description="Upstream event time (S3 event, CloudWatch event) to the last sink ack",
            explicit_bucket_boundaries_advisory=[1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
        )
        self._gauges: dict[str, list[Gauge]] = {}
        for name, description in (
            ("wmf_s3_messages", "SQS messages by outcome (cumulative)"),
            ("wmf_s3_objects", "S3 objects by outcome (cumulative)"),
            ("wmf_s3_bytes_read", "Bytes read from S3 objects (cumulative)"),
            ("wmf_sqs_receive_errors", "Failed SQS ReceiveMessage calls (cumulative)"),
            ("wmf_sqs_visibility_extensions", "Visibility heartbeats by outcome (cumulative)"),
            ("wmf_cloudwatch_requests", "CloudWatch Logs API calls by outcome (cumulative)"),
            ("wmf_cloudwatch_throttles", "CloudWatch Logs throttling answers (cumulative)"),
            ("wmf_cloudwatch_request_rate", "FilterLogEvents requests/s the budget allows now"),
            ("wmf_cloudwatch_groups", "Log groups being read"),
            ("wmf_cloudwatch_lag_seconds", "Now minus the newest acknowledged event's time"),
            ("wmf_cloudwatch_ingestion_lag_seconds", "CloudWatch ingestionTime - event time"),
            ("wmf_firehose_requests", "Firehose requests answered, by HTTP status (cumulative)"),
            ("wmf_firehose_requests_in_flight", "Firehose requests not yet acknowledged"),
            ("wmf_sink_queued_events", "Events queued or in flight per sink"),
            ("wmf_sink_queued_bytes", "Bytes queued or in flight per sink"),
            ("wmf_sink_batches_in_flight", "Batches being sent or awaiting confirmation per sink"),
            ("wmf_dead_letter_pending", "Dead-letter entries taken but not yet stored"),
        ):
            self._gauges[name] = []
            # "(cumulative)" values only grow: export them as counters, the rest as gauges.
            create = (
                meter.create_observable_counter
                if description.endswith("(cumulative)")
                else meter.create_observable_gauge
            )
            create(name, callbacks=[self._observer(name)], description=description)

    def start_at_zero(self, sources: Iterable[tuple[str, str]], sinks: Iterable[str]) -> None:
        """Export every counter the daemon can move for these sources and sinks as 0.

        `sources` are (id, type) pairs. Without this a counter appears only on its first
        increment, and `rate()`/`increase()` miss that first step, absence alerts fire
        on a healthy daemon. Histograms stay absent until their first observation.
        """
        reasons: set[str] = set()
        for source_id, source_type in sources:
            attrs = {"source": source_id}
            for counter in (self.records_read, self.checkpoint_commits,
                            self.checkpoint_failures):  # fmt: skip
                counter.add(0, attrs)
            reasons.update(SOURCE_DEAD_LETTER_REASONS.get(source_type, _MAPPING_REASONS))
        for reason in sorted(reasons):
            self.dead_lettered.add(0, {"reason": reason, "stage": "pipeline"})
        for sink_id in sinks:
            attrs = {"sink": sink_id}
            for counter in (self.delivered, self.retried, self.given_up):
                counter.add(0, attrs)
            self.dead_lettered.add(0, {"reason": "sink_rejected", "stage": sink_id})

    def add_gauge(self, name: str, gauge: Gauge) -> None:
        self._gauges[name].append(gauge)

    def _observer(self, name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def collect() -> list[Observation]:
            return [
                Observation(value, attributes)
                for gauge in self._gauges[name]
                for value, attributes in gauge()
            ]

        def observe(_options: CallbackOptions) -> Iterable[Observation]:
            return self._on_loop(collect)

        return observe

    def _on_loop(self, collect: Callable[[], list[Observation]]) -> list[Observation]:
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            return collect()
        done: concurrent.futures.Future[list[Observation]] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(collect())
            except Exception as exc:
                done.set_exception(exc)

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # the loop is closed: nothing mutates the state any more
            return collect()
        try:
            return done.result(timeout=1.0)
        except TimeoutError:  # the loop is stuck; a slightly torn reading beats none
            return collect()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        # The OTLP reader's last collection runs while the loop is blocked right here.
        self._loop = None
        self._provider.shutdown(timeout_millis=(self._otlp_timeout + 2.0) * 1000)


def _otlp_reader(telemetry: TelemetryConfig) -> PeriodicExportingMetricReader:
    # Imported here: the exporter pulls in protobuf and requests, which only an
    # OTLP-enabled daemon needs.
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    exporter = OTLPMetricExporter(
        endpoint=telemetry.otlp_endpoint,
        headers={key: value.get_secret_value() for key, value in telemetry.otlp_headers.items()},
        timeout=telemetry.otlp_timeout,
        compression=Compression.Gzip,
    )
    return PeriodicExportingMetricReader(
        exporter,
        export_interval_millis=telemetry.otlp_interval * 1000,
        export_timeout_millis=telemetry.otlp_timeout * 1000,
    )


@dataclass
class Health:
    """What /healthz and /readyz report; components update it as they go."""

    started_at: float = field(default_factory=time.monotonic)
    loop_heartbeat: float = field(default_factory=time.monotonic)
    sources_started: bool = False
    fatal_sinks: dict[str, str] = field(default_factory=dict)
    state_ping: Callable[[], Any] | None = None

    def live(self, max_lag: float = 5.0) -> tuple[bool, dict[str, Any]]:
        lag = time.monotonic() - self.loop_heartbeat
        ok = lag < max_lag
        return ok, {"status": "ok" if ok else "stalled", "loop_lag_seconds": round(lag, 3)}

    async def ready(self) -> tuple[bool, dict[str, Any]]:
        reasons: list[str] = []
        if not self.sources_started:
            reasons.append("sources not started")
        for sink, why in sorted(self.fatal_sinks.items()):
            reasons.append(f"sink {sink}: {why}")
        if self.state_ping is not None:
            try:
                await asyncio.wait_for(self.state_ping(), timeout=2.0)
            except Exception as exc:
                reasons.append(f"state store unreachable: {exc}")
        ok = not reasons
        return ok, {"status": "ready" if ok else "not ready", "reasons": reasons}


async def heartbeat(health: Health, interval: float = 1.0) -> None:
    """Proves the event loop still turns: /healthz fails when this stops ticking."""
    while True:
        health.loop_heartbeat = time.monotonic()
        await asyncio.sleep(interval)


def _json(ok: bool, body: dict[str, Any]) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=200 if ok else 503, content_type="application/json"
    )


async def serve(listen: str, metrics: Metrics, health: Health) -> None:
    """Serve /metrics, /healthz and /readyz until cancelled."""

    async def metrics_handler(_request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_request: web.Request) -> web.Response:
        return _json(*health.live())

    async def readyz(_request: web.Request) -> web.Response:
        return _json(*(await health.ready()))

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    host, _, port = listen.rpartition(":")
    site = web.TCPSite(runner, host.strip("[]"), int(port))
    try:
        await site.start()
        log.info("telemetry_listening", listen=listen)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
