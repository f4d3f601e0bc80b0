"""CEF (ArcSight Common Event Format) encoding of a mapped document, for the syslog sink.

`CEF:0|AWS|WorkMail|1.0|<Signature ID>|<Name>|<Severity>|<Extension>`. Header fields
escape `\\` and `|`; extension values escape `\\` and `=` and write line breaks as
`\\n`/`\\r` (CEF spec, PROTOCOLS.md §3.5). The extension uses ArcSight dictionary
keys; WorkMail facts without one go to labelled custom strings (cs1..cs5).
"""

from __future__ import annotations

from typing import Any

import orjson

from forwarder.events import Event
from forwarder.mapping.common import EMAIL_EVENTS

# OCSF severity_id -> CEF 0..10 (ArcSight bands: 0-3 Low, 4-6 Medium, 7-8 High, 9-10 Very-High).
CEF_SEVERITY = {0: 0, 1: 1, 2: 3, 3: 5, 4: 7, 5: 9, 6: 10, 99: 0}
FAILURE_SEVERITY_ID = 3  # ECS/raw have no severity: a failed outcome reads as OCSF Medium


def cef_header_escape(value: str) -> str:
    """CEF header fields: '\\' and '|' take a backslash; a line break would end the record."""
    value = value.replace("\\", "\\\\").replace("|", "\\|")
    return value.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def cef_value_escape(value: str) -> str:
    """CEF extension values: '\\' and '=' take a backslash, line breaks become \\n / \\r."""
    value = value.replace("\\", "\\\\").replace("=", "\\=")
    return value.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


# CEF extension: (key, label for csN keys or None, candidate paths into the document).
_Ext = tuple[tuple[str, str | None, tuple[tuple[str, ...], ...]], ...]
_OCSF_EXT: _Ext = (
    ("cat", None, (("class_name",),)),
    ("act", None, (("action",), ("activity_name",))),
    ("outcome", None, (("status",),)),
    ("msg", None, (("message",), ("status_detail",))),
    ("src", None, (("src_endpoint", "ip"),)),
    ("suser", None, (("user", "name"), ("actor", "user", "name"), ("email", "from"))),
    ("suid", None, (("user", "uid"), ("actor", "user", "uid"))),
    ("duser", None, (("email", "to"),)),
    ("dhost", None, (("dst_endpoint", "hostname"),)),
    ("app", None, (("dst_endpoint", "svc_name"), ("api", "service", "name"))),
    ("requestClientApplication", None, (("http_request", "user_agent"),)),
    ("requestUrl", None, (("http_request", "url", "url_string"),)),
    ("cs2", "organizationId", (("metadata", "tenant_uid"),)),
    ("cs3", "requestId", (("metadata", "correlation_uid"),)),
    ("cs4", "emailSubject", (("email", "subject"),)),
    ("cs5", "awsAccountId", (("cloud", "account", "uid"),)),
)
_ECS_EXT: _Ext = (
    ("cat", None, (("event", "category"),)),
    ("act", None, (("event", "action"),)),
    ("outcome", None, (("event", "outcome"),)),
    ("msg", None, (("message",), ("error", "message"))),
    ("src", None, (("source", "ip"),)),
    ("suser", None, (("user", "name"), ("email", "from", "address"))),
    ("suid", None, (("user", "id"),)),
    ("duser", None, (("email", "to", "address"),)),
    ("dhost", None, (("url", "domain"), ("destination", "domain"))),
    ("app", None, (("network", "protocol"),)),
    ("requestClientApplication", None, (("user_agent", "original"),)),
    ("requestUrl", None, (("url", "original"),)),
    ("cs2", "organizationId", (("organization", "id"),)),
    ("cs3", "requestId", (("aws", "workmail", "request_id"),)),
    ("cs4", "emailSubject", (("email", "subject"),)),
    ("cs5", "awsAccountId", (("cloud", "account", "id"),)),
)
_RAW_EXT: _Ext = (("msg", None, (("record",),)),)
_EXT_BY_SCHEMA = {"ocsf": _OCSF_EXT, "ecs": _ECS_EXT, "raw": _RAW_EXT}


def doc_severity_id(doc: dict[str, Any], schema: str) -> int:
    if schema == "ocsf":
        value = doc.get("severity_id")
        return value if type(value) is int else 0
    event = doc.get("event") if schema == "ecs" else None
    failed = isinstance(event, dict) and event.get("outcome") == "failure"
    return FAILURE_SEVERITY_ID if failed else 1


def _lookup(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = doc
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ",".join(str(v) for v in value)
    return orjson.dumps(value).decode()


def cef_message(event: Event, doc: dict[str, Any], schema: str, severity_id: int) -> str:
    """`CEF:0|AWS|WorkMail|1.0|<signature>|<name>|<severity>|<extension>` for one event.

    Signature ID: the email event code (OCSF metadata.event_code, ECS event.action)
    for email events, else the log type. Name: OCSF type_name / ECS event.action.
    """
    log_type = event.log_type or ""
    signature: Any = log_type
    name: Any = log_type
    if schema == "ocsf":
        signature = _lookup(doc, ("metadata", "event_code")) or log_type
        name = doc.get("type_name") or log_type
    elif schema == "ecs":
        action = _lookup(doc, ("event", "action"))
        if action and log_type == EMAIL_EVENTS:
            signature = str(action).upper()
        name = action or log_type
    header = "|".join(
        cef_header_escape(_text(part))
        for part in ("AWS", "WorkMail", "1.0", signature, name, CEF_SEVERITY.get(severity_id, 0))
    )
    pairs = [f"rt={round(event.time * 1000)}", f"externalId={cef_value_escape(event.id)}"]
    if log_type:
        pairs.append(f"cs1Label=logType cs1={cef_value_escape(log_type)}")
    for key, label, paths in _EXT_BY_SCHEMA.get(schema, ()):
        for path in paths:
            value = _lookup(doc, path)
            if value is not None and value != "" and value != []:
                if label is not None:
                    pairs.append(f"{key}Label={label}")
                pairs.append(f"{key}={cef_value_escape(_text(value))}")
                break
    return f"CEF:0|{header}|{' '.join(pairs)}"
