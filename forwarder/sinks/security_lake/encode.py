"""Events of one class and day -> Parquet files in the spool directory (runs in a thread).

Rows are ordered by time, then event id (Security Lake: "records should be ordered by
time"), written in row groups of `ROW_GROUP_ROWS`, so memory holds one row group's
rows and columns, never the whole object: the object itself grows on disk. A file
that passes `target_size` is closed and the next rows start a new object. The same
events give the same files and keys (layout.object_name), byte for byte.

Parquet settings follow the custom-source requirements: data pages of at most 1 MiB
uncompressed, row groups far below 256 MB, zstd (preferred) or snappy.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from forwarder.events import Event
from forwarder.sinks.security_lake.columns import LakeClass
from forwarder.sinks.security_lake.downgrade import to_ocsf_1_3
from forwarder.sinks.security_lake.layout import object_name

ROW_GROUP_ROWS = 10_000
DATA_PAGE_BYTES = 1 << 20
Compression = Literal["zstd", "snappy"]


@dataclass(slots=True)
class LakeObject:
    """One Parquet file ready for upload: `indices` are the events it holds."""

    path: Path
    name: str = ""
    size: int = 0
    rows: int = 0
    indices: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Encoded:
    objects: list[LakeObject]
    rejected: dict[int, str]  # event index -> why it cannot go to the lake


def encode(
    lake: LakeClass,
    events: list[Event],
    indices: list[int],
    view: str,
    spool: Path,
    *,
    target_size: int,
    compression: Compression,
) -> Encoded:
    """Write `events[i] for i in indices` (all of `lake`'s class, one day) as objects."""
    order = sorted(indices, key=lambda i: (events[i].time, events[i].id))
    result = Encoded([], {})
    current: _Open | None = None
    try:
        for start in range(0, len(order), ROW_GROUP_ROWS):
            chunk = order[start : start + ROW_GROUP_ROWS]
            rows, kept = _rows(lake, events, chunk, view, result.rejected)
            if not rows:
                continue
            table, kept = _table(lake, rows, kept, result.rejected)
            if not kept:
                continue
            if current is None:
                current = _Open(lake.schema, spool, _compression(table, compression))
            current.write(table, kept)
            if current.size() >= target_size:
                result.objects.append(current.close(events))
                current = None
        if current is not None:
            result.objects.append(current.close(events))
            current = None
    except BaseException:
        if current is not None:
            current.abandon()
        for done in result.objects:
            done.path.unlink(missing_ok=True)
        raise
    return result


def _rows(
    lake: LakeClass,
    events: list[Event],
    chunk: list[int],
    view: str,
    rejected: dict[int, str],
) -> tuple[list[dict[str, Any]], list[int]]:
    rows: list[dict[str, Any]] = []
    kept: list[int] = []
    loads, profiles, uid = orjson.loads, lake.profiles, lake.uid
    for index in chunk:
        try:
            doc = loads(events[index].docs[view])
        except (KeyError, orjson.JSONDecodeError) as exc:
            rejected[index] = f"no OCSF document to store: {exc}"
            continue
        if type(doc) is not dict or doc.get("class_uid") != uid:
            rejected[index] = f"not an OCSF {lake.caption} event (class_uid {uid})"
            continue
        rows.append(lake.row(to_ocsf_1_3(doc, profiles)))
        kept.append(index)
    return rows, kept


_ARROW_ERRORS = (pa.ArrowException, ValueError, TypeError, OverflowError)


def _table(
    lake: LakeClass, rows: list[dict[str, Any]], kept: list[int], rejected: dict[int, str]
) -> tuple[pa.Table, list[int]]:
    """The rows as a table; a row Arrow refuses (a shaper bug) is rejected on its own
    instead of failing, and so blocking, the whole batch."""
    try:
        return pa.Table.from_pylist(rows, schema=lake.schema), kept
    except _ARROW_ERRORS:
        good, indices = [], []
        for row, index in zip(rows, kept, strict=True):
            try:
                pa.Table.from_pylist([row], schema=lake.schema)
            except _ARROW_ERRORS as exc:
                rejected[index] = f"not storable as Parquet: {type(exc).__name__}: {exc}"
                continue
            good.append(row)
            indices.append(index)
        return pa.Table.from_pylist(good, schema=lake.schema), indices


def _leaves(array: pa.Array[Any], path: str, out: dict[str, bool]) -> None:
    """Parquet column path -> whether the column holds any value, for every leaf."""
    kind = array.type
    if pa.types.is_struct(kind):  # flatten(): the children with the parent's nulls applied
        for child, values in zip(kind, array.flatten(), strict=True):  # type: ignore[attr-defined]
            _leaves(values, f"{path}{child.name}.", out)
    elif pa.types.is_map(kind):
        out[f"{path}key_value.key"] = out[f"{path}key_value.value"] = len(array.keys) > 0  # type: ignore[attr-defined]
    elif pa.types.is_list(kind):
        _leaves(array.flatten(), f"{path}list.element.", out)  # type: ignore[attr-defined]
    else:
        out[path.removesuffix(".")] = array.null_count < len(array)


def _compression(table: pa.Table, codec: Compression) -> dict[str, Any]:
    """`codec` for the columns the first row group fills, none for the empty ones.

    Most of a class's columns are empty for WorkMail events, and a compressor per empty
    column chunk is most of the cost of a small file (zstd: three times snappy's)."""
    filled: dict[str, bool] = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        _leaves(column, f"{name}.", filled)
    return {path: codec if used else "none" for path, used in filled.items()}


class _Open:
    """A Parquet file being written to `<spool>/<random>.parquet.part`."""

    def __init__(self, schema: pa.Schema, spool: Path, compression: dict[str, Any]) -> None:
        self.path = spool / f"{uuid.uuid4().hex}.parquet.part"
        self.indices: list[int] = []
        self.rows = 0
        self._writer = pq.ParquetWriter(
            self.path,
            schema,
            compression=compression,
            version="2.6",
            data_page_size=DATA_PAGE_BYTES,
            write_statistics=True,
        )

    def write(self, table: pa.Table, indices: list[int]) -> None:
        self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.indices.extend(indices)
        self.rows += table.num_rows

    def size(self) -> int:
        return os.stat(self.path).st_size

    def close(self, events: list[Event]) -> LakeObject:
        self._writer.close()
        first = events[self.indices[0]]
        name = object_name(round(first.time * 1000), [events[i].id for i in self.indices])
        return LakeObject(self.path, name, self.size(), self.rows, self.indices)

    def abandon(self) -> None:
        try:
            self._writer.close()
        finally:
            self.path.unlink(missing_ok=True)
