"""Strict OCSF 1.5.0 validation of mapped documents: `validate_ocsf(doc)`.

Two layers, both driven by what the `pydantic-ocsf` package (3.0.0, a dev dependency)
ships for OCSF 1.5.0:

1. The official models: the event class is picked by `class_uid` from
   `ocsf.v1_5_0.events` and the document is validated with
   `model_validate_json(..., strict=True)` (JSON input, so enums are accepted by value
   and nothing is coerced: no "1" for 1, no 1.0 for 1, no 1 for True). The models check
   required attributes, primitive types, enum membership, id/label sibling consistency
   and the uid rules (`class_uid`, `category_uid`, `type_uid = class_uid * 100 +
   activity_id`).
2. A walk over the document driven by the package's schema data
   (`ocsf/schemas/v1_5_0.json`, the data the models are generated from), for what the
   models do not check.

Limitations of pydantic-ocsf 3.0.0 worked around here:

* Unknown attributes are accepted silently: every model has `extra="allow"`, so a typo
  (`src_endpont`) would pass. The walk rejects any attribute that is not defined for
  its class or object.
* Profiles are not modelled. The schema data keeps the classes' `$include` of
  `profiles/*.json` unresolved and ships no profile files, so profile attributes
  (`cloud`, `action_id`, `disposition_id`, `policy`, `actor` in 6001, ...) end up as
  unchecked extras. `PROFILE_ATTRIBUTES` below lists the attributes of the profiles
  this validator supports, from OCSF 1.5.0 `profiles/{cloud,host,security_control,
  osint}.json`; a profile attribute is accepted only when its profile is declared in
  `metadata.profiles` (and applies to the class), a required profile attribute must
  be present, and each value is checked against the attribute's dictionary definition
  in the package's schema data: object-valued ones (`cloud`, `policy`, `actor`, ...)
  with the package's object model (`ocsf.v1_5_0.objects.Cloud`, ...) and by the walk,
  enums against the dictionary enum with their sibling caption.
* Derived types are not checked: `ip_t`, `email_t`, `hostname_t`, `url_t`, `port_t`,
  ... are typed `Any` in the models. The walk checks each against its definition in
  the schema data (`dictionary.types`: base type, regex, range, max_len).
* Inherited enum values are missing: a class model's `activity_id` enum holds only the
  class's own activities, not the 0 Unknown and 99 Other every class inherits from the
  base event. For the model layer 0 is swapped for 99 (the walk checks 0 against the
  merged enum).
* Schema constraints (`at_least_one`, `just_one`, e.g. an email object needs `from` or
  `to`, an Authentication event `service` or `dst_endpoint`) are not enforced by the
  models; the walk enforces them, inherited through `extends` as OCSF does.
* Null values pass the models for optional attributes; the walk rejects them.

The walk also checks `metadata.version`, the class, category and type captions and,
like the models, `type_uid`/`category_uid`. Every problem found is reported in one
AssertionError.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

import orjson
from ocsf.v1_5_0 import events, objects
from pydantic import BaseModel, ValidationError

VERSION = "1.5.0"
_SCHEMA: dict[str, Any] = json.loads(
    resources.files("ocsf").joinpath("schemas", "v1_5_0.json").read_text(encoding="utf-8")
)
_EVENTS: dict[str, Any] = _SCHEMA["events"]
_OBJECTS: dict[str, Any] = _SCHEMA["objects"]
_DICTIONARY: dict[str, Any] = _SCHEMA["dictionary"]["attributes"]
_TYPES: dict[str, Any] = _SCHEMA["dictionary"]["types"]["attributes"]
_CATEGORIES: dict[str, Any] = _SCHEMA["categories_meta"]["attributes"]

# class_uid -> (schema name of the class, its pydantic-ocsf model)
EVENT_CLASSES: dict[int, tuple[str, type[BaseModel]]] = {
    3002: ("authentication", events.Authentication),
    3004: ("entity_management", events.EntityManagement),
    4009: ("email_activity", events.EmailActivity),
    6001: ("web_resources_activity", events.WebResourcesActivity),
    6003: ("api_activity", events.ApiActivity),
}

# OCSF 1.5.0 profiles/*.json: attribute -> requirement. Not shipped by pydantic-ocsf.
PROFILE_ATTRIBUTES: dict[str, dict[str, str]] = {
    "cloud": {"cloud": "required", "api": "optional"},
    "host": {"device": "recommended", "actor": "optional"},
    "osint": {"osint": "required"},
    "security_control": {
        "action": "optional",
        "action_id": "recommended",
        "attacks": "optional",
        "authorizations": "optional",
        "confidence": "optional",
        "confidence_id": "recommended",
        "confidence_score": "optional",
        "disposition": "optional",
        "disposition_id": "recommended",
        "firewall_rule": "optional",
        "is_alert": "recommended",
        "malware": "optional",
        "malware_scan_info": "optional",
        "policy": "optional",
        "risk_details": "optional",
        "risk_level": "optional",
        "risk_level_id": "optional",
        "risk_score": "optional",
    },
}


def validate_ocsf(doc: dict[str, Any]) -> None:
    """Raise AssertionError listing every way `doc` is not a valid OCSF 1.5.0 event."""
    if type(doc) is not dict:
        raise AssertionError(f"OCSF: expected a JSON object, not {type(doc).__name__}")
    class_uid = doc.get("class_uid")
    if type(class_uid) is not int or class_uid not in EVENT_CLASSES:
        raise AssertionError(f"OCSF: class_uid {class_uid!r} is not one of {sorted(EVENT_CLASSES)}")
    name, model = EVENT_CLASSES[class_uid]
    problems: list[str] = []
    profiles = _declared_profiles(doc, name, problems)
    class_attrs = _event_attributes(name)
    profile_attrs: dict[str, dict[str, Any]] = {}
    for profile in profiles:
        for attr, requirement in PROFILE_ATTRIBUTES[profile].items():
            if attr not in class_attrs:
                profile_attrs[attr] = {**_DICTIONARY[attr], "requirement": requirement}
    _model_layer(doc, model, class_attrs, profile_attrs, problems)
    _check_attributes(
        doc, {**class_attrs, **profile_attrs}, _constraints(_EVENTS, name), "", profiles, problems
    )
    _check_classification(doc, name, problems)
    if problems:
        caption = _EVENTS[name]["caption"]
        raise AssertionError(
            f"OCSF {VERSION} {caption} (class_uid {class_uid}) is invalid:\n  "
            + "\n  ".join(problems)
        )


def _declared_profiles(doc: dict[str, Any], name: str, problems: list[str]) -> set[str]:
    metadata = doc.get("metadata")
    declared = metadata.get("profiles", []) if type(metadata) is dict else []
    if type(declared) is not list or not all(type(p) is str for p in declared):
        problems.append(f"metadata.profiles: expected an array of strings, got {declared!r}")
        return set()
    if len(set(declared)) != len(declared):
        problems.append(f"metadata.profiles: duplicates in {declared!r}")
    applicable = _applicable_profiles(name)
    found = set()
    for profile in declared:
        if profile not in applicable:
            problems.append(f"metadata.profiles: {profile!r} does not apply to {name}")
        elif profile not in PROFILE_ATTRIBUTES:
            problems.append(f"metadata.profiles: {profile!r} is not supported by this validator")
        else:
            found.add(profile)
    return found


@cache
def _applicable_profiles(name: str) -> frozenset[str]:
    spec = _EVENTS[name]
    own = frozenset(spec.get("profiles") or ())
    parent = spec.get("extends")
    return own | _applicable_profiles(parent) if parent else own


def _model_layer(
    doc: dict[str, Any],
    model: type[BaseModel],
    class_attrs: dict[str, Any],
    profile_attrs: dict[str, dict[str, Any]],
    problems: list[str],
) -> None:
    """The package's models on the class attributes and on object-valued profile ones."""
    core = {key: value for key, value in doc.items() if key in class_attrs}
    activity_enum = getattr(model, "ActivityId", None)
    if (
        core.get("activity_id") == 0
        and activity_enum is not None
        and 0 not in {member.value for member in activity_enum}
    ):
        # The inherited 0 Unknown is missing from the package's class enum (see above).
        core["activity_id"] = 99
        core["activity_name"] = "Other"
        core.pop("type_uid", None)
    _run_model(model, core, "", problems)
    for attr, spec in profile_attrs.items():
        if attr not in doc or spec.get("type") not in _OBJECTS or spec["type"] == "object":
            continue
        object_model = _object_model(spec["type"])
        values = doc[attr] if spec.get("is_array") and type(doc[attr]) is list else [doc[attr]]
        for value in values:
            _run_model(object_model, value, f"{attr}: ", problems)


