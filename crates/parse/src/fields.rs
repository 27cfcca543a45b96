//! Sub-parsers shared by the space-separated access-log formats (ALB, ELB, S3, CloudFront,
//! VPC flow logs).
//!
//! [`Fields`] walks a line field by field. Each method takes the AWS name of the field it
//! reads so that a failure names it. Fields are separated by one delimiter byte (a space, or a
//! tab for CloudFront); quoted fields may contain the delimiter and `\"` / `\\` escapes.

use logferry_core::Timestamp;
use memchr::memchr;

use crate::error::ParseError;

/// A cursor over the fields of one line.
#[derive(Debug, Clone)]
pub(crate) struct Fields<'a> {
    rest: &'a str,
    delimiter: u8,
}

impl<'a> Fields<'a> {
    /// A cursor over space-separated fields.
    pub(crate) fn new(line: &'a str) -> Fields<'a> {
        Fields {
            rest: line,
            delimiter: b' ',
        }
    }

    /// A cursor over fields separated by `delimiter` (an ASCII byte).
    pub(crate) fn with_delimiter(line: &'a str, delimiter: u8) -> Fields<'a> {
        debug_assert!(delimiter.is_ascii());
        Fields {
            rest: line,
            delimiter,
        }
    }

    /// Whether every field has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// What is left of the line, unparsed.
    pub(crate) fn rest(&self) -> &'a str {
        self.rest
    }

    fn advance(&mut self, end: usize) -> &'a str {
        let token = &self.rest[..end];
        // Skip exactly one delimiter: an empty field between two delimiters is a field.
        self.rest = self.rest.get(end + 1..).unwrap_or("");
        token
    }

    /// The next unquoted field, up to the delimiter.
    pub(crate) fn token(&mut self, field: &'static str) -> Result<&'a str, ParseError> {
        if self.rest.is_empty() {
            return Err(ParseError::missing(field));
        }
        let end = memchr(self.delimiter, self.rest.as_bytes()).unwrap_or(self.rest.len());
        Ok(self.advance(end))
    }
}

/// `None` for `-` (AWS's "absent"), else the text.
pub(crate) fn dash_none(s: &str) -> Option<&str> {
    if s == "-" { None } else { Some(s) }
}

/// Parses an unsigned integer; `-` is `None`.
pub(crate) fn opt_u64(t: &str, field: &'static str) -> Result<Option<u64>, ParseError> {
    if t == "-" {
        return Ok(None);
    }
    parse_u64(t)
        .map(Some)
        .ok_or_else(|| ParseError::invalid(field, "an unsigned integer"))
}

/// Parses a finite decimal number; `-` is `None`. `-1` (AWS's "no response") stays `-1`.
pub(crate) fn opt_f64(t: &str, field: &'static str) -> Result<Option<f64>, ParseError> {
    if t == "-" {
        return Ok(None);
    }
    match t.parse::<f64>() {
        Ok(v)
            if v.is_finite()
                && t.bytes()
                    .all(|c| c.is_ascii_digit() || b".-+eE".contains(&c)) =>
        {
            Ok(Some(v))
        }
        _ => Err(ParseError::invalid(field, "a number")),
    }
}

/// Parses ASCII digits (no sign) into a `u64`, refusing overflow.
pub(crate) fn parse_u64(t: &str) -> Option<u64> {
    if t.is_empty() || t.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for c in t.bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// Splits `ip:port` (also `[v6]:port` and bare v6 `a:b::c:port`) into ip and port.
/// `-` gives `(None, None)`; an address without a port gives `(Some(ip), None)`.
pub(crate) fn host_port<'a>(
    t: &'a str,
    field: &'static str,
) -> Result<(Option<&'a str>, Option<u16>), ParseError> {
    if t == "-" {
        return Ok((None, None));
    }
    if let Some(inner) = t.strip_prefix('[') {
        let (ip, after) = inner
            .split_once(']')
            .ok_or_else(|| ParseError::invalid(field, "ip:port"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(
                p.parse()
                    .map_err(|_| ParseError::invalid(field, "ip:port"))?,
            ),
            None if after.is_empty() => None,
            None => return Err(ParseError::invalid(field, "ip:port")),
        };
        return Ok((Some(ip), port));
    }
    match t.rsplit_once(':') {
        Some((ip, port)) if !ip.is_empty() => {
            let port = port
                .parse()
                .map_err(|_| ParseError::invalid(field, "ip:port"))?;
            Ok((Some(ip), Some(port)))
        }
        _ => Err(ParseError::invalid(field, "ip:port")),
    }
}

/// Splits an HTTP request line `VERB URL PROTO` into its three parts. `- - -` and a field
/// that is only `-` give all `None`. A line with fewer parts keeps what it has.
pub(crate) fn request_line(t: &str) -> (Option<&str>, Option<&str>, Option<&str>) {
    let t = t.trim();
    let Some((verb, rest)) = t.split_once(' ') else {
        return (dash_none(t).filter(|s| !s.is_empty()), None, None);
    };
    // URLs can hold spaces in malformed requests: the protocol is the last space-separated word.
    let (url, proto) = match rest.rsplit_once(' ') {
        Some((url, proto)) => (url, Some(proto)),
        None => (rest, None),
    };
    let nonempty = |s: &&str| !s.is_empty();
    (
        dash_none(verb).filter(nonempty),
        dash_none(url).filter(nonempty),
        proto.and_then(dash_none).filter(nonempty),
    )
}

/// Parses an RFC 3339 timestamp field.
pub(crate) fn rfc3339(t: &str, field: &'static str) -> Result<Timestamp, ParseError> {
    Timestamp::parse_rfc3339(t).ok_or_else(|| ParseError::invalid(field, "an RFC 3339 timestamp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_host_port() {
        assert_eq!(
            host_port("10.0.0.1:80", "c").unwrap(),
            (Some("10.0.0.1"), Some(80))
        );
        assert_eq!(
            host_port("[::1]:443", "c").unwrap(),
            (Some("::1"), Some(443))
        );
        assert_eq!(
            host_port("2001:db8::1:8080", "c").unwrap(),
            (Some("2001:db8::1"), Some(8080))
        );
        assert_eq!(host_port("-", "c").unwrap(), (None, None));
        assert!(host_port("10.0.0.1:99999", "c").is_err());
        assert!(host_port("nocolon", "c").is_err());
    }

    #[test]
    fn splits_request_lines() {
        assert_eq!(
            request_line("GET http://a.com:80/x?y HTTP/1.1"),
            (Some("GET"), Some("http://a.com:80/x?y"), Some("HTTP/1.1"))
        );
        assert_eq!(request_line("- - - "), (None, None, None));
        assert_eq!(
            request_line("GET /a b HTTP/1.1"),
            (Some("GET"), Some("/a b"), Some("HTTP/1.1"))
        );
        assert_eq!(request_line("-"), (None, None, None));
        assert_eq!(
            request_line("- a € HTTP/1.1"),
            (None, Some("a €"), Some("HTTP/1.1"))
        );
        assert_eq!(
            request_line("- /a b HTTP/1.1"),
            (None, Some("/a b"), Some("HTTP/1.1"))
        );
    }
}
