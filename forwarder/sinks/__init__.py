"""Sinks: one file per SIEM protocol, all driven by the generic SinkRunner."""

from __future__ import annotations

from forwarder.config import SinkBase
from forwarder.sinks.base import SendResult, Sink
from forwarder.sinks.file import FileSink

__all__ = ["SendResult", "Sink", "build_sink"]


def build_sink(config: SinkBase) -> Sink:
    """The registry: one line per sink type."""
    from forwarder.config import FileSinkConfig

    if isinstance(config, FileSinkConfig):
        return FileSink(config)
    raise ValueError(f"no sink implementation for {type(config).__name__}")
