"""Every alerting rule fires on its attack and stays quiet on the benign day, in ECS and OCSF.

The records go through the real mapper; the rule runs on pySigma's SQLite backend
with the same pipeline the exports use (forwarder.detections.evaluate).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from forwarder.detections.evaluate import evaluate
from forwarder.detections.rules import alerting_rules, default_rules_dir, load_collection
from tests.detections.mapped import doc_id, mapped
from tests.detections.scenarios import (
    PLACEHOLDERS,
    SCENARIOS,
    Scenario,
    attack_records,
    benign_day,
)

pytestmark = pytest.mark.timeout(60)
RULES = default_rules_dir()


@cache
def benign_docs(schema: str) -> tuple[dict[str, Any], ...]:
    return tuple(mapped(benign_day(), schema))


def test_every_alerting_rule_has_a_scenario() -> None:
    names = {rule.name for rule in alerting_rules(load_collection(RULES))}
    assert names == {s.rule for s in SCENARIOS}


@pytest.mark.parametrize("schema", ["ecs", "ocsf"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.rule)
def test_rule_fires_on_the_attack_and_not_on_the_benign_day(
    scenario: Scenario, schema: str
) -> None:
    benign = list(benign_docs(schema))
    assert evaluate(RULES, scenario.rule, benign, schema, PLACEHOLDERS) == []

    attack = mapped(attack_records(scenario), schema)
    attack_ids = {doc_id(doc, schema) for doc in attack}
    alerts = evaluate(RULES, scenario.rule, benign + attack, schema, PLACEHOLDERS)
    assert alerts, f"{scenario.rule} missed its attack"
    on_attack = [a for a in alerts if attack_ids & set(a.event_ids)]
    assert on_attack == alerts, "an alert fired on benign events only"
    if scenario.group_value is not None:
        assert all(scenario.group_value in a.group.values() for a in on_attack), alerts[0].group


def test_without_the_expected_lists_the_benign_day_alerts() -> None:
    """An empty placeholder list expects nothing: the archiver and the partner alert too."""
    empty = {name: [] for name in PLACEHOLDERS}
    benign = list(benign_docs("ecs"))
    impersonated = evaluate(RULES, "workmail_impersonated_mailbox_access", benign, "ecs", empty)
    assert len(impersonated) == 120  # every read of the archiving service
    lookups = evaluate(RULES, "workmail_availability_unknown_endpoint", benign, "ecs", empty)
    assert len(lookups) == 40  # every EWS lookup at the partner
