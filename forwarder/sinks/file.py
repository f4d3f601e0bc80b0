"""NDJSON file sink: one mapped document per line, fsynced before it counts as delivered."""

from __future__ import annotations

from forwarder.config import FileSinkConfig
from forwarder.events import Event, Status
from forwarder.fileio import DurableAppendFile
from forwarder.sinks.base import SendResult, Sink


class FileSink(Sink):
    def __init__(self, config: FileSinkConfig) -> None:
        self.id = config.id
        self.view = config.view
        self._file = DurableAppendFile(config.path, fsync=config.fsync)

    async def send(self, events: list[Event]) -> SendResult:
        view = self.view
        await self._file.append(b"".join([event.docs[view] + b"\n" for event in events]))
        return SendResult.all(len(events), Status.DELIVERED)

    async def close(self) -> None:
        await self._file.close()
