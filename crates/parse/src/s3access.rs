//! S3 server access logs (`s3access`).
//!
//! One request per line: space-separated fields in the order of AWS's "Amazon S3 server access
//! log format" page. `Time` is bracketed (`[06/Feb/2019:00:00:38 +0000]`); `Request-URI`,
//! `Referer` and `User-Agent` are quoted. AWS adds fields at the end of the line from time to
//! time and tells readers to tolerate trailing fields they do not know, so:
//!
//! - the fields of the original format, `Bucket Owner` through `User-Agent`, are required;
//! - the fields added since (`Version Id` ... `Source region`) are read while the line lasts:
//!   an older line ends early and the missing fields are omitted;
//! - anything after the last known field is ignored.
//!
//! A quoted field ends at the first `"` that is followed by a space (or ends the line) and is
//! not preceded by `\`; its text is kept as logged, without unescaping, so a user agent holding
//! a stray quote does not shift the fields after it. Parsing allocates nothing.

use logferry_core::Timestamp;
use memchr::memchr;
use serde::ser::{Serialize, Serializer};

use crate::error::ParseError;
use crate::fields::{Fields, opt_u64, request_line};
use crate::members::{self, MemberList, Members, present_members};

/// One S3 server access log record.
///
/// Serializes to one JSON object: `@timestamp` (the `Time` field), then the fields under AWS's
/// names in `snake_case` (`Request-URI` is `request_uri`, also split into `request_verb`,
/// `request_url` and `request_proto`; `aclRequired` is `acl_required`). Fields logged as `-`,
/// and fields an older line does not have, are omitted.
///
/// ```
/// use logferry_parse::{Format, FormatOptions};
///
/// let format = Format::new("s3access", &FormatOptions::new()).unwrap();
/// let line = r#"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be amzn-s3-demo-bucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 891CE47D2EXAMPLE REST.GET.LOGGING_STATUS - "GET /amzn-s3-demo-bucket1?logging HTTP/1.1" 200 - 242 - 11 - "-" "S3Console/0.4" - 9vKBE6vMhrNiWHZmb2L0mXOcqPGzQOI5XLnCtZNPxev+Hf+7tpT6sxDwDty4LHBUOZJG96N1234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader amzn-s3-demo-bucket1.s3.us-west-1.amazonaws.com TLSV1.2 - - us-east-1"#;
/// let record = format.line_parser().parse_line(line).unwrap().unwrap();
/// let json = serde_json::to_value(&record).unwrap();
/// assert_eq!(json["@timestamp"], "2019-02-06T00:00:38Z");
/// assert_eq!(json["http_status"], 200);
/// assert_eq!(json["request_verb"], "GET");
/// assert_eq!(json["bytes_sent"], 242);
/// assert_eq!(json["source_region"], "us-east-1");
/// assert!(json.get("referer").is_none());
/// ```
#[derive(Debug, Clone)]
pub struct S3AccessRecord<'a> {
    timestamp: Timestamp,
    bucket_owner: Option<&'a str>,
    bucket: Option<&'a str>,
    remote_ip: Option<&'a str>,
    requester: Option<&'a str>,
    request_id: Option<&'a str>,
    operation: Option<&'a str>,
    key: Option<&'a str>,
    request_uri: Option<&'a str>,
    request_verb: Option<&'a str>,
    request_url: Option<&'a str>,
    request_proto: Option<&'a str>,
    http_status: Option<u64>,
    error_code: Option<&'a str>,
    bytes_sent: Option<u64>,
    object_size: Option<u64>,
    total_time: Option<u64>,
    turn_around_time: Option<u64>,
    referer: Option<&'a str>,
    user_agent: Option<&'a str>,
    version_id: Option<&'a str>,
    host_id: Option<&'a str>,
    signature_version: Option<&'a str>,
    cipher_suite: Option<&'a str>,
    authentication_type: Option<&'a str>,
    host_header: Option<&'a str>,
    tls_version: Option<&'a str>,
    access_point_arn: Option<&'a str>,
    acl_required: Option<&'a str>,
    source_region: Option<&'a str>,
}

