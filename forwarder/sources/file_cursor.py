"""What the files source remembers of one file, in memory and in the state store."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Files are told apart by inode and by a hash of their first bytes, so a file that
# is replaced under the same name (or an inode reused) is read from the start.
FINGERPRINT_BYTES = 1024


@dataclass(frozen=True, slots=True)
class FileCheckpoint:
    """What the state store remembers of one file."""

    dev: int
    ino: int
    fingerprint: str
    fingerprint_len: int
    offset: int  # logical (decompressed) offset of the first byte not yet committed
    finished: bool = False  # gzip or document fully read, or dead-lettered as a whole

    def as_value(self) -> dict[str, Any]:
        return {
            "dev": self.dev,
            "ino": self.ino,
            "fingerprint": self.fingerprint,
            "fingerprint_len": self.fingerprint_len,
            "offset": self.offset,
            "finished": self.finished,
        }

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> FileCheckpoint:
        return cls(
            dev=int(value["dev"]),
            ino=int(value["ino"]),
            fingerprint=str(value["fingerprint"]),
            fingerprint_len=int(value["fingerprint_len"]),
            offset=int(value["offset"]),
            finished=bool(value.get("finished", False)),
        )


@dataclass(slots=True)
class Cursor:
    path: Path
    dev: int = -1
    ino: int = -1
    fingerprint: str = ""
    fingerprint_len: int = 0
    offset: int = 0  # next logical byte to read
    finished: bool = False
    size_seen: int = -1
    mtime_seen: int = -1
    changed_at: float = 0.0  # monotonic time the size or mtime last changed
    partial: bool = False  # bytes after `offset` that did not yet make a whole line
    dirty: bool = True  # read at the next poll whatever the stat says

    def checkpoint(self, offset: int, finished: bool) -> FileCheckpoint:
        return FileCheckpoint(
            self.dev, self.ino, self.fingerprint, self.fingerprint_len, offset, finished
        )


def fingerprint(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()
