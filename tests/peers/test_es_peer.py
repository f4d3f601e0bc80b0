"""The Elasticsearch/OpenSearch test peer against documented behaviour (es.py has sources)."""

from __future__ import annotations

import base64
import gzip
import re
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.peers.fixtures import ES_API_KEY, OS_PASSWORD, OS_USER, PeerProcess

ES_AUTH = {"Authorization": f"ApiKey {ES_API_KEY}"}
OS_AUTH = {
    "Authorization": "Basic " + base64.b64encode(f"{OS_USER}:{OS_PASSWORD}".encode()).decode()
}
NDJSON = {"Content-Type": "application/x-ndjson"}
DS = "logs-aws.workmail_authentication-default"
STAMP = "2026-11-27T10:00:00.000Z"
BACKING = re.compile(r"^\.ds-logs-aws\.workmail_authentication-default-\d{4}\.\d{2}\.\d{2}-000001$")


@pytest.fixture(scope="module")
def shared() -> Iterator[PeerProcess]:
    with PeerProcess("es", "--api-key", ES_API_KEY) as peer:
        yield peer


@pytest.fixture
def es(shared: PeerProcess) -> PeerProcess:
    shared.control("reset")
    return shared


def ndjson(*lines: Any) -> bytes:
    return b"".join(
        (line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines
    )


def bulk(peer: PeerProcess, body: bytes, path: str = "/_bulk", auth: dict[str, str] = ES_AUTH, **headers: str) -> httpx.Response:  # fmt: skip
    return httpx.post(
        peer.url + path, content=body, headers={**NDJSON, **auth, **headers}, timeout=10
    )


def items(answer: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    assert answer.status_code == 200, answer.text
    return [next(iter(item.items())) for item in answer.json()["items"]]


def create(doc_id: str | None = None, index: str = DS, **source: Any) -> bytes:
    meta = {"_index": index} | ({} if doc_id is None else {"_id": doc_id})
    return ndjson({"create": meta}, {"@timestamp": STAMP, **source})


def put(peer: PeerProcess, path: str, body: Any, auth: dict[str, str] = ES_AUTH) -> httpx.Response:
    return httpx.put(
        peer.url + path,
        content=orjson.dumps(body),
        headers={"Content-Type": "application/json", **auth},
    )


def test_root_and_product_header(es: PeerProcess, opensearch_peer: PeerProcess) -> None:
    answer = httpx.get(es.url + "/", headers=ES_AUTH)
    assert answer.json()["version"]["number"].startswith("8.")
    assert answer.json()["tagline"] == "You Know, for Search"
    assert answer.headers["X-Elastic-Product"] == "Elasticsearch"
    answer = httpx.get(opensearch_peer.url + "/", headers=OS_AUTH)
    assert answer.json()["version"]["distribution"] == "opensearch"
    assert "X-Elastic-Product" not in answer.headers


def test_elasticsearch_auth_failures(es: PeerProcess) -> None:
    answer = bulk(es, create("1"), auth={})
    assert answer.status_code == 401
    assert answer.headers.get_list("WWW-Authenticate") == [
        'Basic realm="security", charset="UTF-8"',
        'Bearer realm="security"',
        "ApiKey",
    ]
    error = answer.json()["error"]
    assert error["type"] == "security_exception"
    assert error["reason"] == "missing authentication credentials for REST request [/_bulk]"
    assert answer.json()["status"] == 401 and error["root_cause"][0]["type"] == "security_exception"
    wrong_key = base64.b64encode(b"other-id:nope").decode()
    error = bulk(es, create("1"), auth={"Authorization": f"ApiKey {wrong_key}"}).json()["error"]
    assert error["reason"].startswith("unable to authenticate with provided credentials")
    assert (
        error["additional_unsuccessful_credentials"]
        == "API key: unable to find apikey with id other-id"
    )
    basic = base64.b64encode(b"elastic:changeme").decode()
    error = bulk(es, create("1"), auth={"Authorization": f"Basic {basic}"}).json()["error"]
    assert error["reason"] == "unable to authenticate user [elastic] for REST request [/_bulk]"
    assert es.control("events") == {}


def test_opensearch_auth(opensearch_peer: PeerProcess) -> None:
    assert bulk(opensearch_peer, create("1", "plain"), auth=OS_AUTH).status_code == 200
    for auth in ({}, {"Authorization": f"ApiKey {ES_API_KEY}"}):
        answer = bulk(opensearch_peer, create("2", "plain"), auth=auth)
        assert (answer.status_code, answer.content) == (401, b"")
        assert answer.headers["WWW-Authenticate"] == 'Basic realm="OpenSearch Security"'


def test_content_type_is_required(es: PeerProcess) -> None:
    answer = httpx.post(es.url + "/_bulk", content=create("1"), headers=ES_AUTH)
    assert (answer.status_code, answer.json()) == (
        406,
        {"error": "Content-Type header is missing", "status": 406},
    )
    answer = bulk(es, create("1"), **{"Content-Type": "text/plain"})
    assert answer.json() == {
        "error": "Content-Type header [text/plain] is not supported",
        "status": 406,
    }
    assert (
        items(bulk(es, create("1"), **{"Content-Type": "application/json"}))[0][1]["status"] == 201
    )


@pytest.mark.parametrize(
    ("body", "kind", "reason"),
    [
        (b"", "parse_exception", "request body is required"),
        (create("1")[:-1], "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]"),
        (ndjson({"upsert": {}}, {}), "illegal_argument_exception",
         "Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [upsert]"),
        (ndjson([1], {}), "illegal_argument_exception", "Malformed action/metadata line [1], expected START_OBJECT but found [START_ARRAY]"),
        (ndjson({"index": {}, "x": 1}, {}), "illegal_argument_exception", "Malformed action/metadata line [1], expected END_OBJECT but found [FIELD_NAME]"),
        (ndjson({"create": {"_index": DS, "_type": "_doc"}}, {}), "illegal_argument_exception",
         "Action/metadata line [1] contains an unknown parameter [_type]"),
        (ndjson({"create": {}}, {"@timestamp": STAMP}), "action_request_validation_exception", "Validation Failed: 1: index is missing;"),
        (ndjson({"create": {"_index": DS}}, b""), "action_request_validation_exception", "Validation Failed: 1: source is missing;"),
        (ndjson({"create": {"_index": DS, "_id": ""}}, {"a": 1}), "action_request_validation_exception",
         "Validation Failed: 1: if _id is specified it must not be empty;"),
        (ndjson({"create": {"_index": DS}}), "action_request_validation_exception", "Validation Failed: 1: no requests added;"),
    ],
)  # fmt: skip
def test_whole_request_errors(es: PeerProcess, body: bytes, kind: str, reason: str) -> None:
    answer = bulk(es, body)
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == kind
    assert answer.json()["error"]["reason"] == reason
    assert answer.json()["error"]["root_cause"] == [{"type": kind, "reason": reason}]
    assert es.control("events") == {}


def test_unknown_query_parameter(es: PeerProcess) -> None:
    answer = bulk(es, create("1"), "/_bulk?refresh=false&bogus=1")
    assert (
        answer.json()["error"]["reason"]
        == "request [/_bulk] contains unrecognized parameter: [bogus]"
    )


def test_create_into_a_builtin_data_stream(es: PeerProcess) -> None:
    answer = bulk(
        es,
        create("a", message="one") + create(None, message="two") + create("c"),
        "/_bulk?refresh=wait_for",
    )
    assert answer.json()["errors"] is False and isinstance(answer.json()["took"], int)
    (op, first), (_, second), (_, third) = items(answer)
    assert op == "create" and BACKING.match(first["_index"])
    assert first == {"_index": first["_index"], "_id": "a", "_version": 1, "result": "created",
                     "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": 0,
                     "_primary_term": 1, "status": 201}  # fmt: skip
    assert len(second["_id"]) == 20 and (second["_seq_no"], third["_seq_no"]) == (1, 2)
    stored = es.control("events")[DS]
    assert [d["_source"].get("message") for d in stored] == ["one", "two", None]


def test_data_stream_rules_per_item(es: PeerProcess) -> None:
    body = (create("dup") + ndjson({"index": {"_index": DS}}, {"@timestamp": STAMP})
            + ndjson({"create": {"_index": DS}}, {"no": "stamp"}) + create("dup") + create("ok"))  # fmt: skip
    answer = bulk(es, body)
    assert answer.json()["errors"] is True
    (_, ok), (op, index), (_, nostamp), (_, dup), (_, last) = items(answer)
    assert (ok["status"], last["status"]) == (201, 201)
    assert (op, index["status"], index["_index"]) == ("index", 400, DS)
    assert index["error"] == {"type": "illegal_argument_exception",
                              "reason": "only write ops with an op_type of create are allowed in data streams"}  # fmt: skip
    assert nostamp["error"]["type"] == "document_parsing_exception"
    assert nostamp["error"]["reason"].endswith(
        "failed to parse: data stream timestamp field [@timestamp] is missing"
    )
    assert (
        nostamp["error"]["caused_by"]["reason"]
        == "data stream timestamp field [@timestamp] is missing"
    )
    assert dup["status"] == 409 and dup["error"]["type"] == "version_conflict_engine_exception"
    assert (
        dup["error"]["reason"]
        == "[dup]: version conflict, document already exists (current version [1])"
    )
    assert [d["_id"] for d in es.control("events")[DS]] == ["dup", "ok"]
    assert es.control("stats")["rejected_items"] == 3


def test_gzip_body_and_target_in_path(es: PeerProcess) -> None:
    body = ndjson({"create": {"_id": "z"}}, {"@timestamp": STAMP})
    answer = bulk(es, gzip.compress(body), f"/{DS}/_bulk", **{"Content-Encoding": "gzip"})
    assert items(answer)[0][1]["status"] == 201
    assert bulk(es, b"\x1f\x8bbroken", **{"Content-Encoding": "gzip"}).status_code == 400


def test_names(es: PeerProcess) -> None:
    body = (
        create("1", "logs-a-b-c")
        + create("2", "Logs-x-y")
        + create("3", "logs-x y-z")
        + create("4", "_logs")
    )
    answers = [item for _, item in items(bulk(es, body))]
    assert answers[0]["error"]["reason"].startswith("test peer ECS check")
    assert answers[1]["error"] == {"type": "invalid_index_name_exception", "index_uuid": "_na_", "index": "Logs-x-y",
                                   "reason": "Invalid index name [Logs-x-y], must be lowercase"}  # fmt: skip
    assert "must not contain the following characters" in answers[2]["error"]["reason"]
    assert answers[3]["error"]["reason"].endswith("must not start with '_', '-', or '+'")


def test_plain_index_outside_the_builtin_patterns(es: PeerProcess) -> None:
    write = {"index": {"_index": "audit", "_id": "1"}}
    body = ndjson(
        write, {"a": 1}, write, {"a": 2}, write, {"a": 3}, {"create": write["index"]}, {"a": 4}
    )
    (_, first), (_, second), (_, third), (op, fourth) = items(bulk(es, body))
    assert (first["_index"], first["status"], first["result"]) == ("audit", 201, "created")
    assert (second["status"], second["result"], second["_version"]) == (200, "updated", 2)
    assert third["_version"] == 3
    assert (op, fourth["status"]) == ("create", 409)
    assert (
        fourth["error"]["reason"]
        == "[1]: version conflict, document already exists (current version [3])"
    )
    assert es.control("events")["audit"] == [{"_id": "1", "_index": "audit", "_source": {"a": 3}}]


def test_mapping_checks(es: PeerProcess) -> None:
    body = (create("1", message={"a": 1}) + create("2", message="text")  # object first: object mapping
            + create("3", **{"data_stream": {"type": "metrics"}})  # constant_keyword fixed at "logs"
            + create("4", **{"data_stream": {"dataset": "aws.workmail"}})
            + create("5", **{"data_stream": {"dataset": "other"}})
            + create("6", when="not a date", **{"@timestamp": "2026-13-45"}))  # fmt: skip
    answers = [item for _, item in items(bulk(es, body))]
    assert [a["status"] for a in answers] == [201, 400, 400, 201, 400, 400]
    assert (
        "object mapping for [message] tried to parse field [message] as object"
        in answers[1]["error"]["reason"]
    )
    assert (
        "only accepts values that are equal to the value defined in the mappings [logs]"
        in answers[2]["error"]["caused_by"]["reason"]
    )
    assert "mappings [aws.workmail], but got [other]" in answers[4]["error"]["caused_by"]["reason"]
    # ignore_malformed (built-in logs settings) drops a bad @timestamp, which then is missing
    assert (
        answers[5]["error"]["caused_by"]["reason"]
        == "data stream timestamp field [@timestamp] is missing"
    )


def test_templates_and_strict_mappings(es: PeerProcess) -> None:
    missing = put(
        es,
        "/_index_template/wm",
        {"index_patterns": ["logs-aws.workmail_*-*"], "composed_of": ["nope"], "priority": 200},
    )
    assert missing.json()["error"]["type"] == "invalid_index_template_exception"
    clash = put(
        es,
        "/_index_template/wm",
        {"index_patterns": ["logs-aws.workmail_*-*"], "data_stream": {}, "priority": 100},
    )
    assert "matching patterns from existing templates [logs]" in clash.json()["error"]["reason"]
    assert (
        put(es, "/_index_template/wm", {"index_patterns": ["x-*"], "junk": 1}).json()["error"][
            "reason"
        ]
        == "[1:2] [index_template] unknown field [junk]"
    )
    mappings = {
        "properties": {
            "source": {"properties": {"ip": {"type": "ip"}}},
            "tags": {"type": "flattened"},
        }
    }
    assert put(
        es, "/_component_template/wm@mappings", {"template": {"mappings": mappings}}
    ).json() == {"acknowledged": True}
    template = {
        "index_patterns": ["logs-aws.workmail_*-*"],
        "data_stream": {},
        "priority": 200,
        "composed_of": ["wm@mappings"],
    }
    assert put(es, "/_index_template/wm", template).json() == {"acknowledged": True}
    got = httpx.get(es.url + "/_index_template/wm", headers=ES_AUTH).json()
    assert got == {"index_templates": [{"name": "wm", "index_template": template}]}
    assert httpx.get(es.url + "/_index_template/none", headers=ES_AUTH).status_code == 404
    answers = [
        item
        for _, item in items(
            bulk(
                es,
                create("1", source={"ip": "10.0.0.1"}, tags={"a": 1})
                + create("2", source={"ip": "not-an-ip"}),
            )
        )
    ]
    assert [a["status"] for a in answers] == [201, 400]
    assert answers[1]["error"]["caused_by"]["reason"] == "'not-an-ip' is not an IP string literal."
    es.control("reset")  # keeps templates
    assert (
        httpx.get(es.url + "/_component_template/wm@mappings", headers=ES_AUTH).status_code == 200
    )


def test_opensearch_data_streams_need_a_template(opensearch_peer: PeerProcess) -> None:
    peer = opensearch_peer
    plain = ndjson({"index": {"_index": "logs-x-y"}}, {"no": "timestamp needed"})
    assert items(bulk(peer, plain, auth=OS_AUTH))[0][1]["_index"] == "logs-x-y"
    flattened = {"template": {"mappings": {"properties": {"tags": {"type": "flattened"}}}}}
    error = put(peer, "/_component_template/bad", flattened, OS_AUTH).json()["error"]
    assert (
        error["reason"]
        == "Failed to parse mapping [_doc]: No handler for type [flattened] declared on field [tags]"
    )
    template = {"index_patterns": ["logs-aws.workmail_*-*"], "data_stream": {}, "priority": 200}
    assert put(peer, "/_index_template/wm", template, OS_AUTH).json() == {"acknowledged": True}
    body = (
        create("1")
        + ndjson({"index": {"_index": DS}}, {"@timestamp": STAMP})
        + ndjson({"create": {"_index": DS}}, {"x": 1})
    )
    (_, ok), (_, index), (_, nostamp) = items(bulk(peer, body, auth=OS_AUTH))
    assert ok["_index"] == f".ds-{DS}-000001" and ok["status"] == 201
    assert index["status"] == 400
    one = ndjson(
        {"create": {"_index": DS}}, {"@timestamp": [STAMP]}
    )  # an array of one is single-valued
    assert items(bulk(peer, one, auth=OS_AUTH))[0][1]["status"] == 201
    assert nostamp["error"] == {"type": "mapper_parsing_exception", "reason": "failed to parse", "caused_by": {
        "type": "illegal_argument_exception",
        "reason": "documents must contain a single-valued timestamp field '@timestamp' of date type"}}  # fmt: skip


def test_request_faults(es: PeerProcess) -> None:
    es.control("faults", {"busy": 1, "retry_after": 2, "error_500": 1})
    busy = bulk(es, create("1"))
    assert (busy.status_code, busy.headers["Retry-After"]) == (429, "2")
    assert (
        busy.json()["error"]["type"] == "es_rejected_execution_exception"
        and busy.json()["status"] == 429
    )
    assert bulk(es, create("1")).status_code == 500
    assert items(bulk(es, create("1")))[0][1]["status"] == 201
    es.control("faults", {"drop_connections": 1, "drop_after_store": 1})
    with pytest.raises(httpx.TransportError):
        bulk(es, create("2"))
    with pytest.raises(httpx.TransportError):
        bulk(es, create("3"))
    assert [d["_id"] for d in es.control("events")[DS]] == ["1", "3"]
    assert (
        items(bulk(es, create("3")))[0][1]["status"] == 409
    )  # the replay of an unanswered request


def test_item_faults(es: PeerProcess) -> None:
    es.control("faults", {"item_429": 2, "item_400_match": "poison"})
    body = create("1") + create("2") + create("3", message="poison pill") + create("4")
    answers = [item for _, item in items(bulk(es, body))]
    assert [a["status"] for a in answers] == [429, 429, 400, 201]
    assert answers[0]["error"]["type"] == "es_rejected_execution_exception"
    assert answers[2]["error"]["type"] == "document_parsing_exception"
    assert [d["_id"] for d in es.control("events")[DS]] == ["4"]


def test_fast_mode() -> None:
    with PeerProcess("es", "--fast") as peer:
        answers = [
            item for _, item in items(bulk(peer, create("1") + create("1") + create(None, "plain")))
        ]
        assert [a["status"] for a in answers] == [201, 201, 201]  # no duplicate bookkeeping
        assert BACKING.match(answers[0]["_index"]) and answers[2]["_index"] == "plain"
        assert peer.control("stats")["events"] == 3
        assert peer.control("events") == {DS: [], "plain": []}


def test_security_off_without_credentials(es_peer: PeerProcess) -> None:
    with PeerProcess("es") as open_peer:
        assert bulk(open_peer, create("1"), auth={}).status_code == 200
    assert bulk(es_peer, create("1"), auth={}).status_code == 401
