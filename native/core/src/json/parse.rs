//! A strict JSON parser for records: it accepts a subset of what orjson.loads accepts
//! and builds exactly the value orjson builds from it, or answers None (the caller
//! defers the record, so the reference gives orjson's own error or float).
//!
//! None for: invalid UTF-8 (checked once for the whole text), any syntax error, a
//! float or an exponent (orjson makes a Python float, whose repr this crate does not
//! reproduce), an integer outside i64/u64 (orjson makes those floats too), `-0`,
//! nesting deeper than MAX_DEPTH, an unpaired surrogate escape. Strings without
//! escapes borrow the input. Objects keep their first key's position and their last
//! value, as a Python dict filled key by key does.

use std::borrow::Cow;
use std::collections::HashMap;

use super::{Entry, Object, Value};

/// Far below orjson.dumps' own recursion limit (255): a record accepted here always
/// serialises in the reference, also nested two levels down in a document.
pub const MAX_DEPTH: usize = 128;

/// The record in `text`, or None when the reference must parse it.
pub fn parse(text: &[u8]) -> Option<Value<'_>> {
    parse_str(std::str::from_utf8(text).ok()?)
}

/// `parse` for text already known to be UTF-8.
pub fn parse_str(text: &str) -> Option<Value<'_>> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    parser.skip_ws();
    let (value, _) = parser.value()?;
    parser.skip_ws();
    (parser.pos == parser.bytes.len()).then_some(value)
}

