"""Syslog sink: RFC 5424 messages carrying the JSON document or CEF, over TLS, TCP or UDP.

TLS (RFC 5425) and TCP use RFC 6587 octet counting (`LEN SP MSG`), so a document may
hold any byte; UDP (RFC 5426) sends one message per datagram. A message over the size
limit is REJECTED (dead-lettered), never truncated: a cut JSON document or CEF record
is worse than a missing one, because nobody notices it.

What "DELIVERED" means here: plain syslog has no application acknowledgement, so a
batch counts as delivered once every frame was handed to the kernel (`drain()`
returned). Two checks keep batches out of sockets we can know are dead: EOF from the
peer is looked for before each write (a receiver never sends, so EOF means it hung
up), and a fresh connection is watched for about two round trips before the first
write (a TLS 1.3 server refuses a client certificate only after our handshake ended).
What remains is the protocol's own risk: bytes the kernel accepted but the peer never
read (peer crash, a close racing our write) are lost without notice; RELP exists to
close that gap. For UDP "delivered" only means "sent": an ICMP error surfaces on a
later send, which then fails and is retried.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
import time

import orjson
import structlog

from forwarder.config import SyslogSinkConfig, TlsConfig
from forwarder.errors import SinkFatalError
from forwarder.events import Event, Status
from forwarder.mapping.common import KIND_BY_LOG_TYPE
from forwarder.sinks.base import SendResult, Sink
from forwarder.sinks.cef import FAILURE_SEVERITY_ID, cef_message, doc_severity_id

log = structlog.get_logger(__name__)

BOM = b"\xef\xbb\xbf"
# 32473 is the Private Enterprise Number RFC 5424 itself uses in its examples (RFC 5612
# reserves it for documentation). An operator with a registered PEN may want to pass
# `sd_id="workmail@<their PEN>"`: receivers key parsing rules on the SD-ID.
DEFAULT_SD_ID = "workmail@32473"
UDP_MAX_PAYLOAD = 65507  # 65535 - 8 (UDP header) - 20 (IPv4 header): the kernel's hard cap
NILVALUE = "-"

_SD_NAME = re.compile(r"[!#-<>-\\^-~]{1,32}")  # PRINTUSASCII except '"', '=', ']' (and SP)
_PRINTUSASCII = re.compile(r"[!-~]+")
_NOT_PRINTUSASCII = re.compile(r"[^!-~]")
# First `"severity_id":N` in an OCSF document. A key inside a string value would read
# `\"severity_id\":`, so this only matches keys, and the OCSF mapper writes the top-level
# severity_id before any nested object (tests/sinks/test_syslog.py pins that). Scanning
# keeps the RFC 5424 path a byte splice: no decode of the document per event.
_OCSF_SEVERITY = re.compile(rb'"severity_id":(\d{1,3})[,}]')
# ECS: the mapper writes `event` (and its outcome) before any other object.
_ECS_OUTCOME = re.compile(rb'"outcome":"([a-z]*)"')

# OCSF severity_id -> RFC 5424 severity (0 Emergency .. 7 Debug). Unknown (0) and
# Other (99) carry no information, so they get the default, Informational.
SYSLOG_SEVERITY = {0: 6, 1: 6, 2: 5, 3: 4, 4: 3, 5: 2, 6: 1, 99: 6}


def sd_escape(value: str) -> str:
    """PARAM-VALUE escaping (RFC 5424 §6.3.3): '"', '\\' and ']' take a backslash."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def rfc3339_ms(epoch: float) -> str:
    """Event time as RFC 3339 UTC with milliseconds; NILVALUE outside 4-digit years."""
    ms = round(epoch * 1000)
    if not 0 <= ms < 253402300800000:
        return NILVALUE
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def msgid_for(log_type: str | None) -> str:
    """MSGID is at most 32 PRINTUSASCII: `WORKMAIL_AVAILABILITY_PROVIDER_LOGS` is 35, so use
    the mapping's kind name (`availability_provider`, `email_events`, ...) for every type;
    the full name travels in the structured data."""
    if log_type is None:
        return NILVALUE
    kind = KIND_BY_LOG_TYPE.get(log_type, log_type)
    return kind if len(kind) <= 32 and _PRINTUSASCII.fullmatch(kind) else NILVALUE


def severity_id_of(doc: bytes, schema: str) -> int:
    """An OCSF-style severity id for any view, read without decoding the document."""
    if schema == "ocsf":
        match = _OCSF_SEVERITY.search(doc)
        return int(match.group(1)) if match else 0
    if schema == "ecs":
        match = _ECS_OUTCOME.search(doc)
        if match and match.group(1) == b"failure":
            return FAILURE_SEVERITY_ID
    return 1


