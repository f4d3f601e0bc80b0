"""FilesSource in-process: checkpoints, resume, rewind on ERRORED, failing state store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from forwarder.config import FilesSourceConfig
from forwarder.events import Status
from forwarder.sources import SourceContext
from forwarder.sources.files import FilesSource
from forwarder.state.memory import MemoryStateStore
from tests.conftest import sample_records
from tests.fakes import MemorySink
from tests.test_runner import Rig

pytestmark = pytest.mark.timeout(30)

RECORDS = [orjson.dumps(r) for r in sample_records()]


def source_config(path: Path, **overrides: object) -> FilesSourceConfig:
    base: dict[str, object] = {"id": "in", "type": "files", "path": str(path), "poll_interval": "20ms",
                               "partial_line_grace": "50ms", "chunk_events": 7}  # fmt: skip
    base.update(overrides)
    return FilesSourceConfig.model_validate(base)


async def drain_once(
    tmp_path: Path, sink: MemorySink, state: MemoryStateStore, **overrides: object
) -> FilesSource:
    rig = Rig(tmp_path, [sink], **overrides)
    rig.start()
    source = FilesSource(source_config(tmp_path / "inbox"))
    ctx = SourceContext(rig.pipeline, state, rig.metrics, drain=True)
    committer = asyncio.create_task(source.commit_loop(ctx))
    await source.run(ctx)
    await rig.finish()
    await source.flush()
    committer.cancel()
    return source


async def test_checkpoint_resumes_after_the_committed_offset(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_bytes(b"\n".join(RECORDS[:20]) + b"\n")
    state = MemoryStateStore()
    sink = MemorySink()
    await drain_once(tmp_path, sink, state)
    assert len(sink.received) == 20
    [item] = (await state.scan("files/in/")).values()
    assert item.value["offset"] == (inbox / "a.jsonl").stat().st_size

    with (inbox / "a.jsonl").open("ab") as handle:
        handle.write(b"\n".join(RECORDS[20:30]) + b"\n")
    again = MemorySink()
    await drain_once(tmp_path, again, state)
    assert len(again.received) == 10  # only the appended lines


async def test_truncated_file_is_read_from_the_start(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_bytes(b"\n".join(RECORDS[:20]) + b"\n")
    state = MemoryStateStore()
    await drain_once(tmp_path, MemorySink(), state)
    with (inbox / "a.jsonl").open("r+b") as handle:  # same inode, shorter, new content
        handle.truncate(0)
        handle.write(b"\n".join(RECORDS[30:33]) + b"\n")
    sink = MemorySink()
    await drain_once(tmp_path, sink, state)
    assert len(sink.received) == 3


async def test_errored_chunk_is_not_committed(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_bytes(b"\n".join(RECORDS[:20]) + b"\n")
    state = MemoryStateStore()
    sink = MemorySink()
    sink.verdict = lambda e: Status.ERRORED if e.raw == RECORDS[10] else Status.DELIVERED
    await drain_once(
        tmp_path, sink, state,
        retry={"initial_backoff": "1ms", "max_backoff": "2ms", "max_elapsed": "30ms"},
    )  # fmt: skip
    [item] = (await state.scan("files/in/")).values()
    # chunks of 7 records: the first chunk commits, the one holding record 10 does not
    assert item.value["offset"] == sum(len(r) + 1 for r in RECORDS[:7])
    sink.verdict = None
    again = MemorySink()
    await drain_once(tmp_path, again, state)
    assert len(again.received) == 13


async def test_state_store_write_failure_holds_the_checkpoint(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.jsonl").write_bytes(b"\n".join(RECORDS[:5]) + b"\n")
    state = MemoryStateStore()
    state.fail_writes = True
    await drain_once(tmp_path, MemorySink(), state)
    assert await state.scan("files/in/") == {}
    state.fail_writes = False
    sink = MemorySink()
    await drain_once(tmp_path, sink, state)
    assert len(sink.received) == 5  # read again: at least once, never lost


async def test_file_deleted_while_read_is_finished_then_forgotten(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    target = inbox / "a.jsonl"
    many = [
        orjson.dumps({**orjson.loads(r), "request_id": f"r-{i}"})
        for i, r in enumerate(RECORDS * 20)
    ]
    target.write_bytes(b"\n".join(many) + b"\n")
    state = MemoryStateStore()
    sink = MemorySink()
    sink.hang = 0.005
    rig = Rig(tmp_path, [sink], queue_events=20, batch={"max_events": 5, "max_wait": "1ms"})
    rig.start()
    source = FilesSource(source_config(inbox))
    ctx = SourceContext(rig.pipeline, state, rig.metrics)
    committer = asyncio.create_task(source.commit_loop(ctx))
    reader = asyncio.create_task(source.run(ctx))
    while len(sink.received) < 50:
        await asyncio.sleep(0.005)
    target.unlink()  # the open descriptor keeps the data readable
    while len(sink.received) < len(many):
        await asyncio.sleep(0.01)
    while await state.scan("files/in/"):  # gone and settled: its checkpoint is dropped
        await asyncio.sleep(0.02)
    ctx.stopping.set()
    await reader
    await rig.finish()
    committer.cancel()
    assert len(sink.received) == len(many)
