"""The rule files: SigmaHQ metadata on every rule, WorkMail log sources, ATT&CK tags known."""

from __future__ import annotations

import re
import uuid

import pytest
from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule

from forwarder.detections.attack import TACTICS, TECHNIQUES
from forwarder.detections.fields import CATEGORIES
from forwarder.detections.rules import (
    all_rules,
    default_rules_dir,
    load_collection,
    load_placeholders,
    rule_files,
)

RULES = default_rules_dir()
COLLECTION = all_rules(load_collection(RULES))


@pytest.mark.parametrize("rule", COLLECTION, ids=lambda r: r.name)
def test_rule_has_the_sigmahq_metadata(rule: SigmaRule | SigmaCorrelationRule) -> None:
    assert rule.title and rule.description and rule.level is not None
    assert isinstance(rule.id, uuid.UUID)
    assert rule.name and re.fullmatch(r"workmail_[a-z_]+", rule.name)
    assert rule.references and all(
        r.startswith("https://docs.aws.amazon.com/workmail/") for r in rule.references
    )
    assert rule.falsepositives
    techniques = [t.name for t in rule.tags if t.namespace == "attack" and t.name[0] == "t"]
    assert techniques, "no ATT&CK technique"
    for tag in rule.tags:
        assert tag.namespace == "attack"
        assert tag.name.upper() in TECHNIQUES or tag.name in TACTICS.values(), tag


def test_ids_and_names_are_unique() -> None:
    assert len({r.id for r in COLLECTION}) == len({r.name for r in COLLECTION}) == len(COLLECTION)


@pytest.mark.parametrize(
    "rule", [r for r in COLLECTION if isinstance(r, SigmaRule)], ids=lambda r: r.name
)
def test_rule_reads_a_workmail_log_kind(rule: SigmaRule) -> None:
    source = rule.logsource
    assert (source.product, source.service) == ("aws", "workmail")
    assert source.category in CATEGORIES


def test_every_file_is_under_a_log_kind_folder() -> None:
    """One folder per log kind, named by the alerting rule's (a correlation's steps may read another)."""
    assert {p.parent.name for p in rule_files(RULES)} <= set(CATEGORIES)


def test_the_shipped_placeholders_are_empty_lists() -> None:
    placeholders = load_placeholders(RULES / "placeholders.yml")
    assert placeholders == {
        "workmail_expected_impersonators": [],
        "workmail_known_availability_endpoints": [],
    }


def test_the_docs_table_lists_every_alerting_rule() -> None:
    from forwarder.detections.rules import alerting_rules

    table = (RULES.parent / "docs" / "detections.md").read_text()
    for rule in alerting_rules(load_collection(RULES)):
        assert f"| `{rule.name}` (" in table, rule.name
