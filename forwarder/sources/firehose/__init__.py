"""Amazon Data Firehose HTTP endpoint delivery: an endpoint Firehose pushes batches to."""

from forwarder.sources.firehose.source import FirehoseHttpSource

__all__ = ["FirehoseHttpSource"]
