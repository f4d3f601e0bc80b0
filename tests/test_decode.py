from __future__ import annotations

import base64
import contextlib
import gzip
import random
import tracemalloc
import zlib
from typing import Any

import orjson
import pytest

from forwarder.decode import (
    Line,
    RawRecord,
    StreamDecoder,
    decode_document,
    looks_like_document,
    split_records,
)
from forwarder.errors import DecodeError

SAMPLE = b'{"a": 1}\r\n\n  \n{"b": "\xc3\xa9"}\n{"c": [1, 2]}\r\n\t\r\n{"d": null}'


def decode_all(data: bytes, pieces: list[int] | None = None, **kwargs: int) -> list[Line]:
    """Feed `data` split at `pieces` (chunk sizes, the rest at the end) and finish."""
    decoder = StreamDecoder(**kwargs)
    lines: list[Line] = []
    pos = 0
    for size in pieces or []:
        lines += decoder.feed(data[pos : pos + size])
        pos += size
    lines += decoder.feed(data[pos:])
    lines += decoder.finish()
    return lines


def as_tuples(lines: list[Line]) -> list[tuple[bytes, int, int, bool]]:
    return [(line.data, line.start, line.end, line.oversize) for line in lines]


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


EXPECTED = [
    (b'{"a": 1}', 0, 10, False),
    (b'{"b": "\xc3\xa9"}', 14, 26, False),
    (b'{"c": [1, 2]}', 26, 41, False),
    (b'{"d": null}', 44, 55, False),
]


# --- StreamDecoder ------------------------------------------------------------


def test_plain_ndjson_crlf_blank_lines_and_final_line() -> None:
    decoder = StreamDecoder()
    lines = decoder.feed(SAMPLE)
    assert as_tuples(lines) == EXPECTED[:3]
    assert decoder.compressed is False
    assert decoder.offset == 44  # past the skipped whitespace-only line
    assert decoder.pending_bytes == 11
    assert as_tuples(decoder.finish()) == EXPECTED[3:]
    assert decoder.offset == len(SAMPLE)


def test_gzip_ndjson_uses_decompressed_offsets() -> None:
    decoder = StreamDecoder()
    lines = decoder.feed(gz(SAMPLE)) + decoder.finish()
    assert decoder.compressed is True
    assert as_tuples(lines) == EXPECTED


def test_multi_member_gzip_like_cat() -> None:
    first, second = b'{"n": 1}\n{"n": 2}\n', b'{"n": 3}\n'
    assert as_tuples(decode_all(gz(first) + gz(second))) == [
        (b'{"n": 1}', 0, 9, False),
        (b'{"n": 2}', 9, 18, False),
        (b'{"n": 3}', 18, 27, False),
    ]


def test_gzip_member_boundary_mid_line_and_nul_padding() -> None:
    data = gz(b'{"x": "ab') + gz(b'cd"}\n') + b"\x00" * 8
    assert as_tuples(decode_all(data, [1] * len(data))) == [(b'{"x": "abcd"}', 0, 14, False)]


@pytest.mark.parametrize("compress", [False, True])
def test_every_split_gives_identical_lines(compress: bool) -> None:
    data = gz(SAMPLE) if compress else SAMPLE
    want = as_tuples(decode_all(data))
    assert want == EXPECTED
    assert as_tuples(decode_all(data, [1] * len(data))) == want
    for cut in range(len(data) + 1):
        assert as_tuples(decode_all(data, [cut])) == want
    rng = random.Random(7)
    for _ in range(200):
        pieces = [rng.randint(0, 9) for _ in range(rng.randint(1, 20))]
        assert as_tuples(decode_all(data, pieces)) == want


def test_offsets_cover_the_input_and_resume_from_start_offset() -> None:
    lines = decode_all(SAMPLE)
    for line in lines:
        raw = SAMPLE[line.start : line.end]
        assert raw.rstrip(b"\r\n") == line.data
    for cut in range(len(SAMPLE) + 1):
        first = StreamDecoder()
        head = first.feed(SAMPLE[:cut])
        resumed = StreamDecoder(start_offset=first.offset)
        assert resumed.offset == first.offset
        tail = resumed.feed(SAMPLE[first.offset :]) + resumed.finish()
        assert as_tuples(head + tail) == EXPECTED


def test_gzip_resume_with_skip_to() -> None:
    data = gz(SAMPLE)
    for saved in (0, 10, 26, 44, 55):
        decoder = StreamDecoder()
        decoder.skip_to(saved)
        assert decoder.offset == saved
        lines = decoder.feed(data[:7]) + decoder.feed(data[7:]) + decoder.finish()
        assert as_tuples(lines) == [t for t in EXPECTED if t[1] >= saved]
        assert decoder.offset == len(SAMPLE)


