"""The `sinks:` section: one model per sink type."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    field_validator,
    model_validator,
)

from forwarder.config.types import (
    BatchConfig,
    Duration,
    LogTypeName,
    QueueConfig,
    RetryConfig,
    Schema,
    Size,
    Strict,
    TlsConfig,
)


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
    sourcetypes: dict[LogTypeName, str] = Field(default_factory=dict)  # aws:workmail:<kind>
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


class SecurityLakeSinkConfig(SinkBase):
    """Amazon Security Lake: OCSF 1.3.0 Parquet objects, one custom source per class.

    An object holds one batch's events of one class and UTC day: `batch` is how much a
    lake object gathers (the events wait in memory until its PutObject succeeded, so
    `queue` must hold a batch), `target_object_size` where a large one is split.
    """

    type: Literal["security_lake"]
    region: str = Field(min_length=1)  # the lake's Region: partition `region=` and the client
    endpoint_url: str | None = None
    account_id: str  # partition `accountId=`: the account the records pertain to
    bucket: str | None = None  # the lake's bucket; or a `locations` entry per class
    # Per class (auth, web, api, entity, email, or the class uid): the custom source's
    # S3 location as CreateCustomLogSource answered it. Default s3://<bucket>/ext/<name>/<version>/
    locations: dict[str, str] = Field(default_factory=dict)
    source_name: str = "workmail-{class}"  # {class}: auth, web, api, entity, email; {class_uid}
    source_version: str = "1.0"
    role_arn: str | None = None  # a role to assume for PutObject (every class)
    # Per class: the custom source's provider role (AmazonSecurityLake-Provider-<name>-<region>)
    role_arns: dict[str, str] = Field(default_factory=dict)
    external_id: str | None = None  # the external id the provider roles' trust requires
    target_object_size: Size = 128 << 20
    compression: Literal["zstd", "snappy"] = "zstd"
    spool_dir: Path | None = None  # where objects are written before upload; None: temp dir
    batch: BatchConfig = BatchConfig(max_events=100_000, max_bytes=32 << 20, max_wait=300.0)
    queue: QueueConfig = QueueConfig(max_events=250_000, max_bytes=96 << 20)
    timeout: Duration = 300.0  # one send: encode a batch and upload its objects

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str) -> str:
        from forwarder.sinks.security_lake.layout import ACCOUNT

        if not ACCOUNT.match(value):
            raise ValueError(f"{value!r}: a 12-digit AWS account id (or external_<id>)")
        return value

    @field_validator("source_version")
    @classmethod
    def _version(cls, value: str) -> str:
        from forwarder.sinks.security_lake.layout import SOURCE_VERSION

        if not SOURCE_VERSION.match(value):
            raise ValueError(f"{value!r}: 1-32 of A-Z a-z 0-9 - . _ (CreateCustomLogSource)")
        return value

    @field_validator("locations")
    @classmethod
    def _locations(cls, value: dict[str, str]) -> dict[str, str]:
        from forwarder.sinks.security_lake.layout import class_uid, parse_location

        out = {}
        for name, uri in value.items():
            parse_location(uri)
            out[str(class_uid(name))] = uri
        return out

    @field_validator("role_arns")
    @classmethod
    def _roles(cls, value: dict[str, str]) -> dict[str, str]:
        from forwarder.sinks.security_lake.layout import class_uid

        return {str(class_uid(name)): arn for name, arn in value.items()}

    @model_validator(mode="after")
    def _lake(self) -> SecurityLakeSinkConfig:
        from forwarder.sinks.security_lake.layout import CLASSES, SOURCE_NAME, source_name

        if self.schema_ != "ocsf":
            raise ValueError("schema: Security Lake stores OCSF only (schema: ocsf)")
        for uid in CLASSES:
            name = source_name(self.source_name, uid)
            if str(uid) not in self.locations and not SOURCE_NAME.match(name):
                raise ValueError(f"source_name: {name!r} is not 1-20 of A-Z a-z 0-9 _ - : .")
        if self.bucket is None and len(self.locations) < len(CLASSES):
            raise ValueError("bucket: required unless `locations` names every class")
        if (
            self.queue.max_events < self.batch.max_events
            or self.queue.max_bytes < self.batch.max_bytes
        ):
            raise ValueError(
                "queue: must hold at least one batch (queue.max_events >= batch.max_events, "
                "queue.max_bytes >= batch.max_bytes): a lake object waits in memory until stored"
            )
        return self


SinkConfig = Annotated[
    FileSinkConfig
    | SplunkHecSinkConfig
    | ElasticsearchSinkConfig
    | SyslogSinkConfig
    | SecurityLakeSinkConfig,
    Field(discriminator="type"),
]
