"""The Helm chart without a helm binary: values against the schema, templates by structure.

Each template is reduced to plain YAML: lines holding only template actions are dropped,
`{{ .Values.a.b }}` is replaced by that value from values.yaml (which must exist), and any
other expression by a placeholder. What is left must parse, with the kinds and keys a
cluster needs. The default `config` must also be a valid forwarder configuration.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from forwarder import __version__
from forwarder.config import parse_config

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "workmail-forwarder"
TEMPLATES = CHART / "templates"
PLACEHOLDER = "TEMPLATED"
_COMMENT = re.compile(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", re.DOTALL)
_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_VALUES_REF = re.compile(r"\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
_SIMPLE_VALUE = re.compile(r"^\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)(\s*\|\s*quote)?$")
ENV = {
    "WMF_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/111122223333/workmail-audit",
    "SPLUNK_HEC_URL": "https://splunk.example.com:8088",
    "SPLUNK_HEC_TOKEN": "00000000-0000-0000-0000-000000000000",
}


def values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return loaded


def lookup(tree: dict[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.strip(".").split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f".Values{dotted} is not in values.yaml")
        node = node[part]
    return node


def strip_template(text: str, vals: dict[str, Any]) -> str:
    text = _COMMENT.sub("", text)
    out = []
    for line in text.splitlines():
        if line.strip() and not _ACTION.sub("", line).strip():
            continue  # a line of actions only: if/with/range/end/include ... | nindent

        def substitute(match: re.Match[str]) -> str:
            simple = _SIMPLE_VALUE.match(match.group(1))
            if simple is None:
                return PLACEHOLDER
            value = lookup(vals, simple.group(1))
            assert not isinstance(value, dict | list), f"{match.group(0)} is not a scalar"
            return json.dumps(str(value) if simple.group(2) else value)

        out.append(_ACTION.sub(substitute, line))
    return "\n".join(out)


def render(name: str) -> dict[str, Any]:
    doc = yaml.safe_load(strip_template((TEMPLATES / name).read_text(), values()))
    assert isinstance(doc, dict), f"{name} does not reduce to one YAML mapping"
    return doc


def forwarder_config(vals: dict[str, Any]) -> dict[str, Any]:
    """What _helpers.tpl's workmail-forwarder.config renders (the chart owns two keys)."""
    config = copy.deepcopy(vals["config"])
    config["telemetry"] = {
        **(config.get("telemetry") or {}),
        "listen": f"0.0.0.0:{vals['metricsPort']}",
    }
    config["shutdown_grace"] = f"{vals['shutdownGraceSeconds']}s"
    return config


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == CHART.name
    assert chart["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
    # The image tag defaults to appVersion: it must be the version the package reports.
    assert chart["appVersion"] == __version__


def test_values_match_the_schema() -> None:
    jsonschema.Draft7Validator.check_schema(schema())
    jsonschema.Draft7Validator(schema()).validate(values())


def _errors(vals: dict[str, Any]) -> list[str]:
    return [e.message for e in jsonschema.Draft7Validator(schema()).iter_errors(vals)]


def test_schema_refuses_replicas_without_dynamodb() -> None:
    vals = values()
    vals["replicaCount"] = 3
    assert _errors(vals), "replicaCount 3 with SQLite state must be refused"
    vals["config"]["state"] = {"backend": "dynamodb", "table": "workmail-forwarder-state"}
    assert _errors(vals) == []
    del vals["config"]["state"]
    assert _errors(vals), "replicaCount 3 without a state section must be refused"


@pytest.mark.parametrize(
    "change",
    [
        lambda v: v.update(replicas=2),  # a typo of replicaCount
        lambda v: v["config"].update(shutdown_grace="30s"),  # the chart owns it
        lambda v: v["config"].update(telemetry={"listen": "0.0.0.0:1"}),  # the chart owns it
        lambda v: v["serviceAccount"].update(roleArn="my-role"),
        lambda v: v["secretEnv"].append({"name": "TOKEN", "secretName": "s"}),
        lambda v: v["config"]["state"].update(backend="postgres"),
        lambda v: v.update(shutdownGraceSeconds="25s"),
    ],
)
def test_schema_refuses_bad_values(change: Any) -> None:
    vals = values()
    change(vals)
    assert _errors(vals)


def test_default_config_is_a_valid_forwarder_config() -> None:
    vals = values()
    config = parse_config(forwarder_config(vals), env=ENV)
    assert config.telemetry.listen == "0.0.0.0:9464"
    assert config.shutdown_grace == vals["shutdownGraceSeconds"]
    # Everything the forwarder writes lives on the state volume (the root fs is read-only).
    state_mount = "/var/lib/workmail-forwarder"
    assert str(config.state.path).startswith(state_mount + "/")
    assert str(config.dead_letter.path).startswith(state_mount + "/")
    # Secrets are references, never literals, in the chart's values.
    assert vals["config"]["sinks"][0]["token"] == "${SPLUNK_HEC_TOKEN}"


def test_termination_grace_exceeds_shutdown_grace() -> None:
    vals = values()
    assert vals["terminationGracePeriodSeconds"] >= vals["shutdownGraceSeconds"] + 10
    helpers = (TEMPLATES / "_helpers.tpl").read_text()
    assert (
        "le (int .Values.terminationGracePeriodSeconds) (int .Values.shutdownGraceSeconds)"
        in helpers
    )
    assert re.search(r'gt \(int \.Values\.replicaCount\) 1\) \(ne \$backend "dynamodb"\)', helpers)
    assert (
        (TEMPLATES / "deployment.yaml")
        .read_text()
        .startswith('{{- include "workmail-forwarder.validate" . }}')
    )


KINDS = {
    "deployment.yaml": ("apps/v1", "Deployment"),
    "configmap.yaml": ("v1", "ConfigMap"),
    "service.yaml": ("v1", "Service"),
    "serviceaccount.yaml": ("v1", "ServiceAccount"),
    "servicemonitor.yaml": ("monitoring.coreos.com/v1", "ServiceMonitor"),
    "pdb.yaml": ("policy/v1", "PodDisruptionBudget"),
}


def test_every_template_is_known() -> None:
    names = {p.name for p in TEMPLATES.iterdir()}
    assert names == {*KINDS, "_helpers.tpl", "NOTES.txt"}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_template_kinds(name: str) -> None:
    doc = render(name)
    assert (doc["apiVersion"], doc["kind"]) == KINDS[name]
    assert set(doc["metadata"]) >= {"name", "labels"}


def test_deployment() -> None:
    vals = values()
    doc = render("deployment.yaml")
    spec = doc["spec"]
    assert spec["replicas"] == vals["replicaCount"]
    assert {"selector", "strategy", "template"} <= set(spec)
    pod = spec["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == vals["terminationGracePeriodSeconds"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "serviceAccountName" in pod
    [container] = pod["containers"]
    assert container["args"] == ["run", "--config", "/etc/workmail-forwarder/config.yaml",
                                 "--log-format", "json"]  # fmt: skip
    assert container["ports"] == [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert "resources" in container
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["runAsNonRoot"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    # Tokens come from Secrets: single keys and whole Secrets.
    [secret_env] = [e for e in container["env"] if "valueFrom" in e]
    assert set(secret_env["valueFrom"]["secretKeyRef"]) == {"name", "key"}
    assert [e for e in container["envFrom"] if "secretRef" in e]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert set(mounts) == {"/etc/workmail-forwarder", "/var/lib/workmail-forwarder", "/tmp"}
    assert mounts["/etc/workmail-forwarder"]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert {m["name"] for m in mounts.values()} == set(volumes)
    assert "configMap" in volumes["config"]
    assert "emptyDir" in volumes["state"] and "persistentVolumeClaim" in volumes["state"]
    assert volumes["state"]["emptyDir"]["sizeLimit"] == vals["persistence"]["emptyDirSizeLimit"]
    annotations = spec["template"]["metadata"]["annotations"]
    assert "checksum/config" in annotations


def test_service_account_carries_the_irsa_role() -> None:
    doc = render("serviceaccount.yaml")
    assert "eks.amazonaws.com/role-arn" in doc["metadata"]["annotations"]
    text = (TEMPLATES / "serviceaccount.yaml").read_text()
    assert "{{- with .Values.serviceAccount.roleArn }}" in text


def test_configmap_holds_the_rendered_config() -> None:
    doc = render("configmap.yaml")
    assert list(doc["data"]) == ["config.yaml"]
    helpers = (TEMPLATES / "_helpers.tpl").read_text()
    assert "{{- toYaml $config }}" in helpers and "deepCopy .Values.config" in helpers


def test_service_and_monitor_point_at_the_metrics_port() -> None:
    service = render("service.yaml")
    [port] = service["spec"]["ports"]
    assert port == {"name": "metrics", "port": 9464, "targetPort": "metrics", "protocol": "TCP"}
    monitor = render("servicemonitor.yaml")
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    pdb = render("pdb.yaml")
    assert pdb["spec"]["maxUnavailable"] == 1 and "selector" in pdb["spec"]


def _sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in TEMPLATES.iterdir()}


def test_every_values_reference_exists() -> None:
    vals = values()
    referenced = set()
    for text in _sources().values():
        for match in _VALUES_REF.finditer(text):
            lookup(vals, match.group(1))  # raises, naming the missing key
            referenced.add(match.group(1).strip(".").split(".")[0])
    # And the reverse: every top-level value is used by some template.
    assert set(vals) - referenced == set(), "values.yaml keys no template reads"


def test_every_include_is_defined() -> None:
    sources = _sources()
    defined = set(re.findall(r'\{\{-?\s*define "([^"]+)"', sources["_helpers.tpl"]))
    used = {
        u for text in sources.values() for u in re.findall(r'(?:include|template) "([^"]+)"', text)
    }
    assert used and used <= defined, used - defined


def test_strip_template_catches_broken_yaml() -> None:
    broken = "apiVersion: v1\nkind: Service\nspec:\n  ports:\n  - name: {{ .Values.service.type }}\n   port: 1\n"
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(strip_template(broken, values()))
    with pytest.raises(KeyError):
        strip_template("port: {{ .Values.service.prot }}", values())
