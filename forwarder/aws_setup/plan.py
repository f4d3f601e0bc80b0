"""What `aws setup` wants to exist: names, ARNs, policy statements, the config snippet.

Pure: nothing here talks to AWS. Names are derived from the organization id, so a
second run finds what the first one created (LOGS.md 1 and 3: a delivery source per
log type with the organization ARN, one delivery destination, one delivery each).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import yaml

AUDIT_LOG_TYPES = (
    "ACCESS_CONTROL_LOGS",
    "AUTHENTICATION_LOGS",
    "WORKMAIL_AVAILABILITY_PROVIDER_LOGS",
    "WORKMAIL_MAILBOX_ACCESS_LOGS",
    "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS",
)
# Delivery source names hold at most 60 characters of [\w-]: "wm-" + org id + kind fits.
_KINDS = {
    "ACCESS_CONTROL_LOGS": "access-control",
    "AUTHENTICATION_LOGS": "authentication",
    "WORKMAIL_AVAILABILITY_PROVIDER_LOGS": "availability-provider",
    "WORKMAIL_MAILBOX_ACCESS_LOGS": "mailbox-access",
    "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS": "personal-access-token",
}
ORGANIZATION_ID = re.compile(r"^m-[0-9a-f]{32}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_LOG_GROUP = re.compile(r"^[\w#./-]{1,512}$")
_QUEUE = re.compile(r"^[\w-]{1,80}$")
LOG_DELIVERY_SERVICE = "delivery.logs.amazonaws.com"
RESOURCE_POLICY_NAME = "workmail-forwarder-log-delivery"
QUEUE_RETENTION_SECONDS = 1_209_600  # 14 days: outlasts a long forwarder outage


class UsageError(Exception):
    """Bad arguments: exit code 2."""


@dataclass(frozen=True)
class S3Target:
    bucket: str
    prefix: str  # without leading or trailing "/"; "" for none

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


@dataclass(frozen=True)
class LogsTarget:
    log_group: str

    def __str__(self) -> str:
        return f"cloudwatch:{self.log_group}"


Target = S3Target | LogsTarget


def parse_target(text: str) -> Target:
    if text.startswith("s3://"):
        bucket, _, prefix = text[len("s3://") :].partition("/")
        if not _BUCKET.match(bucket):
            raise UsageError(f"--to: {bucket!r} is not an S3 bucket name")
        return S3Target(bucket, prefix.strip("/"))
    if text.startswith("cloudwatch:"):
        group = text[len("cloudwatch:") :]
        if not _LOG_GROUP.match(group):
            raise UsageError(f"--to: {group!r} is not a CloudWatch Logs log group name")
        return LogsTarget(group)
    raise UsageError(f"--to: {text!r}: use s3://BUCKET/PREFIX or cloudwatch:LOG_GROUP")


def check_organization_id(value: str) -> str:
    if not ORGANIZATION_ID.match(value):
        raise UsageError(f"--organization-id: {value!r} is not m- followed by 32 hex digits")
    return value


@dataclass(frozen=True)
class Plan:
    organization_id: str
    account: str
    region: str
    partition: str
    target: Target
    queue_name: str | None  # S3 only

    @property
    def organization_arn(self) -> str:
        return organization_arn(self.partition, self.region, self.account, self.organization_id)

    def source_name(self, log_type: str) -> str:
        return f"wm-{self.organization_id}-{_KINDS[log_type]}"

    @property
    def destination_name(self) -> str:
        kind = "s3" if isinstance(self.target, S3Target) else "cwl"
        return f"wm-{self.organization_id}-{kind}"

    @property
    def destination_arn(self) -> str:
        return self._arn("logs", f"delivery-destination:{self.destination_name}")

    @property
    def destination_resource_arn(self) -> str:
        target = self.target
        if isinstance(target, S3Target):
            path = f"{target.bucket}/{target.prefix}" if target.prefix else target.bucket
            return f"arn:{self.partition}:s3:::{path}"
        return self._arn("logs", f"log-group:{target.log_group}")

    @property
    def key_prefix(self) -> str:
        """Where the objects land: the destination prefix replaces AWSLogs/<account>/."""
        assert isinstance(self.target, S3Target)
        return f"{self.target.prefix}/" if self.target.prefix else f"AWSLogs/{self.account}/"

    @property
    def bucket_arn(self) -> str:
        assert isinstance(self.target, S3Target)
        return f"arn:{self.partition}:s3:::{self.target.bucket}"

    @property
    def queue_arn(self) -> str:
        assert self.queue_name is not None
        return self._arn("sqs", self.queue_name)

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

    # -- policy statements (one Sid each, so a second run finds and compares its own) --

    def bucket_statement(self) -> dict[str, Any]:
        resource = f"{self.bucket_arn}/{self.key_prefix}*"
        return {
            "Sid": _sid("WorkMailLogDelivery", resource),
            "Effect": "Allow",
            "Principal": {"Service": LOG_DELIVERY_SERVICE},
            "Action": "s3:PutObject",
            "Resource": resource,
            "Condition": {
                "StringEquals": {
                    "s3:x-amz-acl": "bucket-owner-full-control",
                    "aws:SourceAccount": self.account,
                },
                "ArnLike": {"aws:SourceArn": self._arn("logs", "delivery-source:*")},
            },
        }

    def queue_statement(self) -> dict[str, Any]:
        return {
            "Sid": _sid("S3Notifications", self.bucket_arn),
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": self.queue_arn,
            "Condition": {
                "ArnLike": {"aws:SourceArn": self.bucket_arn},
                "StringEquals": {"aws:SourceAccount": self.account},
            },
        }

    def log_group_statement(self) -> dict[str, Any]:
        resource = f"{self.destination_resource_arn}:log-stream:*"
        return {
            "Sid": _sid("WorkMailLogDelivery", resource),
            "Effect": "Allow",
            "Principal": {"Service": LOG_DELIVERY_SERVICE},
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": resource,
            "Condition": {
                "StringEquals": {"aws:SourceAccount": self.account},
                "ArnLike": {"aws:SourceArn": self._arn("logs", "*")},
            },
        }

    def notification(self) -> dict[str, Any]:
        assert self.queue_name is not None
        return {
            "Id": f"workmail-forwarder-{self.queue_name}",
            "QueueArn": self.queue_arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": self.key_prefix}]}},
        }


def organization_arn(partition: str, region: str, account: str, organization_id: str) -> str:
    return f"arn:{partition}:workmail:{region}:{account}:organization/{organization_id}"


def default_queue_name(organization_id: str) -> str:
    return f"workmail-audit-{organization_id}"


def check_queue_name(name: str) -> str:
    if not _QUEUE.match(name):
        raise UsageError(f"--queue: {name!r} is not an SQS queue name (1-80 of A-Z a-z 0-9 - _)")
    return name


def _sid(prefix: str, resource: str) -> str:
    return prefix + hashlib.sha256(resource.encode()).hexdigest()[:10]


def normalize(value: Any) -> Any:
    """Policy JSON compared as AWS may return it: one-element lists as their element."""
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in value.items()}
    if isinstance(value, list):
        items = [normalize(item) for item in value]
        return items[0] if len(items) == 1 else items
    return value


def merge_statement(
    policy: dict[str, Any] | None, statement: dict[str, Any]
) -> dict[str, Any] | None:
    """`policy` with `statement` in it (replacing the one with its Sid); None if unchanged."""
    document = dict(policy or {"Version": "2012-10-17"})
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    others = [
        s for s in statements if not (isinstance(s, dict) and s.get("Sid") == statement["Sid"])
    ]
    if len(others) < len(statements):
        mine = next(s for s in statements if s not in others)
        if normalize(mine) == normalize(statement):
            return None
    document["Statement"] = [*others, statement]
    return document


def config_snippet(
    plan: Plan,
    queue_url: str | None,
    endpoint_url: str | None,
    sinks: list[dict[str, Any]] | None = None,
) -> str:
    """A configuration `check-config` accepts: the source reading these logs, and `sinks`
    (by default a file sink)."""
    source: dict[str, Any] = {"id": "workmail-audit"}
    if isinstance(plan.target, S3Target):
        source.update(type="s3_sqs", queue_url=queue_url, region=plan.region)
        if endpoint_url:
            source["endpoint_url"] = endpoint_url
        source["key_prefix"] = plan.key_prefix
    else:
        source.update(type="cloudwatch", region=plan.region)
        if endpoint_url:
            source["endpoint_url"] = endpoint_url
        source.update(log_groups=[plan.target.log_group], start="beginning")
    archive = {"id": "archive", "type": "file", "path": "./out/workmail.ocsf.ndjson",
               "schema": "ocsf"}  # fmt: skip
    document = {"sources": [source], "sinks": sinks or [archive]}
    header = (
        "# workmail-forwarder configuration for these deliveries; replace the file sink\n"
        "# with your SIEM (config/example.yaml lists every sink).\n"
    )
    if sinks:
        header = "# workmail-forwarder configuration for these deliveries.\n"
    return header + yaml.safe_dump(document, sort_keys=False)
