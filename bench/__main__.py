"""`python -m bench [mapping|hec|s3|cloudwatch|workers|all] [--records N] [--json FILE]`.

Runs the named benchmark (`all`: every one, in order), prints a table and a JSON
line per benchmark, and exits 1 when a benchmark misses its requirement (unless
`--no-check`). `--json FILE` writes every report, with the environment, to FILE.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import orjson

from bench import e2e_cloudwatch, e2e_hec, e2e_s3, e2e_workers, mapping
from bench.common import BenchResult, Options, environment, pin_to_one_cpu

# name -> run; `all` runs them in this order. End-to-end benchmarks join here.
BENCHES: dict[str, Callable[[Options], BenchResult]] = {
    mapping.NAME: mapping.run,
    e2e_hec.NAME: e2e_hec.run,
    e2e_s3.NAME: e2e_s3.run,
    e2e_cloudwatch.NAME: e2e_cloudwatch.run,
    e2e_workers.NAME: e2e_workers.run,
}


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
        "bench", nargs="?", default="all", choices=[*BENCHES, "all"], help="default: all"
    )
    parser.add_argument("--records", type=_positive, help="corpus size (default: per benchmark)")
    parser.add_argument("--passes", type=_positive, help="timed passes, best kept")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    parser.add_argument("--cpu", type=int, help="CPU to pin to (default: the last allowed)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the reports here")
    parser.add_argument("--no-check", action="store_true", help="report only; always exit 0")
    return parser.parse_args(argv)


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
    names = list(BENCHES) if args.bench == "all" else [args.bench]
    results: list[BenchResult] = []
    for name in names:
        result = BENCHES[name](options)
        results.append(result)
        print(result.table)
        print(orjson.dumps({"bench": name, **result.report}).decode(), flush=True)
    if args.json is not None:
        document = {"env": env, "benchmarks": {r.name: r.report for r in results}}
        args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    failures = [f"{r.name}: {failure}" for r in results for failure in r.failures]
    verdict = "requirement not met (not checked: --no-check)" if args.no_check else "FAILED"
    for failure in failures:
        print(f"{verdict}: {failure}", file=sys.stderr)
    return 1 if failures and not args.no_check else 0


if __name__ == "__main__":
    sys.exit(main())
