"""CloudWatch Logs: tail log groups with FilterLogEvents, from checkpoints."""

from forwarder.sources.cloudwatch.source import CloudWatchSource

__all__ = ["CloudWatchSource"]
