//! Event times: forwarder.mapping.common `parse_time_ms`, `_parse_iso_uncached`
//! and `iso_ms`.
//!
//! The reference parses ISO strings with Python 3.11's datetime.fromisoformat, which
//! accepts many forms (week dates, basic format, any date/time separator, offsets with
//! seconds...). This module reproduces the forms WorkMail and its tools write and
//! defers on the rest: `YYYY-MM-DD`, then optionally `T` or a space,
//! `HH:MM[:SS[(.|,)f+]]` and `Z`, `±HH:MM`, `±HHMM` or `±HH`. Out-of-range fields in
//! those forms make fromisoformat raise ValueError, so they are not times (None).

use super::{Defer, MAX_TIME_MS, SECONDS_LIMIT};
use crate::json::Value;

/// Python's str.strip() for an ASCII string: str.isspace() holds for \x1c-\x1f too.
pub fn strip_ascii(text: &str) -> &str {
    text.trim_matches(|c: char| matches!(c, '\t'..='\r' | '\x1c'..='\x1f' | ' '))
}

/// `parse_time_ms(value)`: epoch ms, None when the value is not a usable time.
pub fn parse_time_ms(value: &Value<'_>) -> Result<Option<i64>, Defer> {
    match value {
        Value::Int(n) => Ok(int_ms(i128::from(*n))),
        Value::UInt(n) => Ok(int_ms(i128::from(*n))),
        Value::Str(s) => parse_time_str(s),
        _ => Ok(None),
    }
}

/// An int: ms, or seconds when below SECONDS_LIMIT in magnitude.
fn int_ms(value: i128) -> Option<i64> {
    let ms = if value.abs() >= i128::from(SECONDS_LIMIT) {
        value
    } else {
        value * 1000
    };
    in_range(ms)
}

fn in_range(ms: i128) -> Option<i64> {
    (0..i128::from(MAX_TIME_MS))
        .contains(&ms)
        .then_some(ms as i64)
}

/// A string: numeric (`-?\d+(\.\d*)?`, as an int or a float) or ISO-8601.
fn parse_time_str(value: &str) -> Result<Option<i64>, Defer> {
    // strip(), \d, isdigit() and fromisoformat are all Unicode-aware in Python.
    if !value.is_ascii() {
        return Err(Defer);
    }
    let text = strip_ascii(value);
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let int_part = unsigned.split_once('.').map_or(unsigned, |(i, _)| i);
    let frac_part = unsigned.split_once('.').map(|(_, f)| f);
    let numeric = !int_part.is_empty()
        && int_part.bytes().all(|b| b.is_ascii_digit())
        && frac_part.is_none_or(|f| f.bytes().all(|b| b.is_ascii_digit()));
    if !numeric {
        return parse_iso(text);
    }
    if frac_part.is_some() {
        // float(text), then parse_time_ms(float): same IEEE operations as CPython.
        let value: f64 = text.parse().map_err(|_| Defer)?;
        return Ok(float_ms(value));
    }
    if int_part.len() > 30 {
        return Err(Defer); // int() refuses beyond 4300 digits; not worth mirroring
    }
    let value: i128 = text.parse().map_err(|_| Defer)?;
    Ok(int_ms(value))
}

fn float_ms(value: f64) -> Option<i64> {
    if !value.is_finite() {
        return None;
    }
    let ms = if value.abs() >= SECONDS_LIMIT as f64 {
        value
    } else {
        value * 1000.0
    };
    let whole = ms.trunc(); // int(): towards zero
    (whole >= 0.0 && whole < MAX_TIME_MS as f64).then_some(whole as i64)
}

/// `_parse_iso_uncached`.
pub fn parse_iso(text: &str) -> Result<Option<i64>, Defer> {
    let b = text.as_bytes();
    if b.len() < 10 || !b[..4].iter().all(u8::is_ascii_digit) {
        return Ok(None);
    }
    let parts = iso_parts(b).ok_or(Defer)?;
    let Some(local_us) = parts.local_us() else {
        return Ok(None); // fromisoformat raises ValueError
    };
    if parts.year < 1970 {
        return Ok(None); // the reference's `if parsed.year >= 1970 else -1`
    }
    let utc_us = local_us - parts.offset_s * 1_000_000;
    let seconds = micros_to_seconds(utc_us).ok_or(Defer)?;
    let ms = seconds * 1000.0 + 0.5;
    let whole = ms.trunc();
    Ok((whole >= 0.0 && whole < MAX_TIME_MS as f64).then_some(whole as i64))
}

