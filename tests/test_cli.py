"""The CLI contract: exit codes, check-config lines, map in/out."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import sample_files, sample_records

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, stdin: bytes = b"", cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "forwarder", *args], input=stdin, capture_output=True, cwd=cwd, timeout=60,
    )  # fmt: skip


def test_version() -> None:
    result = cli("version")
    assert result.returncode == 0
    assert result.stdout.decode().startswith("workmail-forwarder ")


def test_bad_usage_exits_2() -> None:
    assert cli().returncode == 2
    assert cli("frobnicate").returncode == 2
    assert cli("map").returncode == 2  # --schema is required


def test_check_config_ok() -> None:
    result = cli("check-config", "--config", "config/local.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().startswith("ok: ")
    assert len(result.stdout.decode().strip().splitlines()) == 1


def test_check_config_reports_each_problem_with_key_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sources:\n  - {id: a, type: files, path: x, colour: red}\n"
        "sinks:\n  - {id: s, type: file, path: o, schema: xml}\n  - {id: t, type: file}\n"
        "shutdown_grace: forever\n"
    )
    result = cli("check-config", "--config", str(bad))
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert "sources[0].colour: unknown key" in lines
    assert any(line.startswith("sinks[0].schema: ") for line in lines)
    assert any(line.startswith("sinks[1].path: ") for line in lines)
    assert any(line.startswith("shutdown_grace: ") for line in lines)
    assert len(lines) == 4


def test_check_config_missing_file() -> None:
    result = cli("check-config", "--config", "/nonexistent/config.yaml")
    assert result.returncode == 2
    assert b"cannot read" in result.stderr


@pytest.mark.parametrize("schema", ["ocsf", "ecs", "raw"])
def test_map_samples_one_line_per_record_same_order(schema: str) -> None:
    files = [str(p) for p in sample_files()]
    result = cli("map", "--schema", schema, *files)
    assert result.returncode == 0, result.stderr
    out = [orjson.loads(line) for line in result.stdout.splitlines()]
    records = list(sample_records())
    assert len(out) == len(records)
    if schema == "raw":
        assert [doc["record"] for doc in out] == records
        assert all(doc["origin"]["source_id"] == "map" and doc["event_id"] for doc in out)
    elif schema == "ocsf":
        assert all(doc["metadata"]["version"] == "1.5.0" for doc in out)
    else:
        assert all(doc["ecs"]["version"] == "9.4.0" for doc in out)


def test_map_reads_stdin_and_gzip(tmp_path: Path) -> None:
    data = sample_files()[0].read_bytes()
    via_stdin = cli("map", "--schema", "ocsf", stdin=data)
    gz = tmp_path / "x.jsonl.gz"
    gz.write_bytes(gzip.compress(data))
    via_gzip = cli("map", "--schema", "ocsf", str(gz))
    assert via_stdin.returncode == via_gzip.returncode == 0
    assert via_stdin.stdout == via_gzip.stdout
    assert via_stdin.stdout.count(b"\n") == data.count(b"\n")


def test_map_bad_records_go_to_stderr_and_exit_1() -> None:
    good = sample_files()[0].read_bytes().splitlines()
    data = good[0] + b"\nnot json\n" + good[1] + b'\n{"who": "knows"}\n'
    result = cli("map", "--schema", "ecs", stdin=data)
    assert result.returncode == 1
    assert result.stdout.count(b"\n") == 2
    errors = [orjson.loads(line) for line in result.stderr.splitlines()]
    assert [e["line"] for e in errors] == [2, 4]
    assert errors[0]["raw"] == "not json"
    assert errors[1]["error"].startswith("unknown_log_type")


def test_map_forced_log_type() -> None:
    record = b'{"event_timestamp": 1718182800611, "request_id": "r", "auth_successful": true}\n'
    result = cli("map", "--schema", "ocsf", "--log-type", "authentication", stdin=record)
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["class_uid"] == 3002
    assert cli("map", "--schema", "ocsf", "--log-type", "NOPE", stdin=record).returncode == 2
