"""Bytes to records, shared by every source: gzip or plain NDJSON, JSON arrays,
CloudWatch Logs subscription payloads (also base64+gzip, as Firehose delivers them).

`StreamDecoder` is push-based so that sync file reads and async S3 bodies can both
feed it; its memory is bounded by the chunk size and `max_line_bytes`, never by the
size of the object. `split_records` turns one line into the records it carries and
leaves ordinary NDJSON lines unparsed: the pipeline parses each record exactly once.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from forwarder.errors import DecodeError

GZIP_MAGIC = b"\x1f\x8b"
OVERSIZE_PREFIX_BYTES = 1024
BASE64_GZIP_LIMIT = 64 << 20
# Most bytes one zlib call may produce: a gzip bomb then inflates step by step and
# trips `max_inflated_bytes` long before it can exhaust memory.
_INFLATE_STEP = 256 << 10
_BOM = b"\xef\xbb\xbf"
# base64 of a gzip header (1f 8b 08): the cheap test before decoding a whole line.
_BASE64_GZIP_PREFIX = b"H4sI"


@dataclass(slots=True)
class Line:
    data: bytes  # without b"\n" and a trailing b"\r"; never blank
    start: int  # logical offset of the first byte (decompressed coordinates for gzip)
    end: int  # logical offset just past the newline (past the last byte at end of input)
    oversize: bool = False  # longer than max_line_bytes: data is only its first 1024 bytes


@dataclass(slots=True)
class RawRecord:
    raw: bytes  # one record's JSON text
    index: int  # position within its line or document
    time_ms: int | None = None  # CloudWatch logEvents[].timestamp
    log_group: str | None = None  # a hint for log type detection
    log_stream: str | None = None
    cw_event_id: str | None = None


class StreamDecoder:
    """Splits a plain or gzip byte stream into Lines with exact logical offsets.

    For plain input the bytes fed continue from `start_offset`. Gzip cannot be resumed
    mid-stream, so gzip input is always fed from its byte 0; there `start_offset` (like
    `skip_to`) names how much decompressed output was already consumed and is dropped.
    A DecodeError leaves the decoder failed: later calls raise it again. Lines decoded
    from the chunk that raised are lost with it; `offset` still tells how far it got.
    """

    def __init__(
        self,
        *,
        max_line_bytes: int = 1 << 20,
        max_inflated_bytes: int | None = None,
        start_offset: int = 0,
    ) -> None:
        if max_line_bytes < 1 or start_offset < 0:
            raise ValueError("max_line_bytes must be positive and start_offset not negative")
        self._max_line = max_line_bytes
        self._max_inflated = max_inflated_bytes
        self._compressed: bool | None = None
        self._head = b""  # a lone first byte, until gzip or plain can be decided
        self._inflater: zlib._Decompress | None = None  # None between gzip members
        self._members = 0
        self._inflated = 0
        self._pos = start_offset  # logical offset of the next byte to arrive
        self._skip_until = start_offset
        self._line_start = start_offset  # where the pending line starts
        self._buf = bytearray()
        self._oversize: bytes | None = None  # prefix of a line being discarded
        self._failed: DecodeError | None = None
        self._finished = False

    @property
    def offset(self) -> int:
        return self._line_start

    @property
    def pending_bytes(self) -> int:
        oversize = len(self._oversize) if self._oversize is not None else 0
        return len(self._buf) + oversize + len(self._head)

    @property
    def compressed(self) -> bool | None:
        return self._compressed

    def skip_to(self, logical_offset: int) -> None:
        if self._buf or self._oversize is not None:
            raise ValueError("skip_to() while a partial line is pending")
        self._skip_until = max(self._skip_until, logical_offset)
        self._line_start = max(self._line_start, logical_offset)

    def feed(self, chunk: bytes) -> list[Line]:
        self._check_usable()
        out: list[Line] = []
        if self._compressed is None:
            chunk = self._head + chunk
            if len(chunk) < 2 and chunk in (b"", GZIP_MAGIC[:1]):
                self._head = chunk
                return out
            self._head = b""
            self._compressed = chunk.startswith(GZIP_MAGIC)
            if self._compressed:
                self._pos = 0  # decompressed coordinates; start_offset is a skip target
        try:
            if self._compressed:
                self._inflate(chunk, out)
            else:
                self._split(chunk, out)
        except DecodeError as exc:
            self._failed = exc
            raise
        return out

    def finish(self) -> list[Line]:
        """End of input: the last line may lack its newline; a cut gzip member raises."""
        self._check_usable()
        self._finished = True
        out: list[Line] = []
        try:
            if self._compressed is None and self._head:
                self._compressed = False
                self._split(self._head, out)
                self._head = b""
            elif self._compressed and self._inflater is not None:
                self._inflate(b"", out)  # drains output zlib still holds back
                if self._inflater is not None:
                    raise DecodeError(
                        "truncated_gzip", f"input ended inside gzip member {self._members}"
                    )
        except DecodeError as exc:
            self._failed = exc
            raise
        if self._oversize is not None:
            out.append(Line(self._oversize, self._line_start, self._pos, True))
        elif self._buf:
            self._emit(bytes(self._buf), self._pos, out)
        self._buf.clear()
        self._oversize = None
        self._line_start = max(self._line_start, self._pos)
        return out

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise self._failed
        if self._finished:
            raise ValueError("StreamDecoder used after finish()")

    def _inflate(self, data: bytes, out: list[Line]) -> None:
        while True:
            if self._inflater is None:
                # NUL padding after a member is tolerated, as gzip(1) and Python's gzip do.
                data = data.lstrip(b"\x00")
                if not data:
                    return
                # Later members must be gzip too (wbits=31): anything else is garbage.
                self._inflater = zlib.decompressobj(wbits=47 if self._members == 0 else 31)
                self._members += 1
            inflater = self._inflater
            try:
                piece = inflater.decompress(data, _INFLATE_STEP)
            except zlib.error as exc:
                raise DecodeError("invalid_gzip", f"member {self._members}: {exc}") from exc
            if piece:
                self._inflated += len(piece)
                if self._max_inflated is not None and self._inflated > self._max_inflated:
                    raise DecodeError(
                        "gzip_bomb", f"inflates past max_inflated_bytes={self._max_inflated}"
                    )
                self._split(piece, out)
            if inflater.eof:
                data = inflater.unused_data  # the next member of `cat a.gz b.gz`
                self._inflater = None
                self._end_member(out)
                continue
            data = inflater.unconsumed_tail
            # A full step may leave output inside zlib even with all input consumed.
            if not data and len(piece) < _INFLATE_STEP:
                return

    def _split(self, data: bytes, out: list[Line]) -> None:
        if self._pos < self._skip_until:
            drop = min(len(data), self._skip_until - self._pos)
            self._pos += drop
            data = data[drop:]
        if not data:
            return
        parts = data.split(b"\n")
        rest = parts.pop()
        pos = self._pos
        for part in parts:
            end = pos + len(part) + 1
            if self._oversize is not None:
                out.append(Line(self._oversize, self._line_start, end, True))
                self._oversize = None
            else:
                if self._buf:
                    self._buf += part
                    part = bytes(self._buf)
                    self._buf.clear()
                self._emit(part, end, out)
            pos = self._line_start = end
        if rest:
            if self._oversize is None:
                if len(self._buf) + len(rest) > self._max_line:
                    # Keep a prefix for the dead letter and discard the rest unbuffered.
                    self._buf += rest[:OVERSIZE_PREFIX_BYTES]
                    self._oversize = bytes(self._buf[:OVERSIZE_PREFIX_BYTES])
                    self._buf.clear()
                else:
                    self._buf += rest
            pos += len(rest)
        self._pos = pos

    def _end_member(self, out: list[Line]) -> None:
        """A gzip member ended: a complete JSON document left pending is a record.

        Firehose writes CloudWatch Logs subscription records to S3 as one gzip member
        each, back to back with no newline between them. A member that ends mid-line
        (a writer flushing members at arbitrary bytes) leaves text that does not parse
        on its own, and the line simply continues into the next member.
        """
        if self._oversize is not None or not self._buf:
            return
        pending = bytes(self._buf)
        if not pending.rstrip().endswith((b"}", b"]")):
            return
        try:
            orjson.loads(pending)
        except orjson.JSONDecodeError:
            return
        self._buf.clear()
        self._emit(pending, self._pos, out)
        self._line_start = self._pos

    def _emit(self, line: bytes, end: int, out: list[Line]) -> None:
        if len(line) > self._max_line:
            out.append(Line(line[:OVERSIZE_PREFIX_BYTES], self._line_start, end, True))
            return
        if line.endswith(b"\r"):
            line = line[:-1]
        if line and not line.isspace():
            out.append(Line(line, self._line_start, end))


def split_records(line: bytes) -> list[RawRecord]:
    """The records one line carries; a plain JSON object line is returned unparsed."""
    return _split_line(line, allow_base64=True)


def _split_line(line: bytes, *, allow_base64: bool) -> list[RawRecord]:
    first = line[:1]
    if first != b"{" and first != b"[":
        # Rare: leading whitespace, or a BOM left by a Windows editor.
        line = line.removeprefix(_BOM)
        first = line.lstrip()[:1]
    if first == b"{":
        if b'"messageType"' in line and b'"logEvents"' in line:
            doc = _loads(line)
            if isinstance(doc, dict) and _is_cloudwatch_payload(doc):
                return _payload_records(doc)
        return [RawRecord(line, 0)]
    if first == b"[":
        return _records_from_value(_loads(line))
    if allow_base64:
        blob = _base64_gzip(line)
        if blob is not None:
            return _split_blob(blob)
    return [RawRecord(line, 0)]


def _base64_gzip(line: bytes) -> bytes | None:
    text = line.strip()
    if not text.startswith(_BASE64_GZIP_PREFIX):
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        return None
    if not data.startswith(GZIP_MAGIC):
        return None
    return _gunzip(data, BASE64_GZIP_LIMIT, "gzip_bomb")


def _split_blob(blob: bytes) -> list[RawRecord]:
    """A decoded Firehose/Kinesis blob: one JSON document, or NDJSON lines."""
    try:
        doc = orjson.loads(blob)
    except orjson.JSONDecodeError:
        pass
    else:
        return _records_from_value(doc)
    records: list[RawRecord] = []
    for line in blob.split(b"\n"):
        line = line.removesuffix(b"\r")
        if not line or line.isspace():
            continue
        for record in _split_line(line, allow_base64=False):
            record.index = len(records)
            records.append(record)
    return records


def split_blob(data: bytes, *, max_inflated_bytes: int = BASE64_GZIP_LIMIT) -> list[RawRecord]:
    """One Firehose/Kinesis record's data, already base64-decoded: gzip or plain; one JSON
    document, a JSON array, a CloudWatch subscription payload, or NDJSON lines."""
    if data.startswith(GZIP_MAGIC):
        data = _gunzip(data, max_inflated_bytes, "gzip_bomb")
    elif data.lstrip().startswith(_BASE64_GZIP_PREFIX):
        return split_records(data.strip())  # base64 once more (a producer encoded it itself)
    return _split_blob(data.removeprefix(_BOM))


def gunzip(data: bytes, limit: int, reason: str = "gzip_bomb") -> bytes:
    """Every gzip member of `data`, inflated; DecodeError(`reason`) past `limit` bytes."""
    return _gunzip(data, limit, reason)


def decode_document(data: bytes, *, max_bytes: int = 64 << 20) -> list[RawRecord]:
    """A whole JSON document: an array of records, a subscription payload or one record.

    Gzip input is inflated first (bounded by `max_bytes`), for `.json.gz` objects.
    """
    if len(data) > max_bytes:
        raise DecodeError("document_too_large", f"{len(data)} bytes, limit {max_bytes}")
    if data.startswith(GZIP_MAGIC):
        data = _gunzip(data, max_bytes, "document_too_large")
    return _records_from_value(_loads(data.removeprefix(_BOM)))


def looks_like_document(first_line: bytes) -> bool:
    """True when a .json file's first non-blank line opens a multi-line JSON document."""
    text = first_line.removeprefix(_BOM).strip()
    if text[:1] not in (b"{", b"["):
        return False
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return True
    return False


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:  # also raised for invalid UTF-8
        raise DecodeError("invalid_json", str(exc)) from exc


