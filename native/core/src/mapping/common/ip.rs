//! Addresses: forwarder.mapping.common `is_ip` (its `_IPV4` regex and
//! ipaddress.IPv6Address as CPython 3.11 parses it) and `url_host`.

use std::borrow::Cow;

use super::Defer;

/// `is_ip(value)`. Defers on non-ASCII text: `_IPV4`'s `\d` matches every Unicode
/// decimal digit (IPv6Address itself refuses non-ASCII, but the regex runs first).
pub fn is_ip(value: &str) -> Result<bool, Defer> {
    if !value.is_ascii() {
        return Err(Defer);
    }
    Ok(is_ipv4(value) || is_ipv6(value))
}

/// `_IPV4.fullmatch`: four dotted decimal octets 0-255 without leading zeros.
fn is_ipv4(value: &str) -> bool {
    let mut count = 0;
    for part in value.as_bytes().split(|&b| b == b'.') {
        count += 1;
        if count > 4 || !is_octet(part) {
            return false;
        }
    }
    count == 4
}

/// One `(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)` (ASCII digits), which is also exactly
/// what IPv4Address._parse_octet accepts.
fn is_octet(b: &[u8]) -> bool {
    if b.is_empty() || b.len() > 3 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    if b.len() > 1 && b[0] == b'0' {
        return false;
    }
    b.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')) <= 255
}

/// `_is_ipv6`: ipaddress.IPv6Address(value) succeeds, and no zone id.
fn is_ipv6(value: &str) -> bool {
    if !value.contains(':') || value.contains('%') || value.contains('/') {
        return false;
    }
    let mut parts: Vec<&str> = value.split(':').collect();
    if parts.len() < 3 {
        return false;
    }
    // An IPv4-style suffix stands for two hextets.
    let mut ipv4_tail = false;
    if parts.last().is_some_and(|p| p.contains('.')) {
        if !parts.pop().is_some_and(is_ipv4) {
            return false;
        }
        ipv4_tail = true;
    }
    let count = parts.len() + if ipv4_tail { 2 } else { 0 };
    if count > 9 {
        return false;
    }
    // The hextets as _ip_int_from_string sees them: with the IPv4 pair appended
    // (never empty), so only the written parts need checking for emptiness.
    let is_empty = |i: usize| i < parts.len() && parts[i].is_empty();
    let mut skip = None;
    for i in 1..count.saturating_sub(1) {
        if is_empty(i) {
            if skip.is_some() {
                return false; // more than one '::'
            }
            skip = Some(i);
        }
    }
    let (hi, lo) = match skip {
        Some(at) => {
            let mut hi = at;
            let mut lo = count - at - 1;
            if is_empty(0) {
                hi -= 1;
                if hi > 0 {
                    return false;
                }
            }
            if is_empty(count - 1) {
                lo -= 1;
                if lo > 0 {
                    return false;
                }
            }
            if 8 < hi + lo + 1 {
                return false; // nothing left for '::' to stand for
            }
            (hi, lo)
        }
        None => {
            if count != 8 || is_empty(0) || is_empty(count - 1) {
                return false;
            }
            (count, 0)
        }
    };
    // The written hextets (the IPv4 pair is valid by construction).
    let written = parts.len();
    (0..hi)
        .chain(count - lo..count)
        .filter(|&i| i < written)
        .all(|i| is_hextet(parts[i]))
}

/// `_parse_hextet`: 1-4 hex digits (an empty one fails in int(..., 16)).
fn is_hextet(part: &str) -> bool {
    !part.is_empty() && part.len() <= 4 && part.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `url_host(url)`: the host of `scheme://host[:port]/...` in lower case (an IPv6
/// literal without its brackets), or None. Defers when the host is not ASCII
/// (str.lower() is Unicode-aware).
pub fn url_host(url: &str) -> Result<Option<Cow<'_, str>>, Defer> {
    let Some((_, rest)) = url.split_once("://") else {
        return Ok(None);
    };
    let mut rest = rest;
    for end in ['/', '?', '#'] {
        rest = rest.split_once(end).map_or(rest, |(head, _)| head);
    }
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = if let Some(inner) = host.strip_prefix('[') {
        // host[1 : host.find("]")]: find is on the whole host, bracket included.
        match host.find(']') {
            Some(close) if close >= 1 => &inner[..close - 1],
            Some(_) => "",
            None => "",
        }
    } else {
        host.split_once(':').map_or(host, |(name, _)| name)
    };
    if !host.is_ascii() {
        return Err(Defer);
    }
    if host.is_empty() {
        return Ok(None);
    }
    Ok(Some(if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_as_the_regex() {
        for ok in ["0.0.0.0", "198.51.100.23", "255.255.255.255", "1.2.3.4"] {
            assert_eq!(is_ip(ok), Ok(true), "{ok}");
        }
        for bad in [
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "",
            "1.2.3.4 ",
            "a.b.c.d",
            "999.1.1.1",
            "localhost",
            "1.2.3.-4",
        ] {
            assert_eq!(is_ip(bad), Ok(false), "{bad}");
        }
        assert_eq!(is_ip("١.2.3.4"), Err(Defer));
    }

    #[test]
    fn ipv6_as_ipaddress() {
        // True/False per ipaddress.IPv6Address in Python 3.11 (zone ids refused).
        for ok in [
            "::",
            "::1",
            "1::",
            "2001:db8::1",
            "2001:0db8:0000:0000:0000:ff00:0042:8329",
            "::ffff:198.51.100.99",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8",
            "::1.2.3.4",
            "ABCD::ef",
        ] {
            assert_eq!(is_ip(ok), Ok(true), "{ok}");
        }
        for bad in [
            ":",
            "1:2",
            ":::",
            "1:::2",
            "1::2::3",
            ":1::2",
            "1::2:",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8::",
            "::1:2:3:4:5:6:7:8",
            "12345::",
            "g::",
            "fe80::1%eth0",
            "::1/128",
            "1:2:3:4:5:6:7:1.2.3.4",
            "::1.2.3",
            "::01.2.3.4",
            "1.2.3.4::",
            ":1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:",
        ] {
            assert_eq!(is_ip(bad), Ok(false), "{bad}");
        }
    }

    #[test]
    fn url_hosts() {
        let host = |u: &str| url_host(u).map(|h| h.map(|h| h.into_owned()));
        assert_eq!(
            host("https://Mail.Example.com/EWS/Exchange.asmx"),
            Ok(Some("mail.example.com".into()))
        );
        assert_eq!(
            host("https://[2001:DB8::1]:443/ews"),
            Ok(Some("2001:db8::1".into()))
        );
        assert_eq!(host("https://user@host:8443?x#y"), Ok(Some("host".into())));
        assert_eq!(host("x://"), Ok(None));
        assert_eq!(host("no scheme"), Ok(None));
        assert_eq!(host("https://[::1"), Ok(None));
        assert_eq!(host("https://[]"), Ok(None));
        assert_eq!(host("https://bücher.de/"), Err(Defer));
        assert_eq!(
            host("https://example.com/bücher"),
            Ok(Some("example.com".into()))
        );
    }
}
