"""Typed boundary of the native engine (native/py/src/lib.rs). Chunks only: every
argument and result is a column with one entry per record."""

ENGINE_VERSION: str
MAPPED: int
REJECTED: int
DEFERRED: int

class MappedChunk:
    @property
    def statuses(self) -> bytes:
        """One byte per record: MAPPED, REJECTED or DEFERRED (map with the reference)."""
    @property
    def ids(self) -> list[str]: ...
    @property
    def times_ms(self) -> list[int]: ...
    @property
    def log_types(self) -> list[str | None]: ...
    @property
    def docs(self) -> list[list[bytes]]:
        """Per view, in the order given to map_chunk, per record."""
    @property
    def rejections(self) -> list[tuple[int, str, str]]:
        """(record index, reason, detail) of each rejected record."""
    @property
    def deferred(self) -> int: ...

def map_chunk(
    raws: list[bytes],
    log_types: list[str | None],
    source_times: list[float],
    partitions: list[str],
    offsets: list[int],
    views: list[str],
    source_id: str,
    now_ms: int,
) -> MappedChunk: ...

def hec_events(
    docs: list[bytes],
    ids: list[str],
    times: list[float],
    prefixes: list[bytes],
    prefix_of: list[int],
) -> tuple[bytes, list[int]]:
    """Splunk HEC envelopes of a batch, concatenated, and the n + 1 offsets of its events."""

def es_bulk(
    docs: list[bytes],
    ids: list[str],
    times: list[float],
    prefixes: list[bytes],
    prefix_of: list[int],
    stamp: bool,
) -> tuple[bytes, list[int]]:
    """Elasticsearch bulk create lines of a batch and the n + 1 offsets of its events."""
