"""Run a test peer as a subprocess on a free loopback port, for pytest and benchmarks.

``PeerProcess("hec", "--token", "T", "--ack")`` starts ``python -m tests.peers.hec
--port 0 --host 127.0.0.1 ...``; the peer binds a free port itself and prints
``listening http://127.0.0.1:PORT`` (no pick-then-bind race). ``start()`` waits for that
line and for ``GET /__peer__/stats`` to answer; ``stop()`` sends SIGTERM to that PID,
then SIGKILL after a grace period. ``control(path, json)`` talks to the test-only
control API (faults.py): ``control("faults", {"busy": 2})``, ``control("events")``,
``control("stats")``, ``control("reset")``; ``acontrol`` is the same for async tests.

Pytest fixtures (function-scoped, one process each, always stopped):
``hec_peer`` (token ``HEC_TOKEN``, indexes ``main,workmail``), ``hec_ack_peer`` (the same
with indexer acknowledgement), ``es_peer`` (Elasticsearch flavor, API key ``ES_API_KEY``),
``opensearch_peer`` (OpenSearch flavor, Basic ``OS_USER``/``OS_PASSWORD``).
Credentials are also on the object: ``peer.credentials``.
"""

from __future__ import annotations

import base64
import contextlib
import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
HEC_TOKEN = "11111111-2222-4333-8444-555555555555"
ES_API_KEY = base64.b64encode(b"peer-key-id:peer-key-secret").decode()
OS_USER, OS_PASSWORD = "admin", "Peer-Passw0rd!"
_GETS = ("events", "stats")


class PeerProcess:
    """One peer subprocess. Usable as a context manager; `stop()` is idempotent."""

    def __init__(self, module: str, *args: str, credentials: dict[str, str] | None = None,
                 startup_timeout: float = 20.0, stop_timeout: float = 5.0) -> None:  # fmt: skip
        self.module = module
        self.args = list(args)
        self.credentials = dict(credentials or {})
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError(f"peer {self.module} is not running")
        return self._url

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> PeerProcess:
        if self.process is not None:
            raise RuntimeError("already started")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        command = [sys.executable, "-m", f"tests.peers.{self.module}",
                   "--host", "127.0.0.1", "--port", "0", *self.args]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=self._stderr,
        )  # fmt: skip
        try:
            self._url = self._read_url()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_url(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=0.1):
                    line = self.process.stdout.readline().decode().strip()
                    if line.startswith("listening "):
                        return line.removeprefix("listening ")
                    if not line and self.process.poll() is not None:
                        break
                elif self.process.poll() is not None:
                    break
        raise RuntimeError(f"peer {self.module} did not start: {self.stderr_text()}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                httpx.get(f"{self.url}/__peer__/stats", timeout=1.0).raise_for_status()
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stderr_text(self) -> str:
        if self._stderr is None or self._stderr.closed:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        """SIGTERM this PID, SIGKILL it if it has not exited after `stop_timeout`."""
        process, self.process, self._url = self.process, None, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(self.stop_timeout)
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def _request(self, path: str, json: Any) -> tuple[str, str]:
        path = path if path.startswith("/") else f"/__peer__/{path}"
        method = "GET" if json is None and path.rsplit("/", 1)[-1] in _GETS else "POST"
        return method, f"{self.url}{path}"

    def control(self, path: str, json: Any = None) -> Any:
        """Call the control API (``faults``, ``events``, ``stats``, ``reset``); its JSON."""
        method, url = self._request(path, json)
        response = httpx.request(method, url, json=json, timeout=10.0)
        response.raise_for_status()
        return response.json()

    async def acontrol(self, path: str, json: Any = None) -> Any:
        method, url = self._request(path, json)
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.request(method, url, json=json)
        response.raise_for_status()
        return response.json()

    def __enter__(self) -> PeerProcess:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"PeerProcess({self.module!r}, pid={self.pid}, url={self._url!r})"


@contextlib.contextmanager
def running(module: str, *args: str, credentials: dict[str, str] | None = None) -> Iterator[PeerProcess]:  # fmt: skip
    with PeerProcess(module, *args, credentials=credentials) as peer:
        yield peer


@pytest.fixture
def hec_peer() -> Iterator[PeerProcess]:
    """HEC peer (token HEC_TOKEN, indexes main,workmail), no indexer ack."""
    with running("hec", "--token", HEC_TOKEN, "--indexes", "main,workmail",
                 credentials={"token": HEC_TOKEN}) as peer:  # fmt: skip
        yield peer


@pytest.fixture
def hec_ack_peer() -> Iterator[PeerProcess]:
    """HEC peer with indexer acknowledgement (--ack)."""
    with running("hec", "--token", HEC_TOKEN, "--indexes", "main,workmail", "--ack",
                 credentials={"token": HEC_TOKEN}) as peer:  # fmt: skip
        yield peer


@pytest.fixture
def es_peer() -> Iterator[PeerProcess]:
    """Elasticsearch-flavoured peer; API key ES_API_KEY."""
    with running("es", "--api-key", ES_API_KEY, credentials={"api_key": ES_API_KEY}) as peer:
        yield peer


@pytest.fixture
def opensearch_peer() -> Iterator[PeerProcess]:
    """OpenSearch-flavoured peer; Basic OS_USER / OS_PASSWORD."""
    with running("es", "--flavor", "opensearch", "--user", OS_USER, "--password", OS_PASSWORD,
                 credentials={"user": OS_USER, "password": OS_PASSWORD}) as peer:  # fmt: skip
        yield peer