impl<'a> S3AccessRecord<'a> {
    /// The event time: when S3 received the request (`Time`).
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The bucket the request was made to (`Bucket`).
    pub fn bucket(&self) -> Option<&'a str> {
        self.bucket
    }

    /// The operation, e.g. `REST.GET.OBJECT` (`Operation`).
    pub fn operation(&self) -> Option<&'a str> {
        self.operation
    }

    /// The HTTP status code of the response (`HTTP status`).
    pub fn http_status(&self) -> Option<u64> {
        self.http_status
    }
}

impl MemberList for S3AccessRecord<'_> {
    /// The JSON members, in order (see the type's documentation).
    fn members<M: Members>(&self, out: &mut M) -> Result<(), M::Error> {
        out.member("@timestamp", &self.timestamp)?;
        present_members!(
            out,
            self,
            bucket_owner,
            bucket,
            remote_ip,
            requester,
            request_id,
            operation,
            key,
            request_uri,
            request_verb,
            request_url,
            request_proto,
            http_status,
            error_code,
            bytes_sent,
            object_size,
            total_time,
            turn_around_time,
            referer,
            user_agent,
            version_id,
            host_id,
            signature_version,
            cipher_suite,
            authentication_type,
            host_header,
            tls_version,
            access_point_arn,
            acl_required,
            source_region
        );
        Ok(())
    }
}

impl Serialize for S3AccessRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        members::serialize_struct(self, "S3AccessRecord", serializer)
    }
}

/// `None` for `-` (AWS's "absent") and for an empty field (a stray space).
fn present(v: &str) -> Option<&str> {
    if v == "-" || v.is_empty() {
        None
    } else {
        Some(v)
    }
}

/// Parses one line (without its terminator; a trailing `\r` is ignored).
pub(crate) fn parse(line: &str) -> Result<S3AccessRecord<'_>, ParseError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut f = Fields::new(line);
    let bucket_owner = present(f.token("Bucket Owner")?);
    let bucket = present(f.token("Bucket")?);
    let timestamp = bracketed_time(&mut f)?;
    let remote_ip = present(f.token("Remote IP")?);
    let requester = present(f.token("Requester")?);
    let request_id = present(f.token("Request ID")?);
    let operation = present(f.token("Operation")?);
    let key = present(f.token("Key")?);
    let request_uri = quoted(&mut f, "Request-URI")?;
    let (request_verb, request_url, request_proto) =
        request_uri.map_or((None, None, None), request_line);
    let http_status = number(&mut f, "HTTP status")?;
    let error_code = present(f.token("Error Code")?);
    let bytes_sent = number(&mut f, "Bytes Sent")?;
    let object_size = number(&mut f, "Object Size")?;
    let total_time = number(&mut f, "Total Time")?;
    let turn_around_time = number(&mut f, "Turn-Around Time")?;
    let referer = quoted(&mut f, "Referer")?;
    let user_agent = quoted(&mut f, "User-Agent")?;
    // Fields added to the format over the years: an older line ends early.
    let mut appended = || {
        if f.is_empty() {
            None
        } else {
            f.token("").ok().and_then(present)
        }
    };
    Ok(S3AccessRecord {
        timestamp,
        bucket_owner,
        bucket,
        remote_ip,
        requester,
        request_id,
        operation,
        key,
        request_uri,
        request_verb,
        request_url,
        request_proto,
        http_status,
        error_code,
        bytes_sent,
        object_size,
        total_time,
        turn_around_time,
        referer,
        user_agent,
        version_id: appended(),
        host_id: appended(),
        signature_version: appended(),
        cipher_suite: appended(),
        authentication_type: appended(),
        host_header: appended(),
        tls_version: appended(),
        access_point_arn: appended(),
        acl_required: appended(),
        source_region: appended(),
    })
}

