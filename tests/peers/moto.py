"""moto_server as a real AWS peer: one subprocess on a free loopback port, stopped by PID.

`moto_server` (from moto[server], in the dev extras) is started from the virtualenv the
tests run in, so no PATH lookup can pick another one. Clients reach it through
`endpoint_url`; the fixture sets test credentials and a region in the environment, so
both the tests' boto3 clients and the daemon's aiobotocore clients (in-process or as a
subprocess inheriting the environment) sign requests moto accepts.

The server is session-scoped (starting it costs about a second); tests keep apart by
using their own bucket and queue names (`MotoServer.unique`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
_names = itertools.count()


class MotoServer:
    """A moto_server subprocess; `stop` kills exactly the process it started."""

    def __init__(self, log_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()  # a port of its own, or one a stopped server used
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        executable = Path(sys.executable).with_name("moto_server")
        self._log = (log_dir / f"moto-{self.port}.log").open("wb")
        self.proc = subprocess.Popen(
            [str(executable), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **CREDENTIALS},
        )  # fmt: skip
        try:
            self._wait_ready(30.0)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}")
            try:
                # The moto dashboard API answers once the server routes requests.
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1):
                    return
            except (TimeoutError, urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        raise RuntimeError(f"moto_server did not answer on port {self.port} in {timeout}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()

    def client(self, service: str) -> Any:
        """A boto3 client for test setup (the daemon builds its own aiobotocore ones)."""
        import boto3

        return boto3.client(
            service, region_name=REGION, endpoint_url=self.endpoint_url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
            aws_session_token="testing",
        )  # fmt: skip

    @staticmethod
    def unique(prefix: str) -> str:
        """A bucket/queue name no other test in this session uses."""
        return f"{prefix}-{os.getpid()}-{next(_names)}"


@contextlib.contextmanager
def running_moto(log_dir: Path) -> Iterator[MotoServer]:
    """A moto_server with the test credentials in the environment, both undone on exit."""
    saved = {key: os.environ.get(key) for key in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        server = MotoServer(log_dir)
        try:
            yield server
        finally:
            server.stop()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with running_moto(tmp_path_factory.mktemp("moto")) as server:
        yield server
