"""Write forwarder/mapping/data/ecs_subset.json: the ECS 9.4.0 definitions the tests' ECS
checker (tests/mapping/ecs_checker.py) needs, cut from the full `ecs_flat.yml`.

Usage: python scripts/ecs_subset.py [path-to-ecs_flat.yml] [--check]
The default source is ../shared/schemas/ecs_flat-9.4.0.yml relative to the repo root.
--check exits 1 when the committed subset differs from what would be written.

The subset holds every field of the field sets the mapping uses (FIELD_SETS) and
every ECS field the mapping emits for the bundled samples and the golden inputs
(tests/mapping/golden/*.jsonl), with its ancestors; per field its `type`, `normalize`
and the names of its `allowed_values` (for `event.category`, also each category's
`expected_event_types`). Run it again after changing what the ECS mapper emits.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from forwarder.mapping import event_time_ms, map_record  # noqa: E402
from forwarder.mapping.common import LOG_TYPES  # noqa: E402

DEFAULT_SOURCE = ROOT.parent / "shared" / "schemas" / "ecs_flat-9.4.0.yml"
OUTPUT = ROOT / "forwarder" / "mapping" / "data" / "ecs_subset.json"
INPUTS = (ROOT / "forwarder" / "samples", ROOT / "tests" / "mapping" / "golden")
VERSION = "9.4.0"
# Whole field sets the mapping writes to, so that a new field of theirs needs no
# regeneration; `@timestamp` and `ecs.version` come in as emitted fields.
FIELD_SETS = (
    "cloud",
    "destination",
    "email",
    "error",
    "event",
    "network",
    "organization",
    "related",
    "rule",
    "source",
    "url",
    "user",
    "user_agent",
)


def emitted_fields() -> set[str]:
    """Dotted paths of every ECS leaf the mapper writes for the samples and goldens
    (list items share their list's path; aws.workmail.* is vendor space)."""
    paths: set[str] = set()
    for directory in INPUTS:
        for log_type in LOG_TYPES:
            for path in sorted(directory.glob(f"{log_type.lower()}*.jsonl")):
                for line in path.read_text(encoding="utf-8").splitlines():
                    if not line.strip():
                        continue
                    record = json.loads(line)
                    time_ms = event_time_ms(record, log_type) or 0
                    doc = map_record(
                        record, log_type, "ecs", event_id="0" * 32, time_ms=time_ms, raw=line
                    )
                    _leaves(doc, "", paths)
    return {path for path in paths if not path.startswith("aws.")}


def _leaves(node: Any, path: str, out: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _leaves(value, f"{path}.{key}" if path else key, out)
    elif isinstance(node, list):
        for item in node:
            _leaves(item, path, out)
    else:
        out.add(path)


def build_subset(source: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with source.open("rb") as handle:
        definitions: dict[str, Any] = yaml.load(handle, Loader=loader)
    wanted = {name for name in definitions if name.split(".", 1)[0] in FIELD_SETS}
    missing = []
    for path in emitted_fields():
        if path not in definitions:
            missing.append(path)
        parts = path.split(".")
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            if prefix in definitions:
                wanted.add(prefix)
    if missing:
        print(f"not ECS {VERSION} fields, left out: {sorted(missing)}", file=sys.stderr)
    fields: dict[str, Any] = {}
    for name in sorted(wanted):
        definition = definitions[name]
        entry: dict[str, Any] = {"type": definition["type"]}
        if definition.get("normalize"):
            entry["normalize"] = list(definition["normalize"])
        allowed = definition.get("allowed_values")
        if allowed:
            entry["allowed_values"] = [value["name"] for value in allowed]
            expected = {
                value["name"]: value["expected_event_types"]
                for value in allowed
                if value.get("expected_event_types")
            }
            if expected:
                entry["expected_event_types"] = expected
        fields[name] = entry
    return {
        "ecs_version": VERSION,
        "generated_by": "scripts/ecs_subset.py",
        "source": source.name,
        "field_sets": list(FIELD_SETS),
        "fields": fields,
    }


def render(subset: dict[str, Any]) -> str:
    """JSON with one field per line: small, and a regeneration diffs field by field."""
    head = {key: value for key, value in subset.items() if key != "fields"}
    lines = [f" {json.dumps(key)}: {json.dumps(value)}," for key, value in sorted(head.items())]
    fields = [
        f"  {json.dumps(name)}: {json.dumps(entry, sort_keys=True, ensure_ascii=False)}"
        for name, entry in sorted(subset["fields"].items())
    ]
    return "{\n" + "\n".join(lines) + '\n "fields": {\n' + ",\n".join(fields) + "\n }\n}\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    args = [arg for arg in argv if arg != "--check"]
    source = Path(args[0]) if args else DEFAULT_SOURCE
    if not source.is_file():
        print(f"no ECS definitions at {source}", file=sys.stderr)
        return 2
    text = render(build_subset(source))
    if check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.is_file() else ""
        if current != text:
            print(f"{OUTPUT} is stale: run python scripts/ecs_subset.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {len(json.loads(text)['fields'])} fields to {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