/// The next field as an unsigned integer; `-` is `None`.
fn number(f: &mut Fields<'_>, field: &'static str) -> Result<Option<u64>, ParseError> {
    let t = f.token(field)?;
    if t.is_empty() {
        Ok(None)
    } else {
        opt_u64(t, field)
    }
}

/// The next field, quoted or `-`. See the module documentation for where a quoted field ends.
fn quoted<'a>(f: &mut Fields<'a>, field: &'static str) -> Result<Option<&'a str>, ParseError> {
    let rest = f.rest();
    let Some(body) = rest.strip_prefix('"') else {
        return f.token(field).map(present);
    };
    let bytes = body.as_bytes();
    let mut from = 0;
    while let Some(p) = bytes.get(from..).and_then(|b| memchr(b'"', b)) {
        let at = from + p;
        from = at + 1;
        let escaped = bytes[..at]
            .iter()
            .rev()
            .take_while(|&&c| c == b'\\')
            .count()
            % 2
            == 1;
        if escaped {
            continue;
        }
        let after = &body[at + 1..];
        let rest_after = match after.as_bytes().first() {
            None => "",
            Some(b' ') => &after[1..],
            Some(_) => continue,
        };
        *f = Fields::new(rest_after);
        return Ok(present(&body[..at]));
    }
    Err(ParseError::invalid(field, "a closing quote"))
}

/// `[dd/Mon/yyyy:HH:MM:SS +zzzz]`: two space-separated tokens.
fn bracketed_time(f: &mut Fields<'_>) -> Result<Timestamp, ParseError> {
    let first = f.token("Time")?;
    let second = f.token("Time")?;
    let (Some(day), Some(zone)) = (first.strip_prefix('['), second.strip_suffix(']')) else {
        return Err(ParseError::invalid("Time", "[dd/Mon/yyyy:HH:MM:SS +zzzz]"));
    };
    clf_time(day, zone).ok_or_else(|| ParseError::invalid("Time", "[dd/Mon/yyyy:HH:MM:SS +zzzz]"))
}

/// `06/Feb/2019:00:00:38` and `+0000` (strftime `%d/%b/%Y:%H:%M:%S %z`), as UTC.
fn clf_time(day: &str, zone: &str) -> Option<Timestamp> {
    let [
        d0,
        d1,
        b'/',
        m0,
        m1,
        m2,
        b'/',
        y0,
        y1,
        y2,
        y3,
        b':',
        h0,
        h1,
        b':',
        n0,
        n1,
        b':',
        s0,
        s1,
    ] = *day.as_bytes()
    else {
        return None;
    };
    let [sign @ (b'+' | b'-'), zh0, zh1, zm0, zm1] = *zone.as_bytes() else {
        return None;
    };
    let month = match [
        m0.to_ascii_lowercase(),
        m1.to_ascii_lowercase(),
        m2.to_ascii_lowercase(),
    ] {
        [b'j', b'a', b'n'] => 1,
        [b'f', b'e', b'b'] => 2,
        [b'm', b'a', b'r'] => 3,
        [b'a', b'p', b'r'] => 4,
        [b'm', b'a', b'y'] => 5,
        [b'j', b'u', b'n'] => 6,
        [b'j', b'u', b'l'] => 7,
        [b'a', b'u', b'g'] => 8,
        [b's', b'e', b'p'] => 9,
        [b'o', b'c', b't'] => 10,
        [b'n', b'o', b'v'] => 11,
        [b'd', b'e', b'c'] => 12,
        _ => return None,
    };
    let offset_hours = num(&[zh0, zh1]).filter(|h| *h <= 23)?;
    let offset_minutes = num(&[zm0, zm1]).filter(|m| *m <= 59)?;
    let offset = i64::from(offset_hours * 3600 + offset_minutes * 60);
    Timestamp::from_civil(
        i64::from(num(&[y0, y1, y2, y3])?),
        month,
        num(&[d0, d1])?,
        num(&[h0, h1])?,
        num(&[n0, n1])?,
        num(&[s0, s1])?,
        0,
    )?
    .offset_seconds(if sign == b'-' { offset } else { -offset })
}

