"""State stores: checkpoints and leases under string keys, with compare-and-set."""

from __future__ import annotations

from typing import Any

from forwarder.state.base import StateStore, Versioned
from forwarder.state.memory import MemoryStateStore
from forwarder.state.sqlite import SqliteStateStore

__all__ = [
    "MemoryStateStore",
    "SqliteStateStore",
    "StateStore",
    "Versioned",
    "open_state_store",
]


def open_state_store(backend: str, **kwargs: Any) -> StateStore:
    """The store named by `state.backend`; kwargs are the backend's constructor arguments."""
    if backend == "sqlite":
        return SqliteStateStore(**kwargs)
    if backend == "memory":
        kwargs.pop("path", None)  # the config always carries a path; memory has no file
        return MemoryStateStore(**kwargs)
    if backend == "dynamodb":
        raise ValueError("state backend 'dynamodb' is not available yet")
    raise ValueError(f"unknown state backend {backend!r}: expected 'sqlite' or 'memory'")
