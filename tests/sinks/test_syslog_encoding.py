"""Syslog sink encoders: RFC 5424 (§6 ABNF) and CEF, checked against independent parsers.

The parsers and event builders here are shared with tests/sinks/test_syslog.py.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any

import orjson
import pytest

from forwarder import mapping
from forwarder.acks import Ack
from forwarder.config import SyslogSinkConfig
from forwarder.events import Event, Origin, Status
from forwarder.sinks import build_sink
from forwarder.sinks.cef import cef_header_escape, cef_message, cef_value_escape, doc_severity_id
from forwarder.sinks.syslog import (
    BOM,
    Rfc5424Encoder,
    SyslogSink,
    msgid_for,
    rfc3339_ms,
    sd_escape,
    severity_id_of,
)
from tests.conftest import sample_records

pytestmark = pytest.mark.timeout(20)

RECORDS = list(sample_records())
PID = str(os.getpid())
FACILITY = 13
VIEWS = ("ocsf", "ocsf:noraw", "ecs", "ecs:noraw", "raw")


def mapped(record: dict[str, Any], views: tuple[str, ...] = ("ocsf",)) -> Event:
    """The event as the pipeline would hand it to a sink (same mapping calls)."""
    log_type = mapping.detect_log_type(record)
    assert log_type is not None
    event_id = mapping.event_id(record, log_type)
    time_ms = mapping.event_time_ms(record, log_type) or 1_700_000_000_000
    raw = orjson.dumps(record)
    event = Event(raw, Origin("t", "p", 0), Ack(), log_type, event_id, time_ms / 1000.0)
    for view in views:
        schema, _, variant = view.partition(":")
        embed = None if variant or schema == "raw" else raw.decode()
        doc = mapping.map_record(
            record, log_type, schema, event_id=event_id, time_ms=time_ms, raw=embed
        )
        event.docs[view] = orjson.dumps(doc)
    return event


def synthetic(doc: dict[str, Any], log_type: str = "AUTHENTICATION_LOGS", event_id: str = "e1",
              view: str = "ocsf", time_s: float = 1718182800.987) -> Event:  # fmt: skip
    return Event(b"{}", Origin("t", "p", 0), Ack(), log_type, event_id, time_s,
                 {view: orjson.dumps(doc)})  # fmt: skip


def syslog_config(url: str, **overrides: Any) -> SyslogSinkConfig:
    base: dict[str, Any] = {
        "id": "syslog", "type": "syslog", "url": url, "hostname": "test-host", "timeout": "5s",
        "batch": {"max_events": 10, "max_wait": "20ms"},
        "retry": {"initial_backoff": "20ms", "max_backoff": "200ms"},
    }  # fmt: skip
    base.update(overrides)
    return SyslogSinkConfig.model_validate(base)


def encoder(view: str = "ocsf", cef: bool = False) -> Rfc5424Encoder:
    return Rfc5424Encoder(view=view, facility=FACILITY, hostname="test-host",
                          app_name="workmail-forwarder", procid=PID, cef=cef)  # fmt: skip


# ---- an independent reading of RFC 5424 §6 and of CEF, to check the encoders against ----

_HEADER = re.compile(
    rb"<(?P<pri>[0-9]{1,3})>(?P<version>1) (?P<ts>-|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}"
    rb":[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})) (?P<host>[!-~]{1,255}) "
    rb"(?P<app>[!-~]{1,48}) (?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) "
)
_SD_NAME = r"[!#-<>-\\^-~]{1,32}"  # PRINTUSASCII but '=', SP, ']', '"'


def parse_sd(text: str) -> tuple[dict[str, dict[str, str]], str]:
    """STRUCTURED-DATA -> {sd_id: {name: value}}, unescaping \\" \\\\ \\]; returns the rest."""
    if text.startswith("-"):
        return {}, text[1:]
    elements: dict[str, dict[str, str]] = {}
    while text.startswith("["):
        match = re.match(_SD_NAME, text[1:])
        assert match, text
        params: dict[str, str] = {}
        elements[match.group()] = params
        text = text[1 + match.end() :]
        while text.startswith(" "):
            param = re.match(rf'({_SD_NAME})="((?:\\["\\\]]|[^"\\\]])*)"', text[1:])
            assert param, f"bad SD-PARAM at {text[:60]!r}"
            params[param.group(1)] = re.sub(r"\\(.)", r"\1", param.group(2))
            text = text[1 + param.end() :]
        assert text.startswith("]"), text[:60]
        text = text[1:]
    return elements, text


def parse_rfc5424(message: bytes) -> dict[str, Any]:
    header = _HEADER.match(message)
    assert header, message[:200]
    fields: dict[str, Any] = {k: v.decode() for k, v in header.groupdict().items()}
    assert 0 <= int(fields["pri"]) <= 191 and not fields["pri"].startswith("0")
    fields["sd"], rest = parse_sd(message[header.end() :].decode())
    assert rest.startswith(" ")
    fields["msg"] = rest[1:].encode()
    return fields


