"""`aws setup --security-lake`: one Security Lake custom source per OCSF class.

For each of the five classes the forwarder writes, CreateCustomLogSource (securitylake)
unless a custom source of that name exists in the Region (ListLogSources). Security
Lake then makes, per source, the S3 location, the provider role the forwarder writes
with (`AmazonSecurityLake-Provider-<name>-<region>`, trusting `--provider-account` with
`--external-id`), the Glue crawler and the Lake Formation table.

What this command does not create, it prints: the Glue crawler's IAM role (the API
needs its ARN, `--glue-role-arn`; creating IAM roles is left to the operator's
tooling), the permission the forwarder's own identity needs (sts:AssumeRole on the
provider roles), and the Lake Formation grants that let analysts query the tables.
The report lines start with "# ", then comes a configuration with the
`security_lake` sink filled in from the API's answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, TextIO

import yaml

from forwarder.aws_setup.permissions import call, paginate
from forwarder.aws_setup.plan import UsageError
from forwarder.sinks.security_lake.layout import (
    CLASSES,
    SOURCE_NAME,
    SOURCE_VERSION,
    parse_location,
    source_name,
)

DEFAULT_TEMPLATE = "workmail-{class}"
DEFAULT_VERSION = "1.0"
DEFAULT_EXTERNAL_ID = "workmail-forwarder"
GLUE_MANAGED_POLICY = "arn:aws:iam::aws:policy/service-role/AWSGlueServiceRole"


class LakeSetupError(Exception):
    """A precondition the operator must fix (Security Lake not enabled in the Region)."""


@dataclass(frozen=True)
class LakePlan:
    account: str  # the caller's account: partition `accountId=` and default provider
    partition: str  # aws, aws-cn, aws-us-gov
    region: str
    template: str = DEFAULT_TEMPLATE
    version: str = DEFAULT_VERSION
    glue_role_arn: str | None = None
    external_id: str = DEFAULT_EXTERNAL_ID
    provider_account: str | None = None  # who writes: default the caller's account

    def __post_init__(self) -> None:
        for uid in CLASSES:
            name = self.source_name(uid)
            if not SOURCE_NAME.match(name):
                raise UsageError(f"--source-name: {name!r} is not 1-20 of A-Z a-z 0-9 _ - : .")
        if not SOURCE_VERSION.match(self.version):
            raise UsageError(f"--source-version: {self.version!r} is not 1-32 of A-Z a-z 0-9 - . _")
        if not 2 <= len(self.external_id) <= 1224:
            raise UsageError("--external-id: 2 to 1224 characters")

    def source_name(self, uid: int) -> str:
        return source_name(self.template, uid)

    @property
    def principal(self) -> str:
        return self.provider_account or self.account

    def create_request(self, uid: int) -> dict[str, Any]:
        assert self.glue_role_arn is not None
        return {
            "sourceName": self.source_name(uid),
            "sourceVersion": self.version,
            "eventClasses": [CLASSES[uid][1]],
            "configuration": {
                "crawlerConfiguration": {"roleArn": self.glue_role_arn},
                "providerIdentity": {"externalId": self.external_id, "principal": self.principal},
            },
        }

    def provider_role_pattern(self) -> str:
        names = self.template.replace("{class}", "*").replace("{class_uid}", "*")
        role = f"AmazonSecurityLake-Provider-{names}-{self.region}"
        return f"arn:{self.partition}:iam::{self.account}:role/{role}"


@dataclass
class LakeResult:
    bucket: str | None
    locations: dict[str, str] = field(default_factory=dict)  # class short name -> s3 uri
    role_arns: dict[str, str] = field(default_factory=dict)
    created: int = 0
    missing: int = 0  # sources not created (no --glue-role-arn, or a dry run)


def apply_lake(clients: Any, plan: LakePlan, *, dry_run: bool, out: TextIO) -> LakeResult:
    lake_client = clients("securitylake")
    bucket = _lake_bucket(lake_client, plan.region)
    print(f"# security lake in {plan.region}: bucket {bucket}", file=out)
    existing = _custom_sources(lake_client, plan)
    result = LakeResult(bucket)
    for uid, (short, event_class, caption) in CLASSES.items():
        name = plan.source_name(uid)
        what = f"custom source {name} ({event_class}, OCSF {uid} {caption})"
        source = existing.get(name)
        if source is not None:
            print(f"# {what}: unchanged", file=out)
        elif dry_run:
            print(f"# {what}: would create", file=out)
            result.missing += 1
            continue
        elif plan.glue_role_arn is None:
            print(f"# {what}: not created: needs --glue-role-arn (the role below)", file=out)
            result.missing += 1
            continue
        else:
            answer = call(lake_client, "create_custom_log_source", **plan.create_request(uid))
            source = answer.get("source") or {}
            result.created += 1
            print(f"# {what}: created", file=out)
        provider = source.get("provider") or {}
        if provider.get("location"):
            parse_location(provider["location"])
            result.locations[short] = provider["location"]
        if provider.get("roleArn"):
            result.role_arns[short] = provider["roleArn"]
        if source.get("sourceVersion") not in (None, plan.version):
            print(f"#   (it has version {source['sourceVersion']}; the location above is its own)",
                  file=out)  # fmt: skip
    print_manual_steps(plan, result, out)
    return result


def _lake_bucket(client: Any, region: str) -> str | None:
    lakes = call(client, "list_data_lakes", regions=[region]).get("dataLakes") or []
    for lake in lakes:
        if lake.get("region") == region:
            arn = str(lake.get("s3BucketArn") or "")
            return arn.rsplit(":", 1)[-1] or None
    raise LakeSetupError(
        f"Security Lake is not enabled in {region}: enable it first (console, or "
        f"securitylake CreateDataLake), then run this again"
    )


def _custom_sources(client: Any, plan: LakePlan) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    pages = paginate(client, "list_log_sources", "sources", regions=[plan.region])
    for entry in pages:
        for resource in entry.get("sources") or []:
            custom = resource.get("customLogSource")
            if custom and custom.get("sourceName"):
                found[custom["sourceName"]] = custom
    return found


def _statement(**fields: Any) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [fields]}, indent=2)


def print_manual_steps(plan: LakePlan, result: LakeResult, out: TextIO) -> None:
    """The IAM, Glue and Lake Formation parts this command leaves to the operator."""
    bucket = result.bucket or "<the Security Lake bucket>"
    lines = [""]
    if plan.glue_role_arn is None:
        lines += [
            "To create the custom sources, first create the Glue crawler's role (then pass",
            "--glue-role-arn): trusted by glue.amazonaws.com, with the managed policy",
            f"{GLUE_MANAGED_POLICY} and this inline policy:",
            *_statement(
                Effect="Allow",
                Action=["s3:GetObject", "s3:PutObject"],
                Resource=[f"arn:{plan.partition}:s3:::{bucket}/*"],
            ).splitlines(),
            "trust policy:",
            *_statement(
                Effect="Allow", Principal={"Service": "glue.amazonaws.com"}, Action="sts:AssumeRole"
            ).splitlines(),
            "",
        ]
    lines += [
        f"The identity the forwarder runs as (account {plan.principal}) needs this, to write",
        "with the provider roles Security Lake made (they trust that account with external",
        f"id {plan.external_id!r}):",
        *_statement(
            Effect="Allow", Action="sts:AssumeRole", Resource=plan.provider_role_pattern()
        ).splitlines(),
        "",
        "To query the tables (Athena), grant Lake Formation SELECT on the custom sources'",
        "tables in the amazon_security_lake_glue_db_* database to the analysts' roles",
        "(lakeformation:GrantPermissions; the console: Lake Formation > Data permissions).",
    ]
    for line in lines:
        print(f"# {line}".rstrip(), file=out)


def lake_sink(plan: LakePlan, result: LakeResult, endpoint_url: str | None) -> dict[str, Any]:
    """The `security_lake` sink for the configuration snippet."""
    sink: dict[str, Any] = {
        "id": "security-lake",
        "type": "security_lake",
        "region": plan.region,
        "account_id": plan.account,
    }
    if endpoint_url:
        sink["endpoint_url"] = endpoint_url
    sink["bucket"] = result.bucket
    if plan.template != DEFAULT_TEMPLATE:
        sink["source_name"] = plan.template
    if plan.version != DEFAULT_VERSION:
        sink["source_version"] = plan.version
    if result.locations:
        sink["locations"] = dict(result.locations)
    if result.role_arns:
        sink["role_arns"] = dict(result.role_arns)
        sink["external_id"] = plan.external_id
    return sink


def lake_config_snippet(sinks: list[dict[str, Any]]) -> str:
    """A configuration `check-config` accepts: a files source to replace, the lake sink."""
    document = {
        "sources": [{"id": "workmail", "type": "files", "path": "./inbox"}],
        "sinks": sinks,
    }
    header = (
        "# workmail-forwarder configuration for these custom sources; replace the files\n"
        "# source with where your WorkMail logs are (aws setup --organization-id ... --to\n"
        "# ... --security-lake prints both; config/example.yaml lists every source).\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False)
