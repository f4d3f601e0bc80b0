"""A real rsyslogd as a syslog test peer (PROTOCOLS.md §3.7), started per test.

Listeners on free loopback ports, all into one ruleset:
  tls   imtcp + gtls, anonymous client auth (server cert from a CA made with openssl)
  mtls  imtcp + gtls, x509/certvalid: the client must present a cert from the same CA
  tcp   plain imtcp (octet counting and LF framing both accepted)
  udp   imudp
Every message lands in `out/rfc5424.log` (RSYSLOG_SyslogProtocol23Format) and in
`out/json.log`, one JSON object per line with the fields rsyslog parsed (pri, hostname,
app_name, procid, msgid, structured_data, sd = mmpstrucdata's parse of it, msg), so
tests assert what the receiver understood rather than what was sent.

Use `async with running_rsyslog(path) as peer:` or the `rsyslog_peer` fixture
(`from tests.peers.rsyslog import rsyslog_peer` in a test module). `restart()` stops
and starts rsyslogd on the same ports; output files are kept across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import free_port

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
PROBE = "peer-probe"  # MSGID of readiness probes; they go to probe.log, not json.log

_CONF = """\
global(
  workDirectory="@DIR@/work"
  maxMessageSize="128k"
  parser.escapeControlCharactersOnReceive="off"
  DefaultNetstreamDriverCAFile="@DIR@/certs/ca.pem"
  DefaultNetstreamDriverCertFile="@DIR@/certs/server.pem"
  DefaultNetstreamDriverKeyFile="@DIR@/certs/server-key.pem"
)
module(load="imtcp")
module(load="imudp")
module(load="mmpstrucdata")

