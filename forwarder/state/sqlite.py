"""SqliteStateStore: the default StateStore, one SQLite file in WAL mode.

Every sqlite3 call runs on one dedicated worker thread: the connection keeps its
thread affinity and the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson

from forwarder.errors import StateError, VersionConflict
from forwarder.state.base import StateStore, Versioned

_T = TypeVar("_T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS kv ("
    " key TEXT PRIMARY KEY, value TEXT NOT NULL, version INTEGER NOT NULL, expires_at REAL)",
    "CREATE INDEX IF NOT EXISTS kv_expires ON kv(expires_at) WHERE expires_at IS NOT NULL",
)
_LIVE = "(expires_at IS NULL OR expires_at > ?)"


class SqliteStateStore(StateStore):
    """Checkpoints and leases of one process (DynamoDB serves several replicas).

    `synchronous` is NORMAL by default: in WAL mode the file is never corrupted, a
    process crash loses nothing, and a power loss may only roll back the last commits.
    A rolled-back checkpoint means records are read and delivered again, which
    at-least-once delivery allows; FULL would fsync on every checkpoint for that.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout: float = 5.0,
        purge_interval: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = Path(path)
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._purge_interval = purge_interval
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-state")
        self._closed = False
        # Touched only on the worker thread.
        self._conn: sqlite3.Connection | None = None
        self._next_purge = 0.0

    async def get(self, key: str) -> Versioned | None:
        return await self._call(partial(self._get, key))

    async def put(
        self,
        key: str,
        value: dict[str, Any],
        *,
        expected_version: int | None = None,
        ttl: float | None = None,
    ) -> int:
        if not isinstance(value, dict):
            raise TypeError(f"state values are JSON objects, not {type(value).__name__}")
        text = orjson.dumps(value).decode()  # before the hop: a bad value never opens a txn
        return await self._call(partial(self._put, key, text, expected_version, ttl))

    async def delete(self, key: str, *, expected_version: int | None = None) -> None:
        await self._call(partial(self._delete, key, expected_version))

    async def scan(self, prefix: str) -> dict[str, Versioned]:
        return await self._call(partial(self._scan, prefix))

    async def ping(self) -> None:
        await self._call(lambda conn: conn.execute("SELECT 1 FROM kv LIMIT 1").fetchall())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            # Queued behind every operation already submitted, so none is cut off.
            await loop.run_in_executor(self._executor, self._close_connection)
        finally:
            self._executor.shutdown(wait=True)

    async def _call(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._closed:
            raise StateError("state store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, operation)

    # Everything below runs on the worker thread.

    def _run(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            return operation(self._connection())
        except (sqlite3.Error, OSError) as exc:
            self._recover()
            raise StateError(f"state store {self.path}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: no implicit transactions; writes say BEGIN IMMEDIATE.
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={self._synchronous}")
                for statement in _SCHEMA:
                    conn.execute(statement)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _recover(self) -> None:
        """Leave no transaction open after a failure, so the next write can succeed."""
        conn = self._conn
        if conn is None or not conn.in_transaction:
            return
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            # The connection is in an unknown state: reopen it on the next call.
            self._conn = None
            conn.close()

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as exc:
                raise StateError(f"state store {self.path}: {exc}") from exc

    @contextmanager
    def _write(self, conn: sqlite3.Connection) -> Iterator[float]:
        """One IMMEDIATE transaction: the CAS read and the write see no other writer."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = self._clock()
            yield now
            if now >= self._next_purge:
                self._next_purge = now + self._purge_interval
                conn.execute("DELETE FROM kv WHERE expires_at <= ?", (now,))
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _get(self, key: str, conn: sqlite3.Connection) -> Versioned | None:
        row = conn.execute(
            f"SELECT value, version FROM kv WHERE key = ? AND {_LIVE}", (key, self._clock())
        ).fetchone()
        return None if row is None else self._versioned(key, row)

    def _put(
        self,
        key: str,
        text: str,
        expected: int | None,
        ttl: float | None,
        conn: sqlite3.Connection,
    ) -> int:
        with self._write(conn) as now:
            version = _next_version(key, self._current_version(conn, key, now), expected)
            expires_at = None if ttl is None else now + ttl
            conn.execute(
                "INSERT INTO kv (key, value, version, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                "version = excluded.version, expires_at = excluded.expires_at",
                (key, text, version, expires_at),
            )
        return version

    def _delete(self, key: str, expected: int | None, conn: sqlite3.Connection) -> None:
        with self._write(conn) as now:
            _next_version(key, self._current_version(conn, key, now), expected)
            conn.execute("DELETE FROM kv WHERE key = ?", (key,))

    def _scan(self, prefix: str, conn: sqlite3.Connection) -> dict[str, Versioned]:
        # A range, not LIKE: keys hold % and _, and a range uses the primary key index.
        upper = _prefix_upper(prefix)
        query = f"SELECT key, value, version FROM kv WHERE key >= ? AND {_LIVE}"
        params: tuple[object, ...] = (prefix, self._clock())
        if upper is not None:
            query += " AND key < ?"
            params += (upper,)
        rows = conn.execute(query, params).fetchall()
        return {key: self._versioned(key, (value, version)) for key, value, version in rows}

    @staticmethod
    def _current_version(conn: sqlite3.Connection, key: str, now: float) -> int:
        row = conn.execute(f"SELECT version FROM kv WHERE key = ? AND {_LIVE}", (key, now))
        found = row.fetchone()
        return 0 if found is None else int(found[0])

    def _versioned(self, key: str, row: tuple[Any, ...]) -> Versioned:
        try:
            value = orjson.loads(row[0])
        except orjson.JSONDecodeError as exc:
            raise StateError(f"state store {self.path}: key {key!r} holds bad JSON") from exc
        if not isinstance(value, dict):
            raise StateError(f"state store {self.path}: key {key!r} holds no JSON object")
        return Versioned(value, int(row[1]))


def _next_version(key: str, current: int, expected: int | None) -> int:
    if expected is not None and expected != current:
        raise VersionConflict(f"{key!r}: expected version {expected}, found {current}")
    return current + 1


def _prefix_upper(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix`.

    SQLite compares TEXT bytewise and UTF-8 keeps code point order, so bumping the
    last code point gives the exclusive upper bound; None means no upper bound.
    """
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            bumped = 0xE000 if 0xD800 <= last + 1 <= 0xDFFF else last + 1  # no surrogates
            return prefix[:-1] + chr(bumped)
        prefix = prefix[:-1]
    return None
