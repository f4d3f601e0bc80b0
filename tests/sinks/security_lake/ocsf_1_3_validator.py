"""Strict OCSF 1.3.0 validation of the documents the lake stores: `validate_ocsf_1_3(doc)`.

The same two layers as tests/mapping/ocsf_validator.py (pydantic-ocsf's models in
strict mode, then a walk over the schema data for what they skip), pointed at the
package's OCSF 1.3.0 data and models: a second, private copy of that module is loaded
and its schema globals are replaced, so both versions share one implementation.

What the 1.3.0 data lacks is filled in from gen_schema.py, which documents it: the
profiles' attributes as of 1.3.0 and the base event's `$include`d classification and
occurrence attributes; `datetime` adds `time_dt` (a `datetime_t`, RFC 3339 text).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

from ocsf.v1_3_0 import events, objects

from tests.sinks.security_lake import gen_schema

_SOURCE = Path(__file__).resolve().parents[2] / "mapping" / "ocsf_validator.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_ocsf_1_3_validator", _SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    schema: dict[str, Any] = gen_schema.load("1_3_0")
    base = schema["events"]["base_event"]["attributes"]
    for name, attr in gen_schema._base_includes().items():
        base.setdefault(name, attr)
    schema["dictionary"]["attributes"]["time_dt"] = {
        "caption": "Event Time",
        "type": "datetime_t",
    }
    module.VERSION = "1.3.0"
    module._SCHEMA = schema
    module._EVENTS = schema["events"]
    module._OBJECTS = schema["objects"]
    module._DICTIONARY = schema["dictionary"]["attributes"]
    module._TYPES = schema["dictionary"]["types"]["attributes"]
    module._CATEGORIES = schema["categories_meta"]["attributes"]
    module.objects = objects
    module.EVENT_CLASSES = {
        3002: ("authentication", events.Authentication),
        3004: ("entity_management", events.EntityManagement),
        4009: ("email_activity", events.EmailActivity),
        6001: ("web_resources_activity", events.WebResourcesActivity),
        6003: ("api_activity", events.ApiActivity),
    }
    profiles = {name: dict(attrs) for name, attrs in gen_schema.PROFILE_ATTRIBUTES.items()}
    profiles["datetime"] = {"time_dt": "optional"}
    module.PROFILE_ATTRIBUTES = profiles
    return module


_VALIDATOR = _load()


def validate_ocsf_1_3(doc: dict[str, Any]) -> None:
    """Raise AssertionError listing every way `doc` is not a valid OCSF 1.3.0 event."""
    _VALIDATOR.validate_ocsf(doc)