/// `timedelta.total_seconds()`: µs / 10**6 as CPython's int true division gives it,
/// correctly rounded. One f64 division is that while µs are exact in an f64 (until
/// the year 2255); later times are rounded here from the exact quotient.
fn micros_to_seconds(us: i64) -> Option<f64> {
    if us.unsigned_abs() <= 1 << 53 {
        return Some(us as f64 / 1e6);
    }
    if us < 0 {
        return None; // never: times before 1970 are refused earlier
    }
    // us * 2**64 / 10**6 = t + r / 10**6, rounded to 53 significant bits, half to even.
    let scaled = u128::from(us.unsigned_abs()) << 64;
    let (t, sticky) = (scaled / 1_000_000, scaled % 1_000_000 != 0);
    let bits = 128 - t.leading_zeros();
    let shift = bits.saturating_sub(53);
    let mut mantissa = t >> shift;
    if shift > 0 {
        let rest = t & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        if rest > half || (rest == half && (sticky || mantissa & 1 == 1)) {
            mantissa += 1; // 2**53 at most: still exact in an f64
        }
    }
    let exponent = i32::try_from(shift).ok()? - 64;
    Some(mantissa as f64 * 2f64.powi(exponent))
}

/// The fields of an ISO string in one of the reproduced forms (not yet validated).
struct IsoParts {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    micro: i64,
    offset_s: i64,
}

impl IsoParts {
    /// Local µs since the epoch; None where datetime() raises ValueError.
    fn local_us(&self) -> Option<i64> {
        let valid = (1..=9999).contains(&self.year)
            && (1..=12).contains(&self.month)
            && (1..=days_in_month(self.year, self.month)).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60;
        valid.then(|| {
            let days = days_from_civil(self.year, self.month, self.day);
            let seconds = days * 86_400 + self.hour * 3600 + self.minute * 60 + self.second;
            seconds * 1_000_000 + self.micro
        })
    }
}

fn two(b: &[u8], at: usize) -> Option<i64> {
    match b.get(at..at + 2)? {
        [x @ b'0'..=b'9', y @ b'0'..=b'9'] => Some(i64::from((x - b'0') * 10 + (y - b'0'))),
        _ => None,
    }
}