template(name="json" type="list" option.jsonf="on") {
  property(outname="input" name="inputname" format="jsonf")
  property(outname="pri" name="pri" format="jsonf")
  property(outname="facility" name="syslogfacility" format="jsonf")
  property(outname="severity" name="syslogseverity" format="jsonf")
  property(outname="version" name="protocol-version" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="structured_data" name="structured-data" format="jsonf")
  property(outname="sd" name="$!rfc5424-sd" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}

ruleset(name="out") {
  if $msgid == "peer-probe" then {
    action(type="omfile" file="@DIR@/out/probe.log" template="json")
    stop
  }
  action(type="mmpstrucdata")
  action(type="omfile" file="@DIR@/out/json.log" template="json")
  action(type="omfile" file="@DIR@/out/rfc5424.log" template="RSYSLOG_SyslogProtocol23Format")
}

input(type="imtcp" port="@TLS@" address="127.0.0.1" name="tls" ruleset="out"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" port="@MTLS@" address="127.0.0.1" name="mtls" ruleset="out"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
input(type="imtcp" port="@TCP@" address="127.0.0.1" name="tcp" ruleset="out")
input(type="imudp" port="@UDP@" address="127.0.0.1" name="udp" ruleset="out")
"""


def _openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_ca(directory: Path, name: str = "ca") -> Path:
    """A self-signed P-256 CA (`<name>.pem`, `<name>-key.pem`) valid for two days."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        directory, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", "-days", "2",
        "-subj", f"/CN=forwarder test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return directory / f"{name}.pem"


def make_cert(directory: Path, name: str, *, usage: str, ca: str = "ca") -> tuple[Path, Path]:
    """A leaf cert for 127.0.0.1/localhost signed by `ca`; usage serverAuth or clientAuth."""
    ext = directory / f"{name}.ext"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        f"extendedKeyUsage={usage}\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl(
        directory, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", "-subj", "/CN=localhost",
    )  # fmt: skip
    _openssl(
        directory, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem",
        "-CAkey", f"{ca}-key.pem", "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
        "-extfile", ext.name,
    )  # fmt: skip
    return directory / f"{name}.pem", directory / f"{name}-key.pem"


def _free_udp_port(taken: set[int]) -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port


def _read_json_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    data = path.read_bytes()
    # A line being written right now has no newline yet: leave it for the next read.
    return [orjson.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]


class RsyslogPeer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.certs = root / "certs"
        self.out = root / "out"
        for folder in (self.certs, self.out, root / "work"):
            folder.mkdir(parents=True, exist_ok=True)
        self.ca_file = make_ca(self.certs)
        make_cert(self.certs, "server", usage="serverAuth")
        self.client_cert, self.client_key = make_cert(self.certs, "client", usage="clientAuth")
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_port())
        self.tls_port, self.mtls_port, self.tcp_port = sorted(ports)
        self.udp_port = _free_udp_port(ports)
        self.conf = root / "rsyslog.conf"
        self.conf.write_text(
            _CONF.replace("@DIR@", str(root.resolve()))
            .replace("@TLS@", str(self.tls_port))
            .replace("@MTLS@", str(self.mtls_port))
            .replace("@TCP@", str(self.tcp_port))
            .replace("@UDP@", str(self.udp_port))
        )
        self.pidfile = (root / "rsyslogd.pid").resolve()
        self.stderr = root / "rsyslogd.stderr"
        self.process: asyncio.subprocess.Process | None = None
        self.validate()

    @property
    def tls_url(self) -> str:
        return f"tls://127.0.0.1:{self.tls_port}"

    @property
    def mtls_url(self) -> str:
        return f"tls://127.0.0.1:{self.mtls_port}"

    @property
    def tcp_url(self) -> str:
        return f"tcp://127.0.0.1:{self.tcp_port}"

    @property
    def udp_url(self) -> str:
        return f"udp://127.0.0.1:{self.udp_port}"

    def client_context(self, *, client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if client_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context

    def validate(self) -> None:
        """`rsyslogd -N1`: a config error fails here, readable, not as a port timeout."""
        result = subprocess.run(
            [RSYSLOGD, "-N1", "-f", str(self.conf)], capture_output=True, text=True, timeout=30
        )
        output = result.stdout + result.stderr
        if result.returncode != 0 or "error" in output.lower():
            raise RuntimeError(f"rsyslogd -N1 rejected {self.conf}:\n{output}")

    async def start(self, timeout: float = 15.0) -> None:
        if self.process is not None:
            raise RuntimeError("rsyslogd is already running")
        self.pidfile.unlink(missing_ok=True)  # a SIGKILLed run leaves it behind
        with self.stderr.open("ab") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                RSYSLOGD, "-n", "-f", str(self.conf), "-i", str(self.pidfile),
                stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                start_new_session=True,  # a ^C on the test run must not reach it first
            )  # fmt: skip
        try:
            await self._wait_ready(timeout)
        except BaseException:
            await self.stop()
            raise

    async def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM by PID, SIGKILL after `timeout`; always reaps the process."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                process.kill()
        await process.wait()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def _wait_ready(self, timeout: float) -> None:
        """Until one probe per listener came out of the ruleset (the TLS listeners
        start a little after the plain ones, and UDP has no connect to test)."""
        nonces = {name: uuid.uuid4().hex for name in ("tls", "mtls", "tcp", "udp")}
        deadline = time.monotonic() + timeout
        while True:
            seen = {record["msg"] for record in _read_json_lines(self.out / "probe.log")}
            missing = {name: n for name, n in nonces.items() if n not in seen}
            if not missing:
                return
            if self.process is None or self.process.returncode is not None:
                raise RuntimeError(f"rsyslogd exited: {self.diagnostics()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"rsyslogd listeners not ready: {sorted(missing)}")
            for name, nonce in missing.items():
                with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                    await asyncio.wait_for(self._probe(name, nonce), 1.0)
            await asyncio.sleep(0.05)

    async def _probe(self, name: str, nonce: str) -> None:
        message = f"<14>1 - - {PROBE} - {PROBE} - {nonce}".encode()
        if name == "udp":
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, ("127.0.0.1", self.udp_port))
            return
        port = {"tls": self.tls_port, "mtls": self.mtls_port, "tcp": self.tcp_port}[name]
        context = self.client_context(client_cert=name == "mtls") if name != "tcp" else None
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        try:
            writer.write(b"%d %b" % (len(message), message))
            await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    def records(self) -> list[dict[str, Any]]:
        """What rsyslog parsed so far, in arrival order (json.log)."""
        return _read_json_lines(self.out / "json.log")

    async def wait_records(
        self,
        count: int,
        timeout: float = 10.0,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Records (matching `where`) once there are at least `count` of them."""
        deadline = time.monotonic() + timeout
        while True:
            records = [r for r in self.records() if where is None or where(r)]
            if len(records) >= count:
                return records
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(records)} of {count} syslog records arrived")
            await asyncio.sleep(0.02)

    def diagnostics(self) -> str:
        """rsyslogd's own error messages: in the foreground they go to stderr (captured)."""
        return self.stderr.read_text(errors="replace") if self.stderr.exists() else ""


def rsyslog_missing() -> str | None:
    """Why the peer cannot run here, if it cannot. A missing rsyslog-gnutls shows up as
    a readable `rsyslogd -N1` error instead (the module fails to load)."""
    if not os.path.exists(RSYSLOGD) or shutil.which("openssl") is None:
        return "rsyslogd and openssl are needed for the syslog peer"
    return None


@contextlib.asynccontextmanager
async def running_rsyslog(root: Path) -> AsyncIterator[RsyslogPeer]:
    reason = rsyslog_missing()
    if reason:
        # Fail, not skip: a syslog suite that silently skips proves nothing. `.ci/run`
        # installs rsyslog, rsyslog-gnutls and openssl.
        pytest.fail(f"{reason} (apt-get install rsyslog rsyslog-gnutls openssl)")
    peer = RsyslogPeer(root)
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()


@pytest.fixture
async def rsyslog_peer(tmp_path: Path) -> AsyncIterator[RsyslogPeer]:
    async with running_rsyslog(tmp_path / "rsyslog") as peer:
        yield peer
