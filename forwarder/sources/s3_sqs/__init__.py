"""S3 objects announced on an SQS queue: lossless, resumable inside large objects."""

from forwarder.sources.s3_sqs.source import S3SqsSource

__all__ = ["S3SqsSource"]