/// Whether a value's source text is exactly what orjson.dumps writes for it.
type Exact = bool;

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// JSON's four whitespace bytes only (orjson refuses \f and the others).
    #[inline(always)]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    #[inline(always)]
    fn value(&mut self) -> Option<(Value<'a>, Exact)> {
        match self.peek()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => {
                self.pos += 1;
                let s = self.string()?;
                let clean = matches!(s, Cow::Borrowed(_));
                Some((Value::Str(s), clean))
            }
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'-' | b'0'..=b'9' => Some((self.number()?, true)),
            _ => None,
        }
    }

    #[inline(always)]
    fn literal(&mut self, word: &[u8], value: Value<'a>) -> Option<(Value<'a>, Exact)> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word).then(|| {
            self.pos = end;
            (value, true)
        })
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        self.pos += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    #[inline(never)] // value() is inlined here; the recursion stays out of line
    fn array(&mut self) -> Option<(Value<'a>, Exact)> {
        let start = self.pos;
        self.enter()?;
        let mut items = Vec::new();
        let mut exact = true;
        let mut content = 0;
        self.skip_ws();
        if self.peek()? == b']' {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                let from = self.pos;
                let (item, item_exact) = self.value()?;
                content += self.pos - from;
                exact &= item_exact;
                items.push(item);
                self.skip_ws();
                match self.peek()? {
                    b',' => self.pos += 1,
                    b']' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        // Compact: nothing but the items, their commas and the brackets.
        let compact = self.pos - start == 2 + content + items.len().saturating_sub(1);
        Some((Value::Array(items), exact && compact))
    }

    #[inline(never)]
    fn object(&mut self) -> Option<(Value<'a>, Exact)> {
        let start = self.pos;
        self.enter()?;
        let mut entries: Vec<Entry<'a>> = Vec::with_capacity(16);
        let (mut texts, mut all_exact) = (0, true);
        self.skip_ws();
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                if self.peek()? != b'"' {
                    return None;
                }
                let key_start = self.pos;
                self.pos += 1;
                let key = self.string()?;
                let key_end = self.pos;
                self.skip_ws();
                if self.peek()? != b':' {
                    return None;
                }
                self.pos += 1;
                self.skip_ws();
                let value_start = self.pos;
                let (value, value_exact) = self.value()?;
                // `"key":value` as orjson writes it: a clean key, an exact value and
                // no whitespace around the colon.
                all_exact &=
                    matches!(key, Cow::Borrowed(_)) && value_exact && value_start == key_end + 1;
                texts += self.pos - key_start;
                entries.push(Entry { key, value });
                self.skip_ws();
                match self.peek()? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        let (entries, repeated) = dedup(entries);
        // Compact: nothing but the entries, their commas and the braces.
        let plain = all_exact
            && !repeated
            && self.pos - start == 2 + texts + entries.len().saturating_sub(1);
        let text = if plain {
            self.text.get(start..self.pos)
        } else {
            None
        };
        Some((Value::Object(Object::new(entries, text)), plain))
    }

    /// The string after its opening quote.
    #[inline(always)]
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.pos;
        // Exactly the bytes orjson escapes end a clean run: '"', '\\', controls.
        self.pos = super::find_special(self.bytes, self.pos);
        match *self.bytes.get(self.pos)? {
            b'"' => {
                let s = self.text.get(start..self.pos)?;
                self.pos += 1;
                Some(Cow::Borrowed(s))
            }
            b'\\' => self.escaped(start),
            _ => None,
        }
    }

    /// The rest of a string that has escapes, from `start` (after the quote).
    fn escaped(&mut self, start: usize) -> Option<Cow<'a, str>> {
        let mut out = String::with_capacity(self.pos - start + 16);
        let mut run = start;
        loop {
            match *self.bytes.get(self.pos)? {
                b'"' => {
                    out.push_str(self.text.get(run..self.pos)?);
                    self.pos += 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    out.push_str(self.text.get(run..self.pos)?);
                    let kind = *self.bytes.get(self.pos + 1)?;
                    self.pos += 2;
                    match kind {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return None,
                    }
                    run = self.pos;
                }
                0..=0x1f => return None,
                _ => self.pos += 1,
            }
        }
    }

    /// The character of a `\uXXXX` escape (after `\u`), joining a surrogate pair;
    /// None for an unpaired surrogate (orjson refuses those).
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        match first {
            0xD800..=0xDBFF => {
                if self.bytes.get(self.pos..self.pos + 2)? != b"\\u" {
                    return None;
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return None;
                }
                char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
            }
            0xDC00..=0xDFFF => None,
            _ => char::from_u32(first),
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.pos..self.pos + 4)?;
        let mut code = 0;
        for &b in digits {
            code = code * 16 + char::from(b).to_digit(16)?;
        }
        self.pos += 4;
        Some(code)
    }

    /// An integer as orjson keeps it (i64, or u64 above i64::MAX); None otherwise.
    #[inline(always)]
    fn number(&mut self) -> Option<Value<'a>> {
        let negative = self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let start = self.pos;
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                }
            }
            _ => return None,
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return None; // a float in orjson
        }
        let mut magnitude: u64 = 0;
        for &b in &self.bytes[start..self.pos] {
            magnitude = magnitude
                .checked_mul(10)?
                .checked_add(u64::from(b - b'0'))?;
        }
        if !negative {
            return Some(match i64::try_from(magnitude) {
                Ok(small) => Value::Int(small),
                Err(_) => Value::UInt(magnitude),
            });
        }
        if magnitude == 0 {
            return None; // `-0`: not worth knowing what orjson makes of it
        }
        0i64.checked_sub_unsigned(magnitude).map(Value::Int)
    }
}

/// Entries with each key once, at its first position, holding its last value (a
/// Python dict's `d[k] = v` in order); true when some key repeated.
fn dedup(mut entries: Vec<Entry<'_>>) -> (Vec<Entry<'_>>, bool) {
    if !has_duplicates(&entries) {
        return (entries, false);
    }
    let n = entries.len();
    let mut position: HashMap<String, usize> = HashMap::with_capacity(n);
    let mut out: Vec<Entry<'_>> = Vec::with_capacity(n);
    for entry in entries.drain(..) {
        match position.get(entry.key.as_ref()) {
            Some(&at) => out[at].value = entry.value,
            None => {
                position.insert(entry.key.to_string(), out.len());
                out.push(entry);
            }
        }
    }
    (out, true)
}

