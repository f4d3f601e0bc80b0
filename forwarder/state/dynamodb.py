"""DynamoStateStore: the StateStore over one DynamoDB table, shared by every replica.

Item layout (`state init` creates the table; deploy/dynamodb/state-table.yaml is the
same table in CloudFormation):

    pk          S  partition: the key's first two `/` segments (`cw/<source>`), or
                   the whole key when it has fewer than three segments
    sk          S  the full key (`cw/<source>/<group>`)
    value       S  the JSON object (orjson)
    version     N  1 on create, +1 on every write
    expires_at  N  epoch seconds, only on items written with a ttl; the table's TTL
                   attribute, so DynamoDB deletes expired items (lazily, within days)

Keys are `<kind>/<source>/<rest>`, and every prefix scan the sources make covers
`<kind>/<source>/`, so a scan is a Query on one partition with begins_with(sk, prefix).
A prefix that stops short of the second `/` (`cw/`, `""`) may match several
partitions: that falls back to a paginated Scan with the same begins_with filter,
which reads the whole table and is meant for tools, not for the hot path. One
partition per source keeps a source's keys together without making one partition
hold every source; the table has no local index, so DynamoDB can split a hot item
collection by sort key.

Compare-and-set is a ConditionExpression on `version`; a failed condition is a
VersionConflict. Because TTL deletion is lazy, an expired item may still be in the
table: reads filter it out, and every condition treats it as absent (creating over
it starts again at version 1), as the SQLite and memory stores do. Expiry is judged
by this process's clock (replicas are assumed NTP-synchronised); `expires_at` is
rounded up to a whole second, so an item never vanishes before its ttl.

Reads are strongly consistent: a checkpoint read right after a write by another
replica must see that write. Throttling, 5xx and connection errors are retried by
botocore ("standard" mode, see forwarder.aws) and then raised as StateError.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

import orjson
from botocore.exceptions import ClientError

from forwarder import aws
from forwarder.aws import TRANSIENT_ERRORS, error_code
from forwarder.config import AwsEndpoint
from forwarder.errors import StateError, VersionConflict
from forwarder.state.base import StateStore, Versioned

PARTITION_SEGMENTS = 2
MAX_SORT_KEY_BYTES = 1024  # DynamoDB's limit on a sort key value
_CREATE_RETRIES = 10  # an unconditional put racing with re-creations of an expired item

# `value` is a DynamoDB reserved word; naming every attribute keeps expressions uniform.
_NAMES = {"#pk": "pk", "#sk": "sk", "#value": "value", "#version": "version", "#exp": "expires_at"}
_LIVE = "(attribute_not_exists(#exp) OR #exp > :now)"
_ABSENT = "(attribute_not_exists(#sk) OR #exp <= :now)"


def partition_of(key: str) -> str:
    """The partition key of `key`: `cw/<source>` for `cw/<source>/<group>`."""
    parts = key.split("/", PARTITION_SEGMENTS)
    if len(parts) <= PARTITION_SEGMENTS:
        return key
    return "/".join(parts[:PARTITION_SEGMENTS])


def partition_of_prefix(prefix: str) -> str | None:
    """The one partition holding every key that starts with `prefix`, or None if several may."""
    parts = prefix.split("/", PARTITION_SEGMENTS)
    if len(parts) <= PARTITION_SEGMENTS:
        return None
    return "/".join(parts[:PARTITION_SEGMENTS])


class _ConditionFailed(Exception):
    def __init__(self, old: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.old = old


class DynamoStateStore(StateStore):
    """Checkpoints and leases of every replica in one DynamoDB table.

    The aiobotocore client is opened on first use (stores are built synchronously)
    and closed by `close`. `page_size` bounds the items of one Query/Scan page;
    None lets DynamoDB fill 1 MB pages.
    """

    shared = True  # every replica of the deployment points at the same table

    def __init__(
        self,
        table: str,
        endpoint: AwsEndpoint | None = None,
        *,
        page_size: int | None = None,
        max_attempts: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.table = table
        self._endpoint = endpoint or AwsEndpoint()
        self._page_size = page_size
        self._max_attempts = max_attempts
        self._clock = clock
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._opening = asyncio.Lock()
        self._closed = False

    async def get(self, key: str) -> Versioned | None:
        response = await self._call(
            "get_item", Key=_key(key), ConsistentRead=True, ExpressionAttributeNames=_PROJECTED,
            ProjectionExpression=_PROJECTION,
        )  # fmt: skip
        item = response.get("Item")
        if item is None or not self._live(item):
            return None
        return self._versioned(key, item)

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
        text = orjson.dumps(value).decode()
        if expected_version is None:
            return await self._put_unconditionally(key, text, ttl)
        condition, values = _compare(expected_version)
        version = expected_version + 1
        try:
            await self._replace(key, text, version, ttl, condition, values)
        except _ConditionFailed as failed:
            raise self._conflict(key, expected_version, failed.old) from None
        return version

    async def delete(self, key: str, *, expected_version: int | None = None) -> None:
        params: dict[str, Any] = {"Key": _key(key)}
        if expected_version is not None:
            condition, values = _compare(expected_version)
            params.update(
                ConditionExpression=condition,
                ExpressionAttributeNames=_names(condition),
                ExpressionAttributeValues={":now": self._now(), **values},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        try:
            await self._call("delete_item", **params)
        except _ConditionFailed as failed:
            assert expected_version is not None
            raise self._conflict(key, expected_version, failed.old) from None

    async def scan(self, prefix: str) -> dict[str, Versioned]:
        partition = partition_of_prefix(prefix)
        values: dict[str, Any] = {":now": self._now()}
        params: dict[str, Any] = {"ConsistentRead": True, "ProjectionExpression": _PROJECTION}
        if self._page_size is not None:
            params["Limit"] = self._page_size
        if partition is not None:
            operation = "query"
            params["KeyConditionExpression"] = "#pk = :pk AND begins_with(#sk, :prefix)"
            params["FilterExpression"] = _LIVE
            values.update({":pk": {"S": partition}, ":prefix": {"S": prefix}})
        else:
            operation = "scan"
            params["FilterExpression"] = _LIVE
            if prefix:  # begins_with refuses an empty prefix
                params["FilterExpression"] = f"begins_with(#sk, :prefix) AND {_LIVE}"
                values[":prefix"] = {"S": prefix}
        used = _names(f"{params.get('KeyConditionExpression', '')} {params['FilterExpression']}")
        params["ExpressionAttributeNames"] = {**used, **_PROJECTED}
        params["ExpressionAttributeValues"] = values
        found: dict[str, Versioned] = {}
        while True:
            response = await self._call(operation, **params)
            for item in response.get("Items", []):
                key = item["sk"]["S"]
                found[key] = self._versioned(key, item)
            last = response.get("LastEvaluatedKey")
            if not last:
                return found
            params["ExclusiveStartKey"] = last

    async def ping(self) -> None:
        # GetItem, not DescribeTable: it needs no permission the daemon lacks anyway.
        await self._call("get_item", Key={"pk": {"S": "ping"}, "sk": {"S": "ping"}})

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._opening:
            self._client = None
            await self._stack.aclose()

    # -- writes ------------------------------------------------------------------

    async def _put_unconditionally(self, key: str, text: str, ttl: float | None) -> int:
        """Increment the version of a live (or absent) item; start over an expired one."""
        for _ in range(_CREATE_RETRIES):
            assignments = "#value = :value" + (", #exp = :exp" if ttl is not None else "")
            update = f"SET {assignments} ADD #version :one"
            if ttl is None:
                update += " REMOVE #exp"
            condition = f"attribute_not_exists(#sk) OR {_LIVE}"
            values: dict[str, Any] = {":value": {"S": text}, ":one": _number(1)}
            values[":now"] = self._now()
            if ttl is not None:
                values[":exp"] = self._expires_at(ttl)
            try:
                response = await self._call(
                    "update_item", Key=_key(key), UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=_names(f"{update} {condition}"),
                    ExpressionAttributeValues=values, ReturnValues="UPDATED_NEW",
                )  # fmt: skip
                return int(response["Attributes"]["version"]["N"])
            except _ConditionFailed:
                pass  # an expired item is in the way: replace it while it still is
            try:
                await self._replace(key, text, 1, ttl, "#exp <= :now", {})
                return 1
            except _ConditionFailed:
                continue  # someone wrote a live item meanwhile: increment that one
        raise StateError(f"dynamodb table {self.table}: {key!r}: too many concurrent writers")

    async def _replace(
        self,
        key: str,
        text: str,
        version: int,
        ttl: float | None,
        condition: str,
        values: dict[str, Any],
    ) -> None:
        item: dict[str, Any] = {
            **_key(key), "value": {"S": text}, "version": _number(version),
        }  # fmt: skip
        if ttl is not None:
            item["expires_at"] = self._expires_at(ttl)
        await self._call(
            "put_item", Item=item, ConditionExpression=condition,
            ExpressionAttributeNames=_names(condition),
            ExpressionAttributeValues={":now": self._now(), **values},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )  # fmt: skip

    def _conflict(self, key: str, expected: int, old: dict[str, Any] | None) -> VersionConflict:
        found = 0 if old is None or not self._live(old) else int(old["version"]["N"])
        return VersionConflict(f"{key!r}: expected version {expected}, found {found}")

    # -- plumbing ----------------------------------------------------------------

    async def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        client = await self._open()
        try:
            response: dict[str, Any] = await getattr(client, operation)(
                TableName=self.table, **params
            )
        except ClientError as exc:
            code = error_code(exc)
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed(exc.response.get("Item")) from None
            raise StateError(self._describe(operation, exc, code)) from exc
        except TRANSIENT_ERRORS as exc:
            raise StateError(f"dynamodb table {self.table}: {operation}: {exc}") from exc
        return response

    async def _open(self) -> Any:
        if self._closed:
            raise StateError("state store is closed")
        if self._client is not None:
            return self._client
        async with self._opening:
            if self._closed:
                raise StateError("state store is closed")
            if self._client is None:
                try:
                    self._client = await self._stack.enter_async_context(
                        aws.client("dynamodb", self._endpoint, max_attempts=self._max_attempts)
                    )
                except TRANSIENT_ERRORS as exc:  # no region, bad profile, ...
                    raise StateError(f"dynamodb table {self.table}: {exc}") from exc
            return self._client

    def _describe(self, operation: str, exc: ClientError, code: str) -> str:
        message = exc.response.get("Error", {}).get("Message", "")
        if code == "ResourceNotFoundException":
            hint = "does not exist: create it with `workmail-forwarder state init`"
            return f"dynamodb table {self.table} {hint} ({message})"
        return f"dynamodb table {self.table}: {operation}: {code}: {message}"

    def _now(self) -> dict[str, str]:
        return {"N": repr(round(self._clock(), 6))}

    def _expires_at(self, ttl: float) -> dict[str, str]:
        return _number(math.ceil(self._clock() + ttl))

    def _live(self, item: dict[str, Any]) -> bool:
        expires = item.get("expires_at")
        return expires is None or float(expires["N"]) > self._clock()

    def _versioned(self, key: str, item: dict[str, Any]) -> Versioned:
        try:
            value = orjson.loads(item["value"]["S"])
            version = int(item["version"]["N"])
        except (KeyError, ValueError, orjson.JSONDecodeError) as exc:
            raise StateError(f"dynamodb table {self.table}: key {key!r} holds a bad item") from exc
        if not isinstance(value, dict):
            raise StateError(f"dynamodb table {self.table}: key {key!r} holds no JSON object")
        return Versioned(value, version)


_PROJECTED = {"#sk": "sk", "#value": "value", "#version": "version", "#exp": "expires_at"}
_PROJECTION = "#sk, #value, #version, #exp"


def _key(key: str) -> dict[str, dict[str, str]]:
    if not key:
        raise ValueError("state keys cannot be empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_SORT_KEY_BYTES:
        raise StateError(f"state key longer than {MAX_SORT_KEY_BYTES} bytes: {key[:80]!r}...")
    return {"pk": {"S": partition_of(key)}, "sk": {"S": key}}


def _compare(expected: int) -> tuple[str, dict[str, Any]]:
    """The condition (and its values) that a live item is at version `expected`."""
    if expected == 0:
        return _ABSENT, {}  # absent, or expired but not deleted yet
    return f"#version = :expected AND {_LIVE}", {":expected": _number(expected)}


def _names(expression: str) -> dict[str, str]:
    """The ExpressionAttributeNames an expression uses (DynamoDB rejects unused ones)."""
    return {name: attr for name, attr in _NAMES.items() if name in expression}


def _number(value: int) -> dict[str, str]:
    return {"N": str(value)}
