"""Sinks: one file per SIEM protocol, all driven by the generic SinkRunner."""

from __future__ import annotations

from forwarder.config import SinkBase
from forwarder.sinks.base import SendResult, Sink
from forwarder.sinks.file import FileSink

__all__ = ["SendResult", "Sink", "build_sink"]


def build_sink(config: SinkBase) -> Sink:
    """The registry: one line per sink type."""
    from forwarder.config import (
        ElasticsearchSinkConfig,
        FileSinkConfig,
        SecurityLakeSinkConfig,
        SplunkHecSinkConfig,
        SyslogSinkConfig,
    )
    from forwarder.sinks.elasticsearch import ElasticsearchSink
    from forwarder.sinks.splunk_hec import SplunkHecSink
    from forwarder.sinks.syslog import SyslogSink

    if isinstance(config, FileSinkConfig):
        return FileSink(config)
    if isinstance(config, SplunkHecSinkConfig):
        return SplunkHecSink(config)
    if isinstance(config, ElasticsearchSinkConfig):
        return ElasticsearchSink(config)
    if isinstance(config, SyslogSinkConfig):
        return SyslogSink(config)
    if isinstance(config, SecurityLakeSinkConfig):
        from forwarder.sinks.security_lake.sink import SecurityLakeSink

        return SecurityLakeSink(config)
    raise ValueError(f"no sink implementation for {type(config).__name__}")
