"""Drive one real sink through the pipeline and its SinkRunner until an ack settles."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from forwarder.acks import Ack
from forwarder.sinks.base import Sink
from tests.test_runner import Rig, batch_of


async def deliver_through(
    tmp_path: Path, sink: Sink, raws: list[bytes], wait: float = 20, **runner: Any
) -> tuple[Ack, Rig]:
    """Send `raws` as one ack unit; returns once the ack is done (TimeoutError after `wait`).

    `runner` overrides the runner's sink config (retry, timeout...), as Rig takes them.
    """
    await sink.start()
    rig = Rig(tmp_path, [sink], **runner)  # type: ignore[list-item]
    rig.start()
    ack = Ack()
    await rig.pipeline.send(batch_of(raws, ack))
    ack.seal()
    try:
        await asyncio.wait_for(ack.wait(), wait)
        await rig.finish()
    finally:
        for task in rig.tasks:
            task.cancel()
        await sink.close()
    return ack, rig
