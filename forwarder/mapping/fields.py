"""The mapping table: each documented WorkMail field, its OCSF home and its ECS home.

Data, not code on the hot path. `docs/mapping.md` is generated from it
(`python scripts/gen_mapping_doc.py`), and tests/mapping/test_fields.py checks every
row against what the mappers really emit, so the table, the docs and the code
cannot drift apart. Paths are dotted; `[]` steps into every element of an array.
"""

from __future__ import annotations

from typing import NamedTuple


class Row(NamedTuple):
    source: str  # field in the WorkMail record (dotted for email events: event.from)
    ocsf: str  # where its value lands in OCSF 1.5.0
    ecs: str  # where its value lands in ECS 9.4.0
    note: str = ""
    verbatim: bool = True  # the value itself lands there (False: derived from it)


class Kind(NamedTuple):
    log_type: str
    title: str
    ocsf_class: str
    ecs_categorization: str
    rows: tuple[Row, ...]


_ORG = (
    Row("event_timestamp", "time", "@timestamp", "epoch ms; ECS as ISO-8601 UTC", verbatim=False),
    Row("request_id", "metadata.correlation_uid", "aws.workmail.request_id"),
    Row(
        "organization_arn",
        "cloud.account.uid",
        "cloud.account.id",
        "also region (cloud.region) and the org id (OCSF metadata.tenant_uid, ECS organization.id)",
        verbatim=False,
    ),
)

