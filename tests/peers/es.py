"""A strict Elasticsearch 8.17 / OpenSearch 2.19 ``_bulk`` peer (aiohttp), for tests.

``python -m tests.peers.es --port N [--api-key ENCODED] [--user U --password P]
[--flavor elasticsearch|opensearch] [--fast] [--no-ecs-names] [--host 127.0.0.1]``
(no credentials: security off; ``--port 0`` prints ``listening http://HOST:PORT``).

Modelled, with sources (PROTOCOLS.md section 2 has the links):

* ``POST|PUT /_bulk`` and ``/<target>/_bulk``. Content-Type must be (x-)ndjson or json,
  else 406 ``{"error":"Content-Type header [..] is not supported","status":406}``;
  gzip/deflate bodies always accepted (ES 5.0 breaking changes). Whole-request 400s,
  texts from ES ``BulkRequestParser`` and its tests: empty body ``parse_exception``
  "request body is required"; "The bulk request must be terminated by a newline [\\n]";
  "Malformed action/metadata line [N], expected ..." (unknown action, extra keys,
  non-objects); "Action/metadata line [N] contains an unknown parameter [x]";
  ``action_request_validation_exception`` "Validation Failed: 1: ...;" (index or source
  missing, empty or >512-byte ``_id``, no requests); unknown query parameters. A trailing
  action without its source line is ignored, as the parser does. Answer: ``took``,
  ``errors``, ``items`` in request order.
* Targets: a new name resolves through the highest-priority matching index template.
  Elasticsearch ships ``logs-*-*``/``metrics-*-*``/``synthetics-*-*`` (priority 100,
  ``data_stream``, ``ignore_malformed: true``, ``data_stream.*`` constant_keyword);
  OpenSearch ships none, so without a ``data_stream: {}`` template a name is a plain index.
  Through a data stream only ``create`` (item 400 "only write ops with an op_type of
  create are allowed in data streams", ES ``TransportBulkAction``); ``@timestamp`` needed:
  ES item 400 ``document_parsing_exception`` (ES >= 8.8; older: mapper_parsing_exception)
  "[1:N] failed to parse: data stream timestamp field [@timestamp] is missing";
  OpenSearch ``mapper_parsing_exception`` caused by "documents must contain a
  single-valued timestamp field '@timestamp' of date type" (``DataStreamFieldMapper``).
  Backing index ``.ds-<ds>-<yyyy.mm.dd>-000001`` (ES) / ``.ds-<ds>-000001`` (OpenSearch).
  Duplicate ``_id`` on create: item 409 ``version_conflict_engine_exception`` "[<id>]:
  version conflict, document already exists (current version [1])". Success: item 201
  ``created`` with ``_version``, ``_seq_no``, ``_primary_term``, ``_shards``.
* Names: ES index-name rules -> item 400 ``invalid_index_name_exception``. Stricter than
  Elasticsearch (which only matches ``logs-*-*``), a new data stream must be
  ``<type>-<dataset>-<namespace>``, no ``-`` in dataset/namespace, each <= 100 chars (ECS
  "data_stream fields"); ``--no-ecs-names`` turns this peer check off.
* Mappings: template field types must exist in the flavor (ES ``flattened`` vs OpenSearch
  ``flat_object``...), else 400 ``mapper_parsing_exception`` "No handler for type [t]
  declared on field [f]". Documents are checked against explicit and dynamic mappings
  (first value wins; ``yyyy-MM-dd...`` strings are detected as dates): dates
  (``strict_date_optional_time||epoch_millis``), ip, numbers, booleans, object vs value,
  ``constant_keyword`` (fixed by the mapping or the first document); value errors honour
  ``ignore_malformed``. ``[1:N]`` columns are approximate.
* Templates: ``PUT/GET /_index_template/<n>`` and ``/_component_template/<n>`` with the
  unknown-field, missing-component (``invalid_index_template_exception``) and
  same-priority-overlap checks (overlap = one pattern matches the other, so ``a*``/``*b``
  slips through).
* Auth: ES ``ApiKey <encoded>`` or Basic; failures 401 ``security_exception`` with the
  ``WWW-Authenticate`` list (captured ES 8 answers). OpenSearch: Basic only (no ApiKey,
  PROTOCOLS 2.4), failures 401 with an empty body (opensearch-project/security #4214).
  ``X-Elastic-Product: Elasticsearch`` only for ES. ``GET /``: the flavor's version JSON.

``GET /__peer__/events``: ``{"<data stream or index>": [{"_id", "_index", "_source"}]}``.
``--fast``: sources are not parsed, stored or checked (no 409 either); items still answer
201 with the right ``_index``. Not modelled: ``update``/``delete`` (item 400 saying so),
routing, pipelines, ``filter_path``, rollover, failure store, ecs@mappings templates.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import orjson
from aiohttp import web

from tests.peers import faults as peer
from tests.peers.es_model import (
    DocError,
    EsError,
    EsState,
    check_document,
    check_types,
    compose,
    jlist,
    name_problem,
    new_id,
    resolve,
)

STATE: web.AppKey[EsState] = web.AppKey("es_state")
MAX_CONTENT = 100 * 1024 * 1024  # http.max_content_length
MEDIA = {"application/x-ndjson", "application/json", "application/vnd.elasticsearch+x-ndjson",
         "application/vnd.elasticsearch+json"}  # fmt: skip
BULK_PARAMS = {"refresh", "pipeline", "routing", "timeout", "wait_for_active_shards", "pretty",
               "require_alias", "require_data_stream", "filter_path", "human", "error_trace",
               "_source", "_source_includes", "_source_excludes", "list_executed_pipelines",
               "include_source_on_error"}  # fmt: skip
META = {"_index", "_id", "routing", "op_type", "pipeline", "require_alias", "require_data_stream",
        "dynamic_templates", "if_seq_no", "if_primary_term", "version", "version_type", "_source",
        "retry_on_conflict", "list_executed_pipelines"}  # fmt: skip
WWW = ['Basic realm="security", charset="UTF-8"', 'Bearer realm="security"', "ApiKey"]
REJECTED = ("rejected execution of coordinating operation [coordinating_and_primary_bytes=0, "
            "replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1048576, "
            "max_coordinating_and_primary_bytes=1]")  # fmt: skip
VERSION = {"elasticsearch": {"number": "8.17.0", "build_flavor": "default", "build_type": "tar",
                             "lucene_version": "9.12.0",
                             "minimum_wire_compatibility_version": "7.17.0",
                             "minimum_index_compatibility_version": "7.0.0"},
           "opensearch": {"distribution": "opensearch", "number": "2.19.1", "build_type": "tar",
                          "lucene_version": "9.12.1",
                          "minimum_wire_compatibility_version": "7.10.0",
                          "minimum_index_compatibility_version": "7.0.0"}}  # fmt: skip
TAGLINE = {"elasticsearch": "You Know, for Search",
           "opensearch": "The OpenSearch Project: https://opensearch.org/"}  # fmt: skip
SHARDS = {"total": 2, "successful": 1, "failed": 0}


# --- _bulk ---------------------------------------------------------------------------------


@dataclass
class Action:
    op: str  # the item key: index with op_type create answers as "create"
    index: str | None
    id: str | None
    source: bytes | None


def token(value: Any) -> str:
    names = {list: "START_ARRAY", dict: "START_OBJECT", str: "VALUE_STRING", bool: "VALUE_BOOLEAN"}
    return "VALUE_NULL" if value is None else names.get(type(value), "VALUE_NUMBER")


def parse_action(line: bytes, number: int) -> tuple[str, dict[str, Any]]:
    bad = f"Malformed action/metadata line [{number}], expected "
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise EsError(f"[{number}:1] {exc}", "x_content_parse_exception") from None
    if not isinstance(obj, dict):
        raise EsError(f"{bad}START_OBJECT but found [{token(obj)}]")
    if not obj:
        raise EsError(f"{bad}FIELD_NAME but found [END_OBJECT]")
    op, meta = next(iter(obj.items()))
    if op not in ("create", "index", "update", "delete"):
        raise EsError(f"{bad}field [create], [delete], [index] or [update] but found [{op}]")
    if not isinstance(meta, dict):
        raise EsError(f"{bad}START_OBJECT or END_OBJECT but found [{token(meta)}]")
    if len(obj) > 1:
        raise EsError(f"{bad}END_OBJECT but found [FIELD_NAME]")
    for key, value in meta.items():
        if key not in META:
            raise EsError(f"Action/metadata line [{number}] contains an unknown parameter [{key}]")
        if isinstance(value, list | dict) and key not in ("_source", "dynamic_templates"):
            raise EsError(f"{bad}a simple value for field [{key}] but found [{token(value)}]")
    return op, meta


def parse_bulk(body: bytes, default_index: str | None) -> list[Action]:
    if not body.endswith(b"\n"):
        raise EsError("The bulk request must be terminated by a newline [\\n]")
    lines, actions, at = body.split(b"\n")[:-1], [], 0
    while at < len(lines):
        at += 1
        if not lines[at - 1].strip():
            continue
        op, meta = parse_action(lines[at - 1], at)
        source = None
        if op != "delete":
            if at >= len(lines):
                break  # an action without its source line is dropped, as ES's parser does
            source, at = lines[at].removesuffix(b"\r"), at + 1
        raw_id = meta.get("_id")
        doc_id = None if raw_id is None else str(raw_id).lower() if isinstance(raw_id, bool) else str(raw_id)  # fmt: skip
        op = "create" if op == "index" and meta.get("op_type") == "create" else op
        actions.append(Action(op, meta.get("_index", default_index), doc_id, source))
    problems = []
    for action in actions:
        size = len((action.id or "").encode())
        checks = ((action.index is None, "index is missing"),
                  (action.id == "", "if _id is specified it must not be empty"),
                  (size > 512, f"id [{action.id}] is too long, must be no longer than 512 bytes but was: {size}"),
                  (action.op in ("index", "create") and not (action.source or b"").strip(), "source is missing"))  # fmt: skip
        problems += [text for failed, text in checks if failed]
    if problems or not actions:
        text = "".join(f"{n}: {p};" for n, p in enumerate(problems or ["no requests added"], 1))
        raise EsError("Validation Failed: " + text, "action_request_validation_exception")
    return actions


def execute(state: EsState, action: Action) -> dict[str, Any]:
    name, doc_id = str(action.index), action.id or new_id()

    def fail(status: int, error: dict[str, Any], index: str = name) -> dict[str, Any]:
        state.stats["rejected_items"] += 1
        return {action.op: {"_index": index, "_id": doc_id, "status": status, "error": error}}

    if state.faults.take("item_429"):
        return fail(429, {"type": "es_rejected_execution_exception", "reason": REJECTED})
    if problem := name_problem(name):
        return fail(400, {"type": "invalid_index_name_exception", "index_uuid": "_na_", "index": name,
                          "reason": f"Invalid index name [{name}], {problem}"})  # fmt: skip
    try:
        idx = resolve(state, name)
    except EsError as exc:
        return fail(exc.status, exc.error)
    if idx.data_stream == name and action.op != "create":
        reason = "only write ops with an op_type of create are allowed in data streams"
        return fail(400, {"type": "illegal_argument_exception", "reason": reason})
    if action.op in ("update", "delete"):
        reason = f"{action.op} is not modelled by this test peer"
        return fail(400, {"type": "illegal_argument_exception", "reason": reason}, idx.name)
    assert action.source is not None
    match = state.faults.item_400_match
    text = action.source.decode("utf-8", "replace") if match or not state.fast else ""
    try:
        if match is not None and match in text:
            raise DocError(f"failed to parse field [{match}] in document with id '{doc_id}'",
                           ("illegal_argument_exception", "injected by the test peer"), match)  # fmt: skip
        if not state.fast:
            try:
                doc = orjson.loads(action.source)
            except orjson.JSONDecodeError as exc:
                raise DocError("failed to parse", ("json_parse_exception", str(exc))) from None
            if not isinstance(doc, dict):
                raise DocError("failed to parse", ("not_x_content_exception", "Compressor "
                               "detection can only be called on some xcontent bytes"))  # fmt: skip
            check_document(state, idx, doc, doc_id)
    except DocError as exc:
        return fail(400, exc.error(state.flavor, text), idx.name)
    version = 1
    if not state.fast:
        if doc_id in idx.docs and action.op == "create":
            current = idx.versions[doc_id]
            reason = f"[{doc_id}]: version conflict, document already exists (current version [{current}])"
            return fail(409, {"type": "version_conflict_engine_exception", "reason": reason,
                              "index_uuid": idx.uuid, "shard": "0", "index": idx.name}, idx.name)  # fmt: skip
        version = idx.versions[doc_id] = idx.versions.get(doc_id, 0) + 1  # `index` overwrites
        idx.docs[doc_id] = doc
    idx.seq_no += 1
    state.stats["events"] += 1
    return {action.op: {"_index": idx.name, "_id": doc_id, "_version": version,
                        "result": "created" if version == 1 else "updated", "_shards": SHARDS,
                        "_seq_no": idx.seq_no - 1, "_primary_term": 1,
                        "status": 201 if version == 1 else 200}}  # fmt: skip


async def bulk(request: web.Request) -> web.Response:
    state, started = request.app[STATE], time.perf_counter()
    ctype = request.headers.get("Content-Type")
    if ctype is None or ctype.split(";")[0].strip().lower() not in MEDIA:
        text = (
            f"Content-Type header [{ctype}] is not supported"
            if ctype
            else "Content-Type header is missing"
        )
        return peer.json_response({"error": text, "status": 406}, status=406)
    try:
        if unknown := sorted(set(request.query) - BULK_PARAMS):
            raise EsError(
                f"request [{request.path}] contains unrecognized parameter: [{unknown[0]}]"
            )
        raw = await peer.read_limited(request, MAX_CONTENT)
        if raw is None:
            return web.Response(status=413)
        try:
            body = peer.inflate(raw, request.headers.get("Content-Encoding", "").strip().lower())
        except ValueError as exc:
            raise EsError(str(exc), "parse_exception") from None
        if not body:
            raise EsError("request body is required", "parse_exception")
        actions = parse_bulk(body, request.match_info.get("target"))
    except EsError as exc:
        state.stats["rejected_requests"] += 1
        return exc.response()
    items = [execute(state, action) for action in actions]
    errors = any("error" in next(iter(item.values())) for item in items)
    state.stats["accepted_requests"] += 1
    took = int((time.perf_counter() - started) * 1000)
    return peer.json_response({"errors": errors, "took": took, "items": items})


# --- templates, root -----------------------------------------------------------------------


async def json_body(request: web.Request, what: str, allowed: set[str]) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        raise EsError("request body is required", "parse_exception")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EsError(f"[1:1] {exc}", "x_content_parse_exception") from None
    if not isinstance(body, dict):
        raise EsError("[1:1] expected START_OBJECT", "x_content_parse_exception")
    for key in body:
        if key not in allowed:
            raise EsError(f"[1:2] [{what}] unknown field [{key}]", "x_content_parse_exception")
    return body


async def put_component(request: web.Request) -> web.Response:
    state, name = request.app[STATE], request.match_info["name"]
    try:
        body = await json_body(
            request, "component_template", {"template", "version", "_meta", "deprecated"}
        )
        template = body.get("template")
        if not isinstance(template, dict):
            raise EsError("[1:2] Required [template]", "x_content_parse_exception")
        check_types(state.flavor, template.get("mappings"))
    except EsError as exc:
        return exc.response()
    state.component_templates[name] = body
    return peer.json_response({"acknowledged": True})


async def put_index_template(request: web.Request) -> web.Response:
    state, name = request.app[STATE], request.match_info["name"]
    allowed = {"index_patterns", "template", "composed_of", "priority", "version", "_meta",
               "data_stream", "allow_auto_create", "ignore_missing_component_templates", "deprecated"}  # fmt: skip
    try:
        body = await json_body(request, "index_template", allowed)
        patterns = body.get("index_patterns")
        patterns = [patterns] if isinstance(patterns, str) else patterns
        if not patterns or not isinstance(patterns, list):
            raise EsError("Validation Failed: 1: index patterns are missing;", "action_request_validation_exception")  # fmt: skip
        if request.query.get("create") == "true" and name in state.index_templates:
            raise EsError(f"index template [{name}] already exists")
        ignored = body.get("ignore_missing_component_templates", [])
        if missing := [c for c in body.get("composed_of", [])
                       if c not in state.component_templates and c not in ignored]:  # fmt: skip
            raise EsError(f"index_template [{name}] invalid, cause [index template [{name}] specifies "
                          f"component templates {jlist(missing)} that do not exist]",
                          "invalid_index_template_exception")  # fmt: skip
        priority = body.get("priority", 0)
        if clash := {other: t["index_patterns"] for other, t in state.index_templates.items()
                     if other != name and t.get("priority", 0) == priority
                     and any(fnmatchcase(a, b) or fnmatchcase(b, a) for a in patterns for b in t["index_patterns"])}:  # fmt: skip
            raise EsError(f"index template [{name}] has index patterns {jlist(patterns)} matching patterns "
                          f"from existing templates [{','.join(clash)}] with patterns ("
                          + ",".join(f"{k} => {jlist(v)}" for k, v in clash.items())
                          + f") that have the same priority [{priority}], multiple index templates may "
                          "not match during index creation, please use a different priority")  # fmt: skip
        check_types(state.flavor, (body.get("template") or {}).get("mappings"))
        stamp = compose(state, body)[0].get("@timestamp", {"type": "date"})["type"]
        if "data_stream" in body and stamp not in ("date", "date_nanos"):
            raise EsError(f"data stream timestamp field [@timestamp] is of type [{stamp}], but "
                          "[date,date_nanos] is expected")  # fmt: skip
    except EsError as exc:
        return exc.response()
    state.index_templates[name] = {**body, "index_patterns": patterns}
    return peer.json_response({"acknowledged": True})


async def get_template(request: web.Request) -> web.Response:
    state, name = request.app[STATE], request.match_info["name"]
    key = "component_template" if "component" in request.path else "index_template"
    store = state.component_templates if key == "component_template" else state.index_templates
    if name not in store:
        what = key.replace("_", " ")
        return EsError(
            f"{what} matching [{name}] not found", "resource_not_found_exception", 404
        ).response()
    return peer.json_response({key + "s": [{"name": name, key: store[name]}]})


async def root(request: web.Request) -> web.Response:
    flavor = request.app[STATE].flavor
    return peer.json_response({"name": "peer-node", "cluster_name": "peer", "cluster_uuid": new_id(16),
                               "version": VERSION[flavor], "tagline": TAGLINE[flavor]})  # fmt: skip


# --- auth and app ----------------------------------------------------------------------------


def auth_failure(request: web.Request, state: EsState) -> web.Response | None:
    if state.api_key is None and state.user is None:
        return None
    scheme, _, credential = request.headers.get("Authorization", "").strip().partition(" ")
    user, password = peer.basic_credentials(credential)
    if (
        scheme == "Basic"
        and state.user is not None
        and (user, password) == (state.user, state.password)
    ):
        return None
    if state.flavor == "opensearch":
        return web.Response(
            status=401, headers={"WWW-Authenticate": 'Basic realm="OpenSearch Security"'}
        )
    if scheme == "ApiKey" and state.api_key is not None and credential == state.api_key:
        return None
    extra: dict[str, Any] = {}
    if scheme == "ApiKey":
        reason = "unable to authenticate with provided credentials and anonymous access is not allowed for this request"
        extra["additional_unsuccessful_credentials"] = (
            f"API key: unable to find apikey with id {user or credential}"
        )
    elif scheme == "Basic":
        reason = f"unable to authenticate user [{user}] for REST request [{request.path_qs}]"
    else:
        reason = f"missing authentication credentials for REST request [{request.path_qs}]"
    response = EsError(
        reason, "security_exception", 401, **extra, header={"WWW-Authenticate": WWW}
    ).response()
    for value in WWW:
        response.headers.add("WWW-Authenticate", value)
    return response


def build_app(state: EsState) -> web.Application:
    @web.middleware
    async def auth(request: web.Request, handler: peer.Handler) -> web.StreamResponse:
        if not request.path.startswith("/__peer__/") and (denied := auth_failure(request, state)):
            state.stats["unauthorized"] += 1
            return denied
        return await handler(request)

    faults = peer.fault_middleware(
        state, lambda request: request.path.endswith("/_bulk"),
        lambda: EsError(REJECTED, "es_rejected_execution_exception", 429).response(),
        lambda: EsError("injected by the test peer", "illegal_state_exception", 500).response(),
    )  # fmt: skip
    app = web.Application(
        middlewares=[auth, faults], client_max_size=MAX_CONTENT + 1, handler_args=peer.HANDLER_ARGS
    )
    app[STATE] = state

    async def product(request: web.Request, response: web.StreamResponse) -> None:
        if state.flavor == "elasticsearch" and not request.path.startswith("/__peer__/"):
            response.headers["X-Elastic-Product"] = "Elasticsearch"

    app.on_response_prepare.append(product)
    for method in ("POST", "PUT"):
        app.router.add_route(method, "/_bulk", bulk)
        app.router.add_route(method, "/{target}/_bulk", bulk)
    app.router.add_put("/_index_template/{name}", put_index_template)
    app.router.add_get("/_index_template/{name}", get_template)
    app.router.add_put("/_component_template/{name}", put_component)
    app.router.add_get("/_component_template/{name}", get_template)
    app.router.add_get("/", root)
    peer.add_control_routes(app, state)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.peers.es", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--flavor", choices=("elasticsearch", "opensearch"), default="elasticsearch"
    )
    parser.add_argument("--api-key", help="the `encoded` value: base64(id:api_key)")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--fast", action="store_true", help="no storage or checks (benchmarks)")
    parser.add_argument(
        "--no-ecs-names", action="store_true", help="skip the ECS data stream name check"
    )
    args = parser.parse_args(argv)
    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
    if args.flavor == "opensearch" and args.api_key:
        parser.error("OpenSearch has no ApiKey authentication scheme")
    state = EsState(flavor=args.flavor, api_key=args.api_key, user=args.user, password=args.password,
                    fast=args.fast, ecs_names=not args.no_ecs_names)  # fmt: skip
    peer.serve(build_app(state), args.host, args.port)


if __name__ == "__main__":
    main()
