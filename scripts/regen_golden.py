"""Write the expected outputs of the golden mapping tests.

Usage: python scripts/regen_golden.py [--check]

For every input tests/mapping/golden/<log type>.jsonl (the bundled samples followed by
edge cases, each described in golden/cases.json by line number) it writes
<log type>.ocsf.ndjson and <log type>.ecs.ndjson: one document per input line, keys
sorted, produced exactly as tests/mapping/test_golden.py maps them (see
tests/mapping/conftest.py:golden_output).

The goldens are the safety net for changes to forwarder/mapping: regenerate them only
after a deliberate change of the mapping, and review the diff
(`git diff tests/mapping/golden`) before committing it; every changed line must be a
change you meant. After regenerating, run `python scripts/ecs_subset.py` too if the ECS
mapper emits new fields. --check exits 1 when a committed output is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from forwarder.mapping import LOG_TYPES  # noqa: E402
from tests.mapping.conftest import GOLDEN_DIR, golden_lines, golden_output  # noqa: E402

SCHEMAS = ("ocsf", "ecs")


def render() -> dict[Path, bytes]:
    """Expected output file -> its content."""
    lines = list(golden_lines())
    files: dict[Path, bytes] = {}
    for log_type in LOG_TYPES:
        for schema in SCHEMAS:
            docs = [
                orjson.dumps(golden_output(kind, line, schema), option=orjson.OPT_SORT_KEYS)
                for kind, _, line in lines
                if kind == log_type
            ]
            files[GOLDEN_DIR / f"{log_type.lower()}.{schema}.ndjson"] = b"\n".join(docs) + b"\n"
    return files


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, content in render().items():
        if path.is_file() and path.read_bytes() == content:
            continue
        stale.append(path.relative_to(ROOT))
        if not check:
            path.write_bytes(content)
    if check and stale:
        print(
            f"stale: {', '.join(map(str, stale))}; run python scripts/regen_golden.py",
            file=sys.stderr,
        )
        return 1
    if not check:
        print(f"rewrote {len(stale)} file(s): {', '.join(map(str, stale)) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
