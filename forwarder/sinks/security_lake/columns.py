"""The lake's fixed Arrow schema per OCSF class, and OCSF documents shaped to fit it.

The column tree comes from `ocsf_1_3_0.json` (generated from the OCSF 1.3.0 schema by
tests/sinks/security_lake/gen_schema.py): every attribute of the class and of the
profiles it may declare, objects as nested structs two levels deep. Types: strings
(and OCSF's string-based types) `string`, `integer_t`/`port_t` int32, `long_t` and
`timestamp_t` int64 (epoch ms, as OCSF and the lake's own tables have them),
`float_t` double, `boolean_t` bool, `datetime_t` (`time_dt`) timestamp[ms, UTC],
`json_t` a string holding JSON text, and `unmapped` map<string, string>.

`LakeClass.row` shapes one document: what has a column goes there; an attribute with
no column (not in OCSF 1.3.0, deeper than the tree, or of the wrong type for it) goes
to `unmapped` as `ocsf.<dotted path>`; the document's own `unmapped` is flattened to
dotted keys. A string value stays as it is, any other value becomes its JSON text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import orjson
import pyarrow as pa

SCHEMA_FILE = "ocsf_1_3_0.json"
MOVED_PREFIX = "ocsf."
_INT32 = (-(2**31), 2**31)
_INT64 = (-(2**63), 2**63)
_JSON_META = {b"ocsf_type": b"json_t"}
_MISFIT = object()


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str  # a leaf type (string, int32, ...) or the OCSF object name of a struct
    array: bool
    children: tuple[Column, ...] | None  # a struct's columns
    check: Callable[[Any], bool] | None = None  # a leaf's type and OCSF 1.3.0 limits


def _limits(limits: dict[str, Any]) -> Callable[[Any], bool]:
    """The OCSF type's own regex, max_len and range, as the OCSF validators apply them."""
    regex = re.compile(limits["regex"]) if "regex" in limits else None
    max_len = limits.get("max_len")
    bounds = limits.get("range")

    def within(value: Any) -> bool:
        if regex is not None and not regex.search(value):
            return False
        if max_len is not None and len(value) > max_len:
            return False
        return bounds is None or bounds[0] <= value <= bounds[1]

    return within


def _column(spec: list[Any], types: dict[str, Callable[[Any], bool]]) -> Column:
    name, kind, array, last = spec
    if type(last) is list:
        return Column(name, kind, array, tuple(_column(child, types) for child in last))
    if kind in ("json", "map"):
        return Column(name, kind, array, None)
    base, limits = _CHECKS[kind], types.get(last)
    if limits is None:
        return Column(name, kind, array, None, base)
    return Column(name, kind, array, None, lambda value: base(value) and limits(value))


_LEAF_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "json": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "timestamp_ms": pa.timestamp("ms", tz="UTC"),
    "map": pa.map_(pa.string(), pa.string()),
}


def arrow_field(column: Column) -> pa.Field[Any]:
    if column.children is not None:
        kind: pa.DataType = pa.struct([arrow_field(child) for child in column.children])
    else:
        kind = _LEAF_TYPES[column.kind]
    if column.array:  # named as Parquet's LIST convention names it, so a read gives it back
        kind = pa.list_(pa.field("element", kind))
    metadata = _JSON_META if column.kind == "json" else None
    return pa.field(column.name, kind, nullable=True, metadata=metadata)


def _is_str(value: Any) -> bool:
    return type(value) is str


def _is_int32(value: Any) -> bool:
    return type(value) is int and _INT32[0] <= value < _INT32[1]


def _is_int64(value: Any) -> bool:
    return type(value) is int and _INT64[0] <= value < _INT64[1]


def _is_float(value: Any) -> bool:
    return type(value) is float or _is_int64(value)


def _is_bool(value: Any) -> bool:
    return type(value) is bool


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": _is_str,
    "int32": _is_int32,
    "int64": _is_int64,
    "timestamp_ms": _is_int64,
    "float64": _is_float,
    "bool": _is_bool,
}


def text(value: Any) -> str:
    """A map value: a string as it is, anything else as its JSON text."""
    return value if type(value) is str else orjson.dumps(value).decode()


