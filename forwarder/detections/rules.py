"""Finding and loading the rule set: `detections/` beside the package, one folder per log kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule

Rule = SigmaRule | SigmaCorrelationRule

PLACEHOLDERS_FILE = "placeholders.yml"


class RulesNotFound(Exception):
    """The rule directory is not where it was looked for."""


def default_rules_dir() -> Path:
    """`detections/` of the source tree this package runs from (an editable install)."""
    return Path(__file__).resolve().parents[2] / "detections"


def rules_dir(explicit: Path | None = None) -> Path:
    path = explicit if explicit is not None else default_rules_dir()
    if not path.is_dir() or not any(path.glob("*/*.yml")):
        raise RulesNotFound(
            f"no Sigma rules in {path}: pass --rules DIR (the detections/ folder of a "
            "workmail-forwarder checkout)"
        )
    return path


def rule_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*/*.yml"))


def load_collection(directory: Path) -> SigmaCollection:
    """A fresh, resolved collection: conversion changes the rules, so each backend gets one."""
    collection = SigmaCollection.load_ruleset([str(p) for p in rule_files(directory)])
    collection.resolve_rule_references()
    return collection


def load_placeholders(path: Path) -> dict[str, list[str]]:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in data.values()
    ):
        raise ValueError(f"{path}: expected a mapping of placeholder names to lists of strings")
    return {str(name): list(values) for name, values in data.items()}


def all_rules(collection: SigmaCollection) -> list[Rule]:
    """The collection's rules and correlations (it holds nothing else: no filters are shipped)."""
    return [rule for rule in collection if isinstance(rule, SigmaRule | SigmaCorrelationRule)]


def conversion_order(collection: SigmaCollection) -> list[Rule]:
    """Rules before the correlations that use them, so each is converted after its inputs."""
    ordered: list[Rule] = []
    seen: set[int] = set()

    def visit(rule: Rule) -> None:
        if id(rule) in seen:
            return
        seen.add(id(rule))
        if isinstance(rule, SigmaCorrelationRule):
            for ref in rule.referenced_rules:
                visit(ref.rule)
        ordered.append(rule)

    for rule in all_rules(collection):
        visit(rule)
    return ordered


def alerting_rules(collection: SigmaCollection) -> Iterator[Rule]:
    """The rules that raise alerts: not the building blocks a correlation refers to."""
    rules = all_rules(collection)
    referenced = {
        id(ref.rule)
        for rule in rules
        if isinstance(rule, SigmaCorrelationRule)
        for ref in rule.referenced_rules
    }
    return (rule for rule in rules if id(rule) not in referenced)


def find(collection: SigmaCollection, name: str) -> Rule:
    for rule in all_rules(collection):
        if name in (rule.name, str(rule.id)):
            return rule
    raise KeyError(f"no rule named {name!r}")
