from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture
def samples_dir() -> Path:
    return SAMPLES
