"""docs/operations.md's alert rules, checked by promtool against a running daemon's /metrics.

The rules must parse (`promtool check rules`), and evaluated (`promtool test rules`)
over the series a freshly started, idle daemon exports, none fires; the same series
with the retry counter climbing fires the retry alert. This works only because every
counter is exported at 0 from the first scrape.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.test_metrics_zero import get, start_daemon
from tests.e2e.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations.md"
JOB = 'job="workmail-forwarder",instance="forwarder:9464"'

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not installed (Debian package prometheus; .ci/run installs it)")
    return found


def alert_rules() -> dict[str, Any]:
    text = DOC.read_text()
    alerts = text[text.index("\n## Alerts\n") :]
    start = alerts.index("```yaml\n") + len("```yaml\n")
    block = alerts[start : alerts.index("\n```", start)]
    rules: dict[str, Any] = yaml.safe_load(block)
    return rules


def first_scrape(tmp_path: Path) -> str:
    tmp_path.mkdir()
    daemon, port, _ = start_daemon(tmp_path)
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{port}/metrics") is not None, 30, "/metrics")
        text = get(f"http://127.0.0.1:{port}/metrics")
        assert text is not None
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.output()
    finally:
        daemon.stop()
    return text


def series(text: str) -> dict[str, float]:
    """`name{labels}` -> value, with the labels a Prometheus scrape would add."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels + ',' if labels else ''}{JOB}}}"] = sample.value
    out[f"up{{{JOB}}}"] = 1.0
    return out


def run_promtool(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def test_the_alert_rules_hold_against_a_running_daemon(tmp_path: Path) -> None:
    promtool()
    rules = alert_rules()
    names = [rule["alert"] for group in rules["groups"] for rule in group["rules"]]
    assert len(names) >= 10
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    checked = run_promtool(tmp_path, "check", "rules", "rules.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    scraped = series(first_scrape(tmp_path / "daemon"))
    assert any(name.startswith("wmf_sink_events_retried_total{") for name in scraped)
    idle = [{"series": name, "values": f"{value:g}+0x40"} for name, value in scraped.items()]
    retrying = [
        {"series": name, "values": "0+10x40"} if name.startswith(
            'wmf_sink_events_retried_total{sink="ocsf"') else entry
        for entry in idle for name in [entry["series"]]
    ]  # fmt: skip
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m", "input_series": idle,
             "alert_rule_test": [{"eval_time": "30m", "alertname": n, "exp_alerts": []}
                                 for n in names]},
            {"interval": "1m", "input_series": retrying,
             "alert_rule_test": [{"eval_time": "30m", "alertname": "WorkmailForwarderSinkRetrying",
                                  "exp_alerts": [{"exp_labels": {"sink": "ocsf"}}]}]},
        ],
    }  # fmt: skip
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    tested = run_promtool(tmp_path, "test", "rules", "tests.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
