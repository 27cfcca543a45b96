//! Sub-parsers shared by the space-separated access-log formats (ALB, ELB, S3, CloudFront,
//! VPC flow logs).
//!
//! [`Fields`] walks a line field by field. Each method takes the AWS name of the field it
//! reads so that a failure names it. Fields are separated by one delimiter byte (a space, or a
//! tab for CloudFront); quoted fields may contain the delimiter and `\"` / `\\` escapes.

use std::borrow::Cow;

use logferry_core::Timestamp;
use memchr::{memchr, memchr2};

use crate::error::{ParseError, ParseErrorKind};

/// A cursor over the fields of one line.
#[derive(Debug, Clone)]
pub(crate) struct Fields<'a> {
    rest: &'a str,
    delimiter: u8,
}

impl<'a> Fields<'a> {
    /// A cursor over space-separated fields.
    pub(crate) fn new(line: &'a str) -> Fields<'a> {
        Fields { rest: line, delimiter: b' ' }
    }

    /// A cursor over fields separated by `delimiter` (an ASCII byte).
    pub(crate) fn with_delimiter(line: &'a str, delimiter: u8) -> Fields<'a> {
        debug_assert!(delimiter.is_ascii());
        Fields { rest: line, delimiter }
    }

    /// Whether every field has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// What is left of the line, unparsed.
    pub(crate) fn rest(&self) -> &'a str {
        self.rest
    }

    /// Fails with [`ParseErrorKind::TrailingData`] unless every field has been read.
    pub(crate) fn finish(&self, after_field: &'static str) -> Result<(), ParseError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ParseError::new(after_field, ParseErrorKind::TrailingData))
        }
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

    /// The next field, quoted (`"..."`, with `\"` and `\\` escapes) or not. The quotes are
    /// removed and escapes resolved; the result borrows unless an escape had to be resolved.
    pub(crate) fn quoted(&mut self, field: &'static str) -> Result<Cow<'a, str>, ParseError> {
        let bytes = self.rest.as_bytes();
        match bytes.first() {
            None => Err(ParseError::missing(field)),
            Some(b'"') => {
                let body = &self.rest[1..];
                let mut i = 0;
                let mut escaped = false;
                loop {
                    let Some(p) = memchr2(b'"', b'\\', &body.as_bytes()[i..]) else {
                        return Err(ParseError::invalid(field, "a closing quote"));
                    };
                    let at = i + p;
                    if body.as_bytes()[at] == b'\\' {
                        escaped = true;
                        i = at + 2;
                        if i > body.len() {
                            return Err(ParseError::invalid(field, "a closing quote"));
                        }
                        continue;
                    }
                    let inner = &body[..at];
                    let after = &body[at + 1..];
                    match after.as_bytes().first() {
                        None => self.rest = "",
                        Some(&c) if c == self.delimiter => self.rest = &after[1..],
                        Some(_) => {
                            return Err(ParseError::invalid(
                                field,
                                "a delimiter after the closing quote",
                            ));
                        }
                    }
                    return Ok(if escaped { Cow::Owned(unescape(inner)) } else { Cow::Borrowed(inner) });
                }
            }
            Some(_) => self.token(field).map(Cow::Borrowed),
        }
    }

    /// The next field as `None` when it is `-`, else the text.
    pub(crate) fn opt_token(&mut self, field: &'static str) -> Result<Option<&'a str>, ParseError> {
        self.token(field).map(dash_none)
    }

    /// The next field as an unsigned integer; `-` is `None`.
    pub(crate) fn opt_u64(&mut self, field: &'static str) -> Result<Option<u64>, ParseError> {
        let t = self.token(field)?;
        opt_u64(t, field)
    }

    /// The next field as a signed integer; `-` is `None`.
    pub(crate) fn opt_i64(&mut self, field: &'static str) -> Result<Option<i64>, ParseError> {
        let t = self.token(field)?;
        if t == "-" {
            return Ok(None);
        }
        t.parse().map(Some).map_err(|_| ParseError::invalid(field, "an integer"))
    }

    /// The next field as a number; `-` is `None`.
    pub(crate) fn opt_f64(&mut self, field: &'static str) -> Result<Option<f64>, ParseError> {
        let t = self.token(field)?;
        opt_f64(t, field)
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
    parse_u64(t).map(Some).ok_or_else(|| ParseError::invalid(field, "an unsigned integer"))
}

/// Parses a finite decimal number; `-` is `None`. `-1` (AWS's "no response") stays `-1`.
pub(crate) fn opt_f64(t: &str, field: &'static str) -> Result<Option<f64>, ParseError> {
    if t == "-" {
        return Ok(None);
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && t.bytes().all(|c| c.is_ascii_digit() || b".-+eE".contains(&c)) => {
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

/// Resolves `\x` escapes to `x`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
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
        let (ip, after) = inner.split_once(']').ok_or_else(|| ParseError::invalid(field, "ip:port"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().map_err(|_| ParseError::invalid(field, "ip:port"))?),
            None if after.is_empty() => None,
            None => return Err(ParseError::invalid(field, "ip:port")),
        };
        return Ok((Some(ip), port));
    }
    match t.rsplit_once(':') {
        Some((ip, port)) if !ip.is_empty() => {
            let port = port.parse().map_err(|_| ParseError::invalid(field, "ip:port"))?;
            Ok((Some(ip), Some(port)))
        }
        _ => Err(ParseError::invalid(field, "ip:port")),
    }
}

/// Splits an HTTP request line `VERB URL PROTO` into its three parts. `- - -` and a field
/// that is only `-` give all `None`. A line with fewer parts keeps what it has.
pub(crate) fn request_line(t: &str) -> (Option<&str>, Option<&str>, Option<&str>) {
    let t = t.trim();
    let mut parts = t.splitn(3, ' ');
    let verb = parts.next().and_then(dash_none).filter(|s| !s.is_empty());
    let rest = parts.next();
    let proto_and_more = parts.next();
    // URLs can hold spaces in malformed requests: the protocol is the last space-separated word.
    match (rest, proto_and_more) {
        (Some(url), Some(more)) => match more.rsplit_once(' ') {
            Some((mid, proto)) => {
                let url_end = url.len() + 1 + mid.len();
                let start = verb.map_or(0, |v| v.len() + 1);
                let full_url = &t[start..start + url_end];
                (verb, dash_none(full_url), dash_none(proto))
            }
            None => (verb, dash_none(url), dash_none(more)),
        },
        (Some(url), None) => (verb, dash_none(url), None),
        _ => (verb, None, None),
    }
}

/// Parses an RFC 3339 timestamp field.
pub(crate) fn rfc3339(t: &str, field: &'static str) -> Result<Timestamp, ParseError> {
    Timestamp::parse_rfc3339(t).ok_or_else(|| ParseError::invalid(field, "an RFC 3339 timestamp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_quoted_and_plain_fields() {
        let mut f = Fields::new(r#"a "b c" "" "d\"e" - 42"#);
        assert_eq!(f.token("1").unwrap(), "a");
        assert_eq!(f.quoted("2").unwrap(), "b c");
        assert_eq!(f.quoted("3").unwrap(), "");
        assert_eq!(f.quoted("4").unwrap(), "d\"e");
        assert_eq!(f.opt_u64("5").unwrap(), None);
        assert_eq!(f.opt_u64("6").unwrap(), Some(42));
        assert!(f.is_empty());
        assert_eq!(f.token("7").unwrap_err().field(), "7");
    }

    #[test]
    fn unterminated_quote_names_field() {
        let mut f = Fields::new(r#""abc"#);
        assert_eq!(f.quoted("user_agent").unwrap_err().field(), "user_agent");
        let mut f = Fields::new(r#""abc\"#);
        assert!(f.quoted("user_agent").is_err());
        let mut f = Fields::new(r#""abc"x"#);
        assert!(f.quoted("user_agent").is_err());
    }

    #[test]
    fn splits_host_port() {
        assert_eq!(host_port("10.0.0.1:80", "c").unwrap(), (Some("10.0.0.1"), Some(80)));
        assert_eq!(host_port("[::1]:443", "c").unwrap(), (Some("::1"), Some(443)));
        assert_eq!(host_port("2001:db8::1:8080", "c").unwrap(), (Some("2001:db8::1"), Some(8080)));
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
        assert_eq!(request_line("GET /a b HTTP/1.1"), (Some("GET"), Some("/a b"), Some("HTTP/1.1")));
        assert_eq!(request_line("-"), (None, None, None));
    }
}
