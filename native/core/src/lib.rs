//! wmf-core: the per-event work of workmail-forwarder, a whole chunk at a time.
//!
//! `forwarder.mapping` (Python) is the reference: for every record this crate either
//! produces exactly the bytes the reference produces (documents, id, time, log type),
//! the same rejection, or `Outcome::Deferred`, which tells the caller to map that one
//! record with the reference. Deferring is how the engine stays byte-identical where
//! reproducing a Python/orjson corner (float repr, Unicode digits in times, parser
//! error texts) is not worth the risk; `deferred` is counted so it stays rare.
//!
//! Modules mirror forwarder/mapping/: `detect`, `ids`, `common`, `ocsf`, `ecs`,
//! `email`; `json` holds the orjson-compatible writer, `chunk` the chunk driver,
//! `encode` the sink envelopes and gzip.

pub mod chunk;
pub mod encode;
pub mod json;
pub mod mapping;

pub use chunk::{map_chunk, ChunkIn, ChunkOut, Outcome, RecordIn, View};
