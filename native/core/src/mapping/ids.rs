//! Deterministic event ids and the record's own event time
//! (forwarder/mapping/ids.py `event_id`, `event_time_ms`).

use blake2::digest::{Update, VariableOutput};
use blake2::Blake2bVar;

use super::common::{parse_time_ms, LogType, MAX_TIME_MS, SECONDS_LIMIT};
use super::Defer;
use crate::json::{write_sorted, Object, Value};

/// `event_id(record, log_type)`: blake2b (16-byte digest) of
/// `log_type + "\0" + orjson.dumps(record, option=OPT_SORT_KEYS)`, in hex.
/// `body` and `order` are scratch buffers reused across records.
pub fn event_id(
    record: &Value<'_>,
    log_type: LogType,
    body: &mut Vec<u8>,
    order: &mut Vec<(u64, usize)>,
) -> Result<String, Defer> {
    body.clear();
    write_sorted(body, record, order);
    let mut hasher = Blake2bVar::new(16).map_err(|_| Defer)?;
    hasher.update(log_type.name().as_bytes());
    hasher.update(b"\0");
    hasher.update(body);
    let mut digest = [0u8; 16];
    hasher.finalize_variable(&mut digest).map_err(|_| Defer)?;
    Ok(hex(&digest))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// `event_time_ms(record, log_type)`: epoch ms the record states, or None.
pub fn event_time_ms(record: &Object<'_>, log_type: LogType) -> Result<Option<i64>, Defer> {
    if log_type == LogType::EmailEvents {
        return match record.get("event") {
            Some(Value::Object(event)) => match event.get("messageTimestamp") {
                Some(value) => parse_time_ms(value),
                None => Ok(None),
            },
            _ => Ok(None),
        };
    }
    match record.get("event_timestamp") {
        Some(Value::Int(ms)) if (SECONDS_LIMIT..MAX_TIME_MS).contains(ms) => Ok(Some(*ms)),
        Some(value) => parse_time_ms(value),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse::parse;

    #[test]
    fn ids_as_the_reference() {
        // forwarder.mapping.event_id(orjson.loads(text), "AUTHENTICATION_LOGS")
        let record = parse(br#"{"b":1,"a":"x\u00e9"}"#).unwrap();
        let id = event_id(
            &record,
            LogType::Authentication,
            &mut Vec::new(),
            &mut Vec::new(),
        );
        assert_eq!(id.as_deref(), Ok("909b2cd0b34b812301963f0c3054d31e"));
    }
}
