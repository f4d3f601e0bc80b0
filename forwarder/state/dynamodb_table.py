"""`state init`: create the DynamoDB state table, or check that an existing one fits.

The table is on-demand (PAY_PER_REQUEST), keyed by `pk` (HASH, S) and `sk` (RANGE, S),
with TTL on `expires_at` (see forwarder/state/dynamodb.py for the item layout). An
existing table with that key schema is fine whatever its billing mode; one with another
key schema, or with TTL on another attribute, is an error naming what differs. Two
`state init` runs at once are fine too: the loser of the CreateTable race waits for the
winner's table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from forwarder import aws
from forwarder.aws import TRANSIENT_ERRORS, error_code
from forwarder.config import AwsEndpoint
from forwarder.errors import StateError

TTL_ATTRIBUTE = "expires_at"
KEY_SCHEMA = [
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
]
ATTRIBUTE_DEFINITIONS = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
]


@dataclass(frozen=True, slots=True)
class TableReport:
    table: str
    created: bool  # False: it existed already
    ttl_enabled_now: bool  # TTL was switched on by this run
    billing_mode: str


async def ensure_table(
    table: str,
    endpoint: AwsEndpoint,
    *,
    wait_delay: float = 2.0,
    wait_attempts: int = 60,
    max_attempts: int = 5,
) -> TableReport:
    """Create `table` (idempotently) and enable TTL; StateError names what went wrong."""
    try:
        async with aws.client("dynamodb", endpoint, max_attempts=max_attempts) as client:
            created = False
            description = await _describe(client, table)
            if description is None:
                created = await _create(client, table)
            waiter = client.get_waiter("table_exists")
            config = {"Delay": wait_delay, "MaxAttempts": wait_attempts}
            await waiter.wait(TableName=table, WaiterConfig=config)
            description = await _describe(client, table)
            if description is None:
                raise StateError(f"dynamodb table {table} vanished while being created")
            _check_schema(table, description)
            ttl_now = await _enable_ttl(client, table)
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        raise StateError(f"dynamodb table {table}: {error_code(exc)}: {message}") from exc
    except WaiterError as exc:
        raise StateError(f"dynamodb table {table} did not become ACTIVE: {exc}") from exc
    except TRANSIENT_ERRORS as exc:
        raise StateError(f"dynamodb table {table}: {exc}") from exc
    billing = description.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    return TableReport(table, created, ttl_now, str(billing))


async def _describe(client: Any, table: str) -> dict[str, Any] | None:
    try:
        response = await client.describe_table(TableName=table)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    description: dict[str, Any] = response["Table"]
    return description


async def _create(client: Any, table: str) -> bool:
    try:
        await client.create_table(
            TableName=table,
            KeySchema=KEY_SCHEMA,
            AttributeDefinitions=ATTRIBUTE_DEFINITIONS,
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": "app", "Value": "workmail-forwarder"}],
        )
    except ClientError as exc:
        if error_code(exc) == "ResourceInUseException":
            return False  # another `state init` created it first
        raise
    return True


def _check_schema(table: str, description: dict[str, Any]) -> None:
    problems: list[str] = []
    keys = {k["KeyType"]: k["AttributeName"] for k in description.get("KeySchema", [])}
    types = {
        a["AttributeName"]: a["AttributeType"] for a in description.get("AttributeDefinitions", [])
    }
    for wanted in KEY_SCHEMA:
        kind, name = wanted["KeyType"], wanted["AttributeName"]
        have = keys.get(kind)
        if have is None:
            problems.append(f"has no {kind} key (want {name!r} of type S)")
        elif have != name:
            problems.append(f"{kind} key is {have!r} (want {name!r})")
        elif types.get(name) != "S":
            problems.append(f"{kind} key {name!r} has type {types.get(name)} (want S)")
    if problems:
        raise StateError(
            f"dynamodb table {table} exists with another key schema: " + "; ".join(problems)
        )


async def _enable_ttl(client: Any, table: str) -> bool:
    response = await client.describe_time_to_live(TableName=table)
    ttl = response.get("TimeToLiveDescription", {})
    status = ttl.get("TimeToLiveStatus", "DISABLED")
    attribute = ttl.get("AttributeName")
    if status in ("ENABLED", "ENABLING"):
        if attribute != TTL_ATTRIBUTE:
            raise StateError(
                f"dynamodb table {table} has TTL on {attribute!r} (want {TTL_ATTRIBUTE!r})"
            )
        return False
    if status == "DISABLING":
        raise StateError(f"dynamodb table {table}: TTL is being disabled; run state init later")
    await client.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
    return True