def parse_cef(text: str) -> tuple[list[str], dict[str, str]]:
    """Seven header fields (\\| and \\\\ unescaped) and the extension as a dict."""
    assert text.startswith("CEF:"), text[:40]
    header: list[str] = []
    buffer: list[str] = []
    i = 4
    while len(header) < 7:
        char = text[i]
        if char == "\\" and text[i + 1] in "\\|":
            buffer.append(text[i + 1])
            i += 2
        elif char == "|":
            header.append("".join(buffer))
            buffer = []
            i += 1
        else:
            assert char not in "\r\n"
            buffer.append(char)
            i += 1
    extension = text[i:]
    pairs: dict[str, str] = {}
    pattern = re.compile(r"([A-Za-z0-9_]+)=((?:\\[\\=nr]|[^\\=\r\n])*?)(?= [A-Za-z0-9_]+=|$)")
    position = 0
    unescape = {"n": "\n", "r": "\r"}
    for match in pattern.finditer(extension):
        assert extension[position : match.start()] in ("", " "), extension[position:]
        pairs[match.group(1)] = re.sub(r"\\(.)", lambda m: unescape.get(m[1], m[1]), match[2])
        position = match.end()
    assert position == len(extension), extension[position:]
    return header, pairs


# ---- pure encoder tests ----


@pytest.mark.parametrize("view", VIEWS)
def test_rfc5424_messages_follow_the_abnf(view: str) -> None:
    enc = encoder(view)
    for record in RECORDS:
        event = mapped(record, (view,))
        fields = parse_rfc5424(enc.encode(event))
        assert int(fields["pri"]) // 8 == FACILITY
        assert fields["ts"] == rfc3339_ms(event.time)
        assert (fields["host"], fields["app"], fields["procid"]) == (
            "test-host", "workmail-forwarder", PID,
        )  # fmt: skip
        assert fields["msgid"] == mapping.KIND_BY_LOG_TYPE[event.log_type or ""]
        assert fields["sd"] == {
            "workmail@32473": {"event_id": event.id, "log_type": event.log_type}
        }
        assert fields["msg"] == BOM + event.docs[view]


def test_msgid_is_a_short_kind_name_within_the_abnf() -> None:
    assert msgid_for("WORKMAIL_AVAILABILITY_PROVIDER_LOGS") == "availability_provider"
    assert msgid_for("EMAIL_EVENT_LOGS") == "email_events"
    for log_type in mapping.LOG_TYPES:
        assert re.fullmatch(r"[!-~]{1,32}", msgid_for(log_type))
    assert msgid_for(None) == "-"
    assert msgid_for("UNKNOWN SPACE") == "-"
    assert msgid_for("X" * 33) == "-"


@pytest.mark.parametrize(
    ("severity_id", "syslog_severity", "cef_severity"),
    [(1, 6, "1"), (2, 5, "3"), (3, 4, "5"), (4, 3, "7"), (5, 2, "9"), (6, 1, "10"), (0, 6, "0")],
)
def test_ocsf_severity_sets_pri_and_cef_severity(
    severity_id: int, syslog_severity: int, cef_severity: str
) -> None:
    event = synthetic({"class_uid": 3002, "severity_id": severity_id, "metadata": {"x": 1}})
    assert parse_rfc5424(encoder().encode(event))["pri"] == str(FACILITY * 8 + syslog_severity)
    cef = parse_rfc5424(encoder(cef=True).encode(event))
    assert cef["pri"] == str(FACILITY * 8 + syslog_severity)
    assert parse_cef(cef["msg"].decode())[0][6] == cef_severity


def test_ecs_failure_is_warning_and_raw_is_informational() -> None:
    failed = synthetic({"event": {"outcome": "failure"}, "x": {"outcome": "success"}}, view="ecs")
    ok = synthetic({"event": {"outcome": "success"}}, view="ecs")
    raw = synthetic({"log_type": "X", "record": {"event": {"outcome": "failure"}}}, view="raw")
    pri = [parse_rfc5424(encoder(v).encode(e))["pri"] for e, v in
           ((failed, "ecs"), (ok, "ecs"), (raw, "raw"))]  # fmt: skip
    assert pri == ["108", "110", "110"]


@pytest.mark.parametrize("schema", ["ocsf", "ecs"])
def test_severity_scan_agrees_with_the_decoded_document(schema: str) -> None:
    """The RFC 5424 path reads the severity without decoding: pin it to the mapper's output."""
    seen = set()
    for record in RECORDS:
        doc = mapped(record, (schema,)).docs[schema]
        expected = doc_severity_id(orjson.loads(doc), schema)
        assert severity_id_of(doc, schema) == expected
        seen.add(expected)
    assert seen == {1, 3}  # the samples hold failures and successes


def test_sd_param_values_are_escaped() -> None:
    assert sd_escape('a"b\\c]d') == 'a\\"b\\\\c\\]d'
    assert sd_escape("plain [ok]") == "plain [ok\\]"
    hostile = 'id"with\\all]three] '
    event = synthetic({"severity_id": 1}, log_type='LT"\\]', event_id=hostile)
    fields = parse_rfc5424(encoder().encode(event))
    assert fields["sd"]["workmail@32473"] == {"event_id": hostile, "log_type": 'LT"\\]'}


