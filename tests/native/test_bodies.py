"""The native batch bodies (wmf_native.hec_events / es_bulk) equal the reference
per-event encoders of the sinks, byte for byte, offsets included."""

from __future__ import annotations

from itertools import accumulate

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.acks import Ack
from forwarder.config import ElasticsearchSinkConfig, SplunkHecSinkConfig
from forwarder.events import Event, Origin
from forwarder.mapping import LOG_TYPES
from forwarder.sinks.bodies import prefix_table
from forwarder.sinks.elasticsearch import ElasticsearchSink
from forwarder.sinks.splunk_hec import SplunkHecSink

wmf_native = pytest.importorskip("wmf_native", reason="the native engine is not built")

MAX_MS = 253_402_300_800_000

docs = st.dictionaries(
    st.text(max_size=8), st.text(max_size=20) | st.integers(-(2**63), 2**63 - 1), max_size=4
)
events_strategy = st.lists(
    st.tuples(
        docs,
        st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
        st.integers(0, MAX_MS - 1),
        st.sampled_from([*LOG_TYPES, None, "NOT_A_LOG_TYPE"]),
    ),
    max_size=30,
)


def _events(view: str, rows: list[tuple[dict[str, object], str, int, str | None]]) -> list[Event]:
    out = []
    for doc, event_id, ms, log_type in rows:
        event = Event(b"{}", Origin("s", "p", 0), Ack(), log_type=log_type)
        event.id, event.time, event.docs = event_id, ms / 1000.0, {view: orjson.dumps(doc)}
        out.append(event)
    return out


def _reference(parts: list[bytes]) -> tuple[bytes, list[int]]:
    return b"".join(parts), [0, *accumulate(len(p) for p in parts)]


def _index(event: Event) -> int:
    table = {t: i for i, t in enumerate(LOG_TYPES)}
    return table.get(event.log_type or "", LOG_TYPES.index("AUTHENTICATION_LOGS"))


@settings(max_examples=150, deadline=None)
@given(rows=events_strategy, index=st.sampled_from([None, "main"]))
def test_hec_envelopes_equal_the_reference(
    rows: list[tuple[dict[str, object], str, int, str | None]], index: str | None
) -> None:
    config = SplunkHecSinkConfig.model_validate(
        {"id": "hec", "type": "splunk_hec", "url": "http://127.0.0.1:1", "token": "t",
         "host": "h\u00e9\"st", "index": index}
    )  # fmt: skip
    sink = SplunkHecSink(config)
    events = _events(sink.view, rows)
    got = wmf_native.hec_events(
        [e.docs[sink.view] for e in events], [e.id for e in events], [e.time for e in events],
        prefix_table(sink._prefixes), [_index(e) for e in events],
    )  # fmt: skip
    assert got == _reference([sink.encode(e) for e in events])


@settings(max_examples=150, deadline=None)
@given(rows=events_strategy, schema=st.sampled_from(["ocsf", "ecs", "raw"]))
def test_es_bulk_lines_equal_the_reference(
    rows: list[tuple[dict[str, object], str, int, str | None]], schema: str
) -> None:
    config = ElasticsearchSinkConfig.model_validate(
        {"id": "es", "type": "elasticsearch", "url": "http://127.0.0.1:1", "schema": schema}
    )
    sink = ElasticsearchSink(config)
    events = _events(sink.view, rows)
    got = wmf_native.es_bulk(
        [e.docs[sink.view] for e in events], [e.id for e in events], [e.time for e in events],
        prefix_table(sink._actions), [_index(e) for e in events], schema != "ecs",
    )  # fmt: skip
    assert got == _reference([sink.encode(e) for e in events])


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="one entry per event"):
        wmf_native.hec_events([b"{}"], [], [0.0], [b"p"], [0])
    with pytest.raises(ValueError, match="prefix_of"):
        wmf_native.es_bulk([b"{}"], ["i"], [0.0], [b"p"], [3], True)
