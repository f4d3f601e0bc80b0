"""Fixtures for the Security Lake sink: moto's S3 behind the strict Security Lake peer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from forwarder.config import SecurityLakeSinkConfig
from tests.peers import moto as moto_peer
from tests.peers.fixtures import PeerProcess
from tests.peers.moto import REGION, MotoServer

moto = moto_peer.moto
ACCOUNT = "111122223333"


@pytest.fixture
def lake_bucket(moto: MotoServer) -> str:
    bucket = MotoServer.unique("aws-security-data-lake")
    moto.client("s3").create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def lake_peer(moto: MotoServer, lake_bucket: str) -> Iterator[PeerProcess]:
    """The Security Lake API peer, forwarding everything else to moto; stopped by PID."""
    with PeerProcess("security_lake", "--upstream", moto.endpoint_url, "--bucket", lake_bucket,
                     "--region", REGION) as peer:  # fmt: skip
        yield peer


def lake_config(endpoint_url: str, bucket: str, **overrides: Any) -> SecurityLakeSinkConfig:
    base: dict[str, Any] = {
        "id": "lake", "type": "security_lake", "region": REGION, "account_id": ACCOUNT,
        "bucket": bucket, "endpoint_url": endpoint_url,
    }  # fmt: skip
    base.update(overrides)
    return SecurityLakeSinkConfig.model_validate(base)


def at(record: dict[str, Any], epoch_ms: int) -> dict[str, Any]:
    """`record` stating `epoch_ms` as its event time."""
    record = dict(record)
    if "event" in record and isinstance(record["event"], dict):
        moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
        text = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        record["event"] = {**record["event"], "messageTimestamp": text}
    else:
        record["event_timestamp"] = epoch_ms
    return record


def list_objects(moto: MotoServer, bucket: str) -> dict[str, bytes]:
    s3 = moto.client("s3")
    found: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found
