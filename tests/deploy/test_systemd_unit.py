"""The systemd unit: `systemd-analyze verify` clean, hardened, and stopping within its timeout."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from forwarder.config import parse_duration

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "workmail-forwarder.service"
ENV_EXAMPLE = ROOT / "deploy" / "systemd" / "workmail-forwarder.env.example"
CONTAINER_CONFIG = ROOT / "deploy" / "config" / "container.yaml"

pytestmark = pytest.mark.timeout(60)


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
    assert Path(found).exists(), "systemd-analyze is missing: install Debian's systemd package"
    return found


def directives(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file as ordered (key, value) pairs; keys may repeat."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def service() -> dict[str, str]:
    """The [Service] section, the last value of each key winning (as for most keys)."""
    return dict(directives(UNIT.read_text())["Service"])


def local_copy(tmp_path: Path, text: str | None = None) -> Path:
    """The unit with ExecStart pointing at this venv's binary (verify checks it exists)."""
    binary = Path(sys.executable).parent / "workmail-forwarder"
    assert binary.exists(), binary
    text = UNIT.read_text() if text is None else text
    copy = tmp_path / UNIT.name
    copy.write_text(
        re.sub(r"^ExecStart=\S+", f"ExecStart={binary}", text, count=1, flags=re.MULTILINE)
    )
    return copy


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [systemd_analyze(), "--man=no", "verify", str(unit)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    result = verify(local_copy(tmp_path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert UNIT.name not in output, output


def test_verify_would_catch_a_mistake(tmp_path: Path) -> None:
    """The check above can fail: a misspelt directive and a bad value are reported."""
    text = UNIT.read_text().replace("ProtectSystem=strict", "ProtectSytem=strict")
    text = text.replace("KillSignal=SIGTERM", "KillSignal=SIGTREM")
    result = verify(local_copy(tmp_path, text))
    output = result.stdout + result.stderr
    assert "ProtectSytem" in output and "SIGTREM" in output, output


def test_hardening() -> None:
    unit = service()
    expected = {
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "StateDirectory": "workmail-forwarder",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "CapabilityBoundingSet": "",
        "Restart": "on-failure",
        "KillSignal": "SIGTERM",
        "EnvironmentFile": "-/etc/workmail-forwarder/env",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    }
    assert {key: unit.get(key) for key in expected} == expected
    assert unit["ExecStart"].split()[1:] == [
        "run", "--config", "/etc/workmail-forwarder/config.yaml", "--log-format", "json",
    ]  # fmt: skip
    assert directives(UNIT.read_text())["Install"] == [("WantedBy", "multi-user.target")]


def test_stop_timeout_exceeds_shutdown_grace() -> None:
    grace = parse_duration(yaml.safe_load(CONTAINER_CONFIG.read_text())["shutdown_grace"])
    timeout = parse_duration(service()["TimeoutStopSec"])
    assert timeout >= grace + 10, (timeout, grace)


def test_exposure_score(tmp_path: Path) -> None:
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", "--no-pager", str(local_copy(tmp_path))],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout


def test_env_example_feeds_the_config() -> None:
    """Every ${VAR} the example config needs (no default) is in the example env file."""
    env = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", name), line
            env[name] = value
    needed = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", CONTAINER_CONFIG.read_text()))
    assert needed and needed <= set(env), needed - set(env)
