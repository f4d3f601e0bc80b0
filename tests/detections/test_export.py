"""Every rule converts for every target and schema; what a backend cannot express is named."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from forwarder import cli
from forwarder.detections.export import TARGETS, convert, rule_file_text
from forwarder.detections.rules import default_rules_dir, load_placeholders

pytestmark = pytest.mark.timeout(60)
RULES = default_rules_dir()
PLACEHOLDERS = load_placeholders(RULES / "placeholders.yml")
CORRELATIONS = {
    "workmail_password_spray",
    "workmail_brute_force_single_user",
    "workmail_success_after_failures",
    "workmail_access_control_denial_burst",
    "workmail_mass_mailbox_read",
    "workmail_pat_used_from_new_ip",
    "workmail_dmarc_reject_quarantine_spike",
    "workmail_outbound_bounce_burst",
}
# What docs/detections.md says each backend cannot convert.
UNSUPPORTED = {
    ("splunk", "ecs"): {"workmail_success_after_failures"},
    ("splunk", "ocsf"): {"workmail_success_after_failures"},
    ("elasticsearch", "ecs"): CORRELATIONS,
    ("elasticsearch", "ocsf"): CORRELATIONS,
    ("esql", "ecs"): {"workmail_success_after_failures"},
    # In OCSF the token log's user is actor.user.uid and the login's user.uid: the
    # correlation needs a field alias, which the ES|QL backend cannot normalise.
    ("esql", "ocsf"): {"workmail_success_after_failures", "workmail_pat_used_from_new_ip"},
}


@pytest.mark.parametrize("schema", ["ecs", "ocsf"])
@pytest.mark.parametrize("target", TARGETS)
def test_every_rule_converts_or_is_a_known_backend_gap(target: str, schema: str) -> None:
    export = convert(target, schema, RULES, PLACEHOLDERS)
    names = {rule.name for rule in export.rules}
    assert len(names) == 11
    assert set(export.unsupported) == UNSUPPORTED[(target, schema)]
    assert set(export.queries) == names - UNSUPPORTED[(target, schema)]
    kind_field = "event.dataset" if schema == "ecs" else "metadata.log_name"
    for query in export.queries.values():
        assert kind_field in query  # every query selects its log kind
    text = rule_file_text(export)
    if target == "splunk":
        for rule in export.rules:
            if rule.name in export.queries:
                assert f"\n[{rule.title}]\n" in text
        assert "cron_schedule = */5 * * * *" in text
    else:
        entries = [json.loads(line) for line in text.splitlines()]
        assert {e["rule_id"] for e in entries} == {
            str(r.id) for r in export.rules if r.name in export.queries
        }
        assert all(e["threat"] for e in entries)  # ATT&CK from the bundled data, offline
        language = "esql" if target == "esql" else "lucene"
        assert {e["language"] for e in entries} == {language}


def test_correlation_queries_count_per_group_in_their_window() -> None:
    splunk = convert("splunk", "ocsf", RULES, PLACEHOLDERS).queries
    assert "| bin _time span=15m" in splunk["workmail_password_spray"]
    assert (
        "dc(user.name) as value_count by _time src_endpoint.ip" in splunk["workmail_password_spray"]
    )
    # The OCSF token correlation joins two log kinds through the alias.
    assert "rename actor.user.uid as user_uid" in splunk["workmail_pat_used_from_new_ip"]
    esql = convert("esql", "ecs", RULES, PLACEHOLDERS).queries
    assert esql["workmail_brute_force_single_user"].startswith("from logs-aws.workmail_*-*")
    assert (
        "count_distinct(source.ip) by timebucket, user.id" in esql["workmail_pat_used_from_new_ip"]
    )


@pytest.mark.parametrize("target", TARGETS)
def test_cli_export_writes_queries_rules_and_a_manifest(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / target
    assert cli.main(["detections", "export", "--target", target, "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["packages"]["pySigma"] == "1.5.1"
    for rule in manifest["rules"]:
        assert (rule["query_file"] is None) == (rule["unsupported"] is not None)
        if rule["query_file"]:
            assert (out / rule["query_file"]).read_text().strip()
    assert (out / manifest["rule_file"]).is_file()
    assert capsys.readouterr().out.splitlines()[-1].startswith("ok: ")


def test_cli_export_takes_placeholders(tmp_path: Path) -> None:
    values = tmp_path / "expected.yml"
    values.write_text("workmail_expected_impersonators: [svc-archive]\n"
                      "workmail_known_availability_endpoints: ['https://ews.example.net/*']\n")  # fmt: skip
    argv = ["detections", "export", "--target", "splunk", "--placeholders", str(values),
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert cli.main(argv) == 0
    spl = (tmp_path / "out/queries/workmail_impersonated_mailbox_access.spl").read_text()
    assert "svc-archive" in spl


def test_cli_export_without_rules_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["detections", "export", "--target", "esql", "--rules", str(tmp_path)]
    assert cli.main(argv) == 2
    assert "no Sigma rules in" in capsys.readouterr().err


def test_cli_export_without_pysigma_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import forwarder.detections

    # Importing a module whose sys.modules entry is None raises ImportError, as importing
    # pySigma does where it is not installed.
    monkeypatch.setitem(sys.modules, "forwarder.detections.export", None)
    monkeypatch.delattr(forwarder.detections, "export", raising=False)
    argv = ["detections", "export", "--target", "splunk", "--out", str(tmp_path)]
    assert cli.main(argv) == 1
    assert "pip install 'pySigma==1.5.1'" in capsys.readouterr().err


def test_the_cli_does_not_import_pysigma_for_other_commands() -> None:
    import subprocess

    code = "import sys, forwarder.cli as c; c._parser(); print('sigma' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=30)  # fmt: skip
    assert result.stdout.strip() == "False"
