"""The `sources:` section: one model per source type."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from forwarder.config.types import AwsEndpoint, Duration, LogTypeName, Size, Strict


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


class AwsSourceBase(SourceBase, AwsEndpoint):
    """A source reading from AWS: where its clients connect and how long they wait.

    Each request is given `connect_timeout` to open its connection and `read_timeout`
    between bytes of the answer; past either it fails (and is retried like any network
    error) instead of hanging on a peer that stopped answering.
    """

    connect_timeout: Duration = Field(default=10.0, gt=0, le=300)
    # SQS long polls: the SQS client waits at least `wait_time` + 10 s whatever this says.
    read_timeout: Duration = Field(default=60.0, gt=0, le=900)


class S3SqsSourceConfig(AwsSourceBase):
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


class CloudWatchSourceConfig(AwsSourceBase):
    """CloudWatch Logs log groups, tailed with FilterLogEvents from a checkpoint."""

    type: Literal["cloudwatch"]
    log_groups: tuple[str, ...] = ()
    log_group_prefix: str | None = None
    # Per-group log type; else a log type token in the group name; else `log_type`;
    # else detection from each record.
    log_group_types: dict[str, LogTypeName] = Field(default_factory=dict)
    start: str = "now"  # now | beginning | ISO-8601; only for a group without a checkpoint
    mode: Literal["poll", "live_tail"] = "poll"
    poll_interval: Duration = 1.0
    # CloudWatch accepts events late: each group is searched again this far back
    # (every `look_back_interval`) and events already delivered are skipped by eventId.
    look_back: Duration = Field(default=300.0, le=7 * 86400)  # a checkpoint packs 32-bit ms
    look_back_interval: Duration = 30.0
    discovery_interval: Duration = 60.0  # how often the prefix is listed again
    # One adaptive budget per account and region for FilterLogEvents (AWS quota: 5/s).
    max_requests_per_second: float = Field(default=5.0, gt=0, le=1000)
    page_limit: int = Field(default=10_000, ge=1, le=10_000)
    filter_pattern: str | None = Field(default=None, max_length=1024)
    # Event ids remembered per group for de-duplication, and at most this many saved
    # in a checkpoint (as 12 bytes each: a DynamoDB item holds 400 KB).
    max_tracked_ids: int = Field(default=200_000, ge=1000)  # about 245 bytes each
    max_checkpoint_ids: int = Field(default=15_000, ge=10, le=20_000)
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
