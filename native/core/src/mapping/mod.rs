//! Mirrors forwarder/mapping/__init__.py `map_record` and the per-record loop of
//! forwarder.reference_engine.map_events: decode, detect, id, time, then one
//! document per view.

pub mod common;
mod detect;
mod dict;
mod ecs;
mod email;
mod ids;
mod ocsf;

use crate::chunk::{ChunkIn, RecordIn, View};
use crate::json::{parse::parse_str, Value, Writer};
use common::{audit_spec, read_fields, LogType, MAX_TIME_MS};
use detect::detect_log_type;

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
    Reject {
        reason: &'static str,
        detail: String,
    },
    /// Outside what this engine reproduces exactly: the reference maps it.
    Defer,
}

/// The record needs the reference engine (see MapError::Defer).
#[derive(Debug, PartialEq, Eq)]
pub struct Defer;

impl From<Defer> for MapError {
    fn from(_: Defer) -> Self {
        MapError::Defer
    }
}

fn reject(reason: &'static str, detail: String) -> MapError {
    MapError::Reject { reason, detail }
}

/// What every mapper of one record needs besides the record's fields.
pub struct Ctx<'c> {
    pub log_type: LogType,
    pub id: &'c str,
    pub time_ms: i64,
    /// The record text to embed (OCSF raw_data / ECS event.original), if the view wants it.
    pub raw: Option<&'c str>,
}

/// Buffers reused across the records of a chunk.
#[derive(Default)]
pub struct Scratch {
    id_body: Vec<u8>,
    id_order: Vec<(u64, usize)>,
    /// Per view, the size of the last document written (the next one's capacity).
    doc_sizes: Vec<usize>,
}

/// One record of the chunk, as the reference's map_events maps it.
pub fn map_record(chunk: &ChunkIn<'_>, record: &RecordIn<'_>) -> Result<Mapped, MapError> {
    map_record_with(chunk, record, &mut Scratch::default())
}

/// `map_record` with buffers reused from the chunk's previous records.
pub fn map_record_with(
    chunk: &ChunkIn<'_>,
    record: &RecordIn<'_>,
    scratch: &mut Scratch,
) -> Result<Mapped, MapError> {
    // Any parse problem, float or oversized int: orjson's own error text or value.
    let text = std::str::from_utf8(record.raw).map_err(|_| Defer)?;
    let value = parse_str(text).ok_or(Defer)?;
    let Value::Object(object) = &value else {
        let detail = format!("a record must be a JSON object, not {}", value.type_name());
        return Err(reject("not_an_object", detail));
    };
    let log_type = match record.log_type {
        // Not a canonical name: the reference's detail is its repr().
        Some(name) if !name.is_empty() => LogType::from_name(name).ok_or(Defer)?,
        _ => detect_log_type(object).ok_or_else(|| {
            let detail = "no WorkMail log type matches the record's fields".to_owned();
            reject("unknown_log_type", detail)
        })?,
    };
    let id = ids::event_id(
        &value,
        log_type,
        &mut scratch.id_body,
        &mut scratch.id_order,
    )?;
    let time_ms = match ids::event_time_ms(object, log_type)? {
        Some(ms) => ms,
        None => fallback_time_ms(record.source_time, chunk.now_ms)?,
    };
    // map_record's checks, raised by the first OCSF or ECS view; the raw view has none.
    let schema_views = chunk.views.iter().any(|v| *v != View::Raw);
    if schema_views && !(0..MAX_TIME_MS).contains(&time_ms) {
        return Err(reject(
            "invalid_record",
            format!("event time out of range: {time_ms}"),
        ));
    }
    let email = match log_type {
        LogType::EmailEvents if schema_views => match email::read_email(object)? {
            Ok(read) => Some(read),
            Err(detail) => return Err(reject("invalid_record", detail.to_owned())),
        },
        _ => None,
    };
    let facts = email.as_ref().map(email::EmailRead::facts);
    let fields = match audit_spec(log_type) {
        Some(spec) if schema_views => Some(read_fields(object, spec)?),
        _ => None,
    };
    // str.strip(): a JSON object's text is padded with JSON whitespace only.
    let raw_text = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));

    let mut docs = Vec::with_capacity(chunk.views.len());
    scratch.doc_sizes.resize(chunk.views.len(), 0);
    for (view, size) in chunk.views.iter().zip(&mut scratch.doc_sizes) {
        // Written in place at about its final size: no copy before Python's.
        let mut doc = Vec::with_capacity(*size + 256);
        let mut w = Writer::new(&mut doc);
        let ctx = |raw_data: bool| Ctx {
            log_type,
            id: &id,
            time_ms,
            raw: raw_data.then_some(raw_text),
        };
        match (*view, &facts, &fields) {
            (View::Raw, _, _) => write_raw_envelope(&mut w, chunk, record, &ctx(false), &value),
            (View::Ocsf { raw_data }, Some(facts), _) => {
                ocsf::map_email(&mut w, &ctx(raw_data), facts)?
            }
            (View::Ocsf { raw_data }, None, Some(fields)) => {
                ocsf::map_audit(&mut w, &ctx(raw_data), fields)?
            }
            (View::Ecs { raw_data }, Some(facts), _) => {
                ecs::map_email(&mut w, &ctx(raw_data), facts)?
            }
            (View::Ecs { raw_data }, None, Some(fields)) => {
                ecs::map_audit(&mut w, &ctx(raw_data), fields)?
            }
            _ => return Err(MapError::Defer), // never: fields are read for schema views
        }
        *size = doc.len();
        docs.push(doc);
    }
    Ok(Mapped {
        id,
        time_ms,
        log_type: log_type.name(),
        docs,
    })
}

/// `int(event.time * 1000) if event.time else now_ms`: the source's time, else now.
fn fallback_time_ms(source_time: f64, now_ms: i64) -> Result<i64, Defer> {
    if source_time == 0.0 {
        return Ok(now_ms); // 0.0 and -0.0 are falsy (NaN is not)
    }
    let ms = source_time * 1000.0;
    // int() of NaN or inf raises; beyond i64 Python's int would not saturate.
    if !ms.is_finite() || ms.abs() >= 9.0e18 {
        return Err(Defer);
    }
    Ok(ms.trunc() as i64)
}

/// The "raw" view: the record untouched in map_record's small envelope.
fn write_raw_envelope(
    w: &mut Writer<'_>,
    chunk: &ChunkIn<'_>,
    record: &RecordIn<'_>,
    ctx: &Ctx<'_>,
    value: &Value<'_>,
) {
    w.open();
    w.key("log_type").lit(ctx.log_type.name());
    w.key("event_id").str(ctx.id).key("time").int(ctx.time_ms);
    w.key("origin").open().key("source_id").str(chunk.source_id);
    w.key("partition")
        .str(record.partition)
        .key("offset")
        .int(record.offset);
    w.close();
    w.key("record").value(value).close();
}
