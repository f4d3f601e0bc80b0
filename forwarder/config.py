"""Configuration: the YAML of CONTRACT.md as pydantic v2 models.

Loading goes YAML -> `${VAR}` expansion (per scalar, so a value can never break the
YAML around it) -> validation. Every problem is reported with its key path
(`sinks[1].url: ...`), all at once, so `check-config` is one round trip.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from forwarder.errors import ConfigError

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


class SinkBase(Strict):
    id: str = Field(min_length=1)
    schema_: Schema = Field(default="ocsf", alias="schema")
    raw_data: bool = True  # embed the original record (OCSF raw_data / ECS event.original)
    batch: BatchConfig = BatchConfig()
    retry: RetryConfig = RetryConfig()
    tls: TlsConfig = TlsConfig()
    timeout: Duration = 30.0  # one request; then it is retried per `retry`
    max_in_flight: int = Field(default=2, ge=1, le=64)
    queue: QueueConfig = QueueConfig()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def view(self) -> str:
        """The encoded document variant this sink consumes (see pipeline)."""
        if self.schema_ == "raw" or self.raw_data:
            return self.schema_
        return f"{self.schema_}:noraw"


class FileSinkConfig(SinkBase):
    type: Literal["file"]
    path: Path
    fsync: bool = True  # acknowledge only what is on disk


class SplunkHecSinkConfig(SinkBase):
    """Splunk HTTP Event Collector, /services/collector/event."""

    type: Literal["splunk_hec"]
    url: HttpUrl
    token: SecretStr
    index: str | None = None  # None: the token's default index
    host: str | None = None  # None: this machine's hostname
    source: str | None = None  # None: "workmail:<log type>"
    sourcetypes: dict[LogTypeName, str] = {}  # default aws:workmail:<kind>
    indexer_ack: bool = False
    ack_timeout: Duration = 300.0  # then the batch is sent again (Splunk's guidance: ~5 min)
    ack_poll_interval: Duration = 10.0
    gzip_level: int = Field(default=6, ge=0, le=9)  # 0: no compression


class ElasticsearchSinkConfig(SinkBase):
    """Elasticsearch or OpenSearch _bulk into data streams."""

    type: Literal["elasticsearch"]
    flavor: Literal["elasticsearch", "opensearch"] = "elasticsearch"
    url: HttpUrl
    api_key: SecretStr | None = None  # the `encoded` value Elasticsearch returns
    username: str | None = None
    password: SecretStr | None = None
    data_stream_namespace: str = Field(default="default", pattern=r"^[a-z0-9_.]{1,100}$")
    # Target override: a data stream or alias for every event; None: logs-aws.workmail_<kind>-<ns>
    data_stream: str | None = None
    bootstrap: bool = False  # install index/component templates with the ECS mappings
    gzip: bool = True

    @field_validator("api_key", "username", "password", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `${ES_API_KEY:-}` expands to "" when the variable is unset: no credential.
        return None if value == "" else value

    @model_validator(mode="after")
    def _auth(self) -> ElasticsearchSinkConfig:
        if self.api_key is not None and self.username is not None:
            raise ValueError("api_key and username are exclusive: choose one way to authenticate")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        return self


class SyslogSinkConfig(SinkBase):
    """Syslog: RFC 5424 over UDP (RFC 5426), TCP (RFC 6587) or TLS (RFC 5425)."""

    type: Literal["syslog"]
    url: str  # udp://host:port | tcp://host:port | tls://host:port
    format: Literal["rfc5424", "cef"] = "rfc5424"
    app_name: str = Field(default="workmail-forwarder", pattern=r"^[!-~]{1,48}$")
    hostname: str | None = None  # None: this machine's hostname
    facility: int = Field(default=13, ge=0, le=23)  # 13: log audit
    max_message_bytes: Size = 64 << 10  # larger messages are dead-lettered, never cut
    udp_max_bytes: Size = 1472  # one Ethernet MTU without fragmentation (IPv4)

    @field_validator("url")
    @classmethod
    def _syslog_url(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        host, colon, port = rest.rpartition(":")
        if not sep or scheme not in ("udp", "tcp", "tls"):
            raise ValueError(f"{value!r}: use udp://host:port, tcp://host:port or tls://host:port")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r}: host:port expected after {scheme}://")
        return value


SinkConfig = Annotated[
    FileSinkConfig | SplunkHecSinkConfig | ElasticsearchSinkConfig | SyslogSinkConfig,
    Field(discriminator="type"),
]


class SourceBase(Strict):
    id: str = Field(min_length=1)
    log_type: LogTypeName | None = None  # None: detect from each record


class FilesSourceConfig(SourceBase):
    type: Literal["files"]
    path: Path
    patterns: tuple[str, ...] = (
        "*.json", "*.jsonl", "*.ndjson", "*.json.gz", "*.jsonl.gz", "*.ndjson.gz",
    )  # fmt: skip
    poll_interval: Duration = 1.0
    max_line_bytes: Size = 1 << 20  # a longer line is dead-lettered (line_too_long)
    max_inflated_bytes: Size = 1 << 30  # a gzip file inflating past it is dead-lettered
    read_chunk_bytes: Size = 256 << 10
    chunk_events: int = Field(default=1000, ge=1)  # records per ack unit
    # A last line without "\n" is taken once the file has been quiet this long
    # (a writer may still be mid-line before that).
    partial_line_grace: Duration = 2.0
    # With shared state (DynamoDB, `workers` > 1), replicas split the files through
    # leases; a replica that stops renewing loses its files after this long.
    lease_duration: Duration = Field(default=30.0, ge=1.0)


class AwsEndpoint(Strict):
    """Where an AWS client connects; credentials come from the standard chain."""

    region: str | None = None  # None: AWS_REGION / the profile's region
    endpoint_url: str | None = None  # moto, LocalStack, VPC endpoints


class S3SqsSourceConfig(SourceBase, AwsEndpoint):
    """S3 objects announced on an SQS queue (direct, SNS-wrapped or EventBridge)."""

    type: Literal["s3_sqs"]
    queue_url: str = Field(min_length=1)
    workers: int = Field(default=4, ge=1, le=64)  # SQS messages processed at once
    max_messages: int = Field(default=10, ge=1, le=10)  # per ReceiveMessage
    wait_time: Duration = 20.0  # long poll
    visibility_timeout: Duration | None = None  # None: the queue's own setting
    max_receives: int | None = Field(default=10, ge=1)  # None: leave it to the redrive policy
    key_prefix: str | None = None
    key_regex: str | None = None
    read_chunk_bytes: Size = 256 << 10
    max_line_bytes: Size = 1 << 20  # a longer line is dead-lettered (line_too_long)
    max_inflated_bytes: Size = 1 << 30  # an object inflating past it is dead-lettered
    chunk_events: int = Field(default=1000, ge=1)

    @field_validator("key_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("wait_time")
    @classmethod
    def _wait(cls, value: float) -> float:
        if value > 20:
            raise ValueError("SQS long polling waits at most 20s")
        return value


def parse_start(value: str) -> int | None:
    """`start` as epoch ms: None for `now` (fixed when the source starts), 0 for the beginning."""
    text = value.strip()
    if text == "now":
        return None
    if text == "beginning":
        return 0
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("expected now, beginning or an ISO-8601 timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # a timestamp without a zone is read as UTC
    return int(moment.timestamp() * 1000)


class CloudWatchSourceConfig(SourceBase, AwsEndpoint):
    """CloudWatch Logs log groups, tailed with FilterLogEvents from a checkpoint."""

    type: Literal["cloudwatch"]
    log_groups: tuple[str, ...] = ()
    log_group_prefix: str | None = None
    # Per-group log type; else a log type token in the group name; else `log_type`;
    # else detection from each record.
    log_group_types: dict[str, LogTypeName] = {}
    start: str = "now"  # now | beginning | ISO-8601; only for a group without a checkpoint
    mode: Literal["poll", "live_tail"] = "poll"
    poll_interval: Duration = 1.0
    # CloudWatch accepts events late: each group is searched again this far back
    # (every `look_back_interval`) and events already delivered are skipped by eventId.
    look_back: Duration = 300.0
    look_back_interval: Duration = 30.0
    discovery_interval: Duration = 60.0  # how often the prefix is listed again
    # One adaptive budget per account and region for FilterLogEvents (AWS quota: 5/s).
    max_requests_per_second: float = Field(default=5.0, gt=0, le=1000)
    page_limit: int = Field(default=10_000, ge=1, le=10_000)
    filter_pattern: str | None = Field(default=None, max_length=1024)
    # Event ids remembered per group for de-duplication, and at most this many saved
    # in a checkpoint (a DynamoDB item holds 400 KB).
    max_tracked_ids: int = Field(default=500_000, ge=1000)
    max_checkpoint_ids: int = Field(default=5000, ge=10, le=10_000)
    # With shared state (DynamoDB), replicas split the groups through leases; a
    # replica that stops renewing loses its groups after this long.
    lease_duration: Duration = Field(default=30.0, ge=1.0)

    @field_validator("start")
    @classmethod
    def _start(cls, value: str) -> str:
        parse_start(value)
        return value

    @field_validator("log_groups")
    @classmethod
    def _groups(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not name or len(name) > 512:
                raise ValueError(f"{name!r} is not a log group name")
        return value

    @model_validator(mode="after")
    def _some_group(self) -> CloudWatchSourceConfig:
        if not self.log_groups and not self.log_group_prefix:
            raise ValueError("set log_groups, log_group_prefix or both")
        return self


class ServerTlsConfig(Strict):
    """The certificate a listening source presents (PEM files)."""

    cert_file: Path
    key_file: Path


def _listen_address(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not host:port")
    return value


class FirehoseHttpSourceConfig(SourceBase):
    """Amazon Data Firehose HTTP endpoint delivery: Firehose POSTs record batches here.

    A request is answered 200 only once every sink has every event of it (or they are
    dead-lettered); anything else makes Firehose send it again.
    """

    type: Literal["firehose_http"]
    listen: Annotated[str, AfterValidator(_listen_address)] = "0.0.0.0:8443"
    access_key: SecretStr | None = None  # compared with X-Amz-Firehose-Access-Key
    tls: ServerTlsConfig | None = None  # None: plain HTTP (behind a TLS-terminating proxy)
    max_body_bytes: Size = 64 << 20  # Firehose buffers at most 64 MiB; larger: 413
    max_inflated_bytes: Size = 1 << 30  # record data inflated per request (gzip bombs)
    # Firehose waits 3 minutes for an answer; a request whose events are not all
    # acknowledged by then is answered 500 a little earlier, so Firehose retries it.
    request_timeout: Duration = 170.0
    dedupe_window: Duration = 600.0  # a request id answered 200 is answered 200 again
    max_concurrent_requests: int = Field(default=8, ge=1, le=1024)  # decoded at once

    @field_validator("access_key", mode="before")
    @classmethod
    def _empty_key_is_unset(cls, value: Any) -> Any:
        # `${FIREHOSE_ACCESS_KEY:-}` expands to "" when the variable is unset: no key.
        return None if value == "" else value

    @field_validator("access_key")
    @classmethod
    def _key_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) > 4096:
            raise ValueError("Firehose sends at most 4096 bytes of access key")
        return value

    @field_validator("request_timeout")
    @classmethod
    def _under_firehose_deadline(cls, value: float) -> float:
        if not 0 < value <= 180:
            raise ValueError("must be above 0 and at most 180s (Firehose waits 3 minutes)")
        return value


SourceConfig = Annotated[
    FilesSourceConfig | S3SqsSourceConfig | CloudWatchSourceConfig | FirehoseHttpSourceConfig,
    Field(discriminator="type"),
]


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
    otlp_headers: dict[str, SecretStr] = {}

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


class Config(Strict):
    state: StateConfig = StateConfig()
    workers: int = Field(default=1, ge=1, le=64)
    sources: list[SourceConfig] = Field(min_length=1)
    sinks: list[SinkConfig] = Field(min_length=1)
    dead_letter: DeadLetterConfig = DeadLetterConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    shutdown_grace: Duration = 25.0

    @model_validator(mode="after")
    def _unique_ids(self) -> Config:
        _check_unique("sources", [source.id for source in self.sources])
        _check_unique("sinks", [sink.id for sink in self.sinks])
        if self.workers > 1 and self.state.backend in ("sqlite", "memory"):
            raise ValueError(
                "workers: more than one worker needs state.backend: dynamodb "
                "(replicas must share checkpoints)"
            )
        return self


def _check_unique(kind: str, ids: list[str]) -> None:
    seen: dict[str, int] = {}
    for index, item_id in enumerate(ids):
        if item_id in seen:
            raise ValueError(
                f"{kind}[{index}].id: {item_id!r} is already used by {kind}[{seen[item_id]}]"
            )
        seen[item_id] = index


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _expand(node: Any, loc: tuple[int | str, ...], env: dict[str, str], problems: list[str]) -> Any:
    if isinstance(node, dict):
        return {k: _expand(v, (*loc, str(k)), env, problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, (*loc, i), env, problems) for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and (env[name] != "" or default is None):
            return env[name]
        if default is not None:
            return default
        problems.append(f"{_path(loc) or '<root>'}: environment variable {name} is not set")
        return ""

    return _VAR.sub(substitute, node)


def _strip_union_tags(loc: tuple[int | str, ...], data: Any) -> tuple[int | str, ...]:
    """Drop the discriminator tag pydantic inserts (`sinks.1.file.path` -> `sinks[1].path`)."""
    out: list[int | str] = []
    node = data
    skip_next_tag = False
    for part in loc:
        if skip_next_tag and isinstance(part, str) and isinstance(node, dict):
            skip_next_tag = False
            if node.get("type") == part:
                continue
        skip_next_tag = False
        out.append(part)
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            skip_next_tag = isinstance(node, dict) and "type" in node
        else:
            node = None
    return tuple(out)


def _format_error(error: Any, data: Any) -> str:
    loc = _strip_union_tags(tuple(error["loc"]), data)
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "union_tag_invalid":
        message = f"unknown type {error['input'].get('type')!r}; {message}"
    path = _path(loc)
    if ": " in message and not path and message.split(":")[0].replace("[", "").strip():
        return message  # a model-level check that names its own key path
    return f"{path or '<root>'}: {message}"


def parse_config(data: Any, env: dict[str, str] | None = None) -> Config:
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(["<root>: the configuration must be a mapping of keys"])
    expanded = _expand(data, (), dict(os.environ) if env is None else env, problems)
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        problems.extend(_format_error(err, expanded) for err in exc.errors())
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"<file>: cannot read {path}: {exc.strerror or exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"<file>: {path} is not valid YAML{where}: {exc}"]) from None
    return parse_config(data, env)


def secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
