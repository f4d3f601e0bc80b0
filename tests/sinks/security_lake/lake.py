"""Read the lake back: Parquet rows as OCSF JSON documents, and what the sink should store.

`document(row, schema)` turns a row read with pyarrow into the OCSF 1.3.0 JSON document
it stores: nulls dropped, `unmapped` a JSON object of strings, `json_t` columns parsed,
`time_dt` as RFC 3339 text. `expected(doc_15)` is the document the sink should store for
an OCSF 1.5.0 document the other sinks get, in the same form.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from forwarder.sinks.security_lake.columns import lake_classes
from forwarder.sinks.security_lake.downgrade import to_ocsf_1_3


def _value(value: Any, kind: pa.DataType, field: pa.Field | None) -> Any:
    if value is None:
        return None
    if pa.types.is_struct(kind):
        out = {}
        for child in kind:
            inner = _value(value.get(child.name), child.type, child)
            if inner is not None:
                out[child.name] = inner
        return out
    if pa.types.is_list(kind):
        return [_value(item, kind.value_type, None) for item in value]
    if pa.types.is_map(kind):
        return dict(value)
    if pa.types.is_timestamp(kind):
        assert isinstance(value, datetime)
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if field is not None and field.metadata and field.metadata.get(b"ocsf_type") == b"json_t":
        return orjson.loads(value)
    return value


def document(row: dict[str, Any], schema: pa.Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in schema:
        value = _value(row.get(field.name), field.type, field)
        if value is not None:
            out[field.name] = value
    return out


def _json_leaves(value: Any, kind: pa.DataType, field: pa.Field | None) -> Any:
    """The shaped row as JSON: json_t text parsed, timestamps as RFC 3339 text."""
    if value is None:
        return None
    if pa.types.is_struct(kind):
        return {
            child.name: _json_leaves(value[child.name], child.type, child)
            for child in kind
            if value.get(child.name) is not None
        }
    if pa.types.is_list(kind):
        return [_json_leaves(item, kind.value_type, None) for item in value]
    if pa.types.is_timestamp(kind):
        moment = datetime.fromtimestamp(value / 1000, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if field is not None and field.metadata and field.metadata.get(b"ocsf_type") == b"json_t":
        return orjson.loads(value)
    return value


def expected(doc_15: dict[str, Any]) -> dict[str, Any]:
    """What the sink stores for this OCSF 1.5.0 document, as `document` reads it back."""
    lake = lake_classes()[doc_15["class_uid"]]
    row = lake.row(to_ocsf_1_3(orjson.loads(orjson.dumps(doc_15)), lake.profiles))
    struct = pa.struct(list(lake.schema))
    return _json_leaves(row, struct, None)  # type: ignore[no-any-return]


def stored_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` as Parquet gives it back (it names a map's entries after its column)."""
    buffer = io.BytesIO()
    pq.write_table(schema.empty_table(), buffer)
    return pq.read_schema(io.BytesIO(buffer.getvalue()))


def read_rows(data: bytes) -> tuple[pa.Schema, list[dict[str, Any]]]:
    table = pq.read_table(io.BytesIO(data))
    return table.schema, table.to_pylist()
