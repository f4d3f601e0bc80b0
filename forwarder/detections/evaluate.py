"""Running a rule offline over mapped documents: pySigma's SQLite backend on a table of them.

Each document becomes a row whose columns are its dotted field paths (`event.outcome`,
`src_endpoint.ip`), the shape the rules' ECS/OCSF fields name. The rule is converted
with the same WorkMail pipeline the exports use, then run as SQL; correlations become
the backend's window queries (sliding windows, where Splunk's `bin` and ES|QL's
`date_trunc` count in fixed buckets). Comparisons are case-sensitive, like
Elasticsearch keyword fields, so a rule proven here matches the values the mapper
emits exactly. It needs pySigma-backend-sqlite (the dev extra); the exports do not.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sigma.backends.sqlite.sqlite import sqliteBackend
from sigma.correlations import SigmaCorrelationRule

from forwarder.detections.fields import ID_FIELD, TIME_FIELD
from forwarder.detections.pipelines import workmail_pipeline
from forwarder.detections.rules import conversion_order, find, load_collection

TABLE = "events"


@dataclass(frozen=True)
class Alert:
    """One match: an event (plain rule) or a window of events (correlation)."""

    rule: str
    event_ids: tuple[str, ...]
    group: Mapping[str, Any]  # the group-by values of a correlation; the row of a plain rule


def flatten(doc: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) pairs; lists stay whole (as JSON text), so rules cannot use them."""
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flatten(value, f"{path}.")
        elif isinstance(value, list):
            yield path, orjson.dumps(value).decode()
        elif isinstance(value, bool):
            yield path, "true" if value else "false"
        else:
            yield path, value


def event_table(docs: Iterable[Mapping[str, Any]]) -> sqlite3.Connection:
    rows = [dict(flatten(doc)) for doc in docs]
    columns = sorted({path for row in rows for path in row})
    connection = sqlite3.connect(":memory:")
    quoted = ", ".join(_quote(c) for c in columns) or "placeholder"
    connection.execute(f"CREATE TABLE {TABLE} ({quoted})")
    if rows and columns:
        marks = ", ".join("?" for _ in columns)
        connection.executemany(
            f"INSERT INTO {TABLE} ({quoted}) VALUES ({marks})",
            [[row.get(c) for c in columns] for row in rows],
        )
    return connection


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def sqlite_backend(schema: str, placeholders: Mapping[str, Sequence[str]]) -> sqliteBackend:
    time_field, time_format = TIME_FIELD[schema]
    return sqliteBackend(  # type: ignore[no-untyped-call]
        workmail_pipeline(schema, placeholders),
        table=TABLE,
        timestamp_field=time_field,
        timestamp_format=time_format,
        event_id_field=ID_FIELD[schema],
    )


def convert_for_sqlite(
    rules: Path, name: str, schema: str, placeholders: Mapping[str, Sequence[str]]
) -> tuple[bool, list[str]]:
    """(is a correlation, the SQL of rule `name`), its inputs converted first."""
    collection = load_collection(rules)
    target = find(collection, name)
    backend = sqlite_backend(schema, placeholders)
    queries: list[str] = []
    for rule in conversion_order(collection):
        if isinstance(rule, SigmaCorrelationRule):
            out = backend.convert_correlation_rule(rule)  # type: ignore[no-untyped-call]
        else:
            out = backend.convert_rule(rule)  # type: ignore[no-untyped-call]
        if rule is target:
            queries = [str(q) for q in out]
            break
    if not queries:
        if isinstance(target, SigmaCorrelationRule):
            raise ValueError(f"{name} is a step of another correlation: evaluate that one")
        # A building block converts to predicates only; run it as its own query.
        queries = [f"SELECT * FROM {TABLE} WHERE {q}" for q in target.get_conversion_result()]
    return isinstance(target, SigmaCorrelationRule), queries


def evaluate(
    rules: Path,
    name: str,
    docs: Iterable[Mapping[str, Any]],
    schema: str,
    placeholders: Mapping[str, Sequence[str]],
) -> list[Alert]:
    """The alerts rule `name` raises over `docs` (documents in `schema`)."""
    correlation, queries = convert_for_sqlite(rules, name, schema, placeholders)
    connection = event_table(docs)
    try:
        alerts: list[Alert] = []
        for query in queries:
            cursor = connection.execute(query)
            columns = [d[0] for d in cursor.description]
            for values in cursor:
                row = dict(zip(columns, values, strict=True))
                alerts.append(_alert(name, row, correlation, ID_FIELD[schema]))
        return alerts
    finally:
        connection.close()


def _alert(name: str, row: dict[str, Any], correlation: bool, id_field: str) -> Alert:
    if not correlation:
        return Alert(name, (str(row[id_field]),), row)
    ids = tuple(str(e).split(":", 1)[1] for e in orjson.loads(row["event_ids"]))
    return Alert(name, ids, dict(orjson.loads(row["group_keys"])))
