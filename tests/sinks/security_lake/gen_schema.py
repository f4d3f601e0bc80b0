"""Write forwarder/sinks/security_lake/ocsf_1_3_0.json: the lake's column tree per class.

    .venv/bin/python -m tests.sinks.security_lake.gen_schema        # rewrite the file
    .venv/bin/python -m tests.sinks.security_lake.gen_schema --check

Input: the OCSF 1.3.0 schema data that `pydantic-ocsf` (a dev dependency) ships
(`ocsf/schemas/v1_3_0.json`), so the daemon needs neither the package nor the whole
schema at run time; tests/sinks/security_lake/test_schema.py fails when the file and
this generator disagree.

Rules (docs/mapping.md, "Amazon Security Lake"):

* the attributes of the class, inherited through `extends`, plus those of the profiles
  the lake documents may declare where OCSF 1.3.0 applies them to the class (`cloud`,
  `datetime`, `host`, `security_control`); the `$include`d base-event parts
  (classification and occurrence) are resolved here, since the schema data keeps them
  unresolved;
* objects are expanded as nested structs down to `MAX_OBJECT_DEPTH` objects below the
  event, an object is never expanded inside itself, and deprecated attributes are left
  out;
* the `datetime` profile's `_dt` sibling is added for the event's own timestamps.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
TARGET = ROOT / "forwarder" / "sinks" / "security_lake" / "ocsf_1_3_0.json"
MAX_OBJECT_DEPTH = 2
CLASSES = {
    3002: "authentication",
    3004: "entity_management",
    4009: "email_activity",
    6001: "web_resources_activity",
    6003: "api_activity",
}
LAKE_PROFILES = ("cloud", "datetime", "host", "security_control")
# OCSF 1.3.0 profiles/*.json (the schema data does not ship them). security_control is
# the 1.5.0 profile less what the 1.4.0 changelog says it added (policy, is_alert, the
# confidence and risk attributes; #1178) and malware_scan_info (1.5.0).
PROFILE_ATTRIBUTES: dict[str, dict[str, str]] = {
    "cloud": {"cloud": "required", "api": "optional"},
    "host": {"device": "recommended", "actor": "optional"},
    "security_control": {
        "action": "optional",
        "action_id": "optional",
        "attacks": "optional",
        "authorizations": "optional",
        "disposition": "optional",
        "disposition_id": "recommended",
        "firewall_rule": "optional",
        "malware": "optional",
    },
    "datetime": {},
}
# includes/classification.json and includes/occurrence.json of base_event (1.3.0):
# what base_event gained in 1.4.0, when the includes were inlined, less raw_data_size.
BASE_INCLUDES = (
    "activity_id", "activity_name", "category_name", "category_uid", "class_name",
    "class_uid", "type_name", "type_uid", "count", "duration", "end_time", "start_time",
    "time", "timezone_offset",
)  # fmt: skip


def load(version: str) -> dict[str, Any]:
    text = resources.files("ocsf").joinpath("schemas", f"v{version}.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


SCHEMA = load("1_3_0")
_DICTIONARY: dict[str, Any] = SCHEMA["dictionary"]["attributes"]
_TYPES: dict[str, Any] = SCHEMA["dictionary"]["types"]["attributes"]


def _base_includes() -> dict[str, dict[str, Any]]:
    base15 = load("1_5_0")["events"]["base_event"]["attributes"]
    return {name: dict(base15[name]) for name in BASE_INCLUDES}


def resolve(table: str, name: str) -> dict[str, dict[str, Any]]:
    """Attributes of a class or object with its ancestors' (dictionary definition first)."""
    spec = SCHEMA[table][name]
    parent = spec.get("extends")
    merged = dict(resolve(table, parent)) if parent and parent in SCHEMA[table] else {}
    own: dict[str, Any] = dict(spec.get("attributes", {}))
    if table == "events" and name == "base_event":
        own = {**_base_includes(), **own}
    for attr, value in own.items():
        if attr.startswith("$") or type(value) is not dict:
            continue
        base = merged.get(attr) or _DICTIONARY.get(attr, {})
        merged[attr] = {**base, **value}
    return merged