/// None: a form this module does not reproduce (the caller defers).
fn iso_parts(b: &[u8]) -> Option<IsoParts> {
    let year = b[..4]
        .iter()
        .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'));
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let mut parts = IsoParts {
        year,
        month: two(b, 5)?,
        day: two(b, 8)?,
        hour: 0,
        minute: 0,
        second: 0,
        micro: 0,
        offset_s: 0,
    };
    if b.len() == 10 {
        return Some(parts);
    }
    if b[10] != b'T' && b[10] != b' ' {
        return None;
    }
    let t = &b[11..];
    parts.hour = two(t, 0)?;
    if t.get(2) != Some(&b':') {
        return None;
    }
    parts.minute = two(t, 3)?;
    let mut pos = 5;
    if t.get(pos) == Some(&b':') {
        parts.second = two(t, pos + 1)?;
        pos += 3;
        if let Some(b'.' | b',') = t.get(pos) {
            pos += 1;
            let digits = t[pos..].iter().take_while(|d| d.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            // Up to six digits are µs; fromisoformat ignores the rest.
            let mut micro = 0;
            for i in 0..6 {
                let d = t
                    .get(pos + i)
                    .filter(|_| i < digits)
                    .map_or(0, |d| d - b'0');
                micro = micro * 10 + i64::from(d);
            }
            parts.micro = micro;
            pos += digits;
        }
    }
    let tz = &t[pos..];
    parts.offset_s = match tz {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (hours, minutes) = match rest.len() {
                2 => (two(rest, 0)?, 0),
                4 => (two(rest, 0)?, two(rest, 2)?),
                5 if rest[2] == b':' => (two(rest, 0)?, two(rest, 3)?),
                _ => return None,
            };
            // Python normalises 05:75 and refuses 24:00 with a different path.
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    Some(parts)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `iso_ms(ms)`: `2024-06-12T08:58:41.000Z` (ms is always within 0..MAX_TIME_MS, so
/// strftime's %Y has four digits), as a JSON string.
pub fn write_iso_ms(out: &mut Vec<u8>, ms: i64) {
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let digit = |v: i64| b'0' + (v % 10) as u8;
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    out.extend_from_slice(&[
        b'"',
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
        b'-',
        digit(month / 10),
        digit(month),
        b'-',
        digit(day / 10),
        digit(day),
        b'T',
        digit(h / 10),
        digit(h),
        b':',
        digit(m / 10),
        digit(m),
        b':',
        digit(s / 10),
        digit(s),
        b'.',
        digit(milli / 100),
        digit(milli / 10),
        digit(milli),
        b'Z',
        b'"',
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> Result<Option<i64>, Defer> {
        parse_time_str(text)
    }

    #[test]
    fn iso_forms_as_python() {
        // Expected values from Python 3.11: common.parse_time_ms(text).
        let cases: &[(&str, Option<i64>)] = &[
            ("2024-06-12T08:58:41.123Z", Some(1_718_182_721_123)),
            ("2024-06-12T08:58:41Z", Some(1_718_182_721_000)),
            ("2024-06-12T08:58:41", Some(1_718_182_721_000)),
            ("2024-06-12 08:58:41", Some(1_718_182_721_000)),
            ("2024-06-12T08:58", Some(1_718_182_680_000)),
            ("2024-06-12", Some(1_718_150_400_000)),
            ("2024-06-12T08:58:41+00:00", Some(1_718_182_721_000)),
            ("2024-06-12T10:58:41+02:00", Some(1_718_182_721_000)),
            ("2024-06-12T03:28:41-0530", Some(1_718_182_721_000)),
            ("2024-06-12T09:58:41+01", Some(1_718_182_721_000)),
            ("2024-06-12T08:58:41.1234567891Z", Some(1_718_182_721_123)),
            ("2024-06-12T08:58:41.9995Z", Some(1_718_182_722_000)),
            ("2024-06-12T08:58:41,5", Some(1_718_182_721_500)),
            ("1970-01-01T00:00:00Z", Some(0)),
            ("1970-01-01T00:59:59.9996+01:00", Some(0)),
            ("1970-01-01T00:30:00+01:00", None),
            ("1969-12-31T23:30:00-01:00", None),
            ("2024-02-30", None),
            ("2023-02-29", None),
            ("2024-06-12T24:00:00", None),
            ("2024-06-12T23:60", None),
            ("2024-06-12T23:59:60", None),
            ("0000-01-01", None),
            ("  2024-06-12T08:58:41Z\x1f", Some(1_718_182_721_000)),
            ("hello world", None),
            ("2024", Some(2_024_000)),
            ("2024x", None),
            ("1718200000606", Some(1_718_200_000_606)),
            (" 1718200000 ", Some(1_718_200_000_000)),
            ("-0", Some(0)),
            ("-1", None),
            ("1718200000.5", Some(1_718_200_000_500)),
            ("1718200000606.9", Some(1_718_200_000_606)),
            ("12.", Some(12_000)),
            ("-0.0001", Some(0)),
            ("253402300800000", None),
            ("2300-01-01T00:00:00Z", Some(10_413_792_000_000)),
            ("2255-06-05T23:47:34.740992Z", Some(9_007_199_254_741)),
            ("2300-01-01T00:00:00.0004995Z", Some(10_413_792_000_001)),
            ("9999-12-31T23:59:59.999999Z", None),
            ("9999-12-31T23:59:59.9995Z", None),
            ("9999-12-31T23:59:59.9994Z", Some(253_402_300_799_999)),
            ("5000-07-13T11:12:13.654321+05:30", Some(95_634_279_733_654)),
        ];
        for &(text, expected) in cases {
            assert_eq!(ms(text), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn defers_on_forms_python_may_accept() {
        for text in [
            "2024-06-12T08",
            "2024-06-12X08:58:41",
            "20240612T085841",
            "2024-W24-3",
            "2024-06-12T08:58:41.Z",
            "2024-06-12T08:58:41+05:75",
            "2024-06-12T08:58:41+00:00:30",
            "2024-06-12T0858",
            "２０２４-06-12",
            "\u{a0}1718200000606",
            "1".repeat(40).as_str(),
        ] {
            assert_eq!(ms(text), Err(Defer), "{text:?}");
        }
    }

    #[test]
    fn iso_ms_formats() {
        let mut out = Vec::new();
        write_iso_ms(&mut out, 1_718_182_800_987);
        assert_eq!(out, b"\"2024-06-12T09:00:00.987Z\"");
        out.clear();
        write_iso_ms(&mut out, MAX_TIME_MS - 1);
        assert_eq!(out, b"\"9999-12-31T23:59:59.999Z\"");
        out.clear();
        write_iso_ms(&mut out, 0);
        assert_eq!(out, b"\"1970-01-01T00:00:00.000Z\"");
    }

    #[test]
    fn civil_round_trip() {
        for days in [-719_162, -1, 0, 59, 11_016, 19_886, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
