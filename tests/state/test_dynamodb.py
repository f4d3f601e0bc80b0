"""DynamoStateStore against moto_server, beyond the shared contract in test_stores.py.

Item layout, the pk/sk scheme (Query on one partition, Scan otherwise), replicas racing,
expired items that DynamoDB has not deleted yet (moto never deletes them, like AWS in
the hours after expiry), error translation, and the table that `state init` builds.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from forwarder.config import AwsEndpoint
from forwarder.errors import StateError, VersionConflict
from forwarder.state import Versioned
from forwarder.state.dynamodb import DynamoStateStore, partition_of, partition_of_prefix
from forwarder.state.dynamodb_table import (
    ATTRIBUTE_DEFINITIONS,
    KEY_SCHEMA,
    TTL_ATTRIBUTE,
    ensure_table,
)
from tests.conftest import free_port
from tests.peers.moto import REGION, MotoServer
from tests.state.conftest import endpoint_of

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(60)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class RecordingStore(DynamoStateStore):
    """Remembers which DynamoDB operations it sent, to tell a Query from a Scan."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.operations: list[str] = []

    async def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        self.operations.append(operation)
        return await super()._call(operation, **params)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make_store(
    moto: MotoServer, dynamo_table: str, clock: Clock
) -> AsyncIterator[Callable[..., RecordingStore]]:
    """Stores over one table: each is a replica with its own client."""
    opened: list[DynamoStateStore] = []

    def make(**kwargs: Any) -> RecordingStore:
        store = RecordingStore(dynamo_table, endpoint_of(moto), clock=clock, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


def raw_items(moto: MotoServer, table: str) -> dict[str, dict[str, Any]]:
    """Every item physically in the table, by sk, as the low-level API returns it."""
    client = moto.client("dynamodb")
    items: dict[str, dict[str, Any]] = {}
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            items[item["sk"]["S"]] = item
    return items


# --- key scheme -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "partition"),
    [
        ("cw/src/aws/vendedlogs/group", "cw/src"),
        ("files/inbox/a.jsonl", "files/inbox"),
        ("s3/src/bucket/key#etag#", "s3/src"),
        ("files/inbox/", "files/inbox"),
        ("files/inbox", "files/inbox"),
        ("lease", "lease"),
        ("/x/y", "/x"),
    ],
)
def test_partition_of(key: str, partition: str) -> None:
    assert partition_of(key) == partition


@pytest.mark.parametrize(
    ("prefix", "partition"),
    [
        ("cw/src/", "cw/src"),
        ("cw/src/aws/", "cw/src"),
        ("cw/src", None),  # would also match cw/src2/...
        ("cw/", None),
        ("", None),
    ],
)
def test_partition_of_prefix(prefix: str, partition: str | None) -> None:
    assert partition_of_prefix(prefix) == partition
    if partition is not None:
        assert partition_of(prefix + "anything/else") == partition


async def test_item_layout(
    make_store: Callable[..., RecordingStore], moto: MotoServer, dynamo_table: str, clock: Clock
) -> None:
    store = make_store()
    await store.put("cw/src/aws/group", {"token": "t\u00e9"}, ttl=10.5)
    await store.put("lease", {"owner": "a"})
    await store.put("lease", {"owner": "b"})
    items = raw_items(moto, dynamo_table)
    assert items["cw/src/aws/group"] == {
        "pk": {"S": "cw/src"},
        "sk": {"S": "cw/src/aws/group"},
        "value": {"S": '{"token":"t\u00e9"}'},
        "version": {"N": "1"},
        "expires_at": {"N": str(math.ceil(clock.now + 10.5))},  # whole seconds, rounded up
    }
    assert items["lease"] == {
        "pk": {"S": "lease"}, "sk": {"S": "lease"}, "value": {"S": '{"owner":"b"}'},
        "version": {"N": "2"},
    }  # fmt: skip


async def test_scan_queries_one_partition_across_pages(
    make_store: Callable[..., RecordingStore],
) -> None:
    store = make_store(page_size=7)
    writes = [store.put(f"cw/src/group-{i:03d}", {"i": i}) for i in range(100)]
    writes += [store.put(f"cw/src2/group-{i:03d}", {"i": i}) for i in range(10)]
    writes += [store.put(f"files/src/{i}", {"i": i}) for i in range(5)]
    await asyncio.gather(*writes)

    store.operations.clear()
    found = await store.scan("cw/src/")
    assert found == {f"cw/src/group-{i:03d}": Versioned({"i": i}, 1) for i in range(100)}
    assert set(store.operations) == {"query"}
    assert len(store.operations) >= 100 // 7  # it followed LastEvaluatedKey

    store.operations.clear()
    assert set(await store.scan("cw/src/group-05")) == {
        f"cw/src/group-{i:03d}" for i in range(50, 60)
    }
    assert set(store.operations) == {"query"}

    store.operations.clear()
    assert len(await store.scan("cw/src")) == 110  # also cw/src2/...: more than one partition
    assert set(store.operations) == {"scan"}
    assert len(store.operations) >= 115 // 7
    assert len(await store.scan("cw/")) == 110
    assert len(await store.scan("")) == 115


