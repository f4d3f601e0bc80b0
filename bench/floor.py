"""The floor every end-to-end figure is divided by: the work no forwarder can skip.

Per record, on one core, nothing else: `orjson.loads` + `orjson.dumps` of the record,
and, per batch of 500 records, the encoded records joined and gzipped by one zlib
compressobj (level 1, gzip framing), as the Splunk HEC sink does with each request
body (`forwarder.sinks._http.gzip_body`). No mapping, no envelope, no I/O.

Decode + encode alone (the mapping benchmark's floor) is measured alongside, in the
same interleaved passes, so that the share of gzip shows. Nothing is checked here.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import orjson

from bench.common import FLOOR, BenchResult, Options, SummaryRow, best_of
from bench.corpus import generate

NAME = FLOOR
DEFAULT_RECORDS = 200_000
DEFAULT_PASSES = 5
BATCH = 500  # the end-to-end benchmarks' HEC sink: batch.max_events
GZIP_LEVEL = 1  # and its gzip_level


def _batches(lines: list[bytes]) -> list[list[bytes]]:
    return [lines[i : i + BATCH] for i in range(0, len(lines), BATCH)]


def codec_case(lines: list[bytes]) -> Callable[[], None]:
    batches = _batches(lines)

    def codec() -> None:
        loads, dumps = orjson.loads, orjson.dumps
        for batch in batches:
            for line in batch:
                dumps(loads(line))

    return codec


def gzip_case(lines: list[bytes]) -> Callable[[], None]:
    batches = _batches(lines)

    def floor() -> None:
        loads, dumps = orjson.loads, orjson.dumps
        compressobj, deflated = zlib.compressobj, zlib.DEFLATED
        for batch in batches:
            body = b"".join([dumps(loads(line)) for line in batch])
            compressor = compressobj(GZIP_LEVEL, deflated, 31)
            compressor.compress(body)
            compressor.flush()

    return floor


def _gzipped_bytes(lines: list[bytes]) -> int:
    total = 0
    for batch in _batches(lines):
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        body = b"".join(orjson.dumps(orjson.loads(line)) for line in batch)
        total += len(compressor.compress(body) + compressor.flush())
    return total


def run(options: Options) -> BenchResult:
    n = options.records or DEFAULT_RECORDS
    passes = options.passes or DEFAULT_PASSES
    lines = generate(n, options.seed)
    best = best_of(passes, {"codec": codec_case(lines), "gzip": gzip_case(lines)})
    rows: dict[str, dict[str, float]] = {}
    for name, seconds in best.items():
        rows[name] = {
            "records_per_s": round(n / seconds),
            "us_per_record": round(seconds / n * 1e6, 3),
        }
    in_size = sum(map(len, lines)) / n
    report: dict[str, Any] = {
        "records": n,
        "seed": options.seed,
        "passes": passes,
        "batch": BATCH,
        "gzip_level": GZIP_LEVEL,
        "bytes_per_record": round(in_size),
        "gzipped_bytes_per_record": round(_gzipped_bytes(lines) / n, 1),
        "cases": rows,
        "floor_records_per_s": rows["gzip"]["records_per_s"],
    }
    table = "\n".join(
        [
            f"floor: {n:,} records ({report['bytes_per_record']} B/record, gzipped "
            f"{report['gzipped_bytes_per_record']} B), best of {passes} passes, one core",
            f"{'case':44s} {'records/s':>11s} {'µs/record':>10s}",
            *(
                f"{label:44s} {rows[name]['records_per_s']:>11,} "
                f"{rows[name]['us_per_record']:>10.3f}"
                for name, label in (
                    ("codec", "orjson loads + dumps"),
                    ("gzip", f"loads + dumps + gzip (level {GZIP_LEVEL}, {BATCH}/batch)"),
                )
            ),
        ]
    )
    row = SummaryRow(FLOOR, "floor: decode + encode + gzip, 1 core", rows["gzip"]["records_per_s"])
    return BenchResult(NAME, table, report, summary=[row])