def test_gzip_start_offset_acts_as_skip() -> None:
    lines = decode_all(gz(SAMPLE), start_offset=26)
    assert as_tuples(lines) == EXPECTED[2:]


def test_skip_to_refuses_a_pending_partial_line() -> None:
    decoder = StreamDecoder()
    decoder.feed(b'{"a"')
    with pytest.raises(ValueError, match="partial"):
        decoder.skip_to(10)


def test_first_byte_alone_waits_for_the_gzip_decision() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(b"\x1f") == []
    assert decoder.compressed is None
    assert decoder.pending_bytes == 1
    assert decoder.finish() == [Line(b"\x1f", 0, 1)]  # one byte is no gzip stream
    assert StreamDecoder().finish() == []


def test_oversize_line_keeps_a_prefix_and_bounded_memory() -> None:
    limit, chunk = 1 << 20, 64 << 10
    data = b'{"ok": 1}\n' + b"x" * (5 << 20) + b"\n" + b'{"ok": 2}\n'
    decoder = StreamDecoder(max_line_bytes=limit)
    lines: list[Line] = []
    peak = 0
    for pos in range(0, len(data), chunk):
        lines += decoder.feed(data[pos : pos + chunk])
        peak = max(peak, decoder.pending_bytes)
    lines += decoder.finish()
    assert peak <= limit + chunk
    assert [line.oversize for line in lines] == [False, True, False]
    big = lines[1]
    assert big.data == b"x" * 1024
    assert (big.start, big.end) == (10, 10 + (5 << 20) + 1)
    assert lines[2].data == b'{"ok": 2}'


def test_oversize_line_in_one_chunk_and_at_end_of_input() -> None:
    lines = decode_all(b"y" * 3000 + b"\n" + b"z" * 3000, max_line_bytes=2000)
    assert as_tuples(lines) == [(b"y" * 1024, 0, 3001, True), (b"z" * 1024, 3001, 6001, True)]


def test_gzip_bomb_stops_early_without_inflating_everything() -> None:
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    bomb = b"".join(packer.compress(zeros) for _ in range(200)) + packer.flush()
    assert len(bomb) < 1 << 20
    decoder = StreamDecoder(max_inflated_bytes=10 << 20)
    tracemalloc.start()
    try:
        caught = None
        for pos in range(0, len(bomb), 64 << 10):
            try:
                decoder.feed(bomb[pos : pos + (64 << 10)])
            except DecodeError as exc:
                caught = exc
                break
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught is not None
    assert caught.reason == "gzip_bomb"
    assert pos < len(bomb) // 2  # stopped long before the end of the input
    assert peak < 16 << 20
    with pytest.raises(DecodeError, match="gzip_bomb"):
        decoder.feed(b"")  # a failed decoder stays failed


@pytest.mark.parametrize(("at", "byte"), [(10, 0x07), (-8, None)])
def test_corrupt_gzip(at: int, byte: int | None) -> None:
    data = bytearray(gz(b'{"a": 1}\n' * 100))
    data[at] = byte if byte is not None else data[at] ^ 0xFF  # reserved block type; bad CRC
    with pytest.raises(DecodeError) as caught:
        decode_all(bytes(data))
    assert caught.value.reason == "invalid_gzip"


def test_trailing_garbage_after_a_member_is_invalid() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_all(gz(b'{"a": 1}\n') + b"garbage")
    assert caught.value.reason == "invalid_gzip"


@pytest.mark.parametrize("keep", [2, 5, 12, -8, -1])
def test_truncated_gzip(keep: int) -> None:
    data = gz(b'{"a": 1}\n' * 50)
    decoder = StreamDecoder()
    decoder.feed(data[:keep])
    with pytest.raises(DecodeError) as caught:
        decoder.finish()
    assert caught.value.reason == "truncated_gzip"


def test_feed_after_finish_is_a_bug() -> None:
    decoder = StreamDecoder()
    decoder.finish()
    with pytest.raises(ValueError, match="after finish"):
        decoder.feed(b"x")


@pytest.mark.parametrize("seed", range(30))
def test_random_bytes_raise_only_decode_error(seed: int) -> None:
    rng = random.Random(seed)
    body = rng.randbytes(rng.randint(0, 4000))
    for data in (body, b"\x1f\x8b" + body, gz(body)[: rng.randint(0, 60)] + body):
        try:
            lines = decode_all(data, [rng.randint(1, 500) for _ in range(5)], max_line_bytes=700)
        except DecodeError:
            continue
        for line in lines:
            assert line.data
            assert line.start < line.end
            with contextlib.suppress(DecodeError):
                split_records(line.data)