def flatten(value: Any, key: str | None, into: dict[str, str]) -> None:
    """Objects become dotted keys (`key` None: the root, no prefix); any other value one
    entry (a key already taken gets `#2`, `#3`, ...)."""
    if type(value) is dict and value:
        for child, inner in value.items():
            flatten(inner, str(child) if key is None else f"{key}.{child}", into)
        return
    name, n = key or "", 1
    while name in into:
        n += 1
        name = f"{key}#{n}"
    into[name] = text(value)


# A shaper per column tree: name -> (check or None for structs, array, child shapers).
_Spec = dict[str, tuple[Column, Any]]


def _spec(columns: tuple[Column, ...]) -> _Spec:
    return {c.name: (c, _spec(c.children) if c.children is not None else None) for c in columns}


def _shape_struct(
    obj: dict[str, Any], spec: _Spec, path: str, moved: dict[str, str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if value is None:
            continue
        entry = spec.get(key)
        where = f"{path}{key}"
        if entry is None:
            flatten(value, MOVED_PREFIX + where, moved)
            continue
        column, children = entry
        shaped = _shape_value(value, column, children, where, moved)
        if shaped is _MISFIT:
            flatten(value, MOVED_PREFIX + where, moved)
        elif shaped is not None:
            out[key] = shaped
    return out


def _shape_one(
    value: Any, column: Column, children: _Spec | None, where: str, moved: dict[str, str]
) -> Any:
    if children is not None:
        if type(value) is not dict:
            return _MISFIT
        return _shape_struct(value, children, f"{where}.", moved) or None
    if column.check is None:  # json_t: any JSON value, as its text
        return orjson.dumps(value).decode()
    return value if column.check(value) else _MISFIT


def _shape_value(
    value: Any, column: Column, children: _Spec | None, where: str, moved: dict[str, str]
) -> Any:
    if not column.array:
        return _shape_one(value, column, children, where, moved)
    if type(value) is not list:
        return _MISFIT
    if children is None:  # scalars: all of one type, or the whole list moves
        items = [_shape_one(item, column, None, where, moved) for item in value]
        return _MISFIT if any(item is _MISFIT or item is None for item in items) else items
    out = []
    for index, item in enumerate(value):
        shaped = _shape_one(item, column, children, f"{where}[{index}]", moved)
        if shaped is _MISFIT:
            return _MISFIT
        out.append(shaped if shaped is not None else {})
    return out


class LakeClass:
    """One OCSF class as the lake stores it: its Arrow schema and its row shaper."""

    def __init__(
        self, uid: int, spec: dict[str, Any], version: str, types: dict[str, Callable[[Any], bool]]
    ) -> None:
        self.uid = uid
        self.name: str = spec["name"]
        self.caption: str = spec["caption"]
        self.profiles: tuple[str, ...] = tuple(spec["profiles"])
        self.columns = tuple(_column(field, types) for field in spec["fields"])
        self.schema = pa.schema(
            [arrow_field(column) for column in self.columns],
            metadata={"ocsf_version": version, "ocsf_class_uid": str(uid)},
        )
        self._spec = _spec(self.columns)
        self._has_time_dt = "time_dt" in self._spec

    def row(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The row for `doc` (an OCSF 1.3.0 document of this class, consumed)."""
        unmapped: dict[str, str] = {}
        own = doc.pop("unmapped", None)
        if own is not None:
            flatten(own, None if type(own) is dict else MOVED_PREFIX + "unmapped", unmapped)
        if self._has_time_dt and _is_int64(doc.get("time")):
            doc["time_dt"] = doc["time"]
        row = _shape_struct(doc, self._spec, "", unmapped)
        if unmapped:
            row["unmapped"] = unmapped
        return row


@cache
def lake_classes() -> dict[int, LakeClass]:
    """class_uid -> LakeClass, for the five classes the WorkMail mapping produces."""
    data = json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text("utf-8"))
    version = data["ocsf_version"]
    types = {name: _limits(limits) for name, limits in data["types"].items() if limits}
    return {
        int(uid): LakeClass(int(uid), spec, version, types) for uid, spec in data["classes"].items()
    }
