//! One acknowledgement unit in, one result per record out (forwarder.pipeline.map_events).

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::mapping::{self, MapError, Mapped, Scratch};

/// A document view a sink needs: the schema and whether it embeds the raw record
/// (config `raw_data`; the Python view names are `ocsf`, `ocsf:noraw`, `ecs`, `raw`...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    Ocsf { raw_data: bool },
    Ecs { raw_data: bool },
    Raw,
}

impl View {
    /// The view for a Python view name; None for a name the reference does not know
    /// (the caller then keeps the whole chunk on the reference engine).
    pub fn parse(name: &str) -> Option<View> {
        let (schema, variant) = match name.split_once(':') {
            Some((schema, variant)) => (schema, variant),
            None => (name, ""),
        };
        let raw_data = variant.is_empty();
        match schema {
            "ocsf" => Some(View::Ocsf { raw_data }),
            "ecs" => Some(View::Ecs { raw_data }),
            "raw" => Some(View::Raw),
            _ => None,
        }
    }
}

/// One record as a source read it.
#[derive(Clone, Copy, Debug)]
pub struct RecordIn<'a> {
    pub raw: &'a [u8],
    /// The log type the source knows (configured or from the log group), if any.
    pub log_type: Option<&'a str>,
    /// The source's own time for the record in epoch seconds, 0.0 when it has none
    /// (Event.time before mapping).
    pub source_time: f64,
    pub partition: &'a str,
    pub offset: i64,
}

pub struct ChunkIn<'a> {
    pub records: Vec<RecordIn<'a>>,
    pub views: Vec<View>,
    pub source_id: &'a str,
    /// The time fallback for records that carry none and have no source time.
    pub now_ms: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Mapped(Mapped),
    /// Dead-letter the record: the reason and detail the reference would give.
    Rejected {
        reason: String,
        detail: String,
    },
    /// Map this record with the reference engine.
    Deferred,
}

pub struct ChunkOut {
    pub outcomes: Vec<Outcome>,
    pub deferred: usize,
}

/// Maps every record of the chunk; never panics (a panicking record becomes the
/// reference's `mapping_failed` rejection, as a Python exception in a mapper does).
pub fn map_chunk(chunk: &ChunkIn<'_>) -> ChunkOut {
    let mut outcomes = Vec::with_capacity(chunk.records.len());
    let mut deferred = 0;
    let mut scratch = Scratch::default();
    for record in &chunk.records {
        let outcome = catch_unwind(AssertUnwindSafe(|| map_one(chunk, record, &mut scratch)))
            .unwrap_or_else(|_| {
                // The buffers may be mid-write: start the next record afresh.
                scratch = Scratch::default();
                Outcome::Rejected {
                    reason: "mapping_failed".to_owned(),
                    detail: "native engine: internal error while mapping the record".to_owned(),
                }
            });
        if outcome == Outcome::Deferred {
            deferred += 1;
        }
        outcomes.push(outcome);
    }
    ChunkOut { outcomes, deferred }
}

fn map_one(chunk: &ChunkIn<'_>, record: &RecordIn<'_>, scratch: &mut Scratch) -> Outcome {
    match mapping::map_record_with(chunk, record, scratch) {
        Ok(mapped) => Outcome::Mapped(mapped),
        Err(MapError::Reject { reason, detail }) => Outcome::Rejected {
            reason: reason.to_owned(),
            detail,
        },
        Err(MapError::Defer) => Outcome::Deferred,
    }
}
