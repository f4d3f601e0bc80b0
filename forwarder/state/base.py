"""The StateStore contract: small JSON values under string keys, with versions.

Every write can be a compare-and-set: `expected_version=None` writes unconditionally,
`expected_version=0` only creates (the key must not exist), `expected_version=n` only
replaces version n. A lost race raises VersionConflict; an unreadable or unwritable
store (disk full, unreachable) raises StateError. Values are plain JSON objects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Versioned:
    value: dict[str, Any]
    version: int  # starts at 1 on create, +1 on every write


class StateStore(ABC):
    # True when other replicas may use the same store (DynamoDB): sources then share
    # their lanes through leases instead of each reading everything.
    shared: bool = False

    @abstractmethod
    async def get(self, key: str) -> Versioned | None: ...

    @abstractmethod
    async def put(
        self,
        key: str,
        value: dict[str, Any],
        *,
        expected_version: int | None = None,
        ttl: float | None = None,
    ) -> int:
        """Write `value`; returns the new version. `ttl` seconds: the item may vanish after."""

    @abstractmethod
    async def delete(self, key: str, *, expected_version: int | None = None) -> None: ...

    @abstractmethod
    async def scan(self, prefix: str) -> dict[str, Versioned]:
        """Every live key starting with `prefix`."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StateError unless the store can be read right now (for /readyz)."""

    @abstractmethod
    async def close(self) -> None: ...
