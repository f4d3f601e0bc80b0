"""A source's `read_timeout` reaches its AWS clients: a peer that stops answering fails fast."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from botocore.exceptions import ReadTimeoutError

from forwarder import aws
from forwarder.state.memory import MemoryStateStore
from tests.conftest import variants
from tests.fakes import MemorySink
from tests.peers import moto as moto_peer
from tests.peers.aws_delay import AwsDelayProxy
from tests.peers.moto import MotoServer
from tests.sources.cloudwatch.test_source import LogGroup, cw_source, wait_for_count
from tests.sources.helpers import Following
from tests.sources.test_s3_sqs import ids, received_ids

moto = moto_peer.moto

pytestmark = pytest.mark.timeout(60)


async def test_a_tiny_read_timeout_fails_fast_against_a_slow_peer(
    tmp_path: Path, moto: MotoServer
) -> None:
    group = LogGroup(moto)
    records = variants(1, "slow")[:20]
    group.put(records)
    proxy = AwsDelayProxy(moto.endpoint_url, {"FilterLogEvents"})
    await proxy.start()
    try:
        proxy.delay = 5.0
        config = group.config(endpoint_url=proxy.endpoint_url, read_timeout="300ms",
                              connect_timeout="1s")  # fmt: skip
        # The client the source builds from its config gives up after 0.3 s, not 5 s.
        async with aws.client("logs", config, max_attempts=1,
                              connect_timeout=config.connect_timeout,
                              read_timeout=config.read_timeout) as client:  # fmt: skip
            started = time.monotonic()
            with pytest.raises(ReadTimeoutError):
                await client.filter_log_events(logGroupName=group.name)
            assert time.monotonic() - started < 2.0
        # The running source: its requests time out (counted as failed), nothing is lost,
        # and once the peer answers in time again every record arrives.
        sink, state = MemorySink(), MemoryStateStore()
        source = cw_source(config)
        async with Following(tmp_path, source, state, [sink]) as running:
            started = time.monotonic()
            while source.stats.requests_failed < 1:
                assert time.monotonic() - started < 2.5, "the request did not time out"
                await asyncio.sleep(0.05)
            assert source.stats.requests_ok == 0 and not sink.received
            proxy.delay = 0.0
            await wait_for_count(sink, len(records), timeout=20)
            await running.stop()
        assert received_ids(sink) == ids(records)
        assert proxy.delayed >= 2
    finally:
        await proxy.stop()
