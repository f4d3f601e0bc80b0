from __future__ import annotations

import base64
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

pytest_plugins = ["tests.peers.fixtures"]

SAMPLES = Path(__file__).resolve().parents[1] / "forwarder" / "samples"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sample_files() -> list[Path]:
    return sorted(SAMPLES.glob("*.jsonl"))


def sample_records() -> Iterator[dict[str, object]]:
    for path in sample_files():
        for line in path.read_bytes().splitlines():
            if line.strip():
                yield orjson.loads(line)


def variants(copies: int, tag: str = "", padding: int = 0) -> list[dict[str, Any]]:
    """Distinct records: the samples with request and trace ids made unique per copy.

    `padding` adds a random field of about that many bytes (large, incompressible lines).
    """
    out = []
    for copy in range(copies):
        for record in sample_records():
            record = dict(record)
            for field in ("request_id", "traceId"):
                if field in record:
                    record[field] = f"{record[field]}-{tag}{copy}"
            if padding:
                record["padding"] = base64.b64encode(os.urandom(padding * 3 // 4)).decode()
            out.append(record)
    return out


def ndjson(records: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


@pytest.fixture
def samples_dir() -> Path:
    return SAMPLES
