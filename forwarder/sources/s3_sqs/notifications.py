"""SQS message bodies to the S3 objects they announce: pure parsing, no I/O.

Accepted shapes (PROTOCOLS.md 4.4-4.6 and moto's variants, section 5):

- a direct S3 event notification `{"Records": [...]}`; keys are form-URL-encoded
  ("red+flower.jpg"; moto also escapes "/" as "%2F"), so they go through `unquote_plus`;
- the same wrapped by SNS: an envelope whose `Message` is that JSON as a string (raw
  message delivery gives the S3 JSON itself);
- an EventBridge "Object Created" event (`detail.object.etag`, moto spells it `eTag`);
  whether EventBridge encodes keys is unverified, so the key is used as given and its
  decoded spelling is kept as an alternate to try when the first is missing;
- `s3:TestEvent`, sent once when a notification configuration is saved.

Events for other S3 actions (deletes, restores, tagging) are announcements with nothing
to read: "ignored". Anything else is "invalid", and the source dead-letters the body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args
from urllib.parse import unquote_plus

import orjson

from forwarder.config import LogTypeName

Kind = Literal["objects", "test", "ignored", "invalid"]

# S3 event families with nothing new to read (eventName without the "s3:" prefix).
_OTHER_S3_EVENTS = (
    "ObjectRemoved:", "ObjectRestore:", "ReducedRedundancyLostObject", "Replication:",
    "LifecycleExpiration:", "LifecycleTransition", "IntelligentTiering", "ObjectTagging:",
    "ObjectAcl:",
)  # fmt: skip
# The log type names, typed as config declares them (the same six as mapping.LOG_TYPES).
LOG_TYPES: tuple[LogTypeName, ...] = get_args(LogTypeName)
# Longest first: AUTHENTICATION_LOGS must not win inside ..._ACCESS_TOKEN_LOGS and the like.
_LOG_TYPE_IN_KEY = re.compile(
    "|".join(re.escape(t) for t in sorted(LOG_TYPES, key=len, reverse=True)), re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One S3 object a notification announces."""

    bucket: str
    key: str  # decoded: what GetObject takes
    etag: str | None = None  # without quotes
    version_id: str | None = None
    size: int | None = None
    event_time: float | None = None  # epoch seconds of the S3 event
    alternate_key: str | None = None  # another spelling to try if `key` is missing

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"bucket": self.bucket, "key": self.key}
        for name in ("etag", "version_id", "size", "event_time"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class Notification:
    kind: Kind
    objects: tuple[ObjectRef, ...] = ()
    reason: str = ""  # why a body is invalid or ignored
    wrapper: str = ""  # "s3", "sns+s3", "eventbridge", "sns+eventbridge"


class _Invalid(Exception):
    pass


def parse_body(body: str | bytes) -> Notification:
    """What one SQS message body announces; never raises."""
    try:
        return _parse(body)
    except _Invalid as exc:
        return Notification("invalid", reason=str(exc))


def _parse(body: str | bytes) -> Notification:
    doc = _loads(body, "body")
    wrapper = ""
    if doc.get("Type") == "Notification" and "TopicArn" in doc:
        message = doc.get("Message")
        if not isinstance(message, str):
            raise _Invalid("SNS envelope without a string Message")
        doc = _loads(message, "SNS Message")
        wrapper = "sns+"
    if doc.get("Event") == "s3:TestEvent":
        return Notification("test", wrapper=wrapper + "s3")
    if "Records" in doc:
        return _s3_records(doc["Records"], wrapper + "s3")
    if doc.get("source") == "aws.s3" and "detail-type" in doc:
        return _eventbridge(doc, wrapper + "eventbridge")
    raise _Invalid("not an S3 event notification, SNS envelope or EventBridge S3 event")


def _loads(text: str | bytes, what: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise _Invalid(f"{what} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise _Invalid(f"{what} is JSON {type(doc).__name__}, not an object")
    return doc


def _s3_records(records: Any, wrapper: str) -> Notification:
    if not isinstance(records, list) or not records:
        raise _Invalid("Records is not a non-empty list")
    refs: list[ObjectRef] = []
    ignored: list[str] = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise _Invalid(f"Records[{index}] is not an object")
        name = record.get("eventName")
        if not isinstance(name, str) or record.get("eventSource", "aws:s3") != "aws:s3":
            raise _Invalid(f"Records[{index}] is not an S3 event")
        name = name.removeprefix("s3:")
        if name.startswith(_OTHER_S3_EVENTS):
            ignored.append(name)
            continue
        if not name.startswith("ObjectCreated:"):
            raise _Invalid(f"Records[{index}]: unknown eventName {name!r}")
        s3 = _dict(record.get("s3"), f"Records[{index}].s3")
        bucket = _dict(s3.get("bucket"), f"Records[{index}].s3.bucket").get("name")
        obj = _dict(s3.get("object"), f"Records[{index}].s3.object")
        key = obj.get("key")
        if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
            raise _Invalid(f"Records[{index}]: bucket name or object key missing")
        refs.append(
            ObjectRef(
                bucket=bucket,
                key=unquote_plus(key),
                etag=_etag(obj.get("eTag", obj.get("etag"))),
                version_id=_version(obj.get("versionId")),
                size=_size(obj.get("size")),
                event_time=_time(record.get("eventTime")),
            )
        )
    if not refs:
        return Notification("ignored", reason=", ".join(sorted(set(ignored))), wrapper=wrapper)
    return Notification("objects", tuple(refs), wrapper=wrapper)


def _eventbridge(doc: dict[str, Any], wrapper: str) -> Notification:
    kind = doc.get("detail-type")
    if kind != "Object Created":
        return Notification("ignored", reason=f"EventBridge {kind!r}", wrapper=wrapper)
    detail = _dict(doc.get("detail"), "detail")
    bucket = _dict(detail.get("bucket"), "detail.bucket").get("name")
    obj = _dict(detail.get("object"), "detail.object")
    key = obj.get("key")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise _Invalid("detail: bucket name or object key missing")
    decoded = unquote_plus(key)
    ref = ObjectRef(
        bucket=bucket,
        key=key,
        etag=_etag(obj.get("etag", obj.get("eTag"))),
        version_id=_version(obj.get("version-id")),
        size=_size(obj.get("size")),
        event_time=_time(doc.get("time")),
        alternate_key=decoded if decoded != key else None,
    )
    return Notification("objects", (ref,), wrapper=wrapper)


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f"{what} is missing or not an object")
    return value


def _etag(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip('"'):
        return None
    return value.strip('"')


def _version(value: Any) -> str | None:
    # "null" is S3's name for the version of an object in an unversioned bucket.
    if not isinstance(value, str) or not value or value == "null":
        return None
    return value


def _size(value: Any) -> int | None:
    return value if type(value) is int and value >= 0 else None


def _time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def log_type_from_key(key: str) -> LogTypeName | None:
    """A WorkMail log type named in the object key (`.../AUTHENTICATION_LOGS/...`), if any."""
    match = _LOG_TYPE_IN_KEY.search(key)
    if match is None:
        return None
    found = match.group(0).upper()
    for log_type in LOG_TYPES:
        if log_type == found:
            return log_type
    return None
