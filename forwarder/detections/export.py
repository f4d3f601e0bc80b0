"""Converting the rule set for a SIEM: Splunk SPL, Elasticsearch Lucene or ES|QL, with rule files.

Per target the queries go one file per rule under `queries/`, plus what the backend can
turn them into for import: Splunk's savedsearches.conf, Kibana detection rules as NDJSON.
A rule the backend cannot express (a correlation type it lacks) is listed in
`manifest.json` with the backend's reason instead of failing the export.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sigma.backends.elasticsearch.elasticsearch_esql import ESQLBackend
from sigma.backends.elasticsearch.elasticsearch_lucene import LuceneBackend
from sigma.backends.splunk.splunk import SplunkBackend
from sigma.conversion.base import Backend
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaFeatureNotSupportedByBackendError
from sigma.processing.pipeline import ProcessingPipeline

from forwarder.detections.attack import use_bundled_attack_data
from forwarder.detections.pipelines import ES_INDEX, workmail_pipeline
from forwarder.detections.rules import Rule, alerting_rules, conversion_order, load_collection

TARGETS: tuple[str, ...] = ("splunk", "elasticsearch", "esql")
# The schema each SIEM usually gets from this forwarder: the HEC sink's default is OCSF,
# the Elasticsearch sink installs ECS templates.
DEFAULT_SCHEMA = {"splunk": "ocsf", "elasticsearch": "ecs", "esql": "ecs"}
PACKAGES = ("pySigma", "pySigma-backend-splunk", "pySigma-backend-elasticsearch")

_SPLUNK_SEVERITY = {"informational": 2, "low": 3, "medium": 4, "high": 5, "critical": 6}
# How often the exported searches and Kibana rules run, and how far a plain rule looks back.
SCHEDULE_MINUTES = 5


@dataclass(frozen=True)
class _Target:
    suffix: str  # of the per-rule query files
    rule_format: str  # the backend format that yields importable rules
    rule_file: str
    backend: Callable[[ProcessingPipeline], Backend]
    es_index: bool = False


def _splunk(pipeline: ProcessingPipeline) -> Backend:
    return SplunkBackend(
        pipeline, min_time=f"-{SCHEDULE_MINUTES}m", max_time="now", query_settings=_splunk_settings
    )


def _splunk_settings(rule: Rule) -> dict[str, str]:
    """Scheduled alert settings; a correlation looks back over its whole window."""
    settings = {
        "enableSched": "1",
        "cron_schedule": f"*/{SCHEDULE_MINUTES} * * * *",
        "counttype": "number of events",
        "relation": "greater than",
        "quantity": "0",
        "alert.track": "1",
    }
    if isinstance(rule, SigmaCorrelationRule) and rule.timespan is not None:
        settings["dispatch.earliest_time"] = f"-{rule.timespan.spec}"
        settings["dispatch.latest_time"] = "now"
    if rule.level is not None:
        settings["alert.severity"] = str(_SPLUNK_SEVERITY[rule.level.name.lower()])
    return settings


def _lucene(pipeline: ProcessingPipeline) -> Backend:
    return LuceneBackend(pipeline, index_names=[ES_INDEX], schedule_interval=SCHEDULE_MINUTES)


def _esql(pipeline: ProcessingPipeline) -> Backend:
    return ESQLBackend(pipeline, schedule_interval=SCHEDULE_MINUTES)


_TARGETS = {
    "splunk": _Target("spl", "savedsearches", "savedsearches.conf", _splunk),
    "elasticsearch": _Target("lucene", "siem_rule_ndjson", "kibana_rules.ndjson", _lucene),
    "esql": _Target("esql", "siem_rule_ndjson", "kibana_rules.ndjson", _esql, es_index=True),
}


@dataclass
class Export:
    target: str
    schema: str
    queries: dict[str, str] = field(default_factory=dict)  # rule name -> query
    rule_entries: list[Any] = field(default_factory=list)  # what the rule file is made of
    unsupported: dict[str, str] = field(default_factory=dict)  # rule name -> the reason
    rules: list[Rule] = field(default_factory=list)  # the alerting rules, converted or not


def _convert_all(
    target: _Target,
    schema: str,
    rules: Path,
    placeholders: Mapping[str, Sequence[str]],
    output_format: str,
) -> tuple[list[Rule], dict[str, list[Any]], dict[str, str]]:
    """Every alerting rule in one format: (the rules, their outputs, the unsupported ones)."""
    collection = load_collection(rules)
    backend = target.backend(workmail_pipeline(schema, placeholders, es_index=target.es_index))
    alerting = list(alerting_rules(collection))
    wanted = {id(rule) for rule in alerting}
    outputs: dict[str, list[Any]] = {}
    unsupported: dict[str, str] = {}
    for rule in conversion_order(collection):
        try:
            if isinstance(rule, SigmaCorrelationRule):
                out = backend.convert_correlation_rule(rule, output_format)
            else:
                out = backend.convert_rule(rule, output_format)
        except (NotImplementedError, SigmaFeatureNotSupportedByBackendError) as exc:
            # A correlation type (or feature) the backend lacks; pySigma says which. Any
            # other error (a field the output has no home for) is a bug in a rule: raised.
            unsupported[_name(rule)] = str(exc) or type(exc).__name__
            continue
        if id(rule) in wanted:
            outputs[_name(rule)] = list(out)
    return alerting, outputs, unsupported


def _name(rule: Rule) -> str:
    return rule.name or str(rule.id)


def convert(
    target_name: str,
    schema: str,
    rules: Path,
    placeholders: Mapping[str, Sequence[str]],
) -> Export:
    target = _TARGETS[target_name]
    use_bundled_attack_data()
    alerting, queries, unsupported = _convert_all(target, schema, rules, placeholders, "default")
    _, rule_outputs, _ = _convert_all(target, schema, rules, placeholders, target.rule_format)
    export = Export(target_name, schema, unsupported=unsupported, rules=alerting)
    by_name = {_name(rule): rule for rule in alerting}
    for name, outputs in queries.items():
        export.queries[name] = "\n".join(str(q) for q in outputs)
        for entry in rule_outputs.get(name, []):
            export.rule_entries.append(_with_lookback(entry, by_name[name]))
    # A step of an unsupported chain fails alone; only what an alerting rule needs is listed.
    export.unsupported = {n: r for n, r in unsupported.items() if n in by_name}
    return export


def _with_lookback(entry: Any, rule: Rule) -> Any:
    """A Kibana rule of a correlation must look back over the correlation's window."""
    if isinstance(entry, dict) and isinstance(rule, SigmaCorrelationRule) and rule.timespan:
        entry = dict(entry)
        span = rule.timespan.seconds
        entry["from"] = f"now-{max(span, SCHEDULE_MINUTES * 60)}s"
    return entry


