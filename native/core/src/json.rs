//! JSON values of a record and JSON text exactly as orjson writes it.
//!
//! orjson.dumps writes no whitespace, integers in decimal, non-ASCII as raw UTF-8 and
//! escapes only `"`, `\` and the control characters below 0x20 (`\b \t \n \f \r`,
//! the others as `\u00XX` in lower-case hex; DEL and U+2028 stay raw). Documents are
//! written straight into a byte buffer, key by key in the order the reference builds
//! its dicts, through [`Writer`]; [`write_sorted`] is `OPT_SORT_KEYS` for event ids.

pub mod parse;

use std::borrow::Cow;

/// A parsed record value: what orjson.loads builds, minus floats (never accepted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// Above i64::MAX (orjson keeps these as int up to u64::MAX).
    UInt(u64),
    Str(Cow<'a, str>),
    Array(Vec<Value<'a>>),
    Object(Object<'a>),
}

impl Value<'_> {
    /// Python's `type(value).__name__` of the value orjson builds.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::UInt(_) => "int",
            Value::Str(_) => "str",
            Value::Array(_) => "list",
            Value::Object(_) => "dict",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object<'_>> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// Python truthiness of a container or string: `not value` is false.
    pub fn is_empty_container(&self) -> bool {
        match self {
            Value::Str(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        }
    }
}

/// A JSON object as the Python dict orjson builds: keys unique, in first-seen order.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Object<'a> {
    entries: Vec<Entry<'a>>,
    /// The object's own source text when orjson.dumps writes exactly that (compact,
    /// no escapes, no repeated keys): the writers copy it instead of rebuilding it.
    text: Option<&'a str>,
}

/// One key and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub key: Cow<'a, str>,
    pub value: Value<'a>,
}

