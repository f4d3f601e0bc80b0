"""The cluster model behind the Elasticsearch/OpenSearch peer (es.py): templates, data
streams, index-name rules, mappings and the document checks. Sources: es.py's docstring."""

from __future__ import annotations

import base64
import functools
import ipaddress
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from aiohttp import web

from tests.peers import faults as peer

NUMERIC = {"long", "integer", "short", "byte", "unsigned_long", "double", "float", "half_float",
           "scaled_float"}  # fmt: skip
COMMON = NUMERIC | {"text", "keyword", "wildcard", "constant_keyword", "match_only_text", "date",
                    "date_nanos", "boolean", "binary", "ip", "object", "nested", "geo_point",
                    "geo_shape", "alias", "integer_range", "float_range", "long_range",
                    "double_range", "date_range", "ip_range", "completion", "join", "percolator",
                    "search_as_you_type", "token_count", "rank_feature", "rank_features"}  # fmt: skip
TYPES = {"elasticsearch": COMMON | {"flattened", "version", "histogram", "point", "shape",
                                    "dense_vector", "sparse_vector", "semantic_text", "passthrough",
                                    "counted_keyword", "aggregate_metric_double"},
         "opensearch": COMMON | {"flat_object", "xy_point", "xy_shape", "knn_vector", "derived",
                                 "star_tree"}}  # fmt: skip
DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])(T([01]\d|2[0-3])(:[0-5]\d"
                  r"(:[0-5]\d([.,]\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?)?)?$")  # fmt: skip
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
BAD_CHARS = '\\/*?"<>| ,#:'


def builtin_templates() -> dict[str, dict[str, Any]]:
    """ES's managed ``logs``/``metrics``/``synthetics`` templates, reduced to what matters."""
    out = {}
    for kind in ("logs", "metrics", "synthetics"):
        stream = {"type": {"type": "constant_keyword", "value": kind},
                  "dataset": {"type": "constant_keyword"}, "namespace": {"type": "constant_keyword"}}  # fmt: skip
        props = {"@timestamp": {"type": "date"}, "data_stream": {"properties": stream}}
        out[kind] = {"index_patterns": [f"{kind}-*-*"], "priority": 100, "data_stream": {},
                     "composed_of": [], "_meta": {"managed": True}, "allow_auto_create": True,
                     "template": {"settings": {"index.mapping.ignore_malformed": True},
                                  "mappings": {"properties": props}}}  # fmt: skip
    return out


class EsError(Exception):
    def __init__(self, reason: str, kind: str = "illegal_argument_exception", status: int = 400,
                 **extra: Any) -> None:  # fmt: skip
        super().__init__(reason)
        self.status, self.error = status, {"type": kind, "reason": reason, **extra}

    def response(self) -> web.Response:
        body = {"error": {"root_cause": [self.error], **self.error}, "status": self.status}
        return peer.json_response(body, status=self.status)


def new_id(size: int = 15) -> str:
    return base64.urlsafe_b64encode(os.urandom(size)).decode().rstrip("=")


def jlist(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


@dataclass
class Index:
    name: str
    data_stream: str | None
    fields: dict[str, dict[str, Any]]  # dotted path -> mapping spec
    ignore_malformed: bool
    uuid: str = field(default_factory=lambda: new_id(16))
    docs: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    seq_no: int = 0


@dataclass
class EsState(peer.PeerBase):
    flavor: str = "elasticsearch"
    api_key: str | None = None
    user: str | None = None
    password: str | None = None
    fast: bool = False
    ecs_names: bool = True
    index_templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    component_templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    indices: dict[str, Index] = field(default_factory=dict)
    data_streams: dict[str, str] = field(default_factory=dict)  # name -> backing index

    def __post_init__(self) -> None:
        if self.flavor == "elasticsearch" and not self.index_templates:
            self.index_templates.update(builtin_templates())

    def clear(self) -> None:
        super().clear()
        self.indices, self.data_streams = {}, {}

    def stored(self) -> dict[str, list[dict[str, Any]]]:
        return {i.data_stream or i.name: [{"_id": k, "_index": i.name, "_source": v}
                                          for k, v in i.docs.items()]
                for i in self.indices.values()}  # fmt: skip


# --- names, templates, mappings ----------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def name_problem(name: str) -> str | None:
    size = len(name.encode())
    checks = ((name != name.lower(), "must be lowercase"),
              (any(c in name for c in BAD_CHARS),
               "must not contain the following characters " + jlist(list(BAD_CHARS))),
              (name[:1] in ("_", "-", "+"), "must not start with '_', '-', or '+'"),
              (name in (".", ".."), "must not be '.' or '..'"),
              (size > 255, f"index name is too long, ({size} > 255)"))  # fmt: skip
    return next((text for failed, text in checks if failed), None)


def flatten(props: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in props.items():
        out[prefix + name] = {"type": "object"} | {
            k: v for k, v in spec.items() if k != "properties"
        }
        out.update(flatten(spec.get("properties", {}), f"{prefix}{name}."))
    return out


def check_types(flavor: str, mappings: Any) -> None:
    for path, spec in flatten((mappings or {}).get("properties", {})).items():
        if spec["type"] not in TYPES[flavor]:
            cause = f"No handler for type [{spec['type']}] declared on field [{path}]"
            head = "Failed to parse mapping" + ("" if flavor == "elasticsearch" else " [_doc]")
            raise EsError(f"{head}: {cause}", "mapper_parsing_exception",
                          caused_by={"type": "mapper_parsing_exception", "reason": cause})  # fmt: skip


def ignore_malformed(settings: dict[str, Any]) -> bool | None:
    node: Any = settings
    for part in ("index", "mapping", "ignore_malformed"):  # nested or dotted keys
        dotted = [k for k in node if isinstance(k, str) and k.endswith("ignore_malformed")]
        if dotted:
            return node[dotted[0]] in (True, "true")
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return None


def compose(state: EsState, template: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
    template = template or {}
    parts = [state.component_templates.get(c, {}).get("template", {})
             for c in template.get("composed_of", [])] + [template.get("template", {})]  # fmt: skip
    fields: dict[str, Any] = {}
    malformed = False
    for part in parts:
        fields.update(flatten((part.get("mappings") or {}).get("properties", {})))
        value = ignore_malformed(part.get("settings") or {})
        malformed = malformed if value is None else value
    return fields, malformed


def resolve(state: EsState, name: str) -> Index:
    if name in state.data_streams:
        return state.indices[state.data_streams[name]]
    if name in state.indices:
        return state.indices[name]
    matches = [t for t in state.index_templates.values()
               if any(fnmatchcase(name, p) for p in t["index_patterns"])]  # fmt: skip
    template = max(matches, key=lambda t: t.get("priority", 0), default=None)
    fields, malformed = compose(state, template)
    if template is None or "data_stream" not in template:
        state.indices[name] = Index(name, None, fields, malformed)
        return state.indices[name]
    parts = name.split("-")
    if state.ecs_names and not (len(parts) == 3 and all(0 < len(p) <= 100 for p in parts[1:])):
        raise EsError(f"test peer ECS check (not an Elasticsearch rule): data stream [{name}] "
                      "must be <type>-<dataset>-<namespace> without '-' in dataset or "
                      "namespace, each 1..100 characters")  # fmt: skip
    fields.setdefault("@timestamp", {"type": "date"})
    day = f"-{datetime.now(UTC):%Y.%m.%d}" if state.flavor == "elasticsearch" else ""
    state.data_streams[name] = backing = f".ds-{name}{day}-000001"
    state.indices[backing] = Index(backing, name, fields, malformed)
    return state.indices[backing]


# --- documents -----------------------------------------------------------------------------


def is_date(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    return not isinstance(value, str) or bool(DATE.match(value) or NUMBER.match(value))


def value_problem(kind: str, value: Any) -> str | None:
    """Why a field of type `kind` refuses the scalar `value` (ES's caused_by), or None."""
    if kind in ("date", "date_nanos") and not is_date(value):
        return f"failed to parse date field [{value}] with format [strict_date_optional_time||epoch_millis]"
    if kind == "ip":
        try:
            ipaddress.ip_address(value if isinstance(value, str) else "-")
        except ValueError:
            return f"'{value}' is not an IP string literal."
    number = isinstance(value, int | float) or (isinstance(value, str) and NUMBER.match(value))
    if kind in NUMERIC and (isinstance(value, bool) or not number):
        return f'For input string: "{value}"'
    if kind == "boolean" and value not in (True, False, "true", "false", ""):
        return f"Failed to parse value [{value}] as only [true] or [false] are allowed."
    return None


def dynamic_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, bool | int | float):
        return {bool: "boolean", int: "long", float: "float"}[type(value)]
    full_date = isinstance(value, str) and len(value) >= 10 and DATE.match(value)
    return "date" if full_date else "text"


class DocError(Exception):
    def __init__(self, reason: str, cause: tuple[str, str] | None = None, at: str = "") -> None:
        super().__init__(reason)
        self.reason, self.cause, self.at = reason, cause, at

    def error(self, flavor: str, source: str) -> dict[str, Any]:
        column = source.find(f'"{self.at}"') + len(self.at) + 3 if self.at else len(source)
        es = flavor == "elasticsearch"
        out: dict[str, Any] = {"type": "document_parsing_exception" if es else "mapper_parsing_exception",
                               "reason": f"[1:{max(column, 1)}] {self.reason}" if es else self.reason}  # fmt: skip
        if self.cause:
            out["caused_by"] = {"type": self.cause[0], "reason": self.cause[1]}
        return out


def check_fields(idx: Index, obj: dict[str, Any], prefix: str, new: dict[str, Any], doc_id: str) -> None:  # fmt: skip
    for key, raw in obj.items():
        path = prefix + key
        for value in raw if isinstance(raw, list) else [raw]:
            if value is None:
                continue
            spec = new.get(path) or idx.fields.get(path) or new.setdefault(path, {"type": dynamic_type(value)})  # fmt: skip
            kind = spec["type"]
            shown = (f"failed to parse field [{path}] of type [{kind}] in document with id "
                     f"'{doc_id}'. Preview of field's value: '{value}'")  # fmt: skip
            if isinstance(value, dict) and kind in ("object", "nested"):
                check_fields(idx, value, path + ".", new, doc_id)
            elif isinstance(value, dict) and kind not in ("flattened", "flat_object"):
                raise DocError(shown, ("illegal_state_exception", "Can't get text on a START_OBJECT"), key)  # fmt: skip
            elif kind in ("object", "nested"):
                raise DocError(f"object mapping for [{path}] tried to parse field [{path}] as "
                               "object, but found a concrete value", at=key)  # fmt: skip
            elif kind == "constant_keyword":
                text = str(value).lower() if isinstance(value, bool) else str(value)
                if "value" not in spec:
                    new[path] = {**spec, "value": text}
                elif spec["value"] != text:
                    raise DocError(shown, ("illegal_argument_exception",
                                           f"[constant_keyword] field [{path}] only accepts values that are "
                                           f"equal to the value defined in the mappings [{spec['value']}], but "
                                           f"got [{text}]"), key)  # fmt: skip
            elif (problem := value_problem(kind, value)) and not idx.ignore_malformed:
                raise DocError(shown, ("illegal_argument_exception", problem), key)


def check_document(state: EsState, idx: Index, doc: dict[str, Any], doc_id: str) -> None:
    if idx.data_stream is not None:
        stamp = doc.get("@timestamp")
        single = stamp[0] if isinstance(stamp, list) and len(stamp) == 1 else stamp
        if state.flavor == "opensearch" and not is_date(single):  # None, [] and [a, b] too
            raise DocError("failed to parse", ("illegal_argument_exception", "documents must "
                           "contain a single-valued timestamp field '@timestamp' of date type"))  # fmt: skip
        ignored = not isinstance(stamp, list) and not is_date(stamp) and idx.ignore_malformed
        problem = ("is missing" if stamp in (None, []) or ignored  # an ignored value is no value
                   else "encountered multiple values" if isinstance(stamp, list) and len(stamp) > 1
                   else None)  # fmt: skip
        if problem:
            reason = f"data stream timestamp field [@timestamp] {problem}"
            raise DocError(f"failed to parse: {reason}", ("illegal_argument_exception", reason))
    new: dict[str, Any] = {}
    check_fields(idx, doc, "", new, doc_id)
    idx.fields.update(new)
