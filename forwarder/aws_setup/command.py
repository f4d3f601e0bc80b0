"""`workmail-forwarder aws setup|status`: argument parsing and the boto3 session.

Imported by the CLI for every invocation, so boto3 is only imported once an `aws`
command actually runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def add_parser(commands: Any) -> None:
    aws = commands.add_parser("aws", help="set up or inspect WorkMail audit log delivery in AWS")
    actions = aws.add_subparsers(dest="aws_command", required=True, metavar="COMMAND")
    setup = actions.add_parser(
        "setup", help="create the vended-log deliveries (and S3 notification queue), and with "
        "--security-lake the Security Lake custom sources; idempotent",
    )  # fmt: skip
    _common(setup, organization_required=False)
    setup.add_argument("--to", default=None, metavar="s3://BUCKET/PREFIX|cloudwatch:LOG_GROUP")
    setup.add_argument(
        "--queue", default=None, metavar="NAME",
        help="SQS queue for S3 notifications (default workmail-audit-<org id>)",
    )  # fmt: skip
    setup.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    lake = setup.add_argument_group("Amazon Security Lake (--security-lake)")
    lake.add_argument(
        "--security-lake",
        action="store_true",
        help="create a custom source per OCSF class; the config gets the sink",
    )
    lake.add_argument(
        "--glue-role-arn",
        default=None,
        metavar="ARN",
        help="the Glue crawler's role (printed how to create it when missing)",
    )
    lake.add_argument(
        "--external-id",
        default=None,
        metavar="ID",
        help="the provider roles' external id (default workmail-forwarder)",
    )
    lake.add_argument(
        "--provider-account",
        default=None,
        metavar="ACCOUNT",
        help="the account the forwarder writes from (default the caller's)",
    )
    lake.add_argument(
        "--source-name",
        default=None,
        metavar="TEMPLATE",
        help="custom source names, {class}: auth web api entity email (default workmail-{class})",
    )
    lake.add_argument("--source-version", default=None, metavar="V", help="default 1.0")
    status = actions.add_parser("status", help="deliveries per log type, queue depth, last event")
    _common(status)


def _common(parser: argparse.ArgumentParser, *, organization_required: bool = True) -> None:
    parser.add_argument("--organization-id", required=organization_required, metavar="m-...")
    parser.add_argument("--region", default=None)
    parser.add_argument("--endpoint-url", default=None, metavar="URL")


class Clients:
    """boto3 clients, one per service, from the standard credential chain."""

    def __init__(self, region: str | None, endpoint_url: str | None) -> None:
        import boto3
        from botocore.config import Config

        self.session = boto3.session.Session(region_name=region)
        self.region: str | None = self.session.region_name
        self.endpoint_url = endpoint_url
        self._config = Config(retries={"mode": "standard", "max_attempts": 5},
                              connect_timeout=10, read_timeout=60)  # fmt: skip
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, endpoint_url=self.endpoint_url, config=self._config
            )
        return self._clients[service]


def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import BotoCoreError

    from forwarder.aws_setup.apply import SetupError
    from forwarder.aws_setup.permissions import AwsCallError
    from forwarder.aws_setup.plan import UsageError
    from forwarder.aws_setup.security_lake import LakeSetupError

    name = f"aws {args.aws_command}"
    try:
        if args.aws_command == "setup":
            return _setup(args)
        return _status(args)
    except UsageError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (AwsCallError, SetupError, LakeSetupError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BotoCoreError as exc:  # no credentials, endpoint unreachable
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _identity(clients: Clients) -> tuple[str, str]:
    """(account, partition) of the caller."""
    from forwarder.aws_setup.permissions import call

    identity = call(clients("sts"), "get_caller_identity")
    return str(identity["Account"]), str(identity["Arn"]).split(":")[1]


def _clients(args: argparse.Namespace) -> tuple[Clients, str]:
    from forwarder.aws_setup.plan import UsageError

    clients = Clients(args.region, args.endpoint_url)
    if not clients.region:
        raise UsageError("no region: pass --region or set AWS_REGION")
    return clients, clients.region


def _setup(args: argparse.Namespace) -> int:
    from forwarder.aws_setup.apply import apply_plan
    from forwarder.aws_setup.plan import (
        Plan,
        S3Target,
        UsageError,
        check_organization_id,
        check_queue_name,
        default_queue_name,
        parse_target,
    )

    deliveries = args.organization_id is not None or args.to is not None
    if deliveries and (args.organization_id is None or args.to is None):
        raise UsageError("--organization-id and --to go together")
    if not deliveries and not args.security_lake:
        raise UsageError("--organization-id and --to are required (or --security-lake)")
    lake_options = (args.glue_role_arn, args.external_id, args.provider_account,
                    args.source_name, args.source_version)  # fmt: skip
    if not args.security_lake and any(option is not None for option in lake_options):
        raise UsageError("--glue-role-arn, --external-id, ...: only with --security-lake")
    if deliveries:
        organization_id = check_organization_id(args.organization_id)
        target = parse_target(args.to)
        queue = None
        if isinstance(target, S3Target):
            queue = check_queue_name(args.queue or default_queue_name(organization_id))
        elif args.queue is not None:
            raise UsageError("--queue: only an s3:// destination is read through a queue")
    clients, region = _clients(args)
    account, partition = _identity(clients)
    sinks = (
        _security_lake(args, clients, account, partition, region) if args.security_lake else None
    )
    if not deliveries:
        from forwarder.aws_setup.security_lake import lake_config_snippet

        assert sinks is not None
        print(lake_config_snippet(sinks), end="")
        return EXIT_OK
    plan = Plan(organization_id, account, region, partition, target, queue)
    print(f"# aws setup{' (dry run)' if args.dry_run else ''}: {plan.organization_arn} "
          f"-> {target}")  # fmt: skip
    apply_plan(clients, plan, dry_run=args.dry_run, out=sys.stdout, sinks=sinks)
    return EXIT_OK


def _security_lake(
    args: argparse.Namespace, clients: Clients, account: str, partition: str, region: str
) -> list[dict[str, Any]]:
    from forwarder.aws_setup.security_lake import (
        DEFAULT_EXTERNAL_ID,
        DEFAULT_TEMPLATE,
        DEFAULT_VERSION,
        LakePlan,
        apply_lake,
        lake_sink,
    )

    plan = LakePlan(
        account, partition, region,
        template=args.source_name or DEFAULT_TEMPLATE,
        version=args.source_version or DEFAULT_VERSION,
        glue_role_arn=args.glue_role_arn,
        external_id=args.external_id or DEFAULT_EXTERNAL_ID,
        provider_account=args.provider_account,
    )  # fmt: skip
    print(f"# aws setup --security-lake{' (dry run)' if args.dry_run else ''}: "
          f"custom sources in {region}")  # fmt: skip
    result = apply_lake(clients, plan, dry_run=args.dry_run, out=sys.stdout)
    return [lake_sink(plan, result, clients.endpoint_url)]


def _status(args: argparse.Namespace) -> int:
    from forwarder.aws_setup.plan import check_organization_id, organization_arn
    from forwarder.aws_setup.status import report_status

    organization_id = check_organization_id(args.organization_id)
    clients, region = _clients(args)
    account, partition = _identity(clients)
    arn = organization_arn(partition, region, account, organization_id)
    return report_status(clients, arn, sys.stdout)
