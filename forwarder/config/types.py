"""Building blocks of the configuration: durations, sizes, strict models, shared parts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_UNIT_BYTES = {
    None: 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2,
    "gb": 1000**3, "gib": 1024**3,
}  # fmt: skip
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def parse_duration(value: Any) -> float:
    """`1s`, `250ms`, `5m`, `1h`, `2d` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 1s or 250ms")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration (use e.g. 1s, 250ms, 5m)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def parse_size(value: Any) -> int:
    """`1048576`, `512KiB`, `1MiB`, `10MB`."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 1MiB")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a size (use e.g. 1048576, 512KiB, 10MiB)")
        unit = match.group(2).lower() if match.group(2) else None
        size = int(match.group(1)) * _UNIT_BYTES[unit]
    if size <= 0:
        raise ValueError("a size must be positive")
    return size


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Schema = Literal["ocsf", "ecs", "raw"]
LogTypeName = Literal[
    "ACCESS_CONTROL_LOGS",
    "AUTHENTICATION_LOGS",
    "WORKMAIL_AVAILABILITY_PROVIDER_LOGS",
    "WORKMAIL_MAILBOX_ACCESS_LOGS",
    "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS",
    "EMAIL_EVENT_LOGS",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatchConfig(Strict):
    max_events: int = Field(default=500, ge=1)
    max_bytes: Size = 1 << 20
    max_wait: Duration = 1.0


class RetryConfig(Strict):
    initial_backoff: Duration = 0.2
    max_backoff: Duration = 30.0
    max_elapsed: Duration | None = None  # None: retry forever; the source keeps the data

    @model_validator(mode="after")
    def _ordered(self) -> RetryConfig:
        if self.max_backoff < self.initial_backoff:
            raise ValueError("max_backoff must be >= initial_backoff")
        return self


class TlsConfig(Strict):
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    verify: bool = True


class QueueConfig(Strict):
    """Per-sink bound on events queued or in flight: the backpressure threshold."""

    max_events: int = Field(default=20_000, ge=1)
    max_bytes: Size = 64 << 20


class AwsEndpoint(Strict):
    """Where an AWS client connects; credentials come from the standard chain."""

    region: str | None = None  # None: AWS_REGION / the profile's region
    endpoint_url: str | None = None  # moto, LocalStack, VPC endpoints
