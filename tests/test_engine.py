"""Engine selection: native when installed, the reference when forced or missing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from forwarder import engine


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _version(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forwarder", "version"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version_names_the_engine() -> None:
    result = _version()
    assert result.returncode == 0
    assert f"engine={engine.NAME}" in result.stdout


def test_wmf_engine_python_forces_the_reference() -> None:
    result = _version(WMF_ENGINE="python")
    assert result.returncode == 0
    assert "engine=python (WMF_ENGINE=python)" in result.stdout


def test_missing_native_module_falls_back_to_python() -> None:
    # A None entry in sys.modules makes `import wmf_native` raise ImportError.
    code = "import sys; sys.modules['wmf_native'] = None; from forwarder import engine; print(engine.describe())"
    result = _python(code, WMF_ENGINE="")
    assert result.stdout.strip() == "engine=python (native module not installed)"


def test_missing_native_module_is_an_error_when_native_is_demanded() -> None:
    code = (
        "import sys; sys.modules['wmf_native'] = None\n"
        "from forwarder.cli import main; raise SystemExit(main(['version']))"
    )
    result = _python(code, WMF_ENGINE="native")
    assert result.returncode == 2
    assert "WMF_ENGINE=native but the native engine is not installed" in result.stderr


def test_unknown_engine_name_is_a_usage_error() -> None:
    result = _version(WMF_ENGINE="turbo")
    assert result.returncode == 2
    assert "WMF_ENGINE='turbo'" in result.stderr


@pytest.mark.skipif(engine.NAME != "native", reason="the native engine is not installed")
def test_native_engine_is_chosen_when_installed() -> None:
    assert engine.describe().startswith("engine=native (wmf_native ")
