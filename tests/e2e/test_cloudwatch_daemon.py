"""The real CLI tailing CloudWatch Logs on moto_server: SIGTERM and SIGKILL mid-stream,
restart, and the ledger of events in = events out."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.conftest import variants
from tests.e2e.helpers import Daemon, count_lines, ecs_ids, expected_ids, ocsf_ids, wait_for
from tests.peers import moto as moto_peer
from tests.peers.moto import MotoServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

moto = moto_peer.moto


def put(server: MotoServer, group: str, stream: str, records: list[dict[str, Any]],
        start_ms: int) -> None:  # fmt: skip
    logs = server.client("logs")
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    # Ten events per millisecond: pages end inside a millisecond.
    events = [{"timestamp": start_ms + i // 10, "message": orjson.dumps(r).decode()}
              for i, r in enumerate(records)]  # fmt: skip
    for at in range(0, len(events), 5000):
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=events[at : at + 5000])  # fmt: skip


def config(root: Path, server: MotoServer, group: str) -> Path:
    batch = {"max_events": 200, "max_wait": "50ms"}
    sinks = [
        {"id": name, "type": "file", "path": str(root / "out" / f"{name}.ndjson"),
         "schema": name, "batch": batch, "queue": {"max_events": 2000}}
        for name in ("ocsf", "ecs")
    ]  # fmt: skip
    document = {
        "state": {"backend": "sqlite", "path": str(root / "state" / "forwarder.db")},
        "sources": [{"id": "cw", "type": "cloudwatch", "region": "us-east-1",
                     "endpoint_url": server.endpoint_url, "log_groups": [group],
                     "start": "beginning", "poll_interval": "200ms", "page_limit": 500,
                     "max_requests_per_second": 100}],
        "sinks": sinks,
        "dead_letter": {"path": str(root / "out" / "dead-letter.ndjson")},
        "telemetry": {"listen": None},
        "shutdown_grace": "20s",
    }  # fmt: skip
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_stop_mid_stream_then_restart_loses_nothing(
    tmp_path: Path, moto: MotoServer, how: signal.Signals
) -> None:
    group = f"/aws/workmail/{MotoServer.unique('e2e')}"
    moto.client("logs").create_log_group(logGroupName=group)
    records = variants(400, f"cw{how}")  # 18,000 records
    base = int(time.time() * 1000) - 3_600_000
    put(moto, group, "a", records[:9000], base)
    put(moto, group, "b", records[9000:], base + 300)  # interleaves with "a"
    path = config(tmp_path, moto, group)
    out = tmp_path / "out"
    first = Daemon(path, cwd=tmp_path)
    try:
        wait_for(lambda: count_lines(out / "ecs.ndjson") > 3000, 60, "a part of the events")
        first.signal(how)
        code = first.wait(30)
    finally:
        first.stop()
    if how == signal.SIGTERM:
        assert code == 0, first.output()
    delivered_first = count_lines(out / "ocsf.ndjson")
    assert delivered_first < len(records), "the stop should land mid-stream"

    second = Daemon(path, "--drain", cwd=tmp_path)
    assert second.wait(120) == 0, second.output()
    want = Counter(expected_ids(records))
    for got in (Counter(ocsf_ids(out / "ocsf.ndjson")), Counter(ecs_ids(out / "ecs.ndjson"))):
        assert not want - got, f"lost {sum((want - got).values())} events"
        duplicates = sum((got - want).values())
        if how == signal.SIGTERM:
            assert duplicates == 0  # a clean stop commits exactly what was delivered
        else:
            assert duplicates <= 2000 + 500, duplicates  # the queue plus one page in flight
        print(f"{how.name}: delivered first={delivered_first} duplicates={duplicates}")
    assert count_lines(out / "dead-letter.ndjson") == 0