def rule_file_text(export: Export) -> str:
    if export.target == "splunk":
        backend = SplunkBackend(
            ProcessingPipeline(), min_time=f"-{SCHEDULE_MINUTES}m", max_time="now"
        )
        return str(backend.finalize_output_savedsearches([str(e) for e in export.rule_entries]))
    return "".join(json.dumps(entry, sort_keys=True) + "\n" for entry in export.rule_entries)


def manifest(export: Export) -> dict[str, Any]:
    target = _TARGETS[export.target]
    return {
        "target": export.target,
        "schema": export.schema,
        "packages": {name: version(name) for name in PACKAGES},
        "rules": [
            {
                "name": _name(rule),
                "id": str(rule.id),
                "title": rule.title,
                "level": rule.level.name.lower() if rule.level else None,
                "correlation": rule.type.name.lower()
                if isinstance(rule, SigmaCorrelationRule)
                else None,
                "query_file": f"queries/{_name(rule)}.{target.suffix}"
                if _name(rule) in export.queries
                else None,
                "unsupported": export.unsupported.get(_name(rule)),
            }
            for rule in export.rules
        ],
        "rule_file": target.rule_file,
    }


def write(export: Export, out: Path) -> list[Path]:
    """The export's files under `out` (created); returns what was written."""
    target = _TARGETS[export.target]
    (out / "queries").mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, query in export.queries.items():
        path = out / "queries" / f"{name}.{target.suffix}"
        path.write_text(query + "\n")
        written.append(path)
    rule_file = out / target.rule_file
    rule_file.write_text(rule_file_text(export))
    written.append(rule_file)
    manifest_file = out / "manifest.json"
    manifest_file.write_text(json.dumps(manifest(export), indent=2) + "\n")
    written.append(manifest_file)
    return written
