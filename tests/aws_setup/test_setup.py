"""`aws setup` and `aws status` against moto_server: create, converge, dry run, S3 -> SQS."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from forwarder.aws_setup.plan import AUDIT_LOG_TYPES
from forwarder.cli import main
from forwarder.config import CloudWatchSourceConfig, S3SqsSourceConfig, parse_config
from tests.peers import moto as moto_peer
from tests.peers.moto import REGION, MotoServer

pytestmark = pytest.mark.timeout(120)

moto = moto_peer.moto


def new_org() -> str:
    return f"m-{uuid.uuid4().hex}"


def run(capsys: pytest.CaptureFixture[str], moto: MotoServer, *args: str) -> tuple[int, str, str]:
    code = main(["aws", *args, "--region", REGION, "--endpoint-url", moto.endpoint_url])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def steps(out: str) -> list[str]:
    """The report lines of one step each (`# what: verb`)."""
    return [line for line in out.splitlines() if line.startswith("# ") and ": " in line
            and line.rsplit(": ", 1)[1] in ("created", "updated", "unchanged", "would create",
                                            "would update")]  # fmt: skip


def org_arn(org: str) -> str:
    return f"arn:aws:workmail:{REGION}:123456789012:organization/{org}"


def deliveries_of(moto: MotoServer, org: str) -> list[dict[str, Any]]:
    logs = moto.client("logs")
    return [d for d in logs.describe_deliveries()["deliveries"] if org in d["deliverySourceName"]]


def test_setup_s3_creates_everything_and_a_second_run_changes_nothing(
    capsys: pytest.CaptureFixture[str], moto: MotoServer
) -> None:
    org, bucket = new_org(), MotoServer.unique("wm-audit")
    s3, sqs, logs = moto.client("s3"), moto.client("sqs"), moto.client("logs")
    s3.create_bucket(Bucket=bucket)
    code, out, err = run(capsys, moto, "setup", "--organization-id", org,
                         "--to", f"s3://{bucket}/workmail/")  # fmt: skip
    assert code == 0, err
    report = steps(out)
    assert len(report) == 15  # policy, queue + its policy, notification, destination, 5 + 5
    assert all(line.endswith(": created") for line in report), report

    # The delivery chain, per log type (LOGS.md 1).
    for log_type in AUDIT_LOG_TYPES:
        kind = log_type.removeprefix("WORKMAIL_").removesuffix("_LOGS").lower().replace("_", "-")
        name = f"wm-{org}-{kind}"
        assert len(name) <= 60
        source = logs.get_delivery_source(name=name)["deliverySource"]
        assert source["resourceArns"] == [org_arn(org)] and source["logType"] == log_type
    destination = logs.get_delivery_destination(name=f"wm-{org}-s3")["deliveryDestination"]
    assert destination["deliveryDestinationConfiguration"]["destinationResourceArn"] == (
        f"arn:aws:s3:::{bucket}/workmail"
    )
    assert destination["outputFormat"] == "json"
    delivered = deliveries_of(moto, org)
    assert sorted(d["deliverySourceName"] for d in delivered) == sorted(
        f"wm-{org}-{k}" for k in ("access-control", "authentication", "availability-provider",
                                  "mailbox-access", "personal-access-token")
    )  # fmt: skip
    assert {d["deliveryDestinationArn"] for d in delivered} == {destination["arn"]}

    # Bucket policy (LOGS.md 3.2), queue policy, notification.
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert statement["Resource"] == f"arn:aws:s3:::{bucket}/workmail/*"
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    queue_url = sqs.get_queue_url(QueueName=f"workmail-audit-{org}")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    [queue_statement] = json.loads(attributes["Policy"])["Statement"]
    assert queue_statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert queue_statement["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:s3:::{bucket}"
    assert attributes["MessageRetentionPeriod"] == "1209600"
    [notification] = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert notification["QueueArn"] == attributes["QueueArn"]

    # The printed output is a configuration check-config accepts, reading that queue.
    config = parse_config(yaml.safe_load(out), env={})
    [source] = config.sources
    assert isinstance(source, S3SqsSourceConfig)
    assert source.queue_url == queue_url and source.key_prefix == "workmail/"
    assert source.endpoint_url == moto.endpoint_url and source.region == REGION

    # Second run: nothing to do.
    code, again, err = run(capsys, moto, "setup", "--organization-id", org,
                           "--to", f"s3://{bucket}/workmail")  # fmt: skip
    assert code == 0, err
    assert all(line.endswith(": unchanged") for line in steps(again)), again
    assert "# unchanged: everything is already set up" in again
    assert len(deliveries_of(moto, org)) == 5
    assert len(json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]) == 1

    # A log object landing under the prefix is announced on the queue.
    key = "workmail/AWSLogs/123456789012/WorkMail/AUTHENTICATION_LOGS/x.json.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=b"{}\n")
    assert key in announced_keys(sqs, queue_url)

    code, status, err = run(capsys, moto, "status", "--organization-id", org)
    assert code == 0, err
    for log_type in AUDIT_LOG_TYPES:
        assert f"{log_type}: wm-{org}-" in status
        assert f"-> S3 arn:aws:s3:::{bucket}/workmail" in status
    assert f"queue workmail-audit-{org}: " in status and "messages waiting" in status


def announced_keys(sqs: Any, queue_url: str) -> list[str]:
    from urllib.parse import unquote_plus

    keys: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not keys:
        reply = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in reply.get("Messages", []):
            body = orjson.loads(message["Body"])
            for record in body.get("Records", []):  # the s3:TestEvent has none
                if record["eventName"].startswith("ObjectCreated"):
                    keys.append(unquote_plus(record["s3"]["object"]["key"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return keys


def test_dry_run_calls_no_mutating_api(
    capsys: pytest.CaptureFixture[str], moto: MotoServer
) -> None:
    org, bucket = new_org(), MotoServer.unique("wm-dry")
    s3, sqs, logs = moto.client("s3"), moto.client("sqs"), moto.client("logs")
    s3.create_bucket(Bucket=bucket)
    code, out, err = run(capsys, moto, "setup", "--organization-id", org, "--to", f"s3://{bucket}",
                         "--queue", f"q-{org}", "--dry-run")  # fmt: skip
    assert code == 0, err
    report = steps(out)
    assert len(report) == 15 and all(line.endswith(": would create") for line in report), report
    assert "# dry run: 15 changes planned, nothing was changed" in out
    assert "AWSLogs/123456789012/*" in out  # no prefix: the default vended-log path
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket=bucket)
    assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket=bucket)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=f"q-{org}")
    sources = logs.describe_delivery_sources()["deliverySources"]
    assert not [s for s in sources if org in s["name"]]
    assert deliveries_of(moto, org) == []
    config = parse_config(yaml.safe_load(out), env={})
    assert config.sources[0].queue_url.endswith(f"/123456789012/q-{org}")  # type: ignore[union-attr]


def test_setup_cloudwatch_and_status(capsys: pytest.CaptureFixture[str], moto: MotoServer) -> None:
    org = new_org()
    group = f"/aws/vendedlogs/workmail/{org}"
    logs = moto.client("logs")
    code, out, err = run(
        capsys, moto, "setup", "--organization-id", org, "--to", f"cloudwatch:{group}"
    )
    assert code == 0, err
    assert len(steps(out)) == 13  # group, resource policy, destination, 5 sources, 5 deliveries
    assert [
        g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    ] == [group]
    policies = {p["policyName"]: p for p in logs.describe_resource_policies()["resourcePolicies"]}
    document = json.loads(policies["workmail-forwarder-log-delivery"]["policyDocument"])
    mine = [s for s in document["Statement"] if group in s["Resource"]]
    assert mine and mine[0]["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    destination = logs.get_delivery_destination(name=f"wm-{org}-cwl")["deliveryDestination"]
    assert destination["deliveryDestinationType"] == "CWL"
    assert destination["deliveryDestinationConfiguration"]["destinationResourceArn"].endswith(
        f":log-group:{group}"
    )
    assert len(deliveries_of(moto, org)) == 5
    config = parse_config(yaml.safe_load(out), env={})
    [source] = config.sources
    assert isinstance(source, CloudWatchSourceConfig) and source.log_groups == (group,)

    code, again, err = run(
        capsys, moto, "setup", "--organization-id", org, "--to", f"cloudwatch:{group}"
    )
    assert code == 0, err
    assert all(line.endswith(": unchanged") for line in steps(again)), again

    code, status, _ = run(capsys, moto, "status", "--organization-id", org)
    assert code == 0
    assert f"log group {group}: no events yet" in status
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.put_log_events(logGroupName=group, logStreamName="s",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": "{}"}])  # fmt: skip
    code, status, _ = run(capsys, moto, "status", "--organization-id", org)
    assert f"log group {group}: last event " in status and "s ago)" in status
    assert status.count(f"-> CWL arn:aws:logs:{REGION}:123456789012:log-group:{group}") == 5


def test_status_of_an_organization_without_deliveries(
    capsys: pytest.CaptureFixture[str], moto: MotoServer
) -> None:
    code, out, _ = run(capsys, moto, "status", "--organization-id", new_org())
    assert code == 1
    assert out.count("not delivered (no delivery source)") == 5


def test_missing_bucket_and_usage_errors(
    capsys: pytest.CaptureFixture[str], moto: MotoServer
) -> None:
    org = new_org()
    code, _, err = run(
        capsys, moto, "setup", "--organization-id", org, "--to", "s3://no-such-bucket-wmf"
    )
    assert code == 1 and "bucket no-such-bucket-wmf does not exist" in err
    for args, problem in [
        (("--organization-id", "m-123", "--to", "s3://bucket-x"), "--organization-id"),
        (("--organization-id", org, "--to", "ftp://x"), "--to"),
        (("--organization-id", org, "--to", "cloudwatch:/g", "--queue", "q"), "--queue"),
        (("--organization-id", org, "--to", "s3://bucket-x", "--queue", "bad name"), "--queue"),
    ]:
        code, _, err = run(capsys, moto, "setup", *args)
        assert code == 2 and problem in err, err


def test_access_denied_names_the_missing_permission(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    moto: MotoServer,
) -> None:  # fmt: skip
    # A moto_server of its own, with IAM enforced: the shared one stays permissive.
    server = MotoServer(tmp_path)
    try:
        bucket = MotoServer.unique("wm-denied")
        server.client("s3").create_bucket(Bucket=bucket)
        iam = server.client("iam")
        iam.create_user(UserName="operator")
        allowed = ["sts:GetCallerIdentity", "s3:*", "sqs:*", "logs:Describe*", "logs:Get*",
                   "logs:PutDeliveryDestination", "logs:CreateDelivery"]  # fmt: skip
        iam.put_user_policy(UserName="operator", PolicyName="setup", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": allowed, "Resource": "*"}]}))  # fmt: skip
        key = iam.create_access_key(UserName="operator")["AccessKey"]
        enforce_iam(server)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        org = new_org()
        code, out, err = run(
            capsys, server, "setup", "--organization-id", org, "--to", f"s3://{bucket}/p"
        )
        assert code == 1, out
        assert "PutDeliverySource" in err
        assert ("missing IAM permission: logs:PutDeliverySource and "
                "workmail:AllowVendedLogDeliveryForResource on "
                f"arn:aws:workmail:{REGION}:123456789012:organization/{org}") in err  # fmt: skip
        assert "s3 bucket policy" in out  # the steps before it went through
    finally:
        server.stop()


def enforce_iam(server: MotoServer) -> None:
    """From now on this moto_server checks every request against IAM policies."""
    import urllib.request

    request = urllib.request.Request(
        f"{server.endpoint_url}/moto-api/reset-auth", data=b"0", method="POST",
        headers={"Content-Type": "text/plain"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
