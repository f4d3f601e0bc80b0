//! An ordered dict of document parts, for the few places where the reference fills a
//! dict by key in several steps (`unmapped`, `aws.workmail`): `set` is `d[k] = v`
//! (a known key keeps its position), `set_default` is `d.setdefault(k, v)`.
//! Everywhere else the mappers write their keys straight out in order.

use super::common::{write_iso_ms, FVal, StrList};
use crate::json::{Value, Writer};

#[derive(Clone, Debug)]
pub enum Item<'a> {
    Value(&'a Value<'a>),
    Str(&'a str),
    Field(&'a FVal<'a>),
    /// Epoch ms written as iso_ms() text.
    IsoMs(i64),
    Dict(Dict<'a>),
}

#[derive(Clone, Debug, Default)]
pub struct Dict<'a> {
    entries: Vec<(&'a str, Item<'a>)>,
}

impl<'a> Dict<'a> {
    /// `dict(extra)` of read_fields' extra values.
    pub fn of_values(extra: &[(&'a str, &'a Value<'a>)]) -> Self {
        Dict {
            entries: extra.iter().map(|&(k, v)| (k, Item::Value(v))).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| *k == key)
    }

    pub fn set(&mut self, key: &'a str, item: Item<'a>) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = item,
            None => self.entries.push((key, item)),
        }
    }

    pub fn set_default(&mut self, key: &'a str, item: Item<'a>) {
        if !self.contains(key) {
            self.entries.push((key, item));
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &(&'a str, Item<'a>)> {
        self.entries.iter()
    }

    pub fn write(&self, w: &mut Writer<'_>) {
        w.open();
        for (key, item) in &self.entries {
            w.key_str(key);
            item.write(w);
        }
        w.close();
    }
}

impl Item<'_> {
    pub fn write(&self, w: &mut Writer<'_>) {
        match self {
            Item::Value(v) => {
                w.value(v);
            }
            Item::Str(s) => {
                w.str(s);
            }
            Item::Field(f) => write_field(w, f),
            Item::IsoMs(ms) => {
                write_iso_ms(w.out, *ms);
                w.mark_value();
            }
            Item::Dict(d) => d.write(w),
        }
    }
}

/// A normalised field value as the reference's `values[key]` dumps.
pub fn write_field(w: &mut Writer<'_>, field: &FVal<'_>) {
    match field {
        FVal::Str(s) => {
            w.str(s);
        }
        FVal::Bool(b) => {
            w.bool(*b);
        }
        FVal::Time { ms, .. } => {
            w.int(*ms);
        }
        FVal::List(StrList::One(s)) => {
            w.one_str(s);
        }
        FVal::List(StrList::Many(items)) => {
            w.open_list();
            for item in items.iter() {
                w.value(item);
            }
            w.close_list();
        }
        FVal::Raw(v) => {
            w.value(v);
        }
    }
}
