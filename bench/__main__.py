"""`python -m bench [floor|mapping|hec|s3|cloudwatch|workers|all ...] [--records N] [--json FILE]`.

Runs the named benchmarks (`all`: every one, in order), prints a table and a JSON
line per benchmark, then one combined table of the end-to-end cases against the
floor (events/s, x floor, peak RSS, p50 / p99 batch latency) with the issue's
targets, and exits 1 when a benchmark misses its requirement (unless `--no-check`).
`--json FILE` writes every report, the summary and the environment to FILE.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench import e2e_cloudwatch, e2e_hec, e2e_s3, e2e_workers, floor, mapping
from bench.common import FLOOR, BenchResult, Options, SummaryRow, environment, ms, pin_to_one_cpu

# name -> run; `all` runs them in this order. End-to-end benchmarks join here.
BENCHES: dict[str, Callable[[Options], BenchResult]] = {
    floor.NAME: floor.run,
    mapping.NAME: mapping.run,
    e2e_hec.NAME: e2e_hec.run,
    e2e_s3.NAME: e2e_s3.run,
    e2e_cloudwatch.NAME: e2e_cloudwatch.run,
    e2e_workers.NAME: e2e_workers.run,
}

# The targets for the combined table.
MIN_HEC_RATIO_TO_FLOOR = 0.5
STRETCH_HEC_RATIO_TO_FLOOR = 0.6
MIN_WORKERS_RATIO = e2e_workers.MIN_RATIO
MAX_RSS_MB = e2e_hec.MAX_RSS_MB


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the forwarder's benchmarks; exit 1 when one misses its requirement.",
    )
    parser.add_argument(
        "bench",
        nargs="*",
        default="all",  # a list default would be checked against the choices whole
        choices=[*BENCHES, "all"],
        help="one or more, run in the order given (default: all)",
    )
    parser.add_argument("--records", type=_positive, help="corpus size (default: per benchmark)")
    parser.add_argument("--passes", type=_positive, help="timed passes, best kept")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    parser.add_argument("--cpu", type=int, help="CPU to pin to (default: the last allowed)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the reports here")
    parser.add_argument("--no-check", action="store_true", help="report only; always exit 0")
    return parser.parse_args(argv)


def _ratio(value: float, base: float | None) -> float | None:
    return round(value / base, 3) if base else None


def summarise(results: list[BenchResult]) -> tuple[dict[str, Any], list[str]]:
    """The combined report (cases, floor, targets) and the failures it adds: the
    targets that no benchmark checks on its own."""
    rows: list[SummaryRow] = [row for r in results for row in r.summary]
    floor_rate = next((row.events_per_s for row in rows if row.key == FLOOR), None)
    cases: dict[str, dict[str, Any]] = {}
    for row in rows:
        cases[row.key] = {
            "case": row.case,
            "events_per_s": row.events_per_s,
            "ratio_to_floor": _ratio(row.events_per_s, floor_rate),
            "rss_peak_mb": row.rss_mb,
            "batch_p50_s": row.batch_p50_s,
            "batch_p99_s": row.batch_p99_s,
        }
    targets: list[dict[str, Any]] = []
    failures: list[str] = []
    hec = cases.get("files_hec")
    if hec is not None and hec["ratio_to_floor"] is not None:
        ratio = hec["ratio_to_floor"]
        met = ratio >= MIN_HEC_RATIO_TO_FLOOR
        targets.append({"target": f"files -> HEC >= {MIN_HEC_RATIO_TO_FLOOR}x floor "
                        f"(stretch {STRETCH_HEC_RATIO_TO_FLOOR}x)", "value": ratio, "met": met,
                        "stretch_met": ratio >= STRETCH_HEC_RATIO_TO_FLOOR})  # fmt: skip
        if not met:
            failures.append(
                f"files -> HEC at {ratio:.3f}x the floor, below {MIN_HEC_RATIO_TO_FLOOR}x"
            )
    one, two = cases.get("workers_1"), cases.get("workers_2")
    if one is not None and two is not None:
        # Checked by the workers benchmark itself: reported here, not failed twice.
        ratio = round(two["events_per_s"] / max(one["events_per_s"], 1), 2)
        targets.append({"target": f"workers: 2 >= {MIN_WORKERS_RATIO}x one process",
                        "value": ratio, "met": ratio >= MIN_WORKERS_RATIO})  # fmt: skip
    measured = {key: c["rss_peak_mb"] for key, c in cases.items() if c["rss_peak_mb"] is not None}
    if measured:
        worst = max(measured, key=lambda key: measured[key])
        targets.append({"target": f"peak RSS of any daemon process < {MAX_RSS_MB} MB",
                        "value": measured[worst], "case": worst,
                        "met": measured[worst] < MAX_RSS_MB})  # fmt: skip
        # The hec benchmark checks its own cases; the others are checked here.
        failures.extend(
            f"{cases[key]['case']}: peak RSS {rss} MB, not below {MAX_RSS_MB} MB"
            for key, rss in measured.items()
            if rss >= MAX_RSS_MB and not key.startswith("files_hec")
        )
    summary = {"floor_events_per_s": floor_rate, "cases": cases, "targets": targets}
    return summary, failures


def summary_table(summary: dict[str, Any]) -> str:
    """The combined table, as Markdown that also reads as aligned text."""
    header = ("case", "events/s", "x floor", "RSS MB", "batch p50", "batch p99")
    body: list[tuple[str, ...]] = []
    for case in summary["cases"].values():
        ratio, rss = case["ratio_to_floor"], case["rss_peak_mb"]
        body.append((
            case["case"],
            f"{case['events_per_s']:,.0f}",
            "-" if ratio is None else f"{ratio:.2f}",
            "-" if rss is None else f"{rss:.0f}",
            ms(case["batch_p50_s"]),
            ms(case["batch_p99_s"]),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|"
    out = ["summary: end to end against the floor", line(header), rule, *map(line, body)]
    for target in summary["targets"]:
        verdict = "met" if target["met"] else "NOT MET"
        if "stretch_met" in target:
            verdict += ", stretch " + ("met" if target["stretch_met"] else "not met")
        out.append(f"target: {target['target']}: {target['value']} ({verdict})")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cpu = pin_to_one_cpu(args.cpu)
    env = environment(cpu)
    print(
        f"python {env['python']}, orjson {env['versions']['orjson']}, {env['processor']}, "
        + (f"pinned to CPU {cpu}" if cpu is not None else "not pinned"),
        flush=True,
    )
    options = Options(records=args.records, passes=args.passes, seed=args.seed, cpu=cpu)
    requested = [args.bench] if isinstance(args.bench, str) else args.bench
    names = list(BENCHES) if "all" in requested else list(dict.fromkeys(requested))
    results: list[BenchResult] = []
    for name in names:
        result = BENCHES[name](options)
        results.append(result)
        print(result.table)
        print(orjson.dumps({"bench": name, **result.report}).decode(), flush=True)
    summary, summary_failures = summarise(results)
    if any(key != FLOOR for key in summary["cases"]):
        print(summary_table(summary))
        print(orjson.dumps({"bench": "summary", **summary}).decode(), flush=True)
    if args.json is not None:
        document = {
            "env": env,
            "benchmarks": {r.name: r.report for r in results},
            "summary": summary,
        }
        args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    failures = [f"{r.name}: {failure}" for r in results for failure in r.failures]
    failures += [f"summary: {failure}" for failure in summary_failures]
    verdict = "requirement not met (not checked: --no-check)" if args.no_check else "FAILED"
    for failure in failures:
        print(f"{verdict}: {failure}", file=sys.stderr)
    return 1 if failures and not args.no_check else 0


if __name__ == "__main__":
    sys.exit(main())