async def test_scan_with_full_pages_of_large_items(
    make_store: Callable[..., RecordingStore],
) -> None:
    """Without a Limit DynamoDB pages by 1 MB; ~1.5 MB of values needs more than one page."""
    store = make_store()
    blob = "x" * 100_000
    await asyncio.gather(
        *(store.put(f"files/big/{i:02d}", {"blob": blob, "i": i}) for i in range(15))
    )
    store.operations.clear()
    found = await store.scan("files/big/")
    assert sorted(v.value["i"] for v in found.values()) == list(range(15))
    assert store.operations == ["query", "query"]


# --- replicas -----------------------------------------------------------------------


async def test_two_replicas_racing_to_create_exactly_one_wins(
    make_store: Callable[..., RecordingStore],
) -> None:
    replicas = [make_store(), make_store()]
    for round_ in range(25):
        key = f"lease/src/{round_}"

        async def claim(owner: int, store: DynamoStateStore, key: str = key) -> int | None:
            try:
                return await store.put(key, {"owner": owner}, expected_version=0, ttl=30)
            except VersionConflict:
                return None

        results = await asyncio.gather(*(claim(n, s) for n, s in enumerate(replicas)))
        winners = [owner for owner, version in enumerate(results) if version is not None]
        assert len(winners) == 1, results
        assert results[winners[0]] == 1
        assert await replicas[1 - winners[0]].get(key) == Versioned({"owner": winners[0]}, 1)


async def test_conflict_names_the_version_found(make_store: Callable[..., RecordingStore]) -> None:
    store = make_store()
    await store.put("cw/src/g", {})
    await store.put("cw/src/g", {})
    with pytest.raises(VersionConflict, match="expected version 1, found 2"):
        await store.put("cw/src/g", {}, expected_version=1)
    with pytest.raises(VersionConflict, match="expected version 0, found 2"):
        await store.put("cw/src/g", {}, expected_version=0)
    with pytest.raises(VersionConflict, match="expected version 3, found 0"):
        await store.delete("cw/src/none", expected_version=3)


# --- ttl: expired but not yet deleted ------------------------------------------------


async def test_expired_items_still_in_the_table_are_absent(
    make_store: Callable[..., RecordingStore], moto: MotoServer, dynamo_table: str, clock: Clock
) -> None:
    store = make_store(page_size=2)
    await store.put("s3/src/b/old", {"n": 1}, ttl=5)
    await store.put("s3/src/b/old", {"n": 2}, ttl=5)
    await store.put("s3/src/b/keep", {"n": 3})
    await store.put("s3/src/b/later", {"n": 4}, ttl=3600)
    clock.now += 10

    assert set(raw_items(moto, dynamo_table)) == {"s3/src/b/old", "s3/src/b/keep", "s3/src/b/later"}
    assert await store.get("s3/src/b/old") is None
    assert set(await store.scan("s3/src/")) == {"s3/src/b/keep", "s3/src/b/later"}  # Query
    assert set(await store.scan("s3/")) == {"s3/src/b/keep", "s3/src/b/later"}  # Scan
    with pytest.raises(VersionConflict, match="found 0"):
        await store.put("s3/src/b/old", {}, expected_version=2)
    with pytest.raises(VersionConflict, match="found 0"):
        await store.delete("s3/src/b/old", expected_version=2)
    await store.delete("s3/src/b/old", expected_version=0)  # absent, as expected
    assert "s3/src/b/old" not in raw_items(moto, dynamo_table)

    await store.put("s3/src/b/again", {"n": 5}, ttl=1)
    clock.now += 2
    assert await store.put("s3/src/b/again", {"n": 6}) == 1  # over the expired one
    assert await store.put("s3/src/b/again", {"n": 7}) == 2
    assert "expires_at" not in raw_items(moto, dynamo_table)["s3/src/b/again"]
    await store.put("s3/src/b/gone", {}, ttl=1)
    clock.now += 2
    assert await store.put("s3/src/b/gone", {"n": 8}, expected_version=0) == 1


async def test_unconditional_writers_over_an_expired_item_get_distinct_versions(
    make_store: Callable[..., RecordingStore], clock: Clock
) -> None:
    store = make_store()
    await store.put("files/src/x", {"old": True}, ttl=1)
    clock.now += 5
    versions = await asyncio.gather(*(store.put("files/src/x", {"i": i}) for i in range(10)))
    assert sorted(versions) == list(range(1, 11))


