"""The one place that builds AWS clients (aiobotocore).

Credentials come from the standard chain (environment, shared profile, ECS task role,
IRSA web identity); a source's `region` and `endpoint_url` override the rest, so moto,
LocalStack and VPC endpoints all work the same way. Retries use botocore's "standard"
mode (exponential backoff with jitter, throttling errors included). Connect and read
timeouts come from each source's `connect_timeout` / `read_timeout`; the SQS client's
read timeout never goes below the long-poll wait plus a margin, so a long poll is never
cut as a timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.credentials import (
    AioAssumeRoleCredentialFetcher,
    AioDeferredRefreshableCredentials,
)
from aiobotocore.session import AioSession, get_session
from botocore.exceptions import BotoCoreError, ClientError

from forwarder.config import AwsEndpoint

LONG_POLL_MAX = 20.0  # seconds: SQS WaitTimeSeconds upper bound
# Errors that say "not now" (network, timeouts, botocore's own): try again later.
TRANSIENT_ERRORS = (BotoCoreError, aiohttp.ClientError, TimeoutError, OSError)
# Error codes AWS uses for "slow down" (CloudWatch Logs uses all three).
THROTTLE_CODES = frozenset(
    {"ThrottlingException", "Throttling", "RequestLimitExceeded", "RateExceeded",
     "TooManyRequestsException", "RequestThrottled", "SlowDown"}
)  # fmt: skip


def client_config(
    *,
    max_pool_connections: int = 20,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    max_attempts: int = 6,
    inject_host_prefix: bool = True,
) -> AioConfig:
    return AioConfig(
        inject_host_prefix=inject_host_prefix,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )


@dataclass(frozen=True, slots=True)
class AssumeRole:
    """A role to act as (sts:AssumeRole), e.g. a Security Lake custom source's provider role."""

    role_arn: str
    external_id: str | None = None
    session_name: str = "workmail-forwarder"


async def _assume(session: AioSession, role: AssumeRole, endpoint: AwsEndpoint) -> None:
    """Give `session` the role's credentials, refreshed before they expire."""
    source = await session.get_credentials()
    extra: dict[str, Any] = {"RoleSessionName": role.session_name}
    if role.external_id:
        extra["ExternalId"] = role.external_id
    creator = partial(
        session.create_client, region_name=endpoint.region, endpoint_url=endpoint.endpoint_url
    )
    fetcher = AioAssumeRoleCredentialFetcher(creator, source, role.role_arn, extra_args=extra)
    session._credentials = AioDeferredRefreshableCredentials(
        fetcher.fetch_credentials, "assume-role"
    )


@asynccontextmanager
async def client(
    service: str,
    endpoint: AwsEndpoint,
    *,
    max_pool_connections: int = 20,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    max_attempts: int = 6,
    inject_host_prefix: bool = True,
    role: AssumeRole | None = None,
) -> AsyncIterator[Any]:
    """An aiobotocore client for `service`, closed (with its connection pool) on exit.

    `max_attempts=1` hands every error to the caller: a source that adapts its own
    rate must see each throttle, not botocore's retries hiding them. With `role`, the
    client acts as that role (credentials from sts:AssumeRole, refreshed as they expire).
    """
    session = get_session()
    if role is not None:
        await _assume(session, role, endpoint)
    if service == "sqs":  # a long poll is never cut as a timeout
        read_timeout = max(read_timeout, LONG_POLL_MAX + 10)
    config = client_config(
        max_pool_connections=max_pool_connections,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_attempts=max_attempts,
        inject_host_prefix=inject_host_prefix,
    )
    async with session.create_client(
        service,
        region_name=endpoint.region,
        endpoint_url=endpoint.endpoint_url,
        config=config,
    ) as aws_client:
        yield aws_client


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError ("NoSuchKey", "AccessDenied", "404", ...)."""
    error = exc.response.get("Error", {})
    return str(error.get("Code", ""))


def http_status(exc: ClientError) -> int:
    meta = exc.response.get("ResponseMetadata", {})
    try:
        return int(meta.get("HTTPStatusCode", 0))
    except (TypeError, ValueError):
        return 0
