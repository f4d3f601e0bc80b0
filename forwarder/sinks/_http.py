"""What the HTTP sinks share: one keep-alive httpx client, gzip, response triage."""

from __future__ import annotations

import ssl
import zlib

import httpx

from forwarder.config import TlsConfig
from forwarder.retry import parse_retry_after


def build_client(tls: TlsConfig, timeout: float, max_connections: int) -> httpx.AsyncClient:
    """One AsyncClient per sink: keep-alive connections, TLS from config, no env proxies."""
    verify: ssl.SSLContext | bool
    if not tls.verify:
        verify = False
    else:
        verify = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
        if tls.cert_file is not None:
            verify.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
    return httpx.AsyncClient(
        verify=verify,
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        # A SIEM endpoint is configured explicitly; an ambient HTTP(S)_PROXY must not
        # silently reroute audit data.
        trust_env=False,
    )


def gzip_body(body: bytes, level: int) -> bytes:
    """gzip framing (RFC 1952) via zlib; level 0 means the caller sends it uncompressed."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()


def retry_after(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"))


def transient(status: int) -> bool:
    """Statuses worth retrying the same request for: overload, server faults, timeouts."""
    return status in (408, 429) or status >= 500


def short(response: httpx.Response, limit: int = 300) -> str:
    """A response body fit for a log line or a dead-letter reason."""
    text = response.text.strip().replace("\n", " ")
    return f"HTTP {response.status_code}: {text[:limit]}"
