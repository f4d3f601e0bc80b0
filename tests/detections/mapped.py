"""Raw records through the real mapper, the way `workmail-forwarder map` calls it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from forwarder import mapping


def mapped(records: Iterable[dict[str, Any]], schema: str) -> list[dict[str, Any]]:
    docs = []
    for record in records:
        raw = orjson.dumps(record)
        kind = mapping.detect_log_type(record)
        assert kind is not None, record
        docs.append(
            mapping.map_record(
                record,
                kind,
                schema,
                event_id=mapping.event_id(record, kind),
                time_ms=mapping.event_time_ms(record, kind) or 0,
                raw=raw.decode(),
            )
        )
    return docs


def doc_id(doc: dict[str, Any], schema: str) -> str:
    return str(doc["event"]["id"] if schema == "ecs" else doc["metadata"]["uid"])
