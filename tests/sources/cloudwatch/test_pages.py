"""FilterLogEvents pages: the orjson parse hook gives what botocore's parser gives."""

from __future__ import annotations

import botocore.session
import orjson
from botocore.parsers import create_parser

from forwarder.sources.cloudwatch.pages import parse_events_fast

BODY = orjson.dumps({
    "events": [
        {"logStreamName": "s1", "timestamp": 1796094000123, "message": '{"a": "é\\u0000"}',
         "ingestionTime": 1796094000456, "eventId": "3727373737373737"},
        {"logStreamName": "s2", "timestamp": 1796094000124, "message": "", "ingestionTime": 1,
         "eventId": "1"},
    ],
    "searchedLogStreams": [{"logStreamName": "s1", "searchedCompletely": True}],
    "nextToken": "token==",
})  # fmt: skip


def parse(response: dict[str, object]) -> dict[str, object]:
    model = botocore.session.get_session().get_service_model("logs")
    output = model.operation_model("FilterLogEvents").output_shape
    parsed = create_parser("json").parse(response, output)
    parsed.pop("ResponseMetadata", None)
    return dict(parsed)


def test_the_hook_gives_the_same_result_as_botocore() -> None:
    plain = parse({"status_code": 200, "headers": {}, "body": BODY})
    hooked_response: dict[str, object] = {"status_code": 200, "headers": {}, "body": BODY}
    customized: dict[str, object] = {}
    parse_events_fast(hooked_response, customized)
    hooked = {**parse(hooked_response), **customized}
    assert hooked == plain
    assert len(hooked_response["body"]) < len(BODY) / 2  # type: ignore[arg-type]


def test_errors_are_left_to_botocore() -> None:
    body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
    response: dict[str, object] = {"status_code": 400, "headers": {}, "body": body}
    customized: dict[str, object] = {}
    parse_events_fast(response, customized)
    assert response["body"] == body and customized == {}
