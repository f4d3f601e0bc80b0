"""Durable appends: what the file sink and the file dead-letter both need."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path


class DurableAppendFile:
    """Appends whole chunks of lines and fsyncs them before returning.

    A failed write (disk full) is rolled back by truncating to the size before it,
    so a retry never leaves half a line in the output.
    """

    def __init__(self, path: Path, *, fsync: bool = True) -> None:
        self.path = path
        self._fsync = fsync
        self._lock = asyncio.Lock()
        self._fd: int | None = None

    async def append(self, data: bytes) -> None:
        async with self._lock:
            await asyncio.to_thread(self._append, data)

    def _append(self, data: bytes) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            if created and self._fsync:
                _fsync_directory(self.path.parent)
        fd = self._fd
        before = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if self._fsync:
                os.fsync(fd)
        except OSError:
            # The original error says more than a failed rollback would.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, before)
            raise

    async def close(self) -> None:
        async with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _fsync_directory(directory: Path) -> None:
    """A new file's name is durable only once its directory is synced (POSIX)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