def test_timestamp_is_rfc3339_utc_with_milliseconds() -> None:
    assert rfc3339_ms(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339_ms(1718182800.987) == "2024-06-12T09:00:00.987Z"
    assert rfc3339_ms(1718182800.9996) == "2024-06-12T09:00:01.000Z"
    assert rfc3339_ms(-1) == "-"
    assert rfc3339_ms(1e13) == "-"


def test_hostname_and_sd_id_are_validated() -> None:
    with pytest.raises(ValueError, match="hostname"):
        SyslogSink(syslog_config("tcp://127.0.0.1:1", hostname="has space"))
    with pytest.raises(ValueError, match="hostname"):
        SyslogSink(syslog_config("tcp://127.0.0.1:1", hostname="h" * 256))
    with pytest.raises(ValueError, match="SD-ID"):
        SyslogSink(syslog_config("tcp://127.0.0.1:1"), sd_id="bad=id")
    sink = SyslogSink(syslog_config("tcp://127.0.0.1:1", hostname=None), sd_id="wm@99999")
    fields = parse_rfc5424(sink.encoder.encode(synthetic({"severity_id": 1})))
    assert fields["host"] == socket.gethostname() and "wm@99999" in fields["sd"]


def test_registry_builds_the_syslog_sink() -> None:
    assert isinstance(build_sink(syslog_config("udp://127.0.0.1:514")), SyslogSink)


HOSTILE = {
    "class_uid": 3002, "class_name": "Authentication", "type_name": "Auth|Logon \\ x=y",
    "severity_id": 4, "time": 1, "status": "Failure",
    "status_detail": "line one\r\nline two = ok | piped \\ slash",
    "metadata": {"uid": "e1", "event_code": "CODE|1", "tenant_uid": "m-1"},
    "user": {"name": "ali|ce=x\\y\nzé 日本 😀"},
    "src_endpoint": {"ip": "198.51.100.7"},
    "email": {"to": ["a@x", "b=c@y"], "subject": "Q2 = plan | draft"},
}  # fmt: skip


def test_cef_header_and_extension_escaping_round_trip() -> None:
    assert cef_header_escape("a|b\\c\nd") == "a\\|b\\\\c d"
    assert cef_value_escape("a=b\\c\nd\re|f") == "a\\=b\\\\c\\nd\\re|f"
    event = synthetic(HOSTILE, event_id="id=1\\x")
    text = cef_message(event, HOSTILE, "ocsf", 4)
    header, ext = parse_cef(text)
    assert header == ["0", "AWS", "WorkMail", "1.0", "CODE|1", "Auth|Logon \\ x=y", "7"]
    assert ext["suser"] == HOSTILE["user"]["name"]  # type: ignore[index]
    assert ext["msg"] == "line one\nline two = ok | piped \\ slash"
    assert ext["externalId"] == "id=1\\x"
    assert ext["rt"] == "1718182800987"
    assert ext["src"] == "198.51.100.7" and ext["outcome"] == "Failure"
    assert ext["duser"] == "a@x,b=c@y"
    assert (ext["cs1Label"], ext["cs1"]) == ("logType", "AUTHENTICATION_LOGS")
    assert (ext["cs4Label"], ext["cs4"]) == ("emailSubject", "Q2 = plan | draft")
    assert "\n" not in text and "\r" not in text


@pytest.mark.parametrize("view", ["ocsf", "ecs", "raw"])
def test_cef_from_every_sample_parses(view: str) -> None:
    enc = encoder(view, cef=True)
    for record in RECORDS:
        event = mapped(record, (view,))
        fields = parse_rfc5424(enc.encode(event))
        assert not fields["msg"].startswith(BOM)  # CEF parsers key on a leading "CEF:"
        header, ext = parse_cef(fields["msg"].decode())
        assert header[:4] == ["0", "AWS", "WorkMail", "1.0"]
        assert 0 <= int(header[6]) <= 10
        assert ext["externalId"] == event.id and ext["rt"] == str(round(event.time * 1000))
        doc = orjson.loads(event.docs[view])
        if view == "ocsf":
            assert header[4] == doc["metadata"].get("event_code", event.log_type)
            assert header[5] == doc["type_name"] and ext["outcome"] == doc["status"]
            assert ext.get("src") == doc.get("src_endpoint", {}).get("ip")
        elif view == "ecs":
            assert header[5] == doc["event"]["action"]
            assert ext["outcome"] == doc["event"]["outcome"]
        else:
            assert orjson.loads(ext["msg"]) == record


async def test_an_unencodable_document_costs_one_event_not_the_batch() -> None:
    """All rejected: nothing to send, so no connection is even tried (port 1 is closed)."""
    sink = SyslogSink(syslog_config("tcp://127.0.0.1:1", format="cef"))
    bad = synthetic({"a": 1})
    bad.docs["ocsf"] = b"not json"
    result = await sink.send([bad, synthetic({"a": 1}, view="ecs")])
    assert result.statuses == [Status.REJECTED, Status.REJECTED]
    assert "cannot encode" in result.reasons[0] and "KeyError" in result.reasons[1]
    await sink.close()
