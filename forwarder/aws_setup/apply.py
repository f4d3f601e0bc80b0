"""`aws setup`: make AWS match the plan, one object at a time, reading before writing.

Each step reads the object, compares it with the plan and writes only what differs,
so a second run prints "unchanged" for every step and calls no mutating API. With
`dry_run` the reads still happen (they are what makes the plan precise) and no write
does. Every line of the report starts with "# ", so the whole output, report and
config snippet, is one YAML document `check-config` accepts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, TextIO

from forwarder.aws_setup.permissions import call, paginate
from forwarder.aws_setup.plan import (
    AUDIT_LOG_TYPES,
    LOG_DELIVERY_SERVICE,
    QUEUE_RETENTION_SECONDS,
    RESOURCE_POLICY_NAME,
    LogsTarget,
    Plan,
    S3Target,
    config_snippet,
    merge_statement,
)

_NOT_FOUND = ("ResourceNotFoundException",)
_NO_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


class SetupError(Exception):
    """A precondition the operator must fix (a bucket that does not exist)."""


@dataclass(frozen=True)
class Change:
    what: str
    action: str  # create | update | unchanged


@dataclass
class Applier:
    clients: Any  # service name -> boto3 client
    plan: Plan
    dry_run: bool
    out: TextIO
    changes: list[Change] = field(default_factory=list)

    def record(self, what: str, action: str) -> bool:
        """Report a step; True when it is to be written now."""
        self.changes.append(Change(what, action))
        if action == "unchanged":
            verb = "unchanged"
        else:
            verb = f"would {action}" if self.dry_run else f"{action}d"
        print(f"# {what}: {verb}", file=self.out)
        return action != "unchanged" and not self.dry_run

    # -- S3 destination ----------------------------------------------------------------

    def bucket_policy(self) -> None:
        plan, s3 = self.plan, self.clients("s3")
        assert isinstance(plan.target, S3Target)
        bucket = plan.target.bucket
        if call(s3, "head_bucket", Bucket=bucket, missing=("404", "NoSuchBucket", "NotFound"),
                resource=plan.bucket_arn) is None:  # fmt: skip
            raise SetupError(f"bucket {bucket} does not exist: create it first (in {plan.region})")
        found = call(s3, "get_bucket_policy", Bucket=bucket, missing=("NoSuchBucketPolicy",),
                     resource=plan.bucket_arn)  # fmt: skip
        current = json.loads(found["Policy"]) if found else None
        statement = plan.bucket_statement()
        merged = merge_statement(current, statement)
        what = f"s3 bucket policy of {bucket}: {LOG_DELIVERY_SERVICE} may write {plan.key_prefix}*"
        if self.record(what, _action(current, statement, merged)):
            call(s3, "put_bucket_policy", Bucket=bucket, Policy=json.dumps(merged),
                 resource=plan.bucket_arn)  # fmt: skip

    def queue(self) -> str:
        """The queue S3 notifies, with a policy that lets the bucket send to it; its URL."""
        plan, sqs = self.plan, self.clients("sqs")
        name = plan.queue_name
        assert name is not None
        statement = plan.queue_statement()
        found = call(
            sqs, "get_queue_url", QueueName=name, missing=_NO_QUEUE, resource=plan.queue_arn
        )
        policy_step = f"sqs queue policy of {name}: s3.amazonaws.com may send from the bucket"
        if found is None:
            write = self.record(f"sqs queue {name} (14-day retention)", "create")
            self.record(policy_step, "create")  # created with the queue
            if not write:
                return _queue_url_guess(self.clients.endpoint_url, plan)
            attributes = {"Policy": json.dumps(merge_statement(None, statement)),
                          "MessageRetentionPeriod": str(QUEUE_RETENTION_SECONDS)}  # fmt: skip
            created = call(sqs, "create_queue", QueueName=name, Attributes=attributes,
                           resource=plan.queue_arn)  # fmt: skip
            return str(created["QueueUrl"])
        url = str(found["QueueUrl"])
        self.record(f"sqs queue {name}", "unchanged")
        attributes = call(sqs, "get_queue_attributes", QueueUrl=url, AttributeNames=["Policy"],
                          resource=plan.queue_arn).get("Attributes", {})  # fmt: skip
        current = json.loads(attributes["Policy"]) if attributes.get("Policy") else None
        merged = merge_statement(current, statement)
        if self.record(policy_step, _action(current, statement, merged)):
            call(sqs, "set_queue_attributes", QueueUrl=url,
                 Attributes={"Policy": json.dumps(merged)}, resource=plan.queue_arn)  # fmt: skip
        return url

    def bucket_notification(self) -> None:
        plan, s3 = self.plan, self.clients("s3")
        assert isinstance(plan.target, S3Target)
        bucket = plan.target.bucket
        found = call(s3, "get_bucket_notification_configuration", Bucket=bucket,
                     resource=plan.bucket_arn)  # fmt: skip
        config = {key: value for key, value in found.items() if key != "ResponseMetadata"}
        wanted = plan.notification()
        queues = config.get("QueueConfigurations") or []
        mine = [
            q
            for q in queues
            if q.get("Id") == wanted["Id"] or q.get("QueueArn") == wanted["QueueArn"]
        ]
        if any(_same_notification(q, wanted) for q in mine):
            action = "unchanged"
        else:
            action = "update" if mine else "create"
        what = (f"s3 notification of {bucket}: ObjectCreated under {plan.key_prefix} "
                f"-> {plan.queue_name}")  # fmt: skip
        if self.record(what, action):
            config["QueueConfigurations"] = [q for q in queues if q not in mine] + [wanted]
            call(s3, "put_bucket_notification_configuration", Bucket=bucket,
                 NotificationConfiguration=config, resource=plan.bucket_arn)  # fmt: skip

    # -- CloudWatch Logs destination ---------------------------------------------------

    def log_group(self) -> None:
        plan, logs = self.plan, self.clients("logs")
        assert isinstance(plan.target, LogsTarget)
        group = plan.target.log_group
        groups = paginate(logs, "describe_log_groups", "logGroups", logGroupNamePrefix=group)
        exists = any(g.get("logGroupName") == group for g in groups)
        if self.record(f"log group {group}", "unchanged" if exists else "create"):
            call(
                logs, "create_log_group", logGroupName=group, resource=plan.destination_resource_arn
            )

    def log_resource_policy(self) -> None:
        plan, logs = self.plan, self.clients("logs")
        policies = paginate(logs, "describe_resource_policies", "resourcePolicies")
        found = next((p for p in policies if p.get("policyName") == RESOURCE_POLICY_NAME), None)
        current = json.loads(found["policyDocument"]) if found else None
        statement = plan.log_group_statement()
        merged = merge_statement(current, statement)
        what = (f"logs resource policy {RESOURCE_POLICY_NAME}: {LOG_DELIVERY_SERVICE} may write "
                f"to {plan.target}")  # fmt: skip
        if self.record(what, _action(current, statement, merged)):
            call(logs, "put_resource_policy", policyName=RESOURCE_POLICY_NAME,
                 policyDocument=json.dumps(merged))  # fmt: skip

    # -- vended log delivery (LOGS.md 1) -----------------------------------------------

    def destination(self) -> str:
        plan, logs = self.plan, self.clients("logs")
        name, resource = plan.destination_name, plan.destination_resource_arn
        found = call(logs, "get_delivery_destination", name=name, missing=_NOT_FOUND)
        current = found["deliveryDestination"] if found else None
        if current is None:
            action = "create"
        else:
            config = current.get("deliveryDestinationConfiguration") or {}
            same = config.get("destinationResourceArn") == resource
            action = (
                "unchanged" if same and current.get("outputFormat", "json") == "json" else "update"
            )
        if self.record(f"delivery destination {name} -> {resource}", action):
            written = call(logs, "put_delivery_destination", name=name, outputFormat="json",
                           deliveryDestinationConfiguration={"destinationResourceArn": resource},
                           resource=plan.destination_arn)  # fmt: skip
            return str(written["deliveryDestination"]["arn"])
        return str(current["arn"]) if current else plan.destination_arn

    def delivery_source(self, log_type: str) -> None:
        plan, logs = self.plan, self.clients("logs")
        name = plan.source_name(log_type)
        found = call(logs, "get_delivery_source", name=name, missing=_NOT_FOUND)
        current = found["deliverySource"] if found else None
        if current is None:
            action = "create"
        else:
            same = plan.organization_arn in (current.get("resourceArns") or [])
            action = "unchanged" if same and current.get("logType") == log_type else "update"
        if self.record(f"delivery source {name} ({log_type})", action):
            call(logs, "put_delivery_source", name=name, resourceArn=plan.organization_arn,
                 logType=log_type, resource=plan.organization_arn)  # fmt: skip

    def delivery(
        self, log_type: str, destination_arn: str, deliveries: list[dict[str, Any]]
    ) -> None:
        plan, logs = self.plan, self.clients("logs")
        name = plan.source_name(log_type)
        pair = (name, destination_arn)
        exists = any((d.get("deliverySourceName"), d.get("deliveryDestinationArn")) == pair
                     for d in deliveries)  # fmt: skip
        if self.record(
            f"delivery {name} -> {plan.destination_name}", "unchanged" if exists else "create"
        ):
            call(logs, "create_delivery", deliverySourceName=name,
                 deliveryDestinationArn=destination_arn)  # fmt: skip


def apply_plan(
    clients: Any,
    plan: Plan,
    *,
    dry_run: bool,
    out: TextIO,
    sinks: list[dict[str, Any]] | None = None,
) -> list[Change]:
    """Every step, in dependency order; then the config snippet (with `sinks`, if given)."""
    applier = Applier(clients, plan, dry_run, out)
    queue_url: str | None = None
    if isinstance(plan.target, S3Target):
        applier.bucket_policy()
        queue_url = applier.queue()
        applier.bucket_notification()
    else:
        applier.log_group()
        applier.log_resource_policy()
    destination_arn = applier.destination()
    for log_type in AUDIT_LOG_TYPES:
        applier.delivery_source(log_type)
    deliveries = paginate(clients("logs"), "describe_deliveries", "deliveries")
    for log_type in AUDIT_LOG_TYPES:
        applier.delivery(log_type, destination_arn, deliveries)
    changed = [c for c in applier.changes if c.action != "unchanged"]
    if not changed:
        print("# unchanged: everything is already set up", file=out)
    elif dry_run:
        print(f"# dry run: {len(changed)} changes planned, nothing was changed", file=out)
    else:
        print(f"# done: {len(changed)} changed, "
              f"{len(applier.changes) - len(changed)} unchanged", file=out)  # fmt: skip
    print(config_snippet(plan, queue_url, clients.endpoint_url, sinks), file=out, end="")
    return applier.changes


def _action(current: dict[str, Any] | None, statement: dict[str, Any], merged: Any) -> str:
    if merged is None:
        return "unchanged"
    statements = (current or {}).get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    had = any(isinstance(s, dict) and s.get("Sid") == statement["Sid"] for s in statements)
    return "update" if had else "create"


def _same_notification(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    def rules(item: dict[str, Any]) -> list[tuple[str, str]]:
        found = ((item.get("Filter") or {}).get("Key") or {}).get("FilterRules") or []
        return sorted((str(r.get("Name", "")).lower(), str(r.get("Value", ""))) for r in found)

    return (
        current.get("QueueArn") == wanted["QueueArn"]
        and sorted(current.get("Events") or []) == sorted(wanted["Events"])
        and rules(current) == rules(wanted)
    )


def _queue_url_guess(endpoint_url: str | None, plan: Plan) -> str:
    """The URL a queue not created yet (dry run) will have."""
    assert plan.queue_name is not None
    if endpoint_url:
        return f"{endpoint_url.rstrip('/')}/{plan.account}/{plan.queue_name}"
    return f"https://sqs.{plan.region}.amazonaws.com/{plan.account}/{plan.queue_name}"