# --- split_records --------------------------------------------------------------


def cw_payload(kind: str = "DATA_MESSAGE", **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "owner": "123456789012",
        "logGroup": "/aws/workmail/events",
        "logStream": "stream-1",
        "subscriptionFilters": ["f"],
        "messageType": kind,
        "logEvents": [
            {"id": "e1", "timestamp": 1700000000000, "message": '{"eventName": "A"}'},
            {"id": "e2", "timestamp": 1700000000001, "message": '{"eventName": "\u00e9"}\n'},
        ],
    }
    payload.update(extra)
    return payload


def test_plain_object_line_is_not_parsed() -> None:
    line = b'{"not valid json but starts like an object'
    assert split_records(line) == [RawRecord(line, 0)]
    assert split_records(b'  {"a": 1}') == [RawRecord(b'  {"a": 1}', 0)]


def test_non_json_line_passes_through_for_the_pipeline_to_reject() -> None:
    assert split_records(b"hello") == [RawRecord(b"hello", 0)]
    assert split_records(b"H4sIbogus!") == [RawRecord(b"H4sIbogus!", 0)]
    not_gzip = base64.b64encode(b"H4sI is just text")
    assert split_records(not_gzip) == [RawRecord(not_gzip, 0)]


def test_json_array_line() -> None:
    records = split_records(b' [{"a": 1}, {"b": "\xc3\xa9"}, 3]')
    assert [(r.raw, r.index) for r in records] == [
        (b'{"a":1}', 0),
        (b'{"b":"\xc3\xa9"}', 1),
        (b"3", 2),
    ]
    assert split_records(b"[]") == []


def test_cloudwatch_data_message() -> None:
    records = split_records(orjson.dumps(cw_payload()))
    assert records == [
        RawRecord(
            b'{"eventName": "A"}', 0, 1700000000000, "/aws/workmail/events", "stream-1", "e1"
        ),
        RawRecord(
            '{"eventName": "\u00e9"}\n'.encode(),
            1,
            1700000000001,
            "/aws/workmail/events",
            "stream-1",
            "e2",
        ),
    ]


def test_cloudwatch_control_message_carries_nothing() -> None:
    assert split_records(orjson.dumps(cw_payload("CONTROL_MESSAGE", logEvents=[]))) == []


def test_record_that_only_mentions_the_markers_is_a_record() -> None:
    line = b'{"detail": {"messageType": 1, "logEvents": 2}}'
    assert split_records(line) == [RawRecord(line, 0)]


@pytest.mark.parametrize(
    "change",
    [
        {"messageType": "OTHER"},
        {"logEvents": {"not": "a list"}},
        {"logEvents": ["text"]},
        {"logEvents": [{"id": "1", "timestamp": 1, "message": 5}]},
        {"logEvents": [{"id": "1", "timestamp": "soon", "message": "{}"}]},
        {"logEvents": [{"id": 1, "timestamp": 1, "message": "{}"}]},
        {"logGroup": ["g"]},
    ],
)
def test_malformed_cloudwatch_payload(change: dict[str, Any]) -> None:
    with pytest.raises(DecodeError) as caught:
        split_records(orjson.dumps(cw_payload(**change)))
    assert caught.value.reason == "invalid_cloudwatch_payload"


@pytest.mark.parametrize(
    "line",
    [
        b'[{"a": 1},',
        b'{"messageType": "DATA_MESSAGE", "logEvents": [',
        b'["\xff\xfe"]',
        b'{"messageType": "DATA_MESSAGE", "logEvents": [], "x": "\xc3"}',
    ],
)
def test_invalid_json_in_parsed_lines(line: bytes) -> None:
    with pytest.raises(DecodeError) as caught:
        split_records(line)
    assert caught.value.reason == "invalid_json"


def test_base64_gzip_payload_as_firehose_delivers_it() -> None:
    line = base64.b64encode(gz(orjson.dumps(cw_payload())))
    records = split_records(line + b"\r")
    assert [r.cw_event_id for r in records] == ["e1", "e2"]
    assert records[0].log_group == "/aws/workmail/events"


def test_base64_gzip_ndjson_and_array() -> None:
    ndjson = base64.b64encode(gz(b'{"a": 1}\n\n[{"b": 2}, {"c": 3}]\n'))
    assert [(r.raw, r.index) for r in split_records(ndjson)] == [
        (b'{"a": 1}', 0),
        (b'{"b":2}', 1),
        (b'{"c":3}', 2),
    ]
    array = base64.b64encode(gz(b'[{"a": 1}]'))
    assert split_records(array) == [RawRecord(b'{"a":1}', 0)]