impl<'a> Object<'a> {
    /// `entries` must hold each key once (the parser deduplicates); `text`, when
    /// given, must be what orjson.dumps writes for them, and contain the keys
    /// themselves (borrowed from it).
    pub fn new(entries: Vec<Entry<'a>>, text: Option<&'a str>) -> Self {
        Object { entries, text }
    }

    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.entries
            .iter()
            .find(|e| e.key.as_ref() == key)
            .map(|e| &e.value)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.iter().any(|e| e.key.as_ref() == key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value<'a>)> {
        self.entries.iter().map(|e| (e.key.as_ref(), &e.value))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What follows a backslash for each byte orjson escapes; 0: written as is.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` (little-endian) that orjson escapes, exact for
/// the lowest such byte (the zero-byte trick may also flag bytes above it).
#[inline]
pub(crate) fn special_bytes(word: u64) -> u64 {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (below_space | quote | backslash) & HIGHS
}

/// Index of the first byte at or after `from` that orjson escapes, or `bytes.len()`.
#[inline]
pub(crate) fn find_special(bytes: &[u8], mut from: usize) -> usize {
    while let Some(word) = bytes.get(from..).and_then(<[u8]>::first_chunk::<8>) {
        let found = special_bytes(u64::from_le_bytes(*word));
        if found != 0 {
            return from + (found.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    while from < bytes.len() && ESCAPE[bytes[from] as usize] == 0 {
        from += 1;
    }
    from
}

/// `s` as a JSON string, quotes included, escaped as orjson escapes.
///
/// Eight bytes at a time: a word without special bytes is copied whole; otherwise
/// the whole word is copied (a fixed-size copy, no memmove call), cut back to the
/// first special byte, and that byte escaped.
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut at = 0;
    while let Some(word) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let found = special_bytes(u64::from_le_bytes(*word));
        out.extend_from_slice(word);
        if found == 0 {
            at += 8;
            continue;
        }
        let clean = (found.trailing_zeros() / 8) as usize;
        out.truncate(out.len() - 8 + clean);
        push_escape(out, word[clean]);
        at += clean + 1;
    }
    for &b in &bytes[at..] {
        if ESCAPE[b as usize] == 0 {
            out.push(b);
        } else {
            push_escape(out, b);
        }
    }
    out.push(b'"');
}

#[inline]
fn push_escape(out: &mut Vec<u8>, b: u8) {
    let escape = ESCAPE[b as usize];
    if escape == b'u' {
        out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[(b >> 4) as usize],
            HEX[(b & 0xf) as usize],
        ]);
    } else {
        out.extend_from_slice(&[b'\\', escape]);
    }
}

/// A string of the record: one the input held without escapes has nothing orjson
/// escapes either (the parser refuses raw control characters), so it is copied.
#[allow(clippy::ptr_arg)] // the Cow variant is the point: Borrowed had no escapes
fn write_record_str(out: &mut Vec<u8>, s: &Cow<'_, str>) {
    match s {
        Cow::Borrowed(clean) => {
            out.reserve(clean.len() + 2);
            out.push(b'"');
            out.extend_from_slice(clean.as_bytes());
            out.push(b'"');
        }
        Cow::Owned(text) => write_str(out, text),
    }
}

pub fn write_int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `value` as orjson.dumps writes it (keys in the dict's order).
pub fn write_value(out: &mut Vec<u8>, value: &Value<'_>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(n) => write_int(out, *n),
        Value::UInt(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
        Value::Str(s) => write_record_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(object) => {
            if let Some(text) = object.text {
                out.extend_from_slice(text.as_bytes());
                return;
            }
            out.push(b'{');
            for (i, entry) in object.entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_record_str(out, &entry.key);
                out.push(b':');
                write_value(out, &entry.value);
            }
            out.push(b'}');
        }
    }
}

/// In an object written as orjson writes it (`text`), the `"key":value` text of an
/// entry with a string, number, bool or null value: the key is borrowed from `text`,
/// so its offset there is where the entry starts, and the value's length is known.
fn scalar_entry_text<'t>(text: &'t str, entry: &Entry<'_>) -> Option<&'t str> {
    let value_len = match &entry.value {
        Value::Str(Cow::Borrowed(s)) => s.len() + 2,
        Value::Bool(true) | Value::Null => 4,
        Value::Bool(false) => 5,
        Value::Int(n) => itoa::Buffer::new().format(*n).len(),
        Value::UInt(n) => itoa::Buffer::new().format(*n).len(),
        _ => return None,
    };
    let key = entry.key.as_ref();
    let start = (key.as_ptr() as usize).checked_sub(text.as_ptr() as usize + 1)?;
    text.get(start..start + key.len() + 3 + value_len)
}

/// orjson.dumps(value, option=OPT_SORT_KEYS): every object's keys in code point order,
/// which is UTF-8 byte order. `order` is scratch space, reused across calls.
pub fn write_sorted(out: &mut Vec<u8>, value: &Value<'_>, order: &mut Vec<(u64, usize)>) {
    match value {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_sorted(out, item, order);
            }
            out.push(b']');
        }
        Value::Object(object) => {
            let entries = &object.entries;
            let base = order.len();
            order.extend(entries.iter().enumerate().map(|(i, e)| (prefix(&e.key), i)));
            // A key's first eight bytes order it unless two keys share them.
            order[base..].sort_unstable_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| entries[a.1].key.cmp(&entries[b.1].key))
            });
            out.push(b'{');
            for i in 0..entries.len() {
                if i > 0 {
                    out.push(b',');
                }
                let entry = &entries[order[base + i].1];
                match object.text.and_then(|text| scalar_entry_text(text, entry)) {
                    Some(text) => out.extend_from_slice(text.as_bytes()),
                    None => {
                        write_record_str(out, &entry.key);
                        out.push(b':');
                        write_sorted(out, &entry.value, order);
                    }
                }
            }
            out.push(b'}');
            order.truncate(base);
        }
        scalar => write_value(out, scalar),
    }
}

/// The first eight bytes of `key`, zero-padded, as a big-endian number: when two
/// prefixes differ they order their keys as the keys' bytes do (a key that ends
/// early pads with zeros and is a prefix of the other, so it sorts first).
fn prefix(key: &str) -> u64 {
    let bytes = key.as_bytes();
    let mut word = [0u8; 8];
    let n = bytes.len().min(8);
    word[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(word)
}

/// Writes a document key by key; tracks only whether a comma is due, which is all
/// JSON needs (after a value or a closed container, before the next key or item).
pub struct Writer<'o> {
    pub out: &'o mut Vec<u8>,
    comma: bool,
}

impl<'o> Writer<'o> {
    #[inline]
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        Writer { out, comma: false }
    }

    #[inline]
    fn sep(&mut self) {
        if self.comma {
            self.out.push(b',');
        }
    }

    /// A key the code names (ASCII, nothing to escape).
    #[inline]
    pub fn key(&mut self, key: &'static str) -> &mut Self {
        debug_assert!(key.bytes().all(|b| ESCAPE[b as usize] == 0));
        self.sep();
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.comma = false;
        self
    }

    /// A key from the record.
    #[inline]
    pub fn key_str(&mut self, key: &str) -> &mut Self {
        self.sep();
        write_str(self.out, key);
        self.out.push(b':');
        self.comma = false;
        self
    }

    #[inline]
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.sep();
        write_str(self.out, s);
        self.comma = true;
        self
    }

    /// JSON text the code names holding whole `"key":value` pairs (one copy for a
    /// run of fixed fields).
    #[inline]
    pub fn fields(&mut self, pairs: &'static str) -> &mut Self {
        self.sep();
        self.out.extend_from_slice(pairs.as_bytes());
        self.comma = true;
        self
    }

    /// Like `fields`, but the text ends with a key whose value the caller writes.
    #[inline]
    pub fn fields_then_key(&mut self, text: &'static str) -> &mut Self {
        self.sep();
        self.out.extend_from_slice(text.as_bytes());
        self.comma = false;
        self
    }

    /// A string value the code names (ASCII, nothing to escape).
    #[inline]
    pub fn lit(&mut self, s: &'static str) -> &mut Self {
        debug_assert!(s.bytes().all(|b| ESCAPE[b as usize] == 0));
        self.sep();
        self.out.push(b'"');
        self.out.extend_from_slice(s.as_bytes());
        self.out.push(b'"');
        self.comma = true;
        self
    }

    /// A string value joined from parts the code names.
    #[inline]
    pub fn lit_parts(&mut self, parts: &[&'static str]) -> &mut Self {
        self.sep();
        self.out.push(b'"');
        for part in parts {
            debug_assert!(part.bytes().all(|b| ESCAPE[b as usize] == 0));
            self.out.extend_from_slice(part.as_bytes());
        }
        self.out.push(b'"');
        self.comma = true;
        self
    }

    #[inline]
    pub fn int(&mut self, n: i64) -> &mut Self {
        self.sep();
        write_int(self.out, n);
        self.comma = true;
        self
    }

    /// An integer as a JSON string (Python's `str(n)`).
    #[inline]
    pub fn int_str(&mut self, n: impl itoa::Integer) -> &mut Self {
        self.sep();
        self.out.push(b'"');
        self.out
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        self.out.push(b'"');
        self.comma = true;
        self
    }

    #[inline]
    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.sep();
        self.out
            .extend_from_slice(if b { b"true" } else { b"false" });
        self.comma = true;
        self
    }

    #[inline]
    pub fn value(&mut self, value: &Value<'_>) -> &mut Self {
        self.sep();
        write_value(self.out, value);
        self.comma = true;
        self
    }

    /// After the caller wrote one value into `out` itself.
    #[inline]
    pub fn mark_value(&mut self) -> &mut Self {
        self.comma = true;
        self
    }

    /// Bytes that are already one JSON value.
    #[inline]
    pub fn raw(&mut self, json: &[u8]) -> &mut Self {
        self.sep();
        self.out.extend_from_slice(json);
        self.comma = true;
        self
    }

    #[inline]
    pub fn open(&mut self) -> &mut Self {
        self.sep();
        self.out.push(b'{');
        self.comma = false;
        self
    }

    #[inline]
    pub fn close(&mut self) -> &mut Self {
        self.out.push(b'}');
        self.comma = true;
        self
    }

    #[inline]
    pub fn open_list(&mut self) -> &mut Self {
        self.sep();
        self.out.push(b'[');
        self.comma = false;
        self
    }

    #[inline]
    pub fn close_list(&mut self) -> &mut Self {
        self.out.push(b']');
        self.comma = true;
        self
    }

    /// `[s]`.
    #[inline]
    pub fn one_str(&mut self, s: &str) -> &mut Self {
        self.open_list().str(s).close_list()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_as_orjson() {
        // orjson.dumps("".join(map(chr, range(0x20))) + "\x7f\u2028\"\\/é😀")
        let all: String = (0u8..0x20).map(char::from).collect();
        let expected = concat!(
            r#""\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e\u000f"#,
            r#"\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b"#,
            "\\u001c\\u001d\\u001e\\u001f\u{7f}\u{2028}\\\"\\\\/é😀\""
        );
        assert_eq!(escaped(&(all + "\u{7f}\u{2028}\"\\/é😀")), expected);
    }

    #[test]
    fn sorted_keys_by_code_point() {
        let value = parse::parse(
            "{\"b\":1,\"a\":{\"é\":1,\"z\":2,\"Z\":3,\"😀\":1,\"\u{ffff}\":2}}".as_bytes(),
        )
        .unwrap();
        let mut out = Vec::new();
        write_sorted(&mut out, &value, &mut Vec::new());
        // orjson.dumps(..., option=OPT_SORT_KEYS)
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":{\"Z\":3,\"z\":2,\"é\":1,\"\u{ffff}\":2,\"😀\":1},\"b\":1}"
        );
    }

    #[test]
    fn sorted_keys_sharing_a_prefix() {
        let text = r#"{"abcdefghX":1,"ab\u0000":2,"abcdefgh":3,"":4,"abcdefghA":5,"ab":6}"#;
        let value = parse::parse(text.as_bytes()).unwrap();
        let mut out = Vec::new();
        write_sorted(&mut out, &value, &mut Vec::new());
        // sorted(['abcdefghX', 'ab\x00', 'abcdefgh', '', 'abcdefghA', 'ab'])
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"":4,"ab":6,"ab\u0000":2,"abcdefgh":3,"abcdefghA":5,"abcdefghX":1}"#
        );
    }

    #[test]
    fn source_text_is_reused_only_where_orjson_writes_it() {
        // (input, orjson.dumps, orjson.dumps with OPT_SORT_KEYS)
        let cases = [
            (
                r#"{"a":1,"b":"x"}"#,
                r#"{"a":1,"b":"x"}"#,
                r#"{"a":1,"b":"x"}"#,
            ),
            (
                r#"{"a": 1, "b" :"x"}"#,
                r#"{"a":1,"b":"x"}"#,
                r#"{"a":1,"b":"x"}"#,
            ),
            (
                r#"{"b":{"d":1,"c":[2,{"f":1,"e":0}]},"a":[{"z":1,"y":2}]}"#,
                r#"{"b":{"d":1,"c":[2,{"f":1,"e":0}]},"a":[{"z":1,"y":2}]}"#,
                r#"{"a":[{"y":2,"z":1}],"b":{"c":[2,{"e":0,"f":1}],"d":1}}"#,
            ),
            (
                r#"{"k\u00e9":"v","x":"\n"}"#,
                r#"{"ké":"v","x":"\n"}"#,
                r#"{"ké":"v","x":"\n"}"#,
            ),
            (
                r#"{"a":1,"b":2,"a":{"d":1,"c":2}}"#,
                r#"{"a":{"d":1,"c":2},"b":2}"#,
                r#"{"a":{"c":2,"d":1},"b":2}"#,
            ),
            (
                r#"[ {"b":1,"a":2} , 3 ]"#,
                r#"[{"b":1,"a":2},3]"#,
                r#"[{"a":2,"b":1},3]"#,
            ),
            (
                r#"{"a":[],"b":{},"c":[ ]}"#,
                r#"{"a":[],"b":{},"c":[]}"#,
                r#"{"a":[],"b":{},"c":[]}"#,
            ),
            (
                r#"{"z":{"b":1,"a":1},"y":"é"}"#,
                r#"{"z":{"b":1,"a":1},"y":"é"}"#,
                r#"{"y":"é","z":{"a":1,"b":1}}"#,
            ),
        ];
        for (input, plain, sorted) in cases {
            let value = parse::parse(input.as_bytes()).unwrap();
            let mut out = Vec::new();
            write_value(&mut out, &value);
            assert_eq!(String::from_utf8(out).unwrap(), plain, "{input}");
            let mut out = Vec::new();
            write_sorted(&mut out, &value, &mut Vec::new());
            assert_eq!(String::from_utf8(out).unwrap(), sorted, "{input}");
        }
    }

    #[test]
    fn writer_places_commas() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.open()
            .key("a")
            .int(1)
            .key("b")
            .open_list()
            .str("x")
            .int(2)
            .open()
            .close();
        w.close_list()
            .key("c")
            .open()
            .key("d")
            .bool(true)
            .close()
            .close();
        assert_eq!(out, br#"{"a":1,"b":["x",2,{}],"c":{"d":true}}"#);
    }
}