KINDS: tuple[Kind, ...] = (
    Kind(
        "AUTHENTICATION_LOGS",
        "Authentication logs",
        "Authentication [3002], activity Logon (1); profile cloud",
        "event.category authentication, event.type start",
        (
            *_ORG,
            Row("user_id", "user.uid", "user.id"),
            Row("user", "user.name", "user.name"),
            Row(
                "protocol",
                "dst_endpoint.svc_name",
                "aws.workmail.protocol",
                "ECS network.protocol for IMAP/SMTP",
            ),
            Row("source_ip", "src_endpoint.ip", "source.ip", "also ECS related.ip"),
            Row("user_agent", "http_request.user_agent", "user_agent.original"),
            Row(
                "method",
                "auth_protocol",
                "aws.workmail.method",
                "basic: auth_protocol_id 11",
                verbatim=False,
            ),
            Row(
                "auth_successful",
                "status_id",
                "event.outcome",
                "failure: severity Medium",
                verbatim=False,
            ),
            Row("auth_failed_reason", "status_detail", "event.reason"),
            Row(
                "personal_access_token_id",
                "user.credential_uid",
                "aws.workmail.personal_access_token_id",
            ),
        ),
    ),
    Kind(
        "ACCESS_CONTROL_LOGS",
        "Access control logs",
        'Web Resources Activity [6001], activity Other (99) "Access Evaluation"; '
        "profiles cloud, host, security_control",
        "event.category network, event.type access + allowed|denied",
        (
            *_ORG,
            Row("user_id", "actor.user.uid", "user.id"),
            Row("impersonator_id", "unmapped.impersonator_id", "aws.workmail.impersonator_id"),
            Row("protocol", "dst_endpoint.svc_name", "aws.workmail.protocol"),
            Row("source_ip", "src_endpoint.ip", "source.ip"),
            Row("scope", "policy.group.name", "rule.ruleset", "also aws.workmail.scope"),
            Row("rule_id", "policy.uid", "rule.id", "absent when no rule matched"),
            Row(
                "access_granted",
                "action_id",
                "event.outcome",
                "action_id/disposition_id 1 Allowed, 2 Denied/Blocked",
                verbatim=False,
            ),
        ),
    ),
    Kind(
        "WORKMAIL_MAILBOX_ACCESS_LOGS",
        "Mailbox access logs",
        "API Activity [6003], activity from action (read* Read, create Create, "
        "update/move/copy Update, delete Delete, else Other); profiles cloud, security_control",
        "event.category api, event.type access|creation|change|deletion + allowed|denied",
        (
            *_ORG,
            Row("user_id", "actor.user.uid", "user.id"),
            Row("impersonator_id", "unmapped.impersonator_id", "aws.workmail.impersonator_id"),
            Row("protocol", "api.service.name", "aws.workmail.protocol"),
            Row("source_ip", "src_endpoint.ip", "source.ip"),
            Row("user_agent", "http_request.user_agent", "user_agent.original"),
            Row("action", "api.operation", "event.action"),
            Row(
                "owner_id",
                "resources[].owner.uid",
                "aws.workmail.owner_id",
                "ECS user.target.id when not the user",
            ),
            Row("object_type", "resources[].type", "aws.workmail.object_type"),
            Row("item_id", "resources[].uid", "aws.workmail.item_id"),
            Row("folder_path", "resources[].name", "aws.workmail.folder_path"),
            Row("folder_id", "resources[].uid", "aws.workmail.folder_id"),
            Row("attachment_path", "resources[].name", "email.attachments[].file.name"),
            Row(
                "action_allowed",
                "action_id",
                "event.outcome",
                "denied: status Failure, severity Medium",
                verbatim=False,
            ),
        ),
    ),
    Kind(
        "WORKMAIL_AVAILABILITY_PROVIDER_LOGS",
        "Availability provider logs",
        "API Activity [6003], activity Read (2), api.operation AvailabilityLookup; profile cloud",
        "event.category api, event.type access",
        (
            *_ORG,
            Row("user_id", "actor.user.uid", "user.id"),
            Row("type", "api.service.name", "aws.workmail.type", "EWS or LAMBDA"),
            Row("domain", "resources[].name", "destination.domain"),
            Row("function_arn", "resources[].uid", "aws.workmail.function_arn"),
            Row(
                "ews_endpoint",
                "http_request.url.url_string",
                "url.original",
                "host also in OCSF dst_endpoint.hostname (.ip for an IP literal), ECS url.domain",
            ),
            Row("error_message", "status_detail", "error.message"),
            Row("availability_event_successful", "status_id", "event.outcome", verbatim=False),
        ),
    ),
    Kind(
        "WORKMAIL_PERSONAL_ACCESS_TOKEN_LOGS",
        "Personal access token logs",
        "Entity Management [3004], activity Create (1) / Delete (4); "
        "status Unknown (no outcome is logged); profile cloud",
        "event.category iam, event.type creation|deletion + user",
        (
            *_ORG,
            Row("user_id", "actor.user.uid", "user.id"),
            Row("user", "actor.user.name", "user.name"),
            Row("protocol", "unmapped.protocol", "aws.workmail.protocol"),
            Row("source_ip", "src_endpoint.ip", "source.ip"),
            Row("user_agent", "http_request.user_agent", "user_agent.original"),
            Row("action", "activity_name", "event.action", "create / delete", verbatim=False),
            Row("name", "entity.name", "aws.workmail.pat.name"),
            Row(
                "expires_time",
                "entity.data.expires_time",
                "aws.workmail.pat.expires_time",
                verbatim=False,
            ),
            Row("scopes", "entity.data.scopes", "aws.workmail.pat.scopes"),
        ),
    ),
    Kind(
        "EMAIL_EVENT_LOGS",
        "Email event logs",
        "Email Activity [4009]; activity Receive (2), Send (1), Scan (3) or Trace (4) by "
        "eventName; direction from eventName; profile cloud",
        "event.category email, event.type info",
        (
            Row(
                "traceId",
                "message_trace_uid",
                "email.local_id",
                "also OCSF metadata.correlation_uid",
            ),
            Row(
                "event.eventName",
                "metadata.event_code",
                "event.action",
                "ECS in lower case",
                verbatim=False,
            ),
            Row(
                "event.recipients",
                "email.to",
                "email.to.address",
                "OCSF needs a from or to address: unknown@unknown.invalid when none is known; "
                "addresses outside OCSF email_t stay in unmapped / aws.workmail",
            ),
            Row("event.recipient", "email.delivered_to_list", "email.to.address"),
            Row("event.sender", "unmapped.event.sender", "email.sender.address"),
            Row("event.from", "email.from", "email.from.address"),
            Row("event.subject", "email.subject", "email.subject"),
            Row("event.messageId", "email.message_uid", "email.message_id"),
            Row(
                "event.messageTimestamp",
                "metadata.original_time",
                "email.origination_timestamp",
                verbatim=False,
            ),
            Row("event.spamVerdict", "unmapped.event.spamVerdict", "aws.workmail.spam_verdict"),
            Row("event.spfVerdict", "email_auth.spf", "aws.workmail.spf_verdict"),
            Row("event.dkimVerdict", "email_auth.dkim", "aws.workmail.dkim_verdict"),
            Row("event.dmarcVerdict", "email_auth.dmarc", "aws.workmail.dmarc_verdict"),
            Row("event.dmarcPolicy", "email_auth.dmarc_policy", "aws.workmail.dmarc_policy"),
            Row(
                "event.policy",
                "email_auth.dmarc_policy",
                "aws.workmail.dmarc_policy",
                "DMARC_POLICY_APPLIED",
            ),
            Row("event.folder", "unmapped.event.folder", "aws.workmail.folder"),
            Row("event.ruleName", "policy.name", "rule.name"),
            Row("event.ruleType", "policy.group.name", "rule.category"),
            Row("event.ruleActions", "policy.data.ruleActions", "aws.workmail.rule_actions"),
            Row("event.targetFolder", "policy.data.targetFolder", "aws.workmail.target_folder"),
            Row(
                "event.targetRecipient",
                "policy.data.targetRecipient",
                "aws.workmail.target_recipient",
            ),
            Row("event.journalingAddress", "email.to", "email.to.address"),
            Row(
                "event.bouncedRecipient",
                "status_detail",
                "event.reason",
                "reason; status as OCSF status_code",
                verbatim=False,
            ),
        ),
    ),
)