def _records_from_value(doc: Any) -> list[RawRecord]:
    if isinstance(doc, list):
        # Non-object elements still become records: the pipeline rejects them by name.
        return [RawRecord(orjson.dumps(item), index) for index, item in enumerate(doc)]
    if isinstance(doc, dict):
        if _is_cloudwatch_payload(doc):
            return _payload_records(doc)
        return [RawRecord(orjson.dumps(doc), 0)]  # compact: a record is one line downstream
    raise DecodeError("invalid_json", f"top-level JSON {type(doc).__name__} is not a record")


def _is_cloudwatch_payload(doc: dict[str, Any]) -> bool:
    return "messageType" in doc and "logEvents" in doc


def _payload_records(doc: dict[str, Any]) -> list[RawRecord]:
    kind = doc["messageType"]
    if kind == "CONTROL_MESSAGE":
        return []  # a reachability probe, no log events
    if kind != "DATA_MESSAGE":
        raise DecodeError("invalid_cloudwatch_payload", f"messageType {kind!r}")
    events, group, stream = doc["logEvents"], doc.get("logGroup"), doc.get("logStream")
    if not isinstance(events, list):
        raise DecodeError("invalid_cloudwatch_payload", "logEvents is not a list")
    if not _optional_str(group) or not _optional_str(stream):
        raise DecodeError("invalid_cloudwatch_payload", "logGroup/logStream is not a string")
    records: list[RawRecord] = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise DecodeError("invalid_cloudwatch_payload", f"logEvents[{index}] is no object")
        message, timestamp, event_id = event.get("message"), event.get("timestamp"), event.get("id")
        if not isinstance(message, str):
            raise DecodeError("invalid_cloudwatch_payload", f"logEvents[{index}].message")
        if timestamp is not None and (type(timestamp) is not int):
            raise DecodeError("invalid_cloudwatch_payload", f"logEvents[{index}].timestamp")
        if not _optional_str(event_id):
            raise DecodeError("invalid_cloudwatch_payload", f"logEvents[{index}].id")
        try:
            raw = message.encode()
        except UnicodeEncodeError as exc:  # a lone surrogate escaped in the JSON
            raise DecodeError("invalid_cloudwatch_payload", str(exc)) from exc
        records.append(RawRecord(raw, index, timestamp, group, stream, event_id))
    return records


def _optional_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _gunzip(data: bytes, limit: int, reason: str) -> bytes:
    """Inflate every gzip member of `data`, never holding more than `limit` + 1 bytes."""
    pieces: list[bytes] = []
    total = 0
    while data:
        inflater = zlib.decompressobj(wbits=31)
        try:
            piece = inflater.decompress(data, limit + 1 - total)
        except zlib.error as exc:
            raise DecodeError("invalid_gzip", str(exc)) from exc
        total += len(piece)
        if total > limit:
            raise DecodeError(reason, f"inflates past {limit} bytes")
        pieces.append(piece)
        if not inflater.eof:
            raise DecodeError("truncated_gzip", "input ended inside a gzip member")
        data = inflater.unused_data.lstrip(b"\x00")
    return b"".join(pieces)
