"""The pure parts of `aws setup`: targets, names, policy merging, IAM action mapping."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from forwarder.aws_setup.permissions import AwsCallError, iam_actions
from forwarder.aws_setup.plan import (
    AUDIT_LOG_TYPES,
    LogsTarget,
    Plan,
    S3Target,
    UsageError,
    check_organization_id,
    merge_statement,
    parse_target,
)

ORG = "m-0123456789abcdef0123456789abcdef"


def test_parse_target() -> None:
    assert parse_target("s3://my-bucket/a/b/") == S3Target("my-bucket", "a/b")
    assert parse_target("s3://my-bucket") == S3Target("my-bucket", "")
    assert parse_target("cloudwatch:/aws/vendedlogs/wm") == LogsTarget("/aws/vendedlogs/wm")
    for bad in ("s3://A_B", "cloudwatch:", "cloudwatch:bad name", "logs:/x", "my-bucket"):
        with pytest.raises(UsageError):
            parse_target(bad)
    check_organization_id(ORG)
    with pytest.raises(UsageError):
        check_organization_id("m-0123")


def test_names_fit_the_api_limits_and_arns() -> None:
    plan = Plan(ORG, "111122223333", "eu-west-1", "aws", S3Target("b-1", ""), "q")
    for log_type in AUDIT_LOG_TYPES:
        assert len(plan.source_name(log_type)) <= 60  # PutDeliverySource: 1-60 of [\w-]
    assert len({plan.source_name(t) for t in AUDIT_LOG_TYPES}) == 5
    assert plan.organization_arn == f"arn:aws:workmail:eu-west-1:111122223333:organization/{ORG}"
    assert plan.destination_resource_arn == "arn:aws:s3:::b-1"
    assert plan.key_prefix == "AWSLogs/111122223333/"
    assert plan.bucket_statement()["Resource"] == "arn:aws:s3:::b-1/AWSLogs/111122223333/*"
    logs = Plan(ORG, "111122223333", "eu-west-1", "aws", LogsTarget("/wm"), None)
    assert logs.destination_resource_arn == "arn:aws:logs:eu-west-1:111122223333:log-group:/wm"
    assert logs.destination_name.endswith("-cwl")


def test_merge_statement_keeps_other_statements_and_detects_no_change() -> None:
    plan = Plan(ORG, "111122223333", "us-east-1", "aws", S3Target("b-1", "p"), "q")
    mine = plan.bucket_statement()
    other = {"Sid": "Theirs", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}
    merged = merge_statement({"Version": "2012-10-17", "Statement": [other]}, mine)
    assert merged is not None and merged["Statement"] == [other, mine]
    assert merge_statement(merged, mine) is None
    # AWS may hand one-element lists back as scalars (and the other way round).
    listed = {**mine, "Action": ["s3:PutObject"]}
    assert merge_statement({"Statement": [listed]}, mine) is None
    changed = {**mine, "Resource": "arn:aws:s3:::b-1/elsewhere/*"}
    assert merge_statement({"Statement": changed}, mine) == {"Statement": [mine]}


@pytest.mark.parametrize(
    ("service", "operation", "actions"),
    [
        (
            "logs",
            "PutDeliverySource",
            ["logs:PutDeliverySource", "workmail:AllowVendedLogDeliveryForResource"],
        ),
        ("logs", "PutDeliveryDestination", ["logs:PutDeliveryDestination"]),
        (
            "logs",
            "CreateDelivery",
            ["logs:CreateDelivery", "logs:GetDeliverySource", "logs:GetDeliveryDestination"],
        ),
        ("logs", "PutResourcePolicy", ["logs:PutResourcePolicy"]),
        ("s3", "PutBucketPolicy", ["s3:PutBucketPolicy"]),
        ("s3", "HeadBucket", ["s3:ListBucket"]),
        ("s3", "PutBucketNotificationConfiguration", ["s3:PutBucketNotification"]),
        ("s3", "GetBucketNotificationConfiguration", ["s3:GetBucketNotification"]),
        ("sqs", "CreateQueue", ["sqs:CreateQueue"]),
        ("sqs", "SetQueueAttributes", ["sqs:SetQueueAttributes"]),
        ("sts", "GetCallerIdentity", ["sts:GetCallerIdentity"]),
    ],
)
def test_each_api_call_maps_to_its_iam_action(
    service: str, operation: str, actions: list[str]
) -> None:
    assert iam_actions(service, operation) == actions


def test_access_denied_errors_name_the_permission() -> None:
    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"},
         "ResponseMetadata": {"HTTPStatusCode": 400}}, "PutDeliverySource",
    )  # fmt: skip
    error = AwsCallError("logs", "PutDeliverySource", denied, resource="arn:org")
    assert error.access_denied
    assert str(error).endswith(
        "missing IAM permission: logs:PutDeliverySource and "
        "workmail:AllowVendedLogDeliveryForResource on arn:org"
    )
    s3_denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}},
                            "PutBucketNotificationConfiguration")  # fmt: skip
    assert "missing IAM permission: s3:PutBucketNotification" in str(
        AwsCallError("s3", "PutBucketNotificationConfiguration", s3_denied)
    )
    other = ClientError({"Error": {"Code": "ValidationException", "Message": "bad"}}, "X")
    assert "missing IAM permission" not in str(AwsCallError("logs", "X", other))
