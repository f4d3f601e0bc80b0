"""The Elasticsearch/OpenSearch sink through the SinkRunner against the strict ES peer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from forwarder.acks import Ack
from forwarder.config import ElasticsearchSinkConfig
from forwarder.events import Status
from forwarder.sinks.elasticsearch import ElasticsearchSink
from tests.conftest import sample_records
from tests.peers.fixtures import ES_API_KEY, OS_PASSWORD, OS_USER, PeerProcess
from tests.sinks.helpers import deliver_through
from tests.test_runner import Rig

pytestmark = pytest.mark.timeout(60)

RECORDS = [orjson.dumps(r) for r in sample_records()]
FAST_RETRY = {"initial_backoff": "10ms", "max_backoff": "50ms"}


def es_config(peer: PeerProcess, **overrides: Any) -> ElasticsearchSinkConfig:
    base: dict[str, Any] = {"id": "es", "type": "elasticsearch", "url": peer.url, "api_key": ES_API_KEY,
                            "schema": "ecs", "batch": {"max_events": 20, "max_wait": "20ms"},
                            "retry": FAST_RETRY}  # fmt: skip
    base.update(overrides)
    return ElasticsearchSinkConfig.model_validate(base)


async def deliver(tmp_path: Path, config: ElasticsearchSinkConfig, raws: list[bytes],
                  timeout: float = 20) -> tuple[Ack, Rig]:  # fmt: skip
    return await deliver_through(
        tmp_path, ElasticsearchSink(config), raws, timeout, retry=FAST_RETRY
    )


def documents(peer: PeerProcess) -> dict[str, list[dict[str, Any]]]:
    return peer.control("events")  # type: ignore[no-any-return]


def all_ids(peer: PeerProcess) -> list[str]:
    return [doc["_id"] for docs in documents(peer).values() for doc in docs]


async def test_creates_into_one_data_stream_per_kind(tmp_path: Path, es_peer: PeerProcess) -> None:
    ack, _ = await deliver(tmp_path, es_config(es_peer), RECORDS)
    assert ack.status is Status.DELIVERED
    streams = documents(es_peer)
    assert set(streams) == {
        f"logs-aws.workmail_{kind}-default"
        for kind in ("authentication", "access_control", "mailbox_access", "availability_provider",
                     "personal_access_token", "email_events")
    }  # fmt: skip
    for name, docs in streams.items():
        for doc in docs:
            assert doc["_id"] == doc["_source"]["event"]["id"]
            assert doc["_source"]["event"]["dataset"] == name.split("-")[1]
    assert len(all_ids(es_peer)) == len(RECORDS)


async def test_replay_is_a_409_counted_as_delivered(tmp_path: Path, es_peer: PeerProcess) -> None:
    await deliver(tmp_path, es_config(es_peer), RECORDS)
    ack, rig = await deliver(tmp_path, es_config(es_peer), RECORDS)
    assert ack.status is Status.DELIVERED
    assert len(all_ids(es_peer)) == len(RECORDS)  # no duplicates
    assert rig.dead_letters() == []


async def test_only_items_answered_429_are_retried(tmp_path: Path, es_peer: PeerProcess) -> None:
    es_peer.control("faults", {"item_429": 7})
    ack, _ = await deliver(tmp_path, es_config(es_peer), RECORDS)
    assert ack.status is Status.DELIVERED
    ids = all_ids(es_peer)
    assert len(ids) == len(set(ids)) == len(RECORDS)


async def test_rejected_items_are_dead_lettered_with_the_item_error(
    tmp_path: Path, es_peer: PeerProcess
) -> None:
    es_peer.control("faults", {"item_400_match": "Thunderbird"})
    ack, rig = await deliver(tmp_path, es_config(es_peer), RECORDS)
    assert ack.status is Status.REJECTED and not ack.errored
    letters = rig.dead_letters()
    assert letters and all("Thunderbird" in entry["raw"] for entry in letters)
    assert all(entry["detail"].startswith("400 ") for entry in letters)
    assert len(all_ids(es_peer)) + len(letters) == len(RECORDS)


async def test_whole_request_429_and_dropped_connections_are_retried(
    tmp_path: Path, es_peer: PeerProcess
) -> None:
    es_peer.control("faults", {"busy": 2, "drop_connections": 2, "error_500": 1})
    ack, _ = await deliver(tmp_path, es_config(es_peer), RECORDS)
    assert ack.status is Status.DELIVERED
    assert len(set(all_ids(es_peer))) == len(RECORDS)


async def test_bad_api_key_is_fatal(tmp_path: Path, es_peer: PeerProcess) -> None:
    with pytest.raises(TimeoutError):
        await deliver(
            tmp_path, es_config(es_peer, api_key="bm9wZTpub3Bl"), RECORDS[:3], timeout=1.0
        )
    assert all_ids(es_peer) == []


async def test_ocsf_documents_get_a_timestamp(tmp_path: Path, es_peer: PeerProcess) -> None:
    ack, _ = await deliver(tmp_path, es_config(es_peer, schema="ocsf"), RECORDS)
    assert ack.status is Status.DELIVERED
    for docs in documents(es_peer).values():
        for doc in docs:
            assert doc["_source"]["@timestamp"].endswith("Z")
            assert doc["_source"]["metadata"]["uid"] == doc["_id"]


async def test_opensearch_with_basic_auth_and_no_gzip(
    tmp_path: Path, opensearch_peer: PeerProcess
) -> None:
    config = es_config(opensearch_peer, api_key=None, username=OS_USER, password=OS_PASSWORD,
                       flavor="opensearch", gzip=False)  # fmt: skip
    ack, _ = await deliver(tmp_path, config, RECORDS)
    assert ack.status is Status.DELIVERED
    assert len(all_ids(opensearch_peer)) == len(RECORDS)


@pytest.mark.parametrize("flavor", ["elasticsearch", "opensearch"])
async def test_bootstrap_installs_templates_then_data_streams_work(
    tmp_path: Path, es_peer: PeerProcess, opensearch_peer: PeerProcess, flavor: str
) -> None:
    peer = es_peer if flavor == "elasticsearch" else opensearch_peer
    auth: dict[str, Any] = (
        {}
        if flavor == "elasticsearch"
        else {"api_key": None, "username": OS_USER, "password": OS_PASSWORD}
    )
    config = es_config(peer, flavor=flavor, bootstrap=True, **auth)
    ack, rig = await deliver(tmp_path, config, RECORDS)
    assert ack.status is Status.DELIVERED, rig.dead_letters()
    import httpx

    headers = {"Authorization": "ApiKey " + ES_API_KEY} if flavor == "elasticsearch" else {}
    basic = None if flavor == "elasticsearch" else (OS_USER, OS_PASSWORD)
    async with httpx.AsyncClient(timeout=10) as client:
        template = await client.get(
            f"{peer.url}/_index_template/workmail-forwarder", headers=headers, auth=basic
        )
    assert template.status_code == 200, template.text
    body = template.json()["index_templates"][0]["index_template"]
    assert body["index_patterns"] == ["logs-aws.workmail_*-*"] and "data_stream" in body
    assert len(all_ids(peer)) == len(RECORDS)