# --- errors ------------------------------------------------------------------------


async def test_ping_fails_with_state_error_when_the_endpoint_is_down() -> None:
    down = AwsEndpoint(region=REGION, endpoint_url=f"http://127.0.0.1:{free_port()}")
    store = DynamoStateStore("state", down, max_attempts=2)
    try:
        started = time.monotonic()
        with pytest.raises(StateError, match="dynamodb table state"):
            await store.ping()
        with pytest.raises(StateError):
            await store.put("files/src/x", {})
        assert time.monotonic() - started < 30
    finally:
        await store.close()


async def test_missing_table_says_to_run_state_init(moto: MotoServer) -> None:
    store = DynamoStateStore(MotoServer.unique("missing"), endpoint_of(moto), max_attempts=1)
    try:
        with pytest.raises(StateError, match="state init"):
            await store.ping()
        with pytest.raises(StateError, match="does not exist"):
            await store.get("files/src/x")
    finally:
        await store.close()


async def test_ping_succeeds_on_an_empty_table(make_store: Callable[..., RecordingStore]) -> None:
    await make_store().ping()


async def test_an_item_that_is_not_ours_is_a_state_error(
    make_store: Callable[..., RecordingStore], moto: MotoServer, dynamo_table: str
) -> None:
    moto.client("dynamodb").put_item(
        TableName=dynamo_table,
        Item={"pk": {"S": "files/src"}, "sk": {"S": "files/src/x"}, "value": {"S": "[1]"},
              "version": {"N": "1"}},
    )  # fmt: skip
    store = make_store()
    with pytest.raises(StateError, match="no JSON object"):
        await store.get("files/src/x")


async def test_key_limits(make_store: Callable[..., RecordingStore]) -> None:
    store = make_store()
    with pytest.raises(ValueError, match="empty"):
        await store.get("")
    with pytest.raises(StateError, match="1024 bytes"):
        await store.put("files/src/" + "\u00e9" * 510, {})
    assert await store.put("files/src/" + "e" * 1014, {}) == 1


# --- the table --------------------------------------------------------------------


async def test_ensure_table_creates_an_on_demand_table_with_ttl(moto: MotoServer) -> None:
    name = MotoServer.unique("init")
    try:
        report = await ensure_table(name, endpoint_of(moto))
        assert (report.created, report.ttl_enabled_now, report.billing_mode) == (
            True, True, "PAY_PER_REQUEST",
        )  # fmt: skip
        client = moto.client("dynamodb")
        table = client.describe_table(TableName=name)["Table"]
        assert table["KeySchema"] == [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}

        again = await ensure_table(name, endpoint_of(moto))
        assert (again.created, again.ttl_enabled_now) == (False, False)
    finally:
        moto.client("dynamodb").delete_table(TableName=name)


async def test_ensure_table_enables_ttl_on_an_existing_table(moto: MotoServer) -> None:
    name = MotoServer.unique("nottl")
    client = moto.client("dynamodb")
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    )  # fmt: skip
    try:
        report = await ensure_table(name, endpoint_of(moto))
        assert (report.created, report.ttl_enabled_now, report.billing_mode) == (
            False, True, "PROVISIONED",
        )  # fmt: skip
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
        )
        with pytest.raises(StateError, match="TTL on 'ttl' \\(want 'expires_at'\\)"):
            await ensure_table(name, endpoint_of(moto))
    finally:
        client.delete_table(TableName=name)


async def test_ensure_table_refuses_another_key_schema(moto: MotoServer) -> None:
    name = MotoServer.unique("wrong")
    client = moto.client("dynamodb")
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        with pytest.raises(StateError) as caught:
            await ensure_table(name, endpoint_of(moto))
        message = str(caught.value)
        assert "HASH key is 'id' (want 'pk')" in message
        assert "has no RANGE key (want 'sk' of type S)" in message
    finally:
        client.delete_table(TableName=name)


async def test_ensure_table_when_the_endpoint_is_down() -> None:
    down = AwsEndpoint(region=REGION, endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StateError, match="dynamodb table t"):
        await ensure_table("t", down, max_attempts=1)


def test_the_cloudformation_table_matches_state_init() -> None:
    class CfnLoader(yaml.SafeLoader):
        pass

    def intrinsic(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_scalar(node)  # type: ignore[arg-type]

    for tag in ("!Ref", "!GetAtt", "!Sub", "!If", "!Equals"):
        CfnLoader.add_constructor(tag, intrinsic)
    template = yaml.load(
        (ROOT / "deploy" / "dynamodb" / "state-table.yaml").read_text(), Loader=CfnLoader
    )
    table = template["Resources"]["StateTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == KEY_SCHEMA
    assert table["AttributeDefinitions"] == ATTRIBUTE_DEFINITIONS
    assert table["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