def _hostname(configured: str | None) -> str:
    if configured is not None:
        if not (len(configured) <= 255 and _PRINTUSASCII.fullmatch(configured)):
            raise ValueError(f"syslog hostname {configured!r}: 1-255 printable ASCII, no spaces")
        return configured
    # gethostname(), not getfqdn(): getfqdn may block on DNS at startup.
    return _NOT_PRINTUSASCII.sub("", socket.gethostname())[:255] or NILVALUE


class Rfc5424Encoder:
    """Event -> one RFC 5424 SYSLOG-MSG (bytes); pure, so the ABNF tests need no socket."""

    def __init__(
        self,
        *,
        view: str,
        facility: int,
        hostname: str,
        app_name: str,
        procid: str,
        sd_id: str = DEFAULT_SD_ID,
        cef: bool = False,
    ) -> None:
        if not _SD_NAME.fullmatch(sd_id):
            raise ValueError(f"SD-ID {sd_id!r}: 1-32 printable ASCII, no '=', ']', '\"', spaces")
        self.view = view
        self.schema = view.partition(":")[0]
        self.facility = facility
        self.sd_id = sd_id
        self.cef = cef
        self._fields = f" {hostname} {app_name} {procid} "

    def encode(self, event: Event) -> bytes:
        doc = event.docs[self.view]
        if self.cef:
            fields = orjson.loads(doc)
            if type(fields) is not dict:
                raise ValueError(f"the {self.view} document is not a JSON object")
            severity_id = doc_severity_id(fields, self.schema)
            # No BOM: CEF parsers key on a MSG that starts with "CEF:", and CEF is UTF-8 by
            # its own spec (MSG-ANY in RFC 5424 terms).
            body = cef_message(event, fields, self.schema, severity_id).encode()
        else:
            severity_id = severity_id_of(doc, self.schema)
            body = BOM + doc
        pri = self.facility * 8 + SYSLOG_SEVERITY.get(severity_id, 6)
        sd = f'[{self.sd_id} event_id="{sd_escape(event.id)}"'
        if event.log_type is not None:
            sd += f' log_type="{sd_escape(event.log_type)}"'
        head = f"<{pri}>1 {rfc3339_ms(event.time)}{self._fields}{msgid_for(event.log_type)} {sd}] "
        return head.encode() + body


def tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """Verifying client context; cert_file/key_file add a client certificate (mutual TLS)."""
    cafile = str(tls.ca_file) if tls.ca_file else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    if tls.cert_file is not None:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    elif tls.key_file is not None:
        raise ValueError("tls.key_file needs tls.cert_file")
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _DatagramProtocol(asyncio.DatagramProtocol):
    """Keeps the first socket error (ICMP unreachable arrives on a later send) and the
    transport's flow control, so a burst waits for the socket instead of piling up."""

    def __init__(self) -> None:
        self.error: Exception | None = None
        self.writable = asyncio.Event()
        self.writable.set()

    def error_received(self, exc: Exception) -> None:
        self.error = self.error or exc

    def connection_lost(self, exc: Exception | None) -> None:
        self.error = self.error or exc or ConnectionError("datagram endpoint closed")
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


