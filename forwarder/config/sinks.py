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


SinkConfig = Annotated[
    FileSinkConfig | SplunkHecSinkConfig | ElasticsearchSinkConfig | SyslogSinkConfig,
    Field(discriminator="type"),
]
