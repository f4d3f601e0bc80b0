from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from pathlib import Path

import pytest

from forwarder.errors import StateError, VersionConflict
from forwarder.state import (
    MemoryStateStore,
    SqliteStateStore,
    StateStore,
    Versioned,
    open_state_store,
)
from forwarder.state.dynamodb import DynamoStateStore
from tests.state.conftest import drop_table, endpoint_of, new_table


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


StoreFactory = Callable[[], StateStore]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
async def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[StoreFactory]:
    """Opens stores of one backend (several over the same file or table) and closes them.

    The DynamoDB stores talk to moto_server (a fresh table per test) and read in pages
    of 3 items, so every scan here also crosses page boundaries.
    """
    opened: list[StateStore] = []
    if request.param == "dynamodb":
        moto = request.getfixturevalue("moto")  # started only when a dynamodb test runs
        table = await new_table(moto)

    def make() -> StateStore:
        store: StateStore
        if request.param == "memory":
            store = MemoryStateStore(clock=clock)
        elif request.param == "dynamodb":
            store = DynamoStateStore(table, endpoint_of(moto), page_size=3, clock=clock)
        else:
            store = SqliteStateStore(tmp_path / "sub" / "state.db", clock=clock)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()
    if request.param == "dynamodb":
        drop_table(moto, table)


@pytest.fixture
def store(make_store: StoreFactory) -> StateStore:
    return make_store()


async def test_create_read_update(store: StateStore) -> None:
    assert await store.get("k") is None
    assert await store.put("k", {"offset": 1}) == 1
    assert await store.get("k") == Versioned({"offset": 1}, 1)
    assert await store.put("k", {"offset": 2}, expected_version=1) == 2
    assert await store.put("k", {"offset": 3}) == 3
    assert await store.get("k") == Versioned({"offset": 3}, 3)


async def test_returned_values_are_copies(store: StateStore) -> None:
    value = {"nested": {"list": [1]}}
    await store.put("k", value)
    value["nested"]["list"].append(2)
    got = await store.get("k")
    assert got is not None
    assert got.value == {"nested": {"list": [1]}}


async def test_create_only_conflicts_when_the_key_exists(store: StateStore) -> None:
    assert await store.put("lease", {"owner": "a"}, expected_version=0) == 1
    with pytest.raises(VersionConflict):
        await store.put("lease", {"owner": "b"}, expected_version=0)
    assert await store.get("lease") == Versioned({"owner": "a"}, 1)


async def test_version_mismatch_conflicts(store: StateStore) -> None:
    await store.put("k", {"v": 1})
    await store.put("k", {"v": 2})
    with pytest.raises(VersionConflict):
        await store.put("k", {"v": "stale"}, expected_version=1)
    with pytest.raises(VersionConflict):
        await store.put("missing", {"v": 1}, expected_version=1)
    assert await store.get("k") == Versioned({"v": 2}, 2)
    assert await store.get("missing") is None


async def test_delete_with_and_without_expected_version(store: StateStore) -> None:
    await store.delete("never-there")
    await store.put("a", {})
    await store.delete("a")
    assert await store.get("a") is None
    await store.put("b", {})
    await store.put("b", {})
    with pytest.raises(VersionConflict):
        await store.delete("b", expected_version=1)
    assert await store.get("b") == Versioned({}, 2)
    await store.delete("b", expected_version=2)
    assert await store.get("b") is None
    with pytest.raises(VersionConflict):
        await store.delete("b", expected_version=2)
    assert await store.put("b", {}, expected_version=0) == 1  # recreated from scratch


async def test_scan_by_prefix_with_awkward_keys(store: StateStore) -> None:
    keys = [
        "files/a%b",
        "files/a_b",
        "files/a/c",
        "files/\u00e9t\u00e9",
        "files/\U0001f600",
        "files%",
        "files_x",
        "filesZ",
        "file",
        "other/files/x",
    ]
    for index, key in enumerate(keys):
        await store.put(key, {"i": index})
    assert set(await store.scan("files/")) == set(keys[:5])
    assert set(await store.scan("files/a")) == {"files/a%b", "files/a_b", "files/a/c"}
    assert set(await store.scan("files/a%")) == {"files/a%b"}
    assert set(await store.scan("files/a_")) == {"files/a_b"}
    assert set(await store.scan("files/\u00e9")) == {"files/\u00e9t\u00e9"}
    assert set(await store.scan("files/\U0001f600")) == {"files/\U0001f600"}
    assert set(await store.scan("files")) == set(keys[:8])
    assert set(await store.scan("")) == set(keys)
    assert await store.scan("nothing") == {}
    found = await store.scan("files/a_")
    assert found["files/a_b"] == Versioned({"i": 1}, 1)


