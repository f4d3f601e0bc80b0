"""`aws setup --security-lake` against the Security Lake peer (and moto behind it): the
custom sources, idempotence, dry run, what it prints, and a configuration that works."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from forwarder.aws_setup.security_lake import LakePlan, LakeSetupError, apply_lake
from forwarder.cli import main
from forwarder.config import SecurityLakeSinkConfig, parse_config
from forwarder.events import Status
from forwarder.sinks.security_lake.layout import CLASSES
from forwarder.sinks.security_lake.sink import SecurityLakeSink
from tests.conftest import variants
from tests.peers.fixtures import PeerProcess
from tests.peers.moto import REGION, MotoServer
from tests.sinks.security_lake.conftest import list_objects
from tests.sinks.security_lake.test_sink import deliver

pytestmark = pytest.mark.timeout(60)
MOTO_ACCOUNT = "123456789012"
GLUE_ROLE = f"arn:aws:iam::{MOTO_ACCOUNT}:role/wmf-lake-glue-crawler"


def setup(
    capsys: pytest.CaptureFixture[str], peer: PeerProcess, *args: str
) -> tuple[int, str, str]:
    code = main(["aws", "setup", *args, "--region", REGION, "--endpoint-url", peer.url])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def steps(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("# custom source ")]


def lake_calls(peer: PeerProcess, operation: str) -> list[dict[str, Any]]:
    return [call["body"] for call in peer.control("events") if call["operation"] == operation]


def test_dry_run_plans_five_sources_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], lake_peer: PeerProcess, lake_bucket: str
) -> None:
    code, out, err = setup(capsys, lake_peer, "--security-lake", "--dry-run",
                           "--glue-role-arn", GLUE_ROLE)  # fmt: skip
    assert code == 0, err
    assert len(steps(out)) == 5 and all(s.endswith(": would create") for s in steps(out))
    assert f"bucket {lake_bucket}" in out
    assert lake_calls(lake_peer, "CreateCustomLogSource") == []
    config = parse_config(yaml.safe_load(out))  # the whole output is a valid configuration
    assert isinstance(config.sinks[0], SecurityLakeSinkConfig)


def test_without_the_glue_role_it_creates_nothing_and_says_what_to_make(
    capsys: pytest.CaptureFixture[str], lake_peer: PeerProcess, lake_bucket: str
) -> None:
    code, out, err = setup(capsys, lake_peer, "--security-lake")
    assert code == 0, err
    assert all(
        s.endswith("not created: needs --glue-role-arn (the role below)") for s in steps(out)
    )
    assert "service-role/AWSGlueServiceRole" in out and '"glue.amazonaws.com"' in out
    assert f"arn:aws:s3:::{lake_bucket}/*" in out
    assert "AmazonSecurityLake-Provider-workmail-*-us-east-1" in out  # sts:AssumeRole
    assert "Lake Formation SELECT" in out
    assert lake_calls(lake_peer, "CreateCustomLogSource") == []


async def test_creates_one_source_per_class_converges_and_the_config_delivers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], moto: MotoServer, lake_peer: PeerProcess,
    lake_bucket: str,
) -> None:  # fmt: skip
    args = ("--security-lake", "--glue-role-arn", GLUE_ROLE, "--external-id", "wm-ext-1")
    code, out, err = await asyncio.to_thread(setup, capsys, lake_peer, *args)
    assert code == 0, err
    assert len(steps(out)) == 5 and all(s.endswith(": created") for s in steps(out))
    created = lake_calls(lake_peer, "CreateCustomLogSource")
    assert sorted(c["sourceName"] for c in created) == sorted(
        f"workmail-{short}" for short, _, _ in CLASSES.values()
    )
    for request in created:
        uid = next(
            u for u, (short, _, _) in CLASSES.items() if request["sourceName"].endswith(short)
        )
        assert request["eventClasses"] == [CLASSES[uid][1]]
        assert request["sourceVersion"] == "1.0"
        assert request["configuration"] == {
            "crawlerConfiguration": {"roleArn": GLUE_ROLE},
            "providerIdentity": {"externalId": "wm-ext-1", "principal": MOTO_ACCOUNT},
        }
    config = parse_config(yaml.safe_load(out))
    sink_config = config.sinks[0]
    assert isinstance(sink_config, SecurityLakeSinkConfig)
    assert sink_config.external_id == "wm-ext-1" and sink_config.account_id == MOTO_ACCOUNT
    assert sink_config.role_arns["3002"].endswith(
        ":role/AmazonSecurityLake-Provider-workmail-auth-us-east-1"
    )
    assert sink_config.locations["4009"] == f"s3://{lake_bucket}/ext/workmail-email/1.0/"

    again = await asyncio.to_thread(setup, capsys, lake_peer, *args)
    assert again[0] == 0 and all(s.endswith(": unchanged") for s in steps(again[1]))
    assert len(lake_calls(lake_peer, "CreateCustomLogSource")) == 5
    assert yaml.safe_load(again[1]) == yaml.safe_load(out)

    # A fresh user's next step: run with that configuration.
    sink = SecurityLakeSink(sink_config.model_copy(update={"spool_dir": tmp_path / "spool"}))
    raws = [orjson.dumps(record) for record in variants(1, "setup")]
    ack, _ = await deliver(tmp_path, sink, raws)
    assert ack.status is Status.DELIVERED
    prefixes = {key.split("/region=")[0] for key in list_objects(moto, lake_bucket)}
    assert prefixes == {f"ext/workmail-{short}/1.0" for short, _, _ in CLASSES.values()}


def test_with_deliveries_the_config_reads_workmail_into_the_lake(
    capsys: pytest.CaptureFixture[str], moto: MotoServer, lake_peer: PeerProcess
) -> None:
    bucket = MotoServer.unique("wm-audit")
    moto.client("s3").create_bucket(Bucket=bucket)
    code, out, err = setup(capsys, lake_peer, "--organization-id", "m-" + "a" * 32,
                           "--to", f"s3://{bucket}/workmail/", "--security-lake",
                           "--glue-role-arn", GLUE_ROLE)  # fmt: skip
    assert code == 0, err
    config = parse_config(yaml.safe_load(out))
    assert [s.type for s in config.sources] == ["s3_sqs"]
    assert [s.type for s in config.sinks] == ["security_lake"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--organization-id and --to are required (or --security-lake)"),
        (("--glue-role-arn", GLUE_ROLE, "--organization-id", "m-" + "a" * 32, "--to", "s3://b-1/"),
         "only with --security-lake"),
        (("--security-lake", "--source-name", "workmail-forwarder-{class}"), "--source-name"),
        (("--security-lake", "--organization-id", "m-" + "a" * 32), "go together"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], lake_peer: PeerProcess, args: tuple[str, ...], message: str
) -> None:
    code, _, err = setup(capsys, lake_peer, *args)
    assert code == 2 and message in err, err


class _NoLake:
    class meta:  # botocore's client shape
        class service_model:
            service_name = "securitylake"

    def list_data_lakes(self, **kwargs: Any) -> dict[str, Any]:
        return {"dataLakes": []}


def test_a_region_without_security_lake_is_a_clear_error() -> None:
    plan = LakePlan(MOTO_ACCOUNT, "aws", "eu-west-1")
    with pytest.raises(LakeSetupError, match="not enabled in eu-west-1"):
        apply_lake(lambda service: _NoLake(), plan, dry_run=True, out=io.StringIO())
