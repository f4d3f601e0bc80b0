"""docs/operations.md names every metric the daemon exports, with its type and labels.

A real daemon (files source, file sinks, one bad record) is scraped; every `wmf_*`
family on /metrics must be in the doc's tables with the same type and documented
labels. The reverse: every metric the doc names is declared in the code.
"""

from __future__ import annotations

import re
import shutil
import signal
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port, sample_files, sample_records
from tests.e2e.helpers import Daemon, wait_for, write_config

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations.md"
CLOUDWATCH = {
    "wmf_cloudwatch_requests": ("counter", {"source", "api", "outcome"}),
    "wmf_cloudwatch_throttles": ("counter", {"source"}),
    "wmf_cloudwatch_request_rate": ("gauge", {"source"}),
    "wmf_cloudwatch_groups": ("gauge", {"source"}),
    "wmf_cloudwatch_lag_seconds": ("gauge", {"source", "log_group"}),
    "wmf_cloudwatch_ingestion_lag_seconds": ("gauge", {"source", "log_group"}),
}
_ROW = re.compile(
    r"^\| `(wmf_[a-z0-9_]+)` \|\s*(counter|gauge|histogram)\s*\|([^|]*)\|", re.MULTILINE
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def documented(text: str | None = None) -> dict[str, tuple[str, set[str]]]:
    """Metric name (without `_total`) -> (type, labels), from the doc's tables."""
    rows = {}
    for name, kind, labels in _ROW.findall(DOC.read_text() if text is None else text):
        rows[name.removesuffix("_total")] = (kind, set(re.findall(r"`([a-z_]+)`", labels)))
    return rows


def section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"\n### {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def declared_in_code() -> set[str]:
    names = set()
    for path in (ROOT / "forwarder").rglob("*.py"):
        names.update(re.findall(r'"(wmf_[a-z0-9_]+)"', path.read_text()))
    return names


def scrape(tmp_path: Path) -> str:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for path in sample_files():
        shutil.copy(path, inbox / path.name)
    (inbox / "bad.jsonl").write_bytes(b"this is not json\n")
    port = free_port()
    config = write_config(tmp_path / "config.yaml", tmp_path, port=port)
    records = len(list(sample_records()))
    daemon = Daemon(config, cwd=tmp_path)
    text = ""

    def complete() -> bool:
        nonlocal text
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return False
        return (
            f'wmf_sink_events_delivered_total{{sink="ecs"}} {records}.0' in text
            and "wmf_events_dead_lettered_total" in text
        )

    try:
        wait_for(complete, 60, "every record delivered and the bad one dead-lettered")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.output()
    finally:
        daemon.stop()
    return text


def test_every_exported_metric_is_documented(tmp_path: Path) -> None:
    docs = documented()
    exported = {}
    for family in text_string_to_metric_families(scrape(tmp_path)):
        if family.name.startswith("wmf_"):
            labels = {key for sample in family.samples for key in sample.labels} - {"le"}
            exported[family.name] = (family.type, labels)
    assert len(exported) >= 10, sorted(exported)
    for name, (kind, labels) in exported.items():
        assert name in docs, f"{name} is exported but not in docs/operations.md"
        assert docs[name][0] == kind, f"{name}: exported as {kind}, documented as {docs[name][0]}"
        assert labels <= docs[name][1], (
            f"{name}: labels {labels - docs[name][1]} are not documented"
        )


def test_every_documented_metric_exists_in_the_code() -> None:
    docs, code = documented(), declared_in_code()
    assert set(docs) - code == set(), "documented but not declared in forwarder/"
    assert code - set(docs) == set(), "declared in forwarder/ but not documented"


def test_cloudwatch_section() -> None:
    cloudwatch = documented(section("CloudWatch source metrics"))
    assert cloudwatch == CLOUDWATCH


def test_the_doc_parser_sees_the_tables() -> None:
    docs = documented()
    assert docs["wmf_sink_events_delivered"] == ("counter", {"sink"})
    assert docs["wmf_events_dead_lettered"] == ("counter", {"reason", "stage"})
    assert docs["wmf_dead_letter_pending"] == ("gauge", set())


@pytest.mark.parametrize(
    "heading",
    ["### Plain container", "### Amazon ECS (Fargate)", "### Kubernetes (Helm)", "### systemd",
     "## Health endpoints", "## Alerts", "## Graceful shutdown and rolling updates", "## Scaling"],
)  # fmt: skip
def test_the_doc_covers(heading: str) -> None:
    assert f"\n{heading}\n" in DOC.read_text()


def test_alerts_use_documented_metrics() -> None:
    text = DOC.read_text()
    alerts = text[text.index("\n## Alerts\n") : text.index("\n## Graceful shutdown")]
    used = {
        re.sub(r"_(total|bucket|sum|count)$", "", m) for m in re.findall(r"wmf_[a-z0-9_]+", alerts)
    }
    assert used and used <= set(documented()), used - set(documented())
