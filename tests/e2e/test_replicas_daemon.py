"""Three replicas (separate daemons) on one SQS queue, sharing DynamoDB state on
moto_server: every event delivered once between them, and a finished object announced
again is not sent again (its progress record in the shared table says it is done)."""

from __future__ import annotations

import gzip
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.conftest import ndjson, variants
from tests.e2e.helpers import Daemon, expected_ids, ocsf_ids, wait_for
from tests.e2e.test_s3_sqs_daemon import Queue
from tests.peers import moto as moto_peer
from tests.peers.moto import REGION, MotoServer
from tests.state.conftest import drop_table, new_table

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

moto = moto_peer.moto


@pytest.fixture
async def table(moto: MotoServer) -> Any:
    name = await new_table(moto)
    yield name
    drop_table(moto, name)


def replica_config(queue: Queue, root: Path, moto: MotoServer, table: str) -> Path:
    path = queue.config(root, ecs=False)
    document = yaml.safe_load(path.read_text())
    document["state"] = {"backend": "dynamodb", "table": table, "region": REGION,
                         "endpoint_url": moto.endpoint_url}  # fmt: skip
    path.write_text(yaml.safe_dump(document))
    return path


def delivered(root: Path) -> Counter[str]:
    total: Counter[str] = Counter()
    for name in ("a", "b", "c"):
        total += Counter(ocsf_ids(root / name / "out" / "ocsf.ndjson"))
    return total


def test_three_replicas_share_a_queue_and_skip_finished_objects(
    tmp_path: Path, moto: MotoServer, table: str
) -> None:
    queue = Queue(moto)
    records = variants(50, "rep")  # 2,250 records in 50 objects
    per_object = len(records) // 50
    for index in range(50):
        data = ndjson(records[index * per_object : (index + 1) * per_object])
        queue.put(f"replicas/part-{index:02d}.jsonl.gz", gzip.compress(data))
    want = Counter(expected_ids(records))
    daemons = [Daemon(replica_config(queue, tmp_path / name, moto, table), cwd=tmp_path)
               for name in ("a", "b", "c")]  # fmt: skip
    try:
        wait_for(lambda: sum(delivered(tmp_path).values()) >= len(records), 90, "every event")
        wait_for(lambda: queue.counts() == (0, 0), 30, "every message deleted")
        # The same notification again (S3 may repeat one): the object is done.
        body = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
                             "awsRegion": REGION, "eventName": "ObjectCreated:Put",
                             "s3": {"bucket": {"name": queue.bucket},
                                    "object": {"key": "replicas/part-07.jsonl.gz"}}}]}  # fmt: skip
        queue.sqs.send_message(QueueUrl=queue.url, MessageBody=orjson.dumps(body).decode())
        wait_for(lambda: queue.counts() == (0, 0), 30, "the repeated notification deleted")
        for daemon in daemons:
            daemon.signal(signal.SIGTERM)
        for daemon in daemons:
            assert daemon.wait(30) == 0, daemon.output()
    finally:
        for daemon in daemons:
            daemon.stop()
    got = delivered(tmp_path)
    assert got == want  # every event once, none twice, none lost
    shares = [sum(Counter(ocsf_ids(tmp_path / n / "out" / "ocsf.ndjson")).values())
              for n in ("a", "b", "c")]  # fmt: skip
    print(f"events per replica: {shares}")
    outputs = "".join(daemon.output() for daemon in daemons).replace(" ", "")
    assert '"objects_already_done":1' in outputs
