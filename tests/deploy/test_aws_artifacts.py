"""deploy/ecs/task-definition.json and deploy/iam/policy.json against botocore's own models.

The task definition is walked through the ECS RegisterTaskDefinition input shape (member
names, types, enums, required members, bounds); every IAM action must name an operation
of its service's model; and the policy must grant exactly what the daemon calls.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore import xform_name
from botocore.model import Shape
from botocore.validate import ParamValidator

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "deploy" / "ecs" / "task-definition.json"
POLICY = ROOT / "deploy" / "iam" / "policy.json"
CONTAINER_CONFIG = ROOT / "deploy" / "config" / "container.yaml"
SESSION = botocore.session.get_session()

# IAM actions that are not operations of their own but authorize a variant of one.
IAM_ONLY = {
    "s3:GetObjectVersion": "GetObject",  # GetObject with VersionId (versioned buckets)
    "s3:ListBucket": "ListObjectsV2",
}
# Operations that IAM authorizes through another action.
AUTHORIZED_BY = {
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "s3:ListObjectsV2": "s3:ListBucket",
    # IAM authorises the parts of a multipart upload by s3:PutObject (the abort has its own).
    "s3:CreateMultipartUpload": "s3:PutObject",
    "s3:UploadPart": "s3:PutObject",
    "s3:CompleteMultipartUpload": "s3:PutObject",
}
# Operator commands, not the daemon (`state init`, `replay-dead-letter`): their
# permissions are documented apart, in docs/operations.md.
# Operator commands (state init, replay, aws setup/status) run with the operator's
# credentials, not the daemon's role: their calls are not in the daemon's policy.
ADMIN_MODULES = {
    "forwarder/state/dynamodb_table.py",
    "forwarder/sources/replay.py",
    "forwarder/replay.py",
}
ADMIN_PACKAGES = ("forwarder/aws_setup/",)
DAEMON_SERVICES = ("sqs", "s3", "logs", "dynamodb")


def load(path: Path) -> Any:
    return json.loads(path.read_text())


# --- the ECS task definition ---------------------------------------------------------


def check_shape(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object")
            return
        for name in value:
            if name not in shape.members:
                problems.append(f"{path}.{name}: not a member of {shape.name}")
        for name in shape.required_members:
            if name not in value:
                problems.append(f"{path}.{name}: required by {shape.name}")
        for name, member in shape.members.items():
            if name in value:
                check_shape(member, value[name], f"{path}.{name}", problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list")
            return
        for index, item in enumerate(value):
            check_shape(shape.member, item, f"{path}[{index}]", problems)  # type: ignore[attr-defined]
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map")
            return
        for key, item in value.items():
            check_shape(shape.key, key, f"{path}<key {key}>", problems)  # type: ignore[attr-defined]
            check_shape(shape.value, item, f"{path}.{key}", problems)  # type: ignore[attr-defined]
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string")
        elif shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
        elif "min" in meta and len(value) < meta["min"]:
            problems.append(f"{path}: shorter than {meta['min']}")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: expected an integer")
        elif ("min" in meta and value < meta["min"]) or ("max" in meta and value > meta["max"]):
            problems.append(f"{path}: {value} is out of range")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected a boolean")
    elif kind in ("double", "float"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            problems.append(f"{path}: expected a number")
    else:
        problems.append(f"{path}: {kind} is not expected in a task definition")


def register_task_definition_problems(task: Any) -> list[str]:
    model = SESSION.get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    problems: list[str] = []
    check_shape(shape, task, "$", problems)
    report = ParamValidator().validate(task, shape)
    if report.has_errors():
        problems.append(report.generate_report())
    return problems


def test_task_definition_matches_the_ecs_api() -> None:
    assert register_task_definition_problems(load(TASK)) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda t: t["containerDefinitions"][0].update(readOnlyRootFilesystem=True), "not a member"),
        (lambda t: t.update(networkMode="vpc"), "is not one of"),
        (lambda t: t["containerDefinitions"][0]["portMappings"][0].update(containerPort="9464"),
         "expected an integer"),
        (lambda t: t["containerDefinitions"][0]["secrets"][0].pop("valueFrom"), "required by"),
        (lambda t: t["containerDefinitions"][0]["logConfiguration"].update(logDriver="cloudwatch"),
         "is not one of"),
    ],
)  # fmt: skip
def test_the_shape_walk_finds_mistakes(change: Any, problem: str) -> None:
    task = copy.deepcopy(load(TASK))
    change(task)
    problems = register_task_definition_problems(task)
    assert any(problem in p for p in problems), problems


def container_config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CONTAINER_CONFIG.read_text())
    return loaded


def test_task_definition_runs_the_image_as_documented() -> None:
    task = load(TASK)
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/.+", task["taskRoleArn"])
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/.+", task["executionRoleArn"])
    [container] = task["containerDefinitions"]
    user, _, group = container["user"].partition(":")
    assert int(user) >= 1000 and int(group) >= 1000, "run as the image's non-root user"
    assert container["readonlyRootFilesystem"] is True
    assert container["linuxParameters"]["capabilities"]["drop"] == ["ALL"]
    grace = float(container_config()["shutdown_grace"].rstrip("s"))
    assert grace + 10 <= container["stopTimeout"] <= 120
    assert container["portMappings"] == [
        {"name": "metrics", "containerPort": 9464, "protocol": "tcp"}
    ]
    assert container_config()["telemetry"]["listen"] == "0.0.0.0:9464"
    health = container["healthCheck"]["command"]
    assert health[:3] == ["CMD", "python", "-c"]
    assert "urllib.request" in health[3] and "http://127.0.0.1:9464/healthz" in health[3]
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    volumes = {v["name"] for v in task["volumes"]}
    [mount] = container["mountPoints"]
    assert mount["sourceVolume"] in volumes and mount["readOnly"] is False
    assert container_config()["state"]["path"].startswith(mount["containerPath"] + "/")
    assert container_config()["dead_letter"]["path"].startswith(mount["containerPath"] + "/")


def test_task_definition_supplies_every_variable_and_secrets_stay_secret() -> None:
    [container] = load(TASK)["containerDefinitions"]
    plain = {e["name"] for e in container["environment"]}
    secret = {s["name"] for s in container["secrets"]}
    for item in container["secrets"]:
        assert re.fullmatch(r"arn:aws:(secretsmanager|ssm):[a-z0-9-]+:\d{12}:.+", item["valueFrom"])
    needed = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", CONTAINER_CONFIG.read_text()))
    assert needed <= plain | secret, needed - plain - secret
    assert not {n for n in plain if re.search("TOKEN|KEY|PASSWORD|SECRET", n)}


# --- the IAM policy ------------------------------------------------------------------

_STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Condition"}
_CONDITION_OPERATORS = {"StringEquals", "StringLike", "ArnLike", "ArnEquals", "Bool"}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iam_grammar_problems(policy: Any) -> list[str]:
    problems = []
    if set(policy) != {"Version", "Statement"}:
        problems.append(f"top level keys {sorted(policy)}")
    if policy.get("Version") != "2012-10-17":
        problems.append("Version must be 2012-10-17")
    statements = policy.get("Statement")
    if not isinstance(statements, list) or not statements:
        return [*problems, "Statement must be a non-empty list"]
    sids = [s.get("Sid") for s in statements]
    if len(set(sids)) != len(sids):
        problems.append("Sids must be unique")
    for statement in statements:
        sid = statement.get("Sid")
        if not isinstance(sid, str) or not re.fullmatch(r"[A-Za-z0-9]+", sid):
            problems.append(f"{sid!r}: a Sid is alphanumeric")
        if not set(statement) <= _STATEMENT_KEYS or not {"Effect", "Action", "Resource"} <= set(
            statement
        ):
            problems.append(f"{sid}: keys {sorted(statement)}")
        if statement.get("Effect") not in ("Allow", "Deny"):
            problems.append(f"{sid}: Effect")
        for action in as_list(statement.get("Action")):
            if not isinstance(action, str) or not re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action):
                problems.append(f"{sid}: {action!r} is not service:Action (no wildcards)")
        for resource in as_list(statement.get("Resource")):
            if not isinstance(resource, str) or not re.fullmatch(
                r"arn:aws:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:.+", resource
            ):
                problems.append(f"{sid}: {resource!r} is not a scoped ARN")
        for operator, block in statement.get("Condition", {}).items():
            if operator not in _CONDITION_OPERATORS or not isinstance(block, dict):
                problems.append(f"{sid}: condition {operator}")
    return problems


def test_policy_is_valid_iam_grammar() -> None:
    assert iam_grammar_problems(load(POLICY)) == []


def test_grammar_check_finds_mistakes() -> None:
    policy = copy.deepcopy(load(POLICY))
    policy["Version"] = "2008-10-17"
    policy["Statement"][0]["Action"].append("sqs:*")
    policy["Statement"][1]["Resource"] = "*"
    policy["Statement"][2]["Principal"] = "*"
    assert len(iam_grammar_problems(policy)) == 4


def operations(service: str) -> set[str]:
    return set(SESSION.get_service_model(service).operation_names)


def granted() -> list[tuple[str, dict[str, Any]]]:
    return [(action, s) for s in load(POLICY)["Statement"] for action in as_list(s["Action"])]


def test_every_action_is_an_operation_of_its_service() -> None:
    for action, statement in granted():
        prefix, _, name = action.partition(":")
        assert prefix in (*DAEMON_SERVICES, "kms"), action
        operation = IAM_ONLY.get(action, name)
        assert operation in operations(prefix), f"{action}: no such {prefix} operation"
        for resource in as_list(statement["Resource"]):
            assert resource.startswith(f"arn:aws:{prefix}:"), f"{action} on {resource}"


def test_kms_only_through_the_services() -> None:
    [kms] = [s for s in load(POLICY)["Statement"] if as_list(s["Action"])[0].startswith("kms:")]
    via = kms["Condition"]["StringEquals"]["kms:ViaService"]
    assert {v.split(".")[0] for v in via} == {"s3", "sqs", "dynamodb"}


def daemon_calls() -> dict[str, set[str]]:
    """`service:Operation` -> modules, for every AWS call the daemon's code makes."""
    by_name = {}
    for service in DAEMON_SERVICES:
        for operation in operations(service):
            by_name[xform_name(operation)] = f"{service}:{operation}"
    calls: dict[str, set[str]] = {}
    pattern = re.compile(r'get_paginator\(\s*"([a-z0-9_]+)"|\.([a-z0-9_]+)\(|"([a-z0-9_]+)"')
    for path in sorted((ROOT / "forwarder").rglob("*.py")):
        module = str(path.relative_to(ROOT))
        if module in ADMIN_MODULES or module.startswith(ADMIN_PACKAGES):
            continue
        for match in pattern.finditer(path.read_text()):
            name = next(group for group in match.groups() if group)
            if name in by_name:
                calls.setdefault(by_name[name], set()).add(module)
    return calls


def test_policy_grants_exactly_what_the_daemon_calls() -> None:
    calls = daemon_calls()
    needed = {AUTHORIZED_BY.get(call, call) for call in calls}
    actions = {action for action, _ in granted()}
    daemon_actions = {a for a in actions if not a.startswith("kms:")} - {"s3:GetObjectVersion"}
    assert needed - actions == set(), f"calls the policy does not allow: {needed - actions}"
    assert daemon_actions - needed == set(), f"granted but never called: {daemon_actions - needed}"
    assert "sqs:ReceiveMessage" in needed and "logs:FilterLogEvents" in needed
