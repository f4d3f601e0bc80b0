"""State stores: checkpoints and leases under string keys, with compare-and-set."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forwarder.state.base import StateStore, Versioned
from forwarder.state.memory import MemoryStateStore
from forwarder.state.sqlite import SqliteStateStore

if TYPE_CHECKING:
    from forwarder.config import StateConfig

__all__ = [
    "MemoryStateStore",
    "SqliteStateStore",
    "StateStore",
    "Versioned",
    "open_state_store",
    "state_store_from_config",
]


def open_state_store(backend: str, **kwargs: Any) -> StateStore:
    """The store named by `state.backend`; kwargs are the backend's constructor arguments."""
    if backend == "sqlite":
        return SqliteStateStore(**kwargs)
    if backend == "memory":
        kwargs.pop("path", None)  # the config always carries a path; memory has no file
        return MemoryStateStore(**kwargs)
    if backend == "dynamodb":
        # Imported here: aiobotocore is a heavy import that SQLite users never need.
        from forwarder.state.dynamodb import DynamoStateStore

        kwargs.pop("path", None)
        return DynamoStateStore(**kwargs)
    raise ValueError(
        f"unknown state backend {backend!r}: expected 'sqlite', 'dynamodb' or 'memory'"
    )


def state_store_from_config(config: StateConfig) -> StateStore:
    """The store the `state:` section of the configuration describes."""
    if config.backend == "dynamodb":
        return open_state_store("dynamodb", table=config.table, endpoint=config)
    return open_state_store(config.backend, path=config.path)