async def test_scan_upper_bound_at_the_last_code_point(store: StateStore) -> None:
    await store.put("p\U0010ffff", {})
    await store.put("p\U0010ffff\U0010ffffz", {})
    await store.put("q", {})
    await store.put("p\ud7ffx", {})
    await store.put("p\ue000", {})
    assert set(await store.scan("p\U0010ffff")) == {"p\U0010ffff", "p\U0010ffff\U0010ffffz"}
    assert set(await store.scan("p\ud7ff")) == {"p\ud7ffx"}


async def test_ttl_expiry(store: StateStore, clock: FakeClock) -> None:
    await store.put("short", {"a": 1}, ttl=10)
    await store.put("forever", {"a": 2})
    clock.now += 9
    assert await store.get("short") == Versioned({"a": 1}, 1)
    assert set(await store.scan("")) == {"short", "forever"}
    clock.now += 2
    assert await store.get("short") is None
    assert set(await store.scan("")) == {"forever"}
    with pytest.raises(VersionConflict):
        await store.put("short", {"a": 3}, expected_version=1)
    assert await store.put("short", {"a": 3}, expected_version=0) == 1  # expired = absent
    await store.put("short", {"a": 4})  # without ttl it no longer expires
    clock.now += 1_000_000
    assert await store.get("short") == Versioned({"a": 4}, 2)


async def test_values_round_trip(store: StateStore) -> None:
    value = {
        "text": "caf\u00e9 \U0001f600 \u4e2d\u6587",
        "nested": {"list": [1, 2.5, None, True, {"deep": ["x"]}], "empty": {}},
        "big": 2**53,
        "negative": -1,
    }
    await store.put("k\u00e9y", value)
    assert await store.get("k\u00e9y") == Versioned(value, 1)


async def test_rejects_non_object_values(store: StateStore) -> None:
    with pytest.raises(TypeError):
        await store.put("k", [1, 2])  # type: ignore[arg-type]


async def test_concurrent_cas_read_modify_write_loses_nothing(store: StateStore) -> None:
    tasks, rounds = 20, 10
    await store.put("counter", {"n": 0})

    async def increment() -> list[int]:
        versions: list[int] = []
        for _ in range(rounds):
            while True:
                current = await store.get("counter")
                assert current is not None
                await asyncio.sleep(0)  # let other tasks interleave between read and write
                try:
                    version = await store.put(
                        "counter", {"n": current.value["n"] + 1}, expected_version=current.version
                    )
                except VersionConflict:
                    continue
                versions.append(version)
                break
        return versions

    results = await asyncio.gather(*(increment() for _ in range(tasks)))
    for versions in results:
        assert versions == sorted(set(versions))
    all_versions = sorted(v for versions in results for v in versions)
    assert all_versions == list(range(2, tasks * rounds + 2))
    assert await store.get("counter") == Versioned({"n": tasks * rounds}, tasks * rounds + 1)


async def test_concurrent_unconditional_puts_get_distinct_versions(store: StateStore) -> None:
    versions = await asyncio.gather(*(store.put("k", {"i": i}) for i in range(50)))
    assert sorted(versions) == list(range(1, 51))


async def test_closed_store_refuses_operations(store: StateStore) -> None:
    await store.ping()
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StateError, match="closed"):
        await store.get("k")


# --- memory only ----------------------------------------------------------------


