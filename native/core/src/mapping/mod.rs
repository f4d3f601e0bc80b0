//! Mirrors forwarder/mapping/__init__.py and forwarder.pipeline.map_events: decode,
//! detect, id, time, then one document per view.

use crate::chunk::{ChunkIn, RecordIn};

/// What the reference's map_events produces for a record it maps.
#[derive(Debug, PartialEq, Eq)]
pub struct Mapped {
    pub id: String,
    pub time_ms: i64,
    pub log_type: &'static str,
    /// One encoded document per view of the chunk, in the chunk's view order.
    pub docs: Vec<Vec<u8>>,
}

#[derive(Debug)]
pub enum MapError {
    /// The reference rejects the record: reason as in forwarder.errors.MappingError /
    /// forwarder.pipeline, detail byte for byte.
    Reject { reason: &'static str, detail: String },
    /// Outside what this engine reproduces exactly: the reference maps it.
    Defer,
}

pub fn map_record(_chunk: &ChunkIn<'_>, _record: &RecordIn<'_>) -> Result<Mapped, MapError> {
    Err(MapError::Defer)
}
