"""A real OTLP/HTTP metrics receiver for the tests: POST /v1/metrics, protobuf, gzip."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)


@dataclass
class Export:
    headers: dict[str, str]
    request: ExportMetricsServiceRequest

    def points(self, name: str) -> list[tuple[float, dict[str, str]]]:
        """Every data point of metric `name`: (value, attributes); histograms give their count."""
        out: list[tuple[float, dict[str, str]]] = []
        for resource in self.request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != name:
                        continue
                    kind = metric.WhichOneof("data")
                    for point in getattr(metric, kind).data_points:
                        attrs = {a.key: a.value.string_value for a in point.attributes}
                        if kind == "histogram":
                            value = float(point.count)
                        elif point.WhichOneof("value") == "as_int":
                            value = float(point.as_int)
                        else:
                            value = point.as_double
                        out.append((value, attrs))
        return out

    def names(self) -> set[str]:
        return {
            metric.name
            for resource in self.request.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }

    def resource(self) -> dict[str, str]:
        return {
            a.key: a.value.string_value
            for resource in self.request.resource_metrics
            for a in resource.resource.attributes
        }


@dataclass
class Receiver:
    exports: list[Export] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    async def start(self, port: int) -> None:
        app = web.Application()
        app.router.add_post("/v1/metrics", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-protobuf":
            self.rejected.append(f"content type {request.content_type}")
            return web.Response(status=415)
        body = await request.read()  # aiohttp inflates a Content-Encoding: gzip body
        parsed = ExportMetricsServiceRequest()
        parsed.ParseFromString(body)
        self.exports.append(Export({k.lower(): v for k, v in request.headers.items()}, parsed))
        return web.Response(
            body=ExportMetricsServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    def latest(self, name: str) -> list[tuple[float, dict[str, str]]]:
        for export in reversed(self.exports):
            points = export.points(name)
            if points:
                return points
        return []
