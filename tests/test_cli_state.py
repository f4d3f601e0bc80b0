"""`state init` and the dynamodb state backend through the real CLI, against moto_server."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SAMPLES, sample_records
from tests.peers import moto as moto_peer
from tests.peers.moto import REGION, MotoServer
from tests.test_cli import cli

moto = moto_peer.moto  # the session-scoped moto_server fixture

pytestmark = pytest.mark.timeout(120)


def write_config(tmp_path: Path, state: dict[str, Any], **extra: Any) -> Path:
    config = {
        "state": state,
        "sources": [{"id": "inbox", "type": "files", "path": str(tmp_path / "inbox"),
                     "poll_interval": "100ms", "partial_line_grace": "300ms"}],
        "sinks": [{"id": "out", "type": "file", "path": str(tmp_path / "out.ndjson"),
                   "schema": "raw", "batch": {"max_wait": "50ms"}}],
        "dead_letter": {"path": str(tmp_path / "dead-letter.ndjson")},
        "telemetry": {"listen": None},
        **extra,
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def dynamodb_state(moto: MotoServer, table: str) -> dict[str, Any]:
    return {"backend": "dynamodb", "table": table, "region": REGION,
            "endpoint_url": moto.endpoint_url}  # fmt: skip


def test_state_init_creates_the_table_and_is_idempotent(tmp_path: Path, moto: MotoServer) -> None:
    table = MotoServer.unique("cli-state")
    config = write_config(tmp_path, dynamodb_state(moto, table))
    client = moto.client("dynamodb")
    try:
        first = cli("state", "init", "--config", str(config))
        assert first.returncode == 0, first.stderr
        assert first.stdout.decode().startswith(f"ok: dynamodb table {table} created ")
        described = client.describe_table(TableName=table)["Table"]
        assert [k["AttributeName"] for k in described["KeySchema"]] == ["pk", "sk"]
        assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}

        second = cli("state", "init", "--config", str(config))
        assert second.returncode == 0, second.stderr
        assert second.stdout.decode().startswith(f"ok: dynamodb table {table} exists ")
    finally:
        client.delete_table(TableName=table)


def test_state_init_refuses_a_table_with_another_key_schema(
    tmp_path: Path, moto: MotoServer
) -> None:
    table = MotoServer.unique("cli-wrong")
    client = moto.client("dynamodb")
    client.create_table(
        TableName=table, KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    try:
        result = cli(
            "state", "init", "--config", str(write_config(tmp_path, dynamodb_state(moto, table)))
        )
        assert result.returncode == 1
        assert "HASH key is 'key' (want 'pk')" in result.stderr.decode()
    finally:
        client.delete_table(TableName=table)


def test_state_init_usage_and_config_errors_exit_2(tmp_path: Path) -> None:
    assert cli("state").returncode == 2
    assert cli("state", "init").returncode == 2
    config = write_config(tmp_path, {"backend": "redis", "table": "x!"})
    result = cli("state", "init", "--config", str(config))
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert any(line.startswith("state.backend: ") for line in lines)
    assert any(line.startswith("state.table: ") for line in lines)


def test_state_init_for_sqlite_creates_the_database(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.db"
    config = write_config(tmp_path, {"backend": "sqlite", "path": str(path)})
    result = cli("state", "init", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == f"ok: sqlite state at {path}"
    assert path.exists()


def test_more_workers_need_dynamodb_state(tmp_path: Path, moto: MotoServer) -> None:
    sqlite = write_config(tmp_path, {"backend": "sqlite"}, workers=2)
    result = cli("check-config", "--config", str(sqlite))
    assert result.returncode == 2
    assert b"needs state.backend: dynamodb" in result.stderr
    dynamo = write_config(tmp_path, dynamodb_state(moto, "any-table"), workers=2)
    result = cli("check-config", "--config", str(dynamo))
    assert result.returncode == 0, result.stderr
    assert b"state: dynamodb" in result.stdout


def test_run_keeps_checkpoints_in_dynamodb(tmp_path: Path, moto: MotoServer) -> None:
    """A second run over the same inbox delivers nothing again: it read the checkpoints."""
    table = MotoServer.unique("cli-run")
    shutil.copytree(SAMPLES, tmp_path / "inbox")
    config = write_config(tmp_path, dynamodb_state(moto, table))
    client = moto.client("dynamodb")
    try:
        assert cli("state", "init", "--config", str(config)).returncode == 0
        first = cli("run", "--config", str(config), "--drain")
        assert first.returncode == 0, first.stderr
        out = tmp_path / "out.ndjson"
        delivered = out.read_bytes().count(b"\n")
        assert delivered == len(list(sample_records()))
        items = client.scan(TableName=table)["Items"]
        assert items
        assert {item["pk"]["S"] for item in items} == {"files/inbox"}

        second = cli("run", "--config", str(config), "--drain")
        assert second.returncode == 0, second.stderr
        assert out.read_bytes().count(b"\n") == delivered
    finally:
        client.delete_table(TableName=table)
