"""pySigma processing pipelines: the rules' WorkMail field names to this forwarder's ECS or OCSF.

One pipeline per schema, whatever the backend: placeholders (organisation-specific lists)
are filled first, then `WorkMailFields` rewrites every field and value with the tables
of forwarder.detections.fields, then each rule gets the condition that selects its log
kind (ECS event.dataset, OCSF metadata.log_name).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sigma.correlations import SigmaCorrelationCondition, SigmaCorrelationRule
from sigma.exceptions import SigmaTransformationError
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddConditionTransformation,
    PreprocessingTransformation,
    SetStateTransformation,
    ValueListPlaceholderTransformation,
)
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaBool, SigmaNumber, SigmaString, SigmaType

from forwarder.detections.fields import CATEGORIES, FIELDS, KIND_CONDITION, Target, Value

PRODUCT, SERVICE = "aws", "workmail"
# Where the Elasticsearch sink writes: logs-aws.workmail_<kind>-<namespace>.
ES_INDEX = "logs-aws.workmail_*-*"


def rule_kind(rule: SigmaRule) -> str:
    """The log kind (logsource category) of a WorkMail rule; any other rule is an error."""
    source = rule.logsource
    if source.product != PRODUCT or source.service != SERVICE or source.category not in CATEGORIES:
        raise SigmaTransformationError(
            f"rule {rule.title!r}: logsource must be product {PRODUCT}, service {SERVICE} and "
            f"a category of {', '.join(CATEGORIES)} (not {source.category!r})"
        )
    return source.category


def _leaf_kinds(rule: SigmaRule | SigmaCorrelationRule) -> set[str]:
    if isinstance(rule, SigmaRule):
        return {rule_kind(rule)}
    return set().union(*(_leaf_kinds(ref.rule) for ref in rule.referenced_rules))


@dataclass
class WorkMailFields(PreprocessingTransformation):
    """Rewrites WorkMail field names and values into one schema's, for rules and correlations.

    A stock FieldMappingTransformation cannot do it: the same WorkMail field lands in
    different places per log kind (user_id is OCSF user.uid in authentication logs and
    actor.user.uid elsewhere), which matters for a correlation over two kinds, and
    booleans become strings or numbers (auth_successful: false is ECS event.outcome
    failure, OCSF status_id 2).
    """

    schema: str

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if isinstance(rule, SigmaRule):
            kind = rule_kind(rule)
            rule.fields = [self._target(kind, name).field for name in rule.fields]
            for detection in rule.detection.detections.values():
                self._apply_detection(kind, detection)
        else:
            self._apply_correlation(rule)

    def _target(self, kind: str, name: str | None) -> Target:
        if name is None:
            raise SigmaTransformationError(f"{kind}: keyword searches are not supported")
        target = FIELDS[self.schema][kind].get(name)
        if target is None:
            raise SigmaTransformationError(
                f"{kind}: field {name!r} has no single-valued home in the {self.schema} output"
            )
        return target

    def _apply_detection(self, kind: str, detection: SigmaDetection) -> None:
        for item in detection.detection_items:
            if isinstance(item, SigmaDetection):
                self._apply_detection(kind, item)
                continue
            target = self._target(kind, item.field)
            if target.values is not None:
                item.value = [self._value(kind, item, target.values, v) for v in item.value]
            item.field = target.field
            item.disable_conversion_to_plain()
            self.processing_item_applied(item)

    def _value(
        self,
        kind: str,
        item: SigmaDetectionItem,
        values: Mapping[Value, Value],
        value: SigmaType,
    ) -> SigmaType:
        plain: Value
        if isinstance(value, SigmaBool):
            plain = value.boolean
        elif isinstance(value, SigmaNumber):
            plain = int(value.number)
        elif isinstance(value, SigmaString) and not value.contains_special():
            plain = str(value)
        else:
            raise SigmaTransformationError(
                f"{kind}: {item.field} only takes plain values in the {self.schema} output"
            )
        if plain not in values:
            known = ", ".join(repr(v) for v in values)
            raise SigmaTransformationError(f"{kind}: {item.field}={plain!r} is not one of {known}")
        mapped = values[plain]
        if isinstance(mapped, bool):
            return SigmaBool(mapped)
        if isinstance(mapped, int):
            return SigmaNumber(mapped)
        return SigmaString(mapped)

    def _apply_correlation(self, rule: SigmaCorrelationRule) -> None:
        aliases = {alias.alias for alias in rule.aliases}
        collapsed: dict[str, str] = {}
        for alias in list(rule.aliases):
            for reference in list(alias.mapping):
                (kind,) = _leaf_kinds(_referenced(rule, reference.reference))
                alias.mapping[reference] = self._target(kind, alias.mapping[reference]).field
            fields = set(alias.mapping.values())
            if len(fields) == 1:
                # Every rule names the same field: group by it directly, which backends
                # without field normalisation (ES|QL) can convert.
                collapsed[alias.alias] = fields.pop()
                del rule.aliases.aliases[alias.alias]
        kinds = _leaf_kinds(rule)
        if rule.group_by is not None:
            rule.group_by = [
                collapsed.get(name, name) if name in aliases else self._common(rule, kinds, name)
                for name in rule.group_by
            ]
        condition = rule.condition
        if isinstance(condition, SigmaCorrelationCondition) and isinstance(condition.fieldref, str):
            name = condition.fieldref
            condition.fieldref = (
                collapsed.get(name, name) if name in aliases else self._common(rule, kinds, name)
            )

    def _common(self, rule: SigmaCorrelationRule, kinds: set[str], name: str) -> str:
        fields = {self._target(kind, name).field for kind in kinds}
        if len(fields) > 1:
            raise SigmaTransformationError(
                f"correlation {rule.title!r}: {name} is {' or '.join(sorted(fields))} in the "
                f"{self.schema} output depending on the log kind: use an alias"
            )
        return fields.pop()


def _referenced(rule: SigmaCorrelationRule, reference: str) -> SigmaRule | SigmaCorrelationRule:
    for ref in rule.referenced_rules:
        if reference in (ref.reference, ref.rule.name, str(ref.rule.id)):
            return ref.rule
    raise SigmaTransformationError(f"correlation {rule.title!r}: alias names unknown {reference}")


def placeholder_vars(placeholders: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Pipeline variables for the placeholders; an empty list expects nothing.

    A filter like `impersonator_id|expand: %workmail_expected_impersonators%` must then
    exclude nothing, so the list becomes the empty string, which no id or URL is.
    """
    return {name: list(values) or [""] for name, values in placeholders.items()}