def test_base64_gzip_bomb_and_broken_gzip() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(packer.compress(bytes(1 << 20)) for _ in range(65)) + packer.flush()
    with pytest.raises(DecodeError) as caught:
        split_records(base64.b64encode(bomb))
    assert caught.value.reason == "gzip_bomb"
    with pytest.raises(DecodeError) as caught:
        split_records(base64.b64encode(gz(b'{"a": 1}')[:-6]))
    assert caught.value.reason == "truncated_gzip"


# --- decode_document / looks_like_document ------------------------------------------


def test_decode_document_array_payload_and_single_record() -> None:
    pretty = orjson.dumps([{"a": 1}, {"b": [1, 2]}], option=orjson.OPT_INDENT_2)
    assert decode_document(pretty) == [RawRecord(b'{"a":1}', 0), RawRecord(b'{"b":[1,2]}', 1)]
    payload = orjson.dumps(cw_payload(), option=orjson.OPT_INDENT_2)
    assert [r.raw for r in decode_document(payload)] == [
        b'{"eventName": "A"}',
        '{"eventName": "\u00e9"}\n'.encode(),
    ]
    single = b'\xef\xbb\xbf{\n  "a": "\xc3\xa9"\n}\n'
    assert decode_document(single) == [RawRecord(b'{"a":"\xc3\xa9"}', 0)]
    assert decode_document(gz(pretty)) == decode_document(pretty)


def test_decode_document_errors() -> None:
    for bad in (b'{"a": ', b"42", b'"text"', b"\xff"):
        with pytest.raises(DecodeError) as caught:
            decode_document(bad)
        assert caught.value.reason == "invalid_json"
    with pytest.raises(DecodeError) as caught:
        decode_document(b"[" + b" " * 100 + b"]", max_bytes=50)
    assert caught.value.reason == "document_too_large"
    with pytest.raises(DecodeError) as caught:
        decode_document(gz(b"[" + b" " * 100 + b"]"), max_bytes=60)
    assert caught.value.reason == "document_too_large"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"[", True),
        (b"{", True),
        (b'  {"a": 1,', True),
        (b'\xef\xbb\xbf{"records": [', True),
        (b'{"a": 1}', False),
        (b'[{"a": 1}]', False),
        (b"hello", False),
        (b"", False),
    ],
)
def test_looks_like_document(line: bytes, expected: bool) -> None:
    assert looks_like_document(line) is expected


def test_document_lines_rejoin_for_decode_document() -> None:
    pretty = orjson.dumps(
        {
            "logEvents": [{"message": "{}", "id": "1", "timestamp": 5}],
            "messageType": "DATA_MESSAGE",
        },
        option=orjson.OPT_INDENT_2,
    )
    lines = decode_all(pretty)
    assert looks_like_document(lines[0].data)
    records = decode_document(b"\n".join(line.data for line in lines))
    assert records == [RawRecord(b"{}", 0, 5, None, None, "1")]


def test_gzip_members_back_to_back_without_newlines_are_records_each() -> None:
    # Firehose -> S3 with CloudWatch Logs subscription records: one gzip member per
    # payload, no newline between them.
    payloads = [
        {"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "/g", "logStream": "s",
         "subscriptionFilters": ["f"],
         "logEvents": [{"id": str(i), "timestamp": 1_700_000_000_000 + i,
                        "message": orjson.dumps({"event_type": "x", "request_id": str(i)}).decode()}]}
        for i in range(3)
    ]  # fmt: skip
    blob = b"".join(gzip.compress(orjson.dumps(p)) for p in payloads)
    decoder = StreamDecoder()
    lines = decoder.feed(blob) + decoder.finish()
    assert len(lines) == 3
    records = [r for line in lines for r in split_records(line.data)]
    assert [orjson.loads(r.raw)["request_id"] for r in records] == ["0", "1", "2"]
    assert lines[-1].end == decoder.offset


def test_a_gzip_member_ending_mid_line_continues_into_the_next() -> None:
    text = b'{"a": 1}\n{"b": {"c": 2}}\n'
    cut = text.index(b"2}") + 2  # inside the second line, right after its inner "}"
    blob = gzip.compress(text[:cut]) + gzip.compress(text[cut:])
    decoder = StreamDecoder()
    lines = decoder.feed(blob) + decoder.finish()
    assert [line.data for line in lines] == [b'{"a": 1}', b'{"b": {"c": 2}}']
