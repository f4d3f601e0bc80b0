"""The `state:`, `dead_letter:` and `telemetry:` sections."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from forwarder.config.types import AwsEndpoint, Duration, Size, Strict


class StateConfig(AwsEndpoint):
    """Checkpoints and leases: one SQLite file, or one DynamoDB table shared by replicas.

    `region`/`endpoint_url` (from AwsEndpoint) and `table` apply to dynamodb only.
    """

    backend: Literal["sqlite", "memory", "dynamodb"] = "sqlite"
    path: Path = Path(".state/forwarder.db")  # sqlite
    table: str = "workmail-forwarder-state"  # dynamodb

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", value):
            raise ValueError(f"{value!r} is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)")
        return value


class DeadLetterBatchConfig(Strict):
    """When an S3 dead-letter object is written: at the first limit reached."""

    max_events: int = Field(default=5000, ge=1)
    max_bytes: Size = 8 << 20  # uncompressed NDJSON per object
    max_wait: Duration = 5.0  # after the first entry of the object


class DeadLetterRetryConfig(Strict):
    """Backoff between failed PutObjects. There is no give-up: entries are never dropped."""

    initial_backoff: Duration = 0.5
    max_backoff: Duration = 60.0

    @model_validator(mode="after")
    def _ordered(self) -> DeadLetterRetryConfig:
        if self.max_backoff < self.initial_backoff:
            raise ValueError("max_backoff must be >= initial_backoff")
        return self


def _fspath(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


class DeadLetterConfig(AwsEndpoint):
    """Where records that will never be delivered go, with why.

    `path` is a local NDJSON file (default ./out/dead-letter.ndjson; each entry is
    fsynced before its source may commit past it) or `s3://bucket/prefix/`: gzip
    NDJSON objects under `prefix/YYYY/MM/DD/HH/`, and a source commits past a
    rejected record only once S3 acknowledged the object holding its entry. A failed
    PutObject is retried with backoff for ever; meanwhile up to `max_pending_bytes`
    of entries wait in memory, then rejecting waits too (backpressure, no loss).
    `region`, `endpoint_url`, `batch`, `retry`, `timeout` and `max_pending_bytes`
    apply to S3 only.
    """

    path: Annotated[str, BeforeValidator(_fspath)] = "./out/dead-letter.ndjson"
    max_raw_bytes: Size = 1 << 20  # longer originals are truncated (and say so)
    batch: DeadLetterBatchConfig = DeadLetterBatchConfig()
    retry: DeadLetterRetryConfig = DeadLetterRetryConfig()
    timeout: Duration = 30.0  # one PutObject, then it is retried
    max_pending_bytes: Size = 64 << 20  # entries accepted but not yet in S3

    @field_validator("path")
    @classmethod
    def _location(cls, value: str) -> str:
        if value.startswith("s3://"):
            bucket = value[len("s3://") :].partition("/")[0]
            if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
                raise ValueError(f"{value!r}: expected s3://bucket/prefix/, a valid bucket name")
        return value

    @property
    def is_s3(self) -> bool:
        return self.path.startswith("s3://")

    @property
    def s3_location(self) -> tuple[str, str]:
        """(bucket, key prefix); the prefix is empty or ends with '/'."""
        bucket, _, prefix = self.path[len("s3://") :].partition("/")
        prefix = prefix.strip("/")
        return bucket, f"{prefix}/" if prefix else ""

    @property
    def file_path(self) -> Path:
        return Path(self.path)


class TelemetryConfig(Strict):
    listen: str | None = "127.0.0.1:9464"
    # OTLP/HTTP (protobuf) push, alongside /metrics: a base URL such as
    # http://otel-collector:4318 posts to /v1/metrics; a URL with a path is used as is.
    otlp_endpoint: str | None = None
    otlp_interval: Duration = 15.0
    otlp_timeout: Duration = 5.0  # per export, retries included; also bounds the final flush
    otlp_headers: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("otlp_endpoint")
    @classmethod
    def _otlp_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme, sep, rest = value.partition("://")
        if not sep or scheme not in ("http", "https") or not rest or rest.startswith("/"):
            raise ValueError(f"{value!r}: use http://host:port or https://host:port[/path]")
        if rest.partition("/")[2] == "":
            return value.rstrip("/") + "/v1/metrics"
        return value

    @field_validator("otlp_interval", "otlp_timeout")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be greater than zero")
        return value

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{value!r} is not host:port")
        return value
