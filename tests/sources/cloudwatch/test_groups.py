"""Log types from group names; the source's configuration."""

from __future__ import annotations

import pytest

from forwarder.config import ConfigError, parse_config
from forwarder.sources.cloudwatch.groups import log_type_from_group


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("/aws/vendedlogs/workmail/m-0123/AUTHENTICATION_LOGS", "AUTHENTICATION_LOGS"),
        ("/aws/vendedlogs/workmail/access-control", "ACCESS_CONTROL_LOGS"),
        ("/wm/WORKMAIL_MAILBOX_ACCESS_LOGS", "WORKMAIL_MAILBOX_ACCESS_LOGS"),
        ("/wm/personal_access_token", "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS"),
        ("/wm/availability-provider-logs", "WORKMAIL_AVAILABILITY_PROVIDER_LOGS"),
        ("/aws/workmail/emailevents/acme", "EMAIL_EVENT_LOGS"),
        ("/aws/workmail/misc", None),
    ],
)
def test_log_type_tokens_in_group_names(name: str, expected: str | None) -> None:
    assert log_type_from_group(name) == expected


def cloudwatch(**fields: object) -> dict[str, object]:
    source = {"id": "cw", "type": "cloudwatch", **fields}
    return {"sources": [source], "sinks": [{"id": "f", "type": "file", "path": "out.ndjson"}]}


def test_a_source_needs_groups_or_a_prefix() -> None:
    with pytest.raises(ConfigError, match=r"sources\[0\].*log_groups, log_group_prefix"):
        parse_config(cloudwatch())


def test_start_must_be_now_beginning_or_a_timestamp() -> None:
    parse_config(cloudwatch(log_groups=["/g"], start="2026-11-01T00:00:00Z"))
    with pytest.raises(ConfigError, match=r"sources\[0\]\.start"):
        parse_config(cloudwatch(log_groups=["/g"], start="yesterday"))


def test_page_limit_and_rate_are_bounded() -> None:
    with pytest.raises(ConfigError, match=r"sources\[0\]\.page_limit"):
        parse_config(cloudwatch(log_groups=["/g"], page_limit=10_001))
    with pytest.raises(ConfigError, match=r"sources\[0\]\.max_requests_per_second"):
        parse_config(cloudwatch(log_groups=["/g"], max_requests_per_second=0))