class SyslogSink(Sink):
    def __init__(self, config: SyslogSinkConfig, *, sd_id: str = DEFAULT_SD_ID) -> None:
        self.id = config.id
        self.view = config.view
        scheme, _, rest = config.url.partition("://")
        host, _, port = rest.rpartition(":")
        self._scheme = scheme
        self._host = host.strip("[]")
        self._port = int(port)
        self._timeout = config.timeout
        if scheme == "udp":
            self._limit = min(config.udp_max_bytes, UDP_MAX_PAYLOAD)
            self._limit_name = "udp_max_bytes"
        else:
            self._limit = config.max_message_bytes
            self._limit_name = "max_message_bytes"
        self.encoder = Rfc5424Encoder(
            view=self.view,
            facility=config.facility,
            hostname=_hostname(config.hostname),
            app_name=config.app_name,
            procid=str(os.getpid()),
            sd_id=sd_id,
            cef=config.format == "cef",
        )
        # Built now so that a missing or unreadable CA/cert fails at startup.
        self._ssl = tls_context(config.tls) if scheme == "tls" else None
        # One connection, one writer at a time: frames of two batches must not interleave.
        self._lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._udp: tuple[asyncio.DatagramTransport, _DatagramProtocol] | None = None

    async def send(self, events: list[Event]) -> SendResult:
        statuses = [Status.DELIVERED] * len(events)
        reasons: dict[int, str] = {}
        messages: list[bytes] = []
        encode, limit = self.encoder.encode, self._limit
        for index, event in enumerate(events):
            try:
                message = encode(event)
            except Exception as exc:  # one bad document costs one event, not the batch
                statuses[index] = Status.REJECTED
                reasons[index] = f"cannot encode for syslog: {type(exc).__name__}: {exc}"
                continue
            if len(message) > limit:
                statuses[index] = Status.REJECTED
                reasons[index] = (
                    f"syslog message of {len(message)} bytes exceeds "
                    f"{self._limit_name}={limit}; not truncated"
                )
                continue
            messages.append(message)
        if messages:
            async with self._lock:
                if self._scheme == "udp":
                    await self._send_datagrams(messages)
                else:
                    await self._send_frames(messages)
        return SendResult(statuses, reasons)

    async def _send_frames(self, messages: list[bytes]) -> None:
        writer = await self._stream()
        try:
            writer.write(b"".join([b"%d %b" % (len(m), m) for m in messages]))
            await writer.drain()
        except BaseException:
            # Also on cancellation (the runner's timeout): part of the batch may sit in
            # the buffer, so the connection is in an unknown state. Drop it; the retry
            # resends the whole batch on a fresh one (at-least-once).
            self._abort_stream()
            raise

    async def _stream(self) -> asyncio.StreamWriter:
        if self._writer is not None and self._reader is not None:
            # A syslog receiver never sends, so EOF means the peer closed (restart, idle
            # timeout). Writing on would land in a dead socket and count as delivered.
            # Best effort only: a close racing with this check is the residual TCP risk.
            if not (self._reader.at_eof() or self._writer.transport.is_closing()):
                return self._writer
            log.info("syslog_peer_closed", sink=self.id, peer=f"{self._host}:{self._port}")
            self._abort_stream()
        peer = f"{self._host}:{self._port}"
        started = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(
                self._host,
                self._port,
                ssl=self._ssl,
                ssl_handshake_timeout=self._timeout if self._ssl else None,
                ssl_shutdown_timeout=self._timeout if self._ssl else None,
            )
        except ssl.SSLCertVerificationError as exc:
            # A certificate we do not trust will not fix itself: the operator must act.
            raise SinkFatalError(f"TLS peer {peer} not trusted: {exc.verify_message}") from exc
        self._reader, self._writer = reader, writer
        try:
            await self._settle(reader, time.monotonic() - started)
        except BaseException:  # a refusal, or the runner's timeout cancelling us
            self._abort_stream()
            raise
        log.info("syslog_connected", sink=self.id, peer=peer)
        return writer

    async def _settle(self, reader: asyncio.StreamReader, elapsed: float) -> None:
        """Wait about two round trips for the peer to refuse a fresh connection.

        With TLS 1.3 the client's handshake ends before the server has checked the
        client certificate: a server that wants one (or a TCP server over its session
        limit) accepts, then closes. Writing at once would count every batch as
        delivered into that closing socket, forever. The connect time stands in for
        the round-trip time; a refusal slower than the wait remains undetected.
        """
        peer = f"{self._host}:{self._port}"
        try:
            data = await asyncio.wait_for(reader.read(1), min(max(2 * elapsed, 0.1), 1.0))
        except TimeoutError:
            return  # the normal case: a syslog receiver says nothing
        except (OSError, ssl.SSLError) as exc:
            error: Exception = exc
        else:
            if data:
                return  # not a syslog receiver's habit, but not a refusal either
            error = ConnectionResetError("closed right after connecting")
        if self._ssl is not None:
            raise SinkFatalError(
                f"TLS peer {peer} closed the connection after the handshake ({error}): "
                "does it require a client certificate (tls.cert_file) or refuse ours?"
            ) from error
        raise ConnectionError(f"syslog peer {peer} closed the connection at once: {error}")

    def _abort_stream(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.transport.abort()

    async def _send_datagrams(self, messages: list[bytes]) -> None:
        if self._udp is not None and self._udp[1].error is not None:
            error = self._udp[1].error
            self._close_udp()
            raise ConnectionError(f"udp peer {self._host}:{self._port}: {error}")
        if self._udp is None:
            self._udp = await asyncio.get_running_loop().create_datagram_endpoint(
                _DatagramProtocol, remote_addr=(self._host, self._port)
            )
        transport, protocol = self._udp
        try:
            for message in messages:
                if protocol.error is not None:
                    break
                transport.sendto(message)
                if not protocol.writable.is_set():
                    await protocol.writable.wait()
            if protocol.error is not None:
                raise ConnectionError(f"udp peer {self._host}:{self._port}: {protocol.error}")
        except BaseException:
            self._close_udp()
            raise

    def _close_udp(self) -> None:
        udp, self._udp = self._udp, None
        if udp is not None:
            udp[0].abort()

    async def close(self) -> None:
        """Close politely: for TLS, writer.close() sends close_notify (RFC 5425 §4.4)."""
        self._close_udp()
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), self._timeout)
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            log.info("syslog_close_unclean", sink=self.id, error=f"{type(exc).__name__}: {exc}")
            writer.transport.abort()