/// ASCII digits (at most 4 here) as a number.
fn num(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |v, c| {
        c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted_rest(input: &str) -> (Result<Option<&str>, ParseError>, String) {
        let mut f = Fields::new(input);
        let v = quoted(&mut f, "User-Agent");
        (v, f.rest().to_owned())
    }

    #[test]
    fn reads_bracketed_times() {
        let ts = clf_time("06/Feb/2019:00:00:38", "+0000").unwrap();
        assert_eq!(ts.to_string(), "2019-02-06T00:00:38Z");
        let ts = clf_time("06/feb/2019:01:30:38", "+0130").unwrap();
        assert_eq!(ts.to_string(), "2019-02-06T00:00:38Z");
        let ts = clf_time("31/Dec/2019:23:00:00", "-0100").unwrap();
        assert_eq!(ts.to_string(), "2020-01-01T00:00:00Z");
        assert!(clf_time("29/Feb/2019:00:00:00", "+0000").is_none());
        assert!(clf_time("06/Fev/2019:00:00:38", "+0000").is_none());
        assert!(clf_time("6/Feb/2019:00:00:38", "+0000").is_none());
        assert!(clf_time("06/Feb/2019:24:00:38", "+0000").is_none());
        assert!(clf_time("06/Feb/2019:00:00:38", "0000").is_none());
        assert!(clf_time("06/Feb/2019:00:00:38", "+2400").is_none());
        assert!(clf_time("06/Feb/2019:00:00:38", "+00:00").is_none());
        assert!(clf_time("06/Feb/2019:00:00:3é", "+0000").is_none());
    }

    #[test]
    fn bracketed_time_needs_both_brackets() {
        let mut f = Fields::new("[06/Feb/2019:00:00:38 +0000] rest");
        assert_eq!(
            bracketed_time(&mut f).unwrap().to_string(),
            "2019-02-06T00:00:38Z"
        );
        assert_eq!(f.rest(), "rest");
        for bad in [
            "06/Feb/2019:00:00:38 +0000]",
            "[06/Feb/2019:00:00:38 +0000",
            "[x]",
            "-",
        ] {
            let mut f = Fields::new(bad);
            assert_eq!(bracketed_time(&mut f).unwrap_err().field(), "Time", "{bad}");
        }
    }

    #[test]
    fn quoted_fields_end_at_a_quote_before_a_space() {
        assert_eq!(
            quoted_rest(r#""S3Console/0.4" - next"#),
            (Ok(Some("S3Console/0.4")), "- next".into())
        );
        assert_eq!(quoted_rest(r#""-" next"#), (Ok(None), "next".into()));
        assert_eq!(quoted_rest(r#"- next"#), (Ok(None), "next".into()));
        assert_eq!(quoted_rest(r#""""#), (Ok(None), String::new()));
        assert_eq!(
            quoted_rest(r#""a "b" c" next"#),
            (Ok(Some(r#"a "b"#)), r#"c" next"#.into())
        );
        assert_eq!(
            quoted_rest(r#""say "hi"there" next"#),
            (Ok(Some(r#"say "hi"there"#)), "next".into())
        );
        assert_eq!(
            quoted_rest(r#""a\" b" next"#),
            (Ok(Some(r#"a\" b"#)), "next".into())
        );
        assert_eq!(quoted_rest(r#""a\\" b"#), (Ok(Some(r#"a\\"#)), "b".into()));
        assert!(quoted_rest(r#""unterminated"#).0.is_err());
        assert!(quoted_rest(r#""x"y"#).0.is_err());
    }
}
