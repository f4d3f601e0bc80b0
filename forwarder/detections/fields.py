"""Where a WorkMail field a rule names lands in the ECS or OCSF document, per log kind.

Derived from the mapping table (forwarder/mapping/fields.py, the one docs/mapping.md is
generated from) so the rules cannot drift from what the mapper emits: every field the
mapper copies verbatim into a single value is taken from there. Fields it derives
(booleans turned into outcomes, actions into activity ids) are written out below with
their value translation. Paths that hold arrays (`[]` in the table, address and scope
lists) are left out on purpose: a SIEM matches an array element by element while a
scalar comparison does not, so a rule on them would mean different things per backend;
a rule that names one fails to convert with the field's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from forwarder.mapping.common import EMAIL_EVENT_SHAPES, KIND_BY_LOG_TYPE
from forwarder.mapping.fields import KINDS

SCHEMAS: tuple[str, ...] = ("ecs", "ocsf")
# The Sigma logsource category of each log kind: the forwarder's own kind names, as in
# ECS event.dataset (aws.workmail_<kind>) and the Splunk sourcetype (aws:workmail:<kind>).
CATEGORIES: tuple[str, ...] = tuple(KIND_BY_LOG_TYPE.values())
LOG_TYPE_BY_CATEGORY: dict[str, str] = {kind: lt for lt, kind in KIND_BY_LOG_TYPE.items()}

Value = str | int | bool


class Target(NamedTuple):
    """One WorkMail field in one schema: the emitted field, and how values translate."""

    field: str
    values: Mapping[Value, Value] | None = None  # None: the value is copied as it is


# Emitted as lists (or lists of objects) although the table row has no `[]`.
_ARRAY_FIELDS = frozenset(
    {
        "email.to.address",
        "email.from.address",
        "email.to",
        "email.delivered_to_list",
        "aws.workmail.pat.scopes",
        "entity.data.scopes",
        "aws.workmail.rule_actions",
        "policy.data.ruleActions",
    }
)

_OUTCOME: dict[Value, Value] = {True: "success", False: "failure"}
_STATUS_ID: dict[Value, Value] = {True: 1, False: 2}  # OCSF status_id Success / Failure
_ACTION_ID: dict[Value, Value] = {True: 1, False: 2}  # OCSF action_id Allowed / Denied

# The derived fields, per kind: {WorkMail field: {schema: Target}}.
_DERIVED: dict[str, dict[str, dict[str, Target]]] = {
    "authentication": {
        "auth_successful": {
            "ecs": Target("event.outcome", _OUTCOME),
            "ocsf": Target("status_id", _STATUS_ID),
        },
        "method": {
            "ecs": Target("aws.workmail.method"),
            "ocsf": Target("auth_protocol_id", {"basic": 11}),  # Basic Authentication
        },
    },
    "access_control": {
        "access_granted": {
            "ecs": Target("event.outcome", _OUTCOME),
            "ocsf": Target("action_id", _ACTION_ID),
        },
    },
    "mailbox_access": {
        "action_allowed": {
            "ecs": Target("event.outcome", _OUTCOME),
            "ocsf": Target("action_id", _ACTION_ID),
        },
    },
    "availability_provider": {
        "availability_event_successful": {
            "ecs": Target("event.outcome", _OUTCOME),
            "ocsf": Target("status_id", _STATUS_ID),
        },
    },
    "personal_access_token": {
        "action": {
            "ecs": Target(
                "event.action",
                {
                    "create": "personal-access-token-created",
                    "delete": "personal-access-token-deleted",
                },
            ),
            "ocsf": Target("activity_id", {"create": 1, "delete": 4}),
        },
    },
    "email_events": {
        "event.eventName": {
            "ecs": Target("event.action", {name: name.lower() for name in EMAIL_EVENT_SHAPES}),
            "ocsf": Target("metadata.event_code"),
        },
    },
}


def _table(kind: str, schema: str) -> dict[str, Target]:
    log_type = LOG_TYPE_BY_CATEGORY[kind]
    rows = next(k.rows for k in KINDS if k.log_type == log_type)
    table: dict[str, Target] = {}
    for row in rows:
        path = row.ecs if schema == "ecs" else row.ocsf
        if row.verbatim and "[]" not in path and path not in _ARRAY_FIELDS:
            table[row.source] = Target(path)
    for source, per_schema in _DERIVED[kind].items():
        table[source] = per_schema[schema]
    return table


FIELDS: dict[str, dict[str, dict[str, Target]]] = {
    schema: {kind: _table(kind, schema) for kind in CATEGORIES} for schema in SCHEMAS
}

# The condition every rule of a category gets: which documents are that log kind.
KIND_CONDITION: dict[str, dict[str, tuple[str, str]]] = {
    "ecs": {kind: ("event.dataset", f"aws.workmail_{kind}") for kind in CATEGORIES},
    "ocsf": {kind: ("metadata.log_name", LOG_TYPE_BY_CATEGORY[kind]) for kind in CATEGORIES},
}

# The event time and id of each schema (what the evaluator windows and counts by).
TIME_FIELD = {"ecs": ("@timestamp", "iso"), "ocsf": ("time", "unix_ms")}
ID_FIELD = {"ecs": "event.id", "ocsf": "metadata.uid"}
