"""`workmail-forwarder detections export`: argument parsing and the report.

Imported by the CLI on every invocation, so pySigma is only imported once the command
actually runs; without it the command says what to install.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
TARGETS = ("splunk", "elasticsearch", "esql")
INSTALL_HINT = (
    "detections export needs pySigma and its Splunk and Elasticsearch backends: "
    "pip install 'pySigma==1.5.1' 'pySigma-backend-splunk==2.1.0' "
    "'pySigma-backend-elasticsearch==2.1.1' (they come with `pip install workmail-forwarder`)"
)


def add_parser(commands: Any) -> None:
    detections = commands.add_parser("detections", help="the Sigma rules shipped for WorkMail")
    actions = detections.add_subparsers(dest="detections_command", required=True, metavar="COMMAND")
    export = actions.add_parser(
        "export", help="convert the rules to Splunk SPL, Elasticsearch Lucene or ES|QL"
    )
    export.add_argument("--target", required=True, choices=TARGETS)
    export.add_argument(
        "--schema", choices=("ocsf", "ecs"), default=None,
        help="the documents' schema in the SIEM (default: ocsf for splunk, ecs for elastic)",
    )  # fmt: skip
    export.add_argument(
        "--out", type=Path, default=None, metavar="DIR",
        help="where the files go (default out/detections/TARGET)",
    )  # fmt: skip
    export.add_argument("--rules", type=Path, default=None, metavar="DIR",
                        help="the rule folder (default: detections/ of this checkout)")  # fmt: skip
    export.add_argument(
        "--placeholders", type=Path, default=None, metavar="FILE",
        help="values of the rules' %%placeholders%% (default: RULES/placeholders.yml)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    try:
        from forwarder.detections import export, rules
    except ImportError as exc:
        print(f"{INSTALL_HINT}\n({exc})", file=sys.stderr)
        return EXIT_FAILURE
    try:
        directory = rules.rules_dir(args.rules)
        placeholders = rules.load_placeholders(
            args.placeholders or directory / rules.PLACEHOLDERS_FILE
        )
    except (rules.RulesNotFound, OSError, ValueError) as exc:
        print(f"detections export: {exc}", file=sys.stderr)
        return EXIT_USAGE
    schema = args.schema or export.DEFAULT_SCHEMA[args.target]
    out = args.out or Path("out") / "detections" / args.target
    result = export.convert(args.target, schema, directory, placeholders)
    export.write(result, out)
    for rule in result.rules:
        name = rule.name or str(rule.id)
        reason = result.unsupported.get(name)
        state = f"not supported by the backend: {reason}" if reason else "converted"
        print(f"{name}: {state}")
    print(
        f"ok: {len(result.queries)} of {len(result.rules)} rules for {args.target} ({schema}) "
        f"in {out}; {len(result.unsupported)} not supported by the backend (see manifest.json)"
    )
    return EXIT_OK
