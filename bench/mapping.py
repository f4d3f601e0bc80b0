"""Mapping alone, against plain orjson on the same records in the same run.

Requirement (issue 15): on the native engine, decode + detect + id + map to OCSF +
encode at >= 0.5x the speed of plain `orjson.loads` + `orjson.dumps` of the same
records on one core, and >= 8x the Python engine; ECS is measured alike and reported.
The native cases call `wmf_native.map_chunk` on chunks of CHUNK records (the unit a
source hands over); the Python cases are the reference loop. Without the native
module only the Python cases run, and the check is reported as not measurable.

Each mapped case does per record what `Pipeline.map_batch` does for one view:
`orjson.loads`, `detect_log_type`, `event_id`, `event_time_ms`, `map_record(...,
raw=line.decode())` and `orjson.dumps`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from bench.common import BenchResult, Options, best_of
from bench.corpus import MIX, generate
from forwarder.errors import MappingError
from forwarder.mapping import detect_log_type, event_id, event_time_ms, map_record

NAME = "mapping"
DEFAULT_RECORDS = 200_000
DEFAULT_PASSES = 5
MIN_RATIO_TO_FLOOR = 0.5
MIN_RATIO_TO_PYTHON = 8.0
CHUNK = 1000
# Event time for records that state none (most email events): the pipeline uses the
# source's time or now; a constant keeps runs comparable.
NOW_MS = 1_718_200_000_000
SCHEMAS = ("ocsf", "ecs")


def floor_case(lines: list[bytes]) -> Callable[[], None]:
    def floor() -> None:
        loads, dumps = orjson.loads, orjson.dumps
        for line in lines:
            dumps(loads(line))

    return floor


def mapping_case(lines: list[bytes], schema: str) -> Callable[[], None]:
    def mapped() -> None:
        loads, dumps = orjson.loads, orjson.dumps
        detect, ident, event_time, map_ = detect_log_type, event_id, event_time_ms, map_record
        now_ms = NOW_MS
        for line in lines:
            record = loads(line)
            log_type = detect(record)
            if log_type is None:
                raise MappingError("unknown_log_type", line.decode()[:200])
            eid = ident(record, log_type)
            time_ms = event_time(record, log_type)
            if time_ms is None:
                time_ms = now_ms
            dumps(map_(record, log_type, schema, event_id=eid, time_ms=time_ms, raw=line.decode()))

    return mapped


def native_case(lines: list[bytes], schema: str) -> Callable[[], None] | None:
    try:
        import wmf_native
    except ImportError:
        return None
    chunks = []
    for start in range(0, len(lines), CHUNK):
        raws = lines[start : start + CHUNK]
        n = len(raws)
        chunks.append((raws, [None] * n, [0.0] * n, ["bench"] * n, list(range(n))))
    map_chunk = wmf_native.map_chunk

    def mapped() -> None:
        for raws, types, times, partitions, offsets in chunks:
            out = map_chunk(raws, types, times, partitions, offsets, [schema], "bench", NOW_MS)
            if out.deferred or out.rejections:
                raise SystemExit(f"native {schema}: {out.deferred} deferred, {out.rejections[:3]}")

    return mapped


def check_corpus(lines: list[bytes]) -> tuple[Counter[str], dict[str, int]]:
    """Every record must detect and map (else the timing would measure error paths):
    the detected log types, and the mean encoded size per schema."""
    kinds: Counter[str] = Counter()
    out_bytes = dict.fromkeys(SCHEMAS, 0)
    for line in lines:
        record = orjson.loads(line)
        log_type = detect_log_type(record)
        if log_type is None:
            raise SystemExit(f"corpus record of no known log type: {line[:200]!r}")
        kinds[log_type] += 1
        eid = event_id(record, log_type)
        time_ms = event_time_ms(record, log_type) or NOW_MS
        for schema in SCHEMAS:
            doc = map_record(
                record, log_type, schema, event_id=eid, time_ms=time_ms, raw=line.decode()
            )
            out_bytes[schema] += len(orjson.dumps(doc))
    return kinds, {schema: total // len(lines) for schema, total in out_bytes.items()}


def run(options: Options) -> BenchResult:
    n = options.records or DEFAULT_RECORDS
    passes = options.passes or DEFAULT_PASSES
    lines = generate(n, options.seed)
    kinds, out_size = check_corpus(lines)
    cases = {"floor": floor_case(lines)}
    cases.update((schema, mapping_case(lines, schema)) for schema in SCHEMAS)
    for schema in SCHEMAS:
        native = native_case(lines, schema)
        if native is not None:
            cases[f"native_{schema}"] = native
    best = best_of(passes, cases)

    floor_rate = n / best["floor"]
    rows: dict[str, dict[str, float]] = {}
    for name, seconds in best.items():
        rate = n / seconds
        rows[name] = {
            "records_per_s": round(rate),
            "us_per_record": round(seconds / n * 1e6, 3),
            "ratio_to_floor": round(rate / floor_rate, 3),
        }
    for schema in SCHEMAS:
        if f"native_{schema}" in rows:
            python_rate = rows[schema]["records_per_s"]
            row = rows[f"native_{schema}"]
            row["ratio_to_python"] = round(row["records_per_s"] / python_rate, 2)
    failures = []
    native = rows.get("native_ocsf")
    if native is None:
        failures.append("the native engine is not built: its targets cannot be measured")
    else:
        if native["ratio_to_floor"] < MIN_RATIO_TO_FLOOR:
            failures.append(
                f"native OCSF mapping at {native['ratio_to_floor']:.3f}x plain orjson, "
                f"below {MIN_RATIO_TO_FLOOR}x"
            )
        if native["ratio_to_python"] < MIN_RATIO_TO_PYTHON:
            failures.append(
                f"native OCSF mapping at {native['ratio_to_python']}x the Python engine, "
                f"below {MIN_RATIO_TO_PYTHON}x"
            )
    in_size = sum(map(len, lines)) // n
    report: dict[str, Any] = {
        "records": n,
        "seed": options.seed,
        "passes": passes,
        "corpus": {
            "bytes_per_record": in_size,
            "mix": {kind: round(kinds[kind] / n, 4) for kind in MIX},
        },
        "output_bytes_per_record": out_size,
        "cases": rows,
        "thresholds": {
            "native_ocsf_min_ratio_to_floor": MIN_RATIO_TO_FLOOR,
            "native_ocsf_min_ratio_to_python": MIN_RATIO_TO_PYTHON,
        },
        "ok": not failures,
        "failures": failures,
    }
    return BenchResult(NAME, _table(report), report, failures)


_LABELS = {
    "floor": "floor: orjson loads+dumps",
    "ocsf": "Python OCSF: loads+detect+id+map+dumps",
    "ecs": "Python ECS",
    "native_ocsf": "native OCSF: map_chunk",
    "native_ecs": "native ECS: map_chunk",
}


def _table(report: dict[str, Any]) -> str:
    cases, corpus = report["cases"], report["corpus"]
    lines = [
        f"mapping: {report['records']:,} records (seed {report['seed']}, "
        f"{corpus['bytes_per_record']} B/record), best of {report['passes']} passes",
        f"{'case':<40} {'records/s':>11} {'µs/record':>10} {'x floor':>8} {'x Python':>9}",
    ]
    for name, row in cases.items():
        vs_python = f"{row['ratio_to_python']:>9.2f}" if "ratio_to_python" in row else " " * 9
        lines.append(
            f"{_LABELS[name]:<40} {row['records_per_s']:>11,} "
            f"{row['us_per_record']:>10.3f} {row['ratio_to_floor']:>8.3f} {vs_python}"
        )
    verdict = "PASS" if report["ok"] else "FAIL"
    lines.append(
        f"check: native OCSF >= {MIN_RATIO_TO_FLOOR}x floor and >= {MIN_RATIO_TO_PYTHON}x "
        f"Python: {verdict}"
    )
    return "\n".join(lines)