def _run_model(model: type[BaseModel], value: Any, where: str, problems: list[str]) -> None:
    try:
        model.model_validate_json(orjson.dumps(value), strict=True)
    except ValidationError as exc:
        for error in exc.errors():
            loc = ".".join(str(part) for part in error["loc"])
            problems.append(
                f"{where}{loc or '<root>'}: {error['msg']} (pydantic-ocsf {model.__name__})"
            )


def _object_model(type_name: str) -> type[BaseModel]:
    model: type[BaseModel] = getattr(objects, "".join(w.capitalize() for w in type_name.split("_")))
    return model


@cache
def _event_attributes(name: str) -> dict[str, dict[str, Any]]:
    return _resolve(_EVENTS, name)


@cache
def _object_attributes(name: str) -> dict[str, dict[str, Any]]:
    return _resolve(_OBJECTS, name)


def _resolve(table: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """Attributes of a class or object with its ancestors': dictionary definition, then
    the parent's, then its own; enums of a parent and a child are merged as OCSF does."""
    spec = table[name]
    parent = spec.get("extends")
    merged = dict(_resolve(table, parent)) if parent else {}
    for attr, own in spec.get("attributes", {}).items():
        if attr.startswith("$") or type(own) is not dict:
            continue
        base = merged.get(attr) or _DICTIONARY.get(attr, {})
        combined = {**base, **own}
        if attr in merged and "enum" in base and "enum" in own:
            combined["enum"] = {**base["enum"], **own["enum"]}
        merged[attr] = combined
    return merged


def _constraints(table: dict[str, Any], name: str) -> dict[str, list[str]]:
    spec = table[name]
    if "constraints" in spec:
        constraints: dict[str, list[str]] = spec["constraints"]
        return constraints
    parent = spec.get("extends")
    return _constraints(table, parent) if parent and parent in table else {}


def _check_attributes(
    obj: dict[str, Any],
    attrs: dict[str, dict[str, Any]],
    constraints: dict[str, list[str]],
    path: str,
    profiles: set[str],
    problems: list[str],
) -> None:
    for key, value in obj.items():
        where = f"{path}{key}"
        spec = attrs.get(key)
        if spec is None:
            owners = [p for p, a in PROFILE_ATTRIBUTES.items() if key in a]
            hint = f" (needs profile {' or '.join(owners)} in metadata.profiles)" if owners else ""
            problems.append(f"{where}: unknown attribute{hint}")
            continue
        gate = spec.get("profile")
        if gate and gate not in profiles:
            problems.append(f"{where}: attribute of profile {gate!r}, not in metadata.profiles")
        _check_value(value, spec, where, profiles, problems)
    for attr, spec in attrs.items():
        if spec.get("requirement") == "required" and attr not in obj:
            problems.append(f"{path}{attr}: required attribute missing")
        sibling = spec.get("sibling")
        if "enum" in spec and sibling and attr in obj and sibling in obj:
            caption = spec["enum"].get(str(obj[attr]), {}).get("caption")
            if obj[attr] != 99 and caption is not None and obj[sibling] != caption:
                problems.append(
                    f"{path}{sibling}: {obj[sibling]!r} is not the caption of "
                    f"{attr}={obj[attr]!r} ({caption!r})"
                )
    for attr_list in constraints.get("at_least_one", ()), constraints.get("just_one", ()):
        if not attr_list:
            continue
        present = [a for a in attr_list if _has_path(obj, a)]
        where = path.removesuffix(".") or "<event>"
        if attr_list is constraints.get("just_one"):
            if len(present) != 1:
                problems.append(f"{where}: needs exactly one of {attr_list}")
        elif not present:
            problems.append(f"{where}: needs at least one of {attr_list}")


def _has_path(obj: dict[str, Any], dotted: str) -> bool:
    node: Any = obj
    for step in dotted.split("."):
        if type(node) is not dict or step not in node:
            return False
        node = node[step]
    return True


def _check_value(
    value: Any, spec: dict[str, Any], where: str, profiles: set[str], problems: list[str]
) -> None:
    if spec.get("is_array"):
        if type(value) is not list:
            problems.append(f"{where}: expected an array, got {_show(value)}")
            return
        for index, item in enumerate(value):
            _check_single(item, spec, f"{where}[{index}]", profiles, problems)
    else:
        _check_single(value, spec, where, profiles, problems)


def _check_single(
    value: Any, spec: dict[str, Any], where: str, profiles: set[str], problems: list[str]
) -> None:
    kind = spec.get("type", "string_t")
    if value is None:
        problems.append(f"{where}: null")
        return
    if kind == "object":  # the generic object, e.g. `unmapped`: any JSON object
        if type(value) is not dict:
            problems.append(f"{where}: expected an object, got {_show(value)}")
        return
    if kind in _OBJECTS:
        if type(value) is not dict:
            problems.append(f"{where}: expected a {kind} object, got {_show(value)}")
            return
        _check_attributes(
            value,
            _object_attributes(kind),
            _constraints(_OBJECTS, kind),
            f"{where}.",
            profiles,
            problems,
        )
        return
    if kind == "json_t":
        return
    problem = _type_problem(value, kind)
    enum = spec.get("enum") if where not in _CLASSIFICATION else None
    if problem is None and enum is not None and str(value) not in enum:
        problem = f"{value!r} is not one of {sorted(enum, key=_int_first)}"
    if problem is not None:
        problems.append(f"{where}: {problem}")


# Their enums in the schema data are placeholders; _check_classification checks them.
_CLASSIFICATION = frozenset(("class_uid", "category_uid", "type_uid"))


def _type_problem(value: Any, kind: str) -> str | None:
    definition = _TYPES.get(kind)
    if definition is None:
        return f"unknown OCSF type {kind!r}"
    base = definition.get("type", kind)
    cls = type(value)
    if base == "string_t":
        ok = cls is str
    elif base in ("integer_t", "long_t"):
        ok = cls is int
    elif base == "float_t":
        ok = cls is int or cls is float
    elif base == "boolean_t":
        ok = cls is bool
    else:
        return f"unknown OCSF base type {base!r}"
    if not ok:
        return f"{_show(value)} is not a {kind}"
    regex = _type_regex(kind)
    if regex is not None and not regex.search(value):
        return f"{value!r} does not match the {kind} pattern"
    max_len = definition.get("max_len")
    if max_len is not None and len(value) > max_len:
        return f"{value!r} is longer than {max_len} ({kind})"
    bounds = definition.get("range")
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        return f"{value!r} is outside {bounds} ({kind})"
    return None


@cache
def _type_regex(kind: str) -> re.Pattern[str] | None:
    pattern = _TYPES[kind].get("regex")
    return re.compile(pattern) if pattern else None


def _check_classification(doc: dict[str, Any], name: str, problems: list[str]) -> None:
    spec = _EVENTS[name]
    class_uid = doc["class_uid"]
    category = _CATEGORIES[spec.get("category") or _EVENTS[spec["extends"]]["category"]]
    expected_class = category["uid"] * 1000 + spec["uid"]
    if class_uid != expected_class:
        problems.append(f"class_uid: {class_uid} is not {expected_class}")
    if doc.get("category_uid") != class_uid // 1000:
        problems.append(f"category_uid: {doc.get('category_uid')!r} is not {class_uid // 1000}")
    activity_id = doc.get("activity_id")
    if type(activity_id) is int and doc.get("type_uid") != class_uid * 100 + activity_id:
        problems.append(
            f"type_uid: {doc.get('type_uid')!r} is not class_uid * 100 + activity_id "
            f"= {class_uid * 100 + activity_id}"
        )
    for attr, expected in (("class_name", spec["caption"]), ("category_name", category["caption"])):
        if attr in doc and doc[attr] != expected:
            problems.append(f"{attr}: {doc[attr]!r} is not {expected!r}")
    activity = _event_attributes(name)["activity_id"]["enum"].get(str(activity_id), {})
    if "type_name" in doc and activity:
        expected = f"{spec['caption']}: {activity['caption']}"
        if doc["type_name"] != expected:
            problems.append(f"type_name: {doc['type_name']!r} is not {expected!r}")
    metadata = doc.get("metadata")
    if type(metadata) is dict and metadata.get("version") != VERSION:
        problems.append(f"metadata.version: {metadata.get('version')!r} is not {VERSION!r}")


def _int_first(key: str) -> tuple[int, str]:
    return (int(key), key) if key.lstrip("-").isdigit() else (1 << 62, key)


def _show(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"
