"""Which log groups a source reads, and the log type a group's name implies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import structlog
from botocore.exceptions import ClientError

from forwarder.aws import THROTTLE_CODES, error_code
from forwarder.config import CloudWatchSourceConfig
from forwarder.sources.cloudwatch.budget import AdaptiveBudget

log = structlog.get_logger(__name__)

# Log type tokens as they may appear in a group name, after lower-casing and removing
# separators ("/aws/vendedlogs/workmail/m-0123/AUTHENTICATION_LOGS",
# "/aws/workmail/emailevents/acme"). Most specific first: "personalaccesstoken" must
# win over anything shorter it contains.
_TOKENS = (
    ("personalaccesstoken", "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS"),
    ("availabilityprovider", "WORKMAIL_AVAILABILITY_PROVIDER_LOGS"),
    ("mailboxaccess", "WORKMAIL_MAILBOX_ACCESS_LOGS"),
    ("accesscontrol", "ACCESS_CONTROL_LOGS"),
    ("authentication", "AUTHENTICATION_LOGS"),
    ("emailevent", "EMAIL_EVENT_LOGS"),
)
_SEPARATORS = re.compile(r"[-_/. ]+")


def log_type_from_group(name: str) -> str | None:
    """The log type a group's name names, or None (the name is only a hint: LOGS.md 3.1)."""
    flat = _SEPARATORS.sub("", name.lower())
    for token, log_type in _TOKENS:
        if token in flat:
            return log_type
    return None


@dataclass(frozen=True, slots=True)
class GroupInfo:
    created: int | None  # creationTime, epoch ms; None when it could not be listed
    arn: str | None  # without the trailing ":*" (what StartLiveTail takes)


async def describe_groups(client: Any, prefix: str, budget: AdaptiveBudget) -> dict[str, GroupInfo]:
    """Every log group whose name starts with `prefix`, by name.

    Throttles slow the shared budget and are retried here; other errors propagate.
    """
    found: dict[str, GroupInfo] = {}
    kwargs: dict[str, Any] = {"logGroupNamePrefix": prefix}
    while True:
        await budget.acquire()
        try:
            response = await client.describe_log_groups(**kwargs)
        except ClientError as exc:
            if error_code(exc) in THROTTLE_CODES:
                budget.throttled()
                continue
            raise
        budget.succeeded()
        for group in response.get("logGroups", []):
            name = group.get("logGroupName")
            if isinstance(name, str) and name.startswith(prefix):
                arn = group.get("logGroupArn") or str(group.get("arn") or "").removesuffix(":*")
                found[name] = GroupInfo(int(group.get("creationTime") or 0), arn or None)
        token = response.get("nextToken")
        if not token:
            return found
        kwargs["nextToken"] = token


async def discover(
    client: Any, config: CloudWatchSourceConfig, budget: AdaptiveBudget
) -> dict[str, GroupInfo]:
    """The groups a source reads now, by name: its prefix's and its explicit list."""
    found: dict[str, GroupInfo] = {}
    prefix = config.log_group_prefix
    if prefix:
        found.update(await describe_groups(client, prefix, budget))
    for name in config.log_groups:
        if name in found:
            continue
        try:
            matches = await describe_groups(client, name, budget)
        except ClientError as exc:
            # DescribeLogGroups denied by a narrow policy: read the group anyway.
            log.warning("cloudwatch_describe_failed", source=config.id, log_group=name,
                        error=error_code(exc))  # fmt: skip
            found[name] = GroupInfo(None, None)
            continue
        if name in matches:
            found[name] = matches[name]
        else:
            log.warning("cloudwatch_group_missing", source=config.id, log_group=name)
    return found