/// Whether some key repeats. Records have a few dozen keys at most: a fingerprint
/// per key and a 128-bit filter leave a real comparison for fingerprint collisions.
fn has_duplicates(entries: &[Entry<'_>]) -> bool {
    const SMALL: usize = 64;
    if entries.len() > SMALL {
        let mut seen = std::collections::HashSet::with_capacity(entries.len());
        return !entries.iter().all(|e| seen.insert(e.key.as_ref()));
    }
    let mut prints = [0u64; SMALL];
    let mut filter = 0u128;
    for (i, entry) in entries.iter().enumerate() {
        let key = &entry.key;
        let print = fingerprint(key.as_bytes());
        let bit = 1u128 << (print >> 57);
        if filter & bit != 0 && (0..i).any(|j| prints[j] == print && entries[j].key == *key) {
            return true;
        }
        filter |= bit;
        prints[i] = print;
    }
    false
}

/// A hash of a key from its length and its first and last eight bytes.
fn fingerprint(key: &[u8]) -> u64 {
    let word = |bytes: &[u8]| {
        let mut w = [0u8; 8];
        let n = bytes.len().min(8);
        w[..n].copy_from_slice(&bytes[..n]);
        u64::from_le_bytes(w)
    };
    let head = word(key);
    let tail = word(&key[key.len().saturating_sub(8)..]);
    (head ^ tail.rotate_left(29) ^ (key.len() as u64).rotate_left(53))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(value: &Value<'_>) -> Vec<String> {
        match value {
            Value::Object(o) => o.iter().map(|(k, _)| k.to_owned()).collect(),
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn integers_as_orjson_keeps_them() {
        assert_eq!(parse(b"9223372036854775807"), Some(Value::Int(i64::MAX)));
        assert_eq!(parse(b"-9223372036854775808"), Some(Value::Int(i64::MIN)));
        assert_eq!(parse(b"18446744073709551615"), Some(Value::UInt(u64::MAX)));
        for float_in_orjson in [
            &b"18446744073709551616"[..],
            b"-9223372036854775809",
            b"1.0",
            b"1e2",
            b"-0",
        ] {
            assert_eq!(parse(float_in_orjson), None);
        }
    }

    #[test]
    fn refuses_what_orjson_refuses() {
        for bad in [
            &b""[..],
            b" ",
            b"{} x",
            b"[1,]",
            b"{\"a\":1,}",
            b"\x0c{}",
            b"01",
            b"-",
            b"nul",
            b"\"\\x\"",
            b"\"\\ud800\"",
            b"\"\\udc00\"",
            b"\"a\x00\"",
            b"\xef\xbb\xbf{}",
            b"\"\xff\"",
            b"{'a':1}",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn strings_unescape() {
        let v = parse(br#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#);
        assert_eq!(
            v,
            Some(Value::Str(Cow::Owned(
                "a\"\\/\u{8}\u{c}\n\r\té\u{1F600}".into()
            )))
        );
        assert_eq!(parse(b"\"\\u0000\""), Some(Value::Str("\0".into())));
    }

    #[test]
    fn duplicate_keys_keep_first_position_last_value() {
        let v = parse(br#"{"a":1,"b":2,"a":3}"#).unwrap();
        assert_eq!(keys(&v), ["a", "b"]);
        let Value::Object(o) = &v else { panic!() };
        assert_eq!(o.get("a"), Some(&Value::Int(3)));
        let many: String = (0..40)
            .map(|i| format!("\"k{}\":{i}", i % 30))
            .collect::<Vec<_>>()
            .join(",");
        let text = format!("{{{many}}}");
        let v = parse(text.as_bytes()).unwrap();
        assert_eq!(keys(&v).len(), 30);
        let Value::Object(o) = &v else { panic!() };
        assert_eq!(o.get("k3"), Some(&Value::Int(33)));
    }

    #[test]
    fn depth_is_bounded() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_some());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse(deep.as_bytes()), None);
    }
}
