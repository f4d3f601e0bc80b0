"""Sources: each reads one kind of upstream and commits only what every sink has."""

from __future__ import annotations

from forwarder.config import SourceBase
from forwarder.sources.base import Source, SourceContext

__all__ = ["Source", "SourceContext", "build_source"]


def build_source(config: SourceBase) -> Source:
    """The registry: one line per source type."""
    from forwarder.config import (
        CloudWatchSourceConfig,
        FilesSourceConfig,
        FirehoseHttpSourceConfig,
        S3SqsSourceConfig,
    )
    from forwarder.sources.cloudwatch import CloudWatchSource
    from forwarder.sources.files import FilesSource
    from forwarder.sources.firehose import FirehoseHttpSource
    from forwarder.sources.s3_sqs import S3SqsSource

    if isinstance(config, FilesSourceConfig):
        return FilesSource(config)
    if isinstance(config, S3SqsSourceConfig):
        return S3SqsSource(config)
    if isinstance(config, CloudWatchSourceConfig):
        return CloudWatchSource(config)
    if isinstance(config, FirehoseHttpSourceConfig):
        return FirehoseHttpSource(config)
    raise ValueError(f"no source implementation for {type(config).__name__}")