async def test_memory_fail_switches() -> None:
    store = MemoryStateStore()
    await store.put("k", {"a": 1})
    store.fail_writes = True
    with pytest.raises(StateError, match="simulated write failure"):
        await store.put("k", {"a": 2})
    with pytest.raises(StateError, match="simulated write failure"):
        await store.delete("k")
    assert await store.get("k") == Versioned({"a": 1}, 1)
    store.fail_writes = False
    store.fail_reads = True
    with pytest.raises(StateError):
        await store.ping()
    store.fail_reads = False
    assert await store.put("k", {"a": 2}) == 2


# --- sqlite only ----------------------------------------------------------------


async def test_sqlite_persists_across_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "state.db"
    store = SqliteStateStore(path)
    await store.put("a", {"offset": 42})
    await store.put("a", {"offset": 43})
    await store.put("b", {"x": "\u00e9"}, ttl=3600)
    await store.close()
    reopened = SqliteStateStore(path)
    try:
        assert await reopened.get("a") == Versioned({"offset": 43}, 2)
        assert await reopened.scan("b") == {"b": Versioned({"x": "\u00e9"}, 1)}
        assert await reopened.put("a", {"offset": 44}, expected_version=2) == 3
    finally:
        await reopened.close()


async def test_sqlite_uses_wal_and_keeps_keys_in_kv(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStateStore(path)
    try:
        await store.put("k", {"a": 1}, ttl=5)
        with closing(sqlite3.connect(path)) as peer:
            assert peer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            rows = peer.execute("SELECT key, value, version, expires_at FROM kv").fetchall()
        assert len(rows) == 1
        assert rows[0][:3] == ("k", '{"a":1}', 1)
        assert isinstance(rows[0][3], float)
    finally:
        await store.close()


async def test_sqlite_purges_expired_rows_on_write(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "state.db"
    store = SqliteStateStore(path, clock=clock, purge_interval=60)
    try:
        await store.put("old", {}, ttl=1)
        clock.now += 120
        await store.put("new", {})
        with closing(sqlite3.connect(path)) as peer:
            keys = [row[0] for row in peer.execute("SELECT key FROM kv")]
        assert keys == ["new"]
    finally:
        await store.close()


async def test_sqlite_disk_full_is_a_state_error_and_recovers(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    try:
        await store.put("keep", {"offset": 7})
        await store.put("big", {"blob": "x" * 100})

        def cap_pages(conn: sqlite3.Connection) -> None:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages}")

        await store._call(cap_pages)
        for attempt in range(3):
            with pytest.raises(StateError, match="database or disk is full"):
                await store.put("big", {"blob": "y" * 200_000, "attempt": attempt})
        assert await store.get("keep") == Versioned({"offset": 7}, 1)
        assert await store.get("big") == Versioned({"blob": "x" * 100}, 1)

        await store._call(lambda conn: conn.execute("PRAGMA max_page_count = 1000000"))
        assert await store.put("big", {"blob": "y" * 200_000}, expected_version=1) == 2
        assert await store.put("keep", {"offset": 8}, expected_version=1) == 2
        got = await store.get("big")
        assert got is not None
        assert len(got.value["blob"]) == 200_000
    finally:
        await store.close()


async def test_sqlite_unusable_file_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    store = SqliteStateStore(path)
    try:
        with pytest.raises(StateError, match="not a database"):
            await store.ping()
    finally:
        await store.close()


async def test_sqlite_runs_on_one_worker_thread(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    try:
        names = await asyncio.gather(
            *(store._call(lambda conn: threading.current_thread().name) for _ in range(5))
        )
        assert len(set(names)) == 1
        assert names[0].startswith("sqlite-state")
    finally:
        await store.close()


# --- open_state_store -------------------------------------------------------------


async def test_open_state_store(tmp_path: Path) -> None:
    memory = open_state_store("memory", path=tmp_path / "ignored.db")
    assert isinstance(memory, MemoryStateStore)
    sqlite_store = open_state_store("sqlite", path=tmp_path / "state.db")
    assert isinstance(sqlite_store, SqliteStateStore)
    await sqlite_store.ping()
    await sqlite_store.close()
    dynamo = open_state_store("dynamodb", path=tmp_path / "ignored.db", table="t")
    assert isinstance(dynamo, DynamoStateStore)
    assert dynamo.table == "t"
    await dynamo.close()
    with pytest.raises(ValueError, match="'redis'"):
        open_state_store("redis")
