"""`aws status`: the organization's deliveries per log type, and whether data flows.

Delivery sources are found by the organization ARN, not by name, so deliveries set
up in the console are reported too. For an S3 destination the queue(s) the bucket
notifies are read (messages waiting, in flight); for a log group, the newest event.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

from forwarder.aws_setup.permissions import call, paginate
from forwarder.aws_setup.plan import AUDIT_LOG_TYPES

_NO_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


def report_status(clients: Any, organization_arn: str, out: TextIO) -> int:
    """Print the report; 0 when every audit log type has a delivery, else 1."""
    logs = clients("logs")
    sources = [
        s for s in paginate(logs, "describe_delivery_sources", "deliverySources")
        if organization_arn in (s.get("resourceArns") or [])
    ]  # fmt: skip
    deliveries = paginate(logs, "describe_deliveries", "deliveries")
    destinations = {
        d["arn"]: d
        for d in paginate(logs, "describe_delivery_destinations", "deliveryDestinations")
    }
    print(f"organization {organization_arn}", file=out)
    missing = 0
    resources: dict[str, str] = {}  # destination resource ARN -> type
    for log_type in AUDIT_LOG_TYPES:
        names = {s["name"] for s in sources if s.get("logType") == log_type}
        found = [d for d in deliveries if d.get("deliverySourceName") in names]
        if not names or not found:
            missing += 1
            why = (
                "no delivery source"
                if not names
                else f"source {', '.join(sorted(names))}, no delivery"
            )
            print(f"  {log_type}: not delivered ({why})", file=out)
            continue
        for delivery in found:
            destination = destinations.get(delivery.get("deliveryDestinationArn", ""), {})
            kind = str(
                destination.get("deliveryDestinationType")
                or delivery.get("deliveryDestinationType", "?")
            )
            config = destination.get("deliveryDestinationConfiguration") or {}
            resource = str(
                config.get("destinationResourceArn") or delivery.get("deliveryDestinationArn")
            )
            resources[resource] = kind
            print(f"  {log_type}: {delivery['deliverySourceName']} -> {kind} {resource}", file=out)
    for resource, kind in resources.items():
        if kind == "S3":
            _bucket_status(clients, resource, out)
        elif kind == "CWL":
            _log_group_status(clients, resource, out)
    return 0 if missing == 0 else 1


def _bucket_status(clients: Any, resource: str, out: TextIO) -> None:
    bucket = resource.split(":::", 1)[1].split("/", 1)[0]
    found = call(clients("s3"), "get_bucket_notification_configuration", Bucket=bucket,
                 resource=f"arn:aws:s3:::{bucket}")  # fmt: skip
    queues = found.get("QueueConfigurations") or []
    if not queues:
        print(f"  bucket {bucket}: no SQS notification (the s3_sqs source reads one)", file=out)
    sqs = clients("sqs")
    for item in queues:
        arn = str(item.get("QueueArn", ""))
        name = arn.rsplit(":", 1)[-1]
        url = call(sqs, "get_queue_url", QueueName=name, QueueOwnerAWSAccountId=arn.split(":")[4],
                   missing=_NO_QUEUE, resource=arn)  # fmt: skip
        if url is None:
            print(f"  queue {name}: does not exist (bucket {bucket} notifies it)", file=out)
            continue
        attributes = call(sqs, "get_queue_attributes", QueueUrl=url["QueueUrl"], resource=arn,
                          AttributeNames=["ApproximateNumberOfMessages",
                                          "ApproximateNumberOfMessagesNotVisible"],
                          ).get("Attributes", {})  # fmt: skip
        waiting = attributes.get("ApproximateNumberOfMessages", "?")
        held = attributes.get("ApproximateNumberOfMessagesNotVisible", "?")
        print(f"  queue {name}: {waiting} messages waiting, {held} in flight "
              f"(bucket {bucket} notifies it)", file=out)  # fmt: skip


def _log_group_status(clients: Any, resource: str, out: TextIO) -> None:
    group = resource.split(":log-group:", 1)[1].removesuffix(":*")
    found = call(clients("logs"), "describe_log_streams", logGroupName=group,
                 orderBy="LastEventTime", descending=True, limit=1,
                 missing=("ResourceNotFoundException",), resource=resource)  # fmt: skip
    if found is None:
        print(f"  log group {group}: does not exist", file=out)
        return
    streams = found.get("logStreams") or []
    last = streams[0].get("lastEventTimestamp") if streams else None
    if not isinstance(last, int):
        print(f"  log group {group}: no events yet", file=out)
        return
    ago = max(0.0, time.time() - last / 1000.0)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last / 1000.0))
    print(f"  log group {group}: last event {stamp} ({_age(ago)} ago)", file=out)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"