@cache
def applicable_profiles(name: str) -> tuple[str, ...]:
    spec = SCHEMA["events"][name]
    own = tuple(spec.get("profiles") or ())
    parent = spec.get("extends")
    inherited = applicable_profiles(parent) if parent else ()
    return tuple(sorted(set(own) | set(inherited)))


def class_attributes(name: str) -> dict[str, dict[str, Any]]:
    attrs = resolve("events", name)
    for profile in LAKE_PROFILES:
        if profile not in applicable_profiles(name):
            continue
        for attr, requirement in PROFILE_ATTRIBUTES[profile].items():
            if attr not in attrs:
                attrs[attr] = {**_DICTIONARY[attr], "requirement": requirement}
    for attr, spec in list(attrs.items()):
        if spec.get("type") == "timestamp_t" and "datetime" in applicable_profiles(name):
            attrs[f"{attr}_dt"] = {"type": "datetime_t", "requirement": "optional"}
    return attrs


def _leaf_type(kind: str) -> str:
    if kind == "datetime_t":
        return "timestamp_ms"
    if kind == "json_t":
        return "json"
    base = _TYPES.get(kind, {}).get("type", kind)
    return {
        "string_t": "string",
        "integer_t": "int32",
        "long_t": "int64",
        "float_t": "float64",
        "boolean_t": "bool",
        "timestamp_t": "int64",
    }[base if kind != "timestamp_t" else "timestamp_t"]


def fields(attrs: dict[str, dict[str, Any]], depth: int, path: tuple[str, ...]) -> list[Any]:
    """[name, column type, is_array, OCSF type] for leaves, [name, object, is_array,
    children] for structs."""
    out: list[Any] = []
    for attr in sorted(attrs):
        spec = attrs[attr]
        if "@deprecated" in spec:
            continue
        kind = spec.get("type", "string_t")
        array = bool(spec.get("is_array"))
        if kind == "object":  # the generic object: `unmapped` (and `xattributes`)
            out.append([attr, "map" if attr == "unmapped" else "json", False, "object"])
        elif kind in SCHEMA["objects"]:
            if depth >= MAX_OBJECT_DEPTH or kind in path:
                continue
            children = fields(resolve("objects", kind), depth + 1, (*path, kind))
            out.append([attr, kind, array, children])
        else:
            out.append([attr, _leaf_type(kind), array, kind])
    return out


def constrained_types() -> dict[str, dict[str, Any]]:
    """The OCSF types with a regex, a max_len or a range, and those."""
    found = {}
    for name, spec in _TYPES.items():
        limits = {key: spec[key] for key in ("regex", "max_len", "range") if key in spec}
        if limits:
            found[name] = limits
    found["datetime_t"] = {}  # `time_dt` holds epoch ms in the row, never text
    return found


def generate() -> dict[str, Any]:
    classes = {}
    for uid, name in CLASSES.items():
        spec = SCHEMA["events"][name]
        profiles = [p for p in LAKE_PROFILES if p in applicable_profiles(name)]
        classes[str(uid)] = {
            "name": name,
            "caption": spec["caption"],
            "profiles": profiles,
            "fields": fields(class_attributes(name), 0, ()),
        }
    return {
        "ocsf_version": SCHEMA["version"],
        "max_object_depth": MAX_OBJECT_DEPTH,
        "generated_by": "tests/sinks/security_lake/gen_schema.py",
        "classes": classes,
        "types": constrained_types(),
    }


def render() -> str:
    return json.dumps(generate(), separators=(",", ":"), sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = TARGET.read_text("utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is stale: run python -m tests.sinks.security_lake.gen_schema")
            return 1
        return 0
    TARGET.write_text(text, "utf-8")
    print(f"wrote {TARGET} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
