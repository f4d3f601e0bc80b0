"""MemoryStateStore: the StateStore contract in a dict, for tests and single runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from forwarder.errors import StateError, VersionConflict
from forwarder.state.base import StateStore, Versioned


@dataclass(slots=True)
class _Item:
    text: bytes  # JSON, so callers never share mutable state with the store
    version: int
    expires_at: float | None


class MemoryStateStore(StateStore):
    """Same compare-and-set and ttl semantics as the persistent stores.

    `fail_writes` (and `fail_reads`) make operations raise StateError, so tests can
    drive the paths where a checkpoint cannot be recorded or the store is down.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.fail_writes = False
        self.fail_reads = False
        self._clock = clock
        self._items: dict[str, _Item] = {}
        self._closed = False

    async def get(self, key: str) -> Versioned | None:
        self._check(write=False)
        item = self._live(key)
        return None if item is None else Versioned(orjson.loads(item.text), item.version)

    async def put(
        self,
        key: str,
        value: dict[str, Any],
        *,
        expected_version: int | None = None,
        ttl: float | None = None,
    ) -> int:
        self._check(write=True)
        if not isinstance(value, dict):
            raise TypeError(f"state values are JSON objects, not {type(value).__name__}")
        text = orjson.dumps(value)
        item = self._live(key)
        version = _next_version(key, item.version if item else 0, expected_version)
        expires_at = None if ttl is None else self._clock() + ttl
        self._items[key] = _Item(text, version, expires_at)
        return version

    async def delete(self, key: str, *, expected_version: int | None = None) -> None:
        self._check(write=True)
        item = self._live(key)
        _next_version(key, item.version if item else 0, expected_version)
        self._items.pop(key, None)

    async def scan(self, prefix: str) -> dict[str, Versioned]:
        self._check(write=False)
        found: dict[str, Versioned] = {}
        for key in [k for k in self._items if k.startswith(prefix)]:
            item = self._live(key)
            if item is not None:
                found[key] = Versioned(orjson.loads(item.text), item.version)
        return found

    async def ping(self) -> None:
        self._check(write=False)

    async def close(self) -> None:
        self._closed = True

    def _check(self, *, write: bool) -> None:
        if self._closed:
            raise StateError("state store is closed")
        if write and self.fail_writes:
            raise StateError("simulated write failure")
        if not write and self.fail_reads:
            raise StateError("simulated read failure")

    def _live(self, key: str) -> _Item | None:
        item = self._items.get(key)
        if item is not None and item.expires_at is not None and item.expires_at <= self._clock():
            del self._items[key]  # expired items are gone, as DynamoDB ttl makes them
            return None
        return item


def _next_version(key: str, current: int, expected: int | None) -> int:
    """The version a write produces; raises VersionConflict when the CAS fails."""
    if expected is not None and expected != current:
        raise VersionConflict(f"{key!r}: expected version {expected}, found {current}")
    return current + 1