def workmail_pipeline(
    schema: str,
    placeholders: Mapping[str, Sequence[str]],
    *,
    es_index: bool = False,
) -> ProcessingPipeline:
    """The pipeline for `schema` ("ecs" or "ocsf"); `es_index` names the ES|QL source index."""
    if schema not in FIELDS:
        raise ValueError(f"unknown schema {schema!r}")
    items: list[ProcessingItem] = [
        ProcessingItem(ValueListPlaceholderTransformation(), identifier="workmail_placeholders"),
        ProcessingItem(WorkMailFields(schema), identifier=f"workmail_{schema}_fields"),
    ]
    for kind in CATEGORIES:
        field, value = KIND_CONDITION[schema][kind]
        items.append(
            ProcessingItem(
                AddConditionTransformation({field: value}),
                rule_conditions=[
                    LogsourceCondition(category=kind, product=PRODUCT, service=SERVICE)
                ],
                identifier=f"workmail_{schema}_{kind}_kind",
            )
        )
    if es_index:
        items.append(
            ProcessingItem(SetStateTransformation("index", ES_INDEX), identifier="workmail_index")
        )
    return ProcessingPipeline(
        name=f"WorkMail forwarder {schema.upper()} output",
        priority=20,
        items=items,
        vars=placeholder_vars(placeholders),
    )
