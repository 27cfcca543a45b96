//! Application Load Balancer access logs (`alb`).
//!
//! One entry per line: space-separated fields in the order of AWS's "Access log entries" table,
//! some of them quoted (`"request"`, `"user_agent"`, `"trace_id"`, ...). AWS appends new fields
//! at the end of the entry and tells readers to ignore fields they do not expect, so:
//!
//! - every field through `ssl_protocol` (the fields every ALB has always written, shared with
//!   Classic Load Balancer entries) is required;
//! - the fields appended since (`target_group_arn` ... `request_transform_status`) are read
//!   while the line lasts: an entry written before a field existed simply ends early, and the
//!   missing fields are omitted from the record;
//! - anything after the last known field is ignored.
//!
//! Quoted fields are kept exactly as logged: load balancers write a `"` inside a value as
//! `\x22`, and this parser does not decode escapes (a backslash-escaped quote, `\"`, does not
//! end a field but is kept as is).
//!
//! The hot path makes one pass over the line, a word (8 bytes) at a time, and allocates
//! nothing: a record keeps the line and the position of each text field (8 bytes per field)
//! plus the parsed numbers.
//!
//! This module also holds the pieces the Classic Load Balancer parser (`elb`) shares: the
//! field cursor, request-line splitting, durations, status codes, `ip:port` and the fast path
//! for AWS's timestamps.

use logferry_core::Timestamp;
use memchr::{memchr, memchr2, memrchr};
use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};

use crate::error::ParseError;
use crate::fields::{dash_none, host_port, opt_f64, parse_u64, rfc3339};
use crate::members::{self, MemberList, Members, WriteJson};

/// The text fields of an ALB record, by their index in [`AlbRecord::spans`].
#[derive(Clone, Copy, Debug)]
enum Field {
    Type,
    Elb,
    ClientIp,
    TargetIp,
    RequestVerb,
    RequestUrl,
    RequestProto,
    UserAgent,
    SslCipher,
    SslProtocol,
    TargetGroupArn,
    TraceId,
    DomainName,
    ChosenCertArn,
    ActionsExecuted,
    RedirectUrl,
    ErrorReason,
    TargetPortList,
    TargetStatusCodeList,
    Classification,
    ClassificationReason,
    ConnTraceId,
    TransformedHost,
    TransformedUri,
    RequestTransformStatus,
}

/// How many [`Field`]s there are.
const TEXT_FIELDS: usize = 25;

/// Where a text field is in the line; [`Span::NONE`] when absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    const NONE: Span = Span {
        start: u32::MAX,
        len: 0,
    };
}

/// One Application Load Balancer access log entry.
///
/// Serializes to one JSON object: `@timestamp` (the entry's `time`), then the fields under AWS's
/// names, in AWS's order: `type`, `elb`, `client_ip`, `client_port`, `target_ip`,
/// `target_port`, `request_processing_time`, `target_processing_time`,
/// `response_processing_time`, `elb_status_code`, `target_status_code`, `received_bytes`,
/// `sent_bytes`, `request_verb`, `request_url`, `request_proto`, `user_agent`, `ssl_cipher`,
/// `ssl_protocol`, `target_group_arn`, `trace_id`, `domain_name`, `chosen_cert_arn`,
/// `matched_rule_priority`, `request_creation_time`, `actions_executed` (array),
/// `redirect_url`, `error_reason`, `target_port_list` (array), `target_status_code_list`
/// (array of numbers), `classification`, `classification_reason`, `conn_trace_id`,
/// `transformed_host`, `transformed_uri`, `request_transform_status`. Fields AWS writes as
/// `-`, and fields an older entry does not have, are omitted.
///
/// ```
/// use logferry_parse::{Format, FormatOptions};
///
/// let format = Format::new("alb", &FormatOptions::new()).unwrap();
/// let line = r#"h2 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 10.0.1.252:48160 10.0.0.66:9000 0.000 0.002 0.000 200 200 5 257 "GET https://10.0.2.105:773/ HTTP/2.0" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2"#;
/// let record = format.line_parser().parse_line(line).unwrap().unwrap();
/// let json = serde_json::to_value(&record).unwrap();
/// assert_eq!(json["type"], "h2");
/// assert_eq!(json["target_port"], 9000);
/// assert_eq!(json["request_proto"], "HTTP/2.0");
/// assert!(json.get("target_group_arn").is_none());
/// ```
#[derive(Debug, Clone)]
pub struct AlbRecord<'a> {
    line: &'a str,
    timestamp: Timestamp,
    request_creation_time: Option<Timestamp>,
    /// `received_bytes`, `sent_bytes`.
    bytes: [Option<u64>; 2],
    matched_rule_priority: Option<i64>,
    /// `request_processing_time`, `target_processing_time`, `response_processing_time`;
    /// NaN when absent (a parsed duration is always finite).
    times: [f64; 3],
    /// `client_port`, `target_port`.
    ports: [Option<u16>; 2],
    /// `elb_status_code`, `target_status_code`.
    codes: [Option<u16>; 2],
    /// The text fields, by [`Field`].
    spans: [Span; TEXT_FIELDS],
}

impl<'a> AlbRecord<'a> {
    /// The entry's `time`: when the load balancer generated the response (for WebSockets,
    /// when the connection closed).
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// `type`: `http`, `https`, `h2`, `grpcs`, `ws` or `wss`.
    pub fn request_type(&self) -> &'a str {
        self.text(Field::Type).unwrap_or_default()
    }

    /// `elb`: the resource ID of the load balancer.
    pub fn elb(&self) -> &'a str {
        self.text(Field::Elb).unwrap_or_default()
    }

    /// `elb_status_code`: the status code of the load balancer's response.
    pub fn elb_status_code(&self) -> Option<u16> {
        self.codes[0]
    }

    /// `target_status_code`: the status code of the target's response, if there was one.
    pub fn target_status_code(&self) -> Option<u16> {
        self.codes[1]
    }

    /// A text field.
    fn text(&self, field: Field) -> Option<&'a str> {
        let span = self.spans[field as usize];
        if span == Span::NONE {
            return None;
        }
        let start = span.start as usize;
        self.line.get(start..start.checked_add(span.len as usize)?)
    }

    fn set(&mut self, field: Field, text: Option<&'a str>) {
        let Some(text) = text else { return };
        // Every text is a slice of the line, whose length was checked to fit in a u32.
        let start = (text.as_ptr() as usize).wrapping_sub(self.line.as_ptr() as usize);
        if let (Ok(start), Ok(len)) = (u32::try_from(start), u32::try_from(text.len())) {
            self.spans[field as usize] = Span { start, len };
        }
    }
}

impl MemberList for AlbRecord<'_> {
    /// The JSON members, in order (see the type's documentation).
    fn members<M: Members>(&self, out: &mut M) -> Result<(), M::Error> {
        macro_rules! text {
            ($name:literal, $field:ident) => {
                if let Some(text) = self.text(Field::$field) {
                    out.member($name, text)?;
                }
            };
        }
        macro_rules! list {
            ($name:literal, $field:ident, $sep:literal, $numbers:literal) => {
                if let Some(text) = self.text(Field::$field) {
                    out.member(
                        $name,
                        &List {
                            text,
                            separator: $sep,
                            numbers: $numbers,
                        },
                    )?;
                }
            };
        }
        macro_rules! value {
            ($name:literal, $value:expr) => {
                if let Some(value) = $value {
                    out.member($name, &value)?;
                }
            };
        }
        let time = |i: usize| Some(self.times[i]).filter(|t| !t.is_nan());
        out.member("@timestamp", &self.timestamp)?;
        text!("type", Type);
        text!("elb", Elb);
        text!("client_ip", ClientIp);
        value!("client_port", self.ports[0]);
        text!("target_ip", TargetIp);
        value!("target_port", self.ports[1]);
        value!("request_processing_time", time(0));
        value!("target_processing_time", time(1));
        value!("response_processing_time", time(2));
        value!("elb_status_code", self.codes[0]);
        value!("target_status_code", self.codes[1]);
        value!("received_bytes", self.bytes[0]);
        value!("sent_bytes", self.bytes[1]);
        text!("request_verb", RequestVerb);
        text!("request_url", RequestUrl);
        text!("request_proto", RequestProto);
        text!("user_agent", UserAgent);
        text!("ssl_cipher", SslCipher);
        text!("ssl_protocol", SslProtocol);
        text!("target_group_arn", TargetGroupArn);
        text!("trace_id", TraceId);
        text!("domain_name", DomainName);
        text!("chosen_cert_arn", ChosenCertArn);
        value!("matched_rule_priority", self.matched_rule_priority);
        value!("request_creation_time", self.request_creation_time);
        list!("actions_executed", ActionsExecuted, ',', false);
        text!("redirect_url", RedirectUrl);
        text!("error_reason", ErrorReason);
        list!("target_port_list", TargetPortList, ' ', false);
        list!("target_status_code_list", TargetStatusCodeList, ' ', true);
        text!("classification", Classification);
        text!("classification_reason", ClassificationReason);
        text!("conn_trace_id", ConnTraceId);
        text!("transformed_host", TransformedHost);
        text!("transformed_uri", TransformedUri);
        text!("request_transform_status", RequestTransformStatus);
        Ok(())
    }
}

impl Serialize for AlbRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        members::serialize_struct(self, "AlbRecord", serializer)
    }
}

/// Parses one ALB access log entry.
pub(crate) fn parse(line: &str) -> Result<AlbRecord<'_>, ParseError> {
    let line = trim_line_end(line);
    let mut f = Cursor::new(line)?;
    let kind = f.token("type")?;
    let timestamp = aws_time(f.token("time")?, "time")?;
    let elb = f.token("elb")?;
    let (client_ip, client_port) = ip_port(f.token("client:port")?, "client:port")?;
    let (target_ip, target_port) = ip_port(f.token("target:port")?, "target:port")?;
    let times = [
        seconds(
            f.token("request_processing_time")?,
            "request_processing_time",
        )?,
        seconds(f.token("target_processing_time")?, "target_processing_time")?,
        seconds(
            f.token("response_processing_time")?,
            "response_processing_time",
        )?,
    ];
    let codes = [
        status_code(f.token("elb_status_code")?, "elb_status_code")?,
        status_code(f.token("target_status_code")?, "target_status_code")?,
    ];
    let bytes = [f.opt_u64("received_bytes")?, f.opt_u64("sent_bytes")?];
    let request = f.quoted("request")?;
    let user_agent = f.opt_quoted("user_agent")?;
    let ssl_cipher = f.opt_token("ssl_cipher")?;
    let ssl_protocol = f.opt_token("ssl_protocol")?;

    let mut r = AlbRecord {
        line,
        timestamp,
        request_creation_time: None,
        bytes,
        matched_rule_priority: None,
        times: times.map(|t| t.unwrap_or(f64::NAN)),
        ports: [client_port, target_port],
        codes,
        spans: [Span::NONE; TEXT_FIELDS],
    };
    r.set(Field::Type, Some(kind));
    r.set(Field::Elb, Some(elb));
    r.set(Field::ClientIp, client_ip);
    r.set(Field::TargetIp, target_ip);
    let [verb, url, proto] = split_request(request);
    r.set(Field::RequestVerb, verb);
    r.set(Field::RequestUrl, url);
    r.set(Field::RequestProto, proto);
    r.set(Field::UserAgent, user_agent);
    r.set(Field::SslCipher, ssl_cipher);
    r.set(Field::SslProtocol, ssl_protocol);
    parse_appended(&mut f, &mut r)?;
    Ok(r)
}

/// Reads the fields AWS appended after `ssl_protocol`, in order, while the line lasts.
/// Whatever follows the last known field is ignored.
fn parse_appended<'a>(f: &mut Cursor<'a>, r: &mut AlbRecord<'a>) -> Result<(), ParseError> {
    macro_rules! next {
        () => {
            if f.is_empty() {
                return Ok(());
            }
        };
    }
    next!();
    r.set(Field::TargetGroupArn, f.opt_token("target_group_arn")?);
    next!();
    r.set(Field::TraceId, f.opt_quoted("trace_id")?);
    next!();
    r.set(Field::DomainName, f.opt_quoted("domain_name")?);
    next!();
    r.set(Field::ChosenCertArn, f.opt_quoted("chosen_cert_arn")?);
    next!();
    r.matched_rule_priority = match f.token("matched_rule_priority")? {
        "-" => None,
        t => Some(
            t.parse()
                .map_err(|_| ParseError::invalid("matched_rule_priority", "an integer"))?,
        ),
    };
    next!();
    r.request_creation_time = match f.token("request_creation_time")? {
        "-" => None,
        t => Some(aws_time(t, "request_creation_time")?),
    };
    next!();
    r.set(Field::ActionsExecuted, f.opt_quoted("actions_executed")?);
    next!();
    r.set(Field::RedirectUrl, f.opt_quoted("redirect_url")?);
    next!();
    r.set(Field::ErrorReason, f.opt_quoted("error_reason")?);
    next!();
    r.set(Field::TargetPortList, f.opt_quoted("target:port_list")?);
    next!();
    let codes = f.opt_quoted("target_status_code_list")?;
    if let Some(codes) = codes {
        let list = List {
            text: codes,
            separator: ' ',
            numbers: true,
        };
        if !list
            .items()
            .all(|item| item == "-" || parse_u64(item).is_some())
        {
            return Err(ParseError::invalid(
                "target_status_code_list",
                "a space-separated list of status codes",
            ));
        }
    }
    r.set(Field::TargetStatusCodeList, codes);
    next!();
    r.set(Field::Classification, f.opt_quoted("classification")?);
    next!();
    r.set(
        Field::ClassificationReason,
        f.opt_quoted("classification_reason")?,
    );
    next!();
    r.set(Field::ConnTraceId, f.opt_quoted("conn_trace_id")?);
    next!();
    r.set(Field::TransformedHost, f.opt_quoted("transformed_host")?);
    next!();
    r.set(Field::TransformedUri, f.opt_quoted("transformed_uri")?);
    next!();
    r.set(
        Field::RequestTransformStatus,
        f.opt_quoted("request_transform_status")?,
    );
    Ok(())
}

// ---- Shared with `elb` -------------------------------------------------------------------

/// The line without trailing spaces, tabs or a carriage return.
pub(crate) fn trim_line_end(line: &str) -> &str {
    line.trim_end_matches([' ', '\t', '\r'])
}

/// How many bytes are searched a word at a time before handing over to `memchr`: most fields
/// are short, and a call into `memchr` costs more than a few word compares.
const SHORT: usize = 32;

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The 8 bytes of `hay` at `at` as a little-endian word, if there are 8.
#[inline]
fn word(hay: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = hay.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// A word whose lowest set high bit marks the first zero byte of `v` (bits above it may be
/// spurious, so only the lowest one is used).
#[inline]
fn zero_bytes(v: u64) -> u64 {
    v.wrapping_sub(LOW_BITS) & !v & HIGH_BITS
}

/// The first `needle` in `hay`.
#[inline(always)]
fn find(needle: u8, hay: &[u8]) -> Option<usize> {
    let splat = LOW_BITS * u64::from(needle);
    let mut at = 0;
    while at < SHORT {
        let Some(w) = word(hay, at) else {
            let rest = hay.get(at..)?;
            return rest.iter().position(|&b| b == needle).map(|i| i + at);
        };
        let hits = zero_bytes(w ^ splat);
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    memchr(needle, hay.get(at..)?).map(|i| i + at)
}

/// The first `a` or `b` in `hay`.
#[inline(always)]
fn find2(a: u8, b: u8, hay: &[u8]) -> Option<usize> {
    let (splat_a, splat_b) = (LOW_BITS * u64::from(a), LOW_BITS * u64::from(b));
    let mut at = 0;
    while at < SHORT {
        let Some(w) = word(hay, at) else {
            let rest = hay.get(at..)?;
            return rest.iter().position(|&c| c == a || c == b).map(|i| i + at);
        };
        let hits = zero_bytes(w ^ splat_a) | zero_bytes(w ^ splat_b);
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    memchr2(a, b, hay.get(at..)?).map(|i| i + at)
}

/// A cursor over the space-separated fields of one line. Quoted fields (`"..."`) may hold
/// spaces and `\"` / `\\` escapes.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `line`. Lines of 4 GiB and more are refused: records keep
    /// 32-bit positions.
    pub(crate) fn new(line: &'a str) -> Result<Cursor<'a>, ParseError> {
        if u32::try_from(line.len()).is_err() {
            return Err(ParseError::invalid("line", "a line shorter than 4 GiB"));
        }
        Ok(Cursor { rest: line })
    }

    /// Whether every field has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next unquoted field, up to the next space.
    #[inline(always)]
    pub(crate) fn token(&mut self, field: &'static str) -> Result<&'a str, ParseError> {
        if self.rest.is_empty() {
            return Err(ParseError::missing(field));
        }
        let end = find(b' ', self.rest.as_bytes()).unwrap_or(self.rest.len());
        // `end` is at an ASCII space or the end: a char boundary.
        let (token, rest) = self.rest.split_at_checked(end).unwrap_or((self.rest, ""));
        self.rest = rest.strip_prefix(' ').unwrap_or(rest);
        Ok(token)
    }

    /// The next unquoted field; `-` is `None`.
    #[inline(always)]
    pub(crate) fn opt_token(&mut self, field: &'static str) -> Result<Option<&'a str>, ParseError> {
        if let Some(rest) = self.rest.strip_prefix("- ") {
            self.rest = rest;
            return Ok(None);
        }
        self.token(field).map(dash_none)
    }

    /// The next field as an unsigned integer; `-` is `None`.
    #[inline(always)]
    pub(crate) fn opt_u64(&mut self, field: &'static str) -> Result<Option<u64>, ParseError> {
        crate::fields::opt_u64(self.token(field)?, field)
    }

    /// The next field, quoted or not, without its quotes. A quoted field ends at the first
    /// `"` not escaped by a backslash; the text is kept as logged.
    #[inline(always)]
    pub(crate) fn quoted(&mut self, field: &'static str) -> Result<&'a str, ParseError> {
        let Some(body) = self.rest.strip_prefix('"') else {
            return self.token(field);
        };
        let bytes = body.as_bytes();
        let mut from = 0;
        loop {
            let at = bytes
                .get(from..)
                .and_then(|hay| find2(b'"', b'\\', hay))
                .map(|i| i + from)
                .ok_or_else(|| ParseError::invalid(field, "a closing quote"))?;
            if bytes.get(at) == Some(&b'\\') {
                // The escaped byte is skipped: searching goes on over bytes, for ASCII only.
                from = at + 2;
                continue;
            }
            // `at` is at the ASCII quote: a char boundary.
            let text = body.get(..at).unwrap_or_default();
            match bytes.get(at + 1) {
                None => self.rest = "",
                Some(b' ') => self.rest = body.get(at + 2..).unwrap_or(""),
                Some(_) => {
                    return Err(ParseError::invalid(
                        field,
                        "a space after the closing quote",
                    ));
                }
            }
            return Ok(text);
        }
    }

    /// The next field, quoted or not; `-` (quoted or not) is `None`.
    #[inline(always)]
    pub(crate) fn opt_quoted(
        &mut self,
        field: &'static str,
    ) -> Result<Option<&'a str>, ParseError> {
        if let Some(rest) = self.rest.strip_prefix("\"-\" ") {
            self.rest = rest;
            return Ok(None);
        }
        self.quoted(field).map(dash_none)
    }
}

/// Splits a request line `VERB URL PROTO` (AWS's `"request"` field). The verb is the first
/// word and the protocol the last, so a URL holding spaces stays whole; trailing spaces are
/// ignored, so `- - - ` gives three `None`. Empty parts and `-` are `None`.
pub(crate) fn split_request<'a>(request: &'a str) -> [Option<&'a str>; 3] {
    let t = request.trim_end_matches(' ');
    let bytes = t.as_bytes();
    let part = |s: Option<&'a str>| s.filter(|s| !s.is_empty() && *s != "-");
    // Both indices are at ASCII spaces: char boundaries.
    match (memchr(b' ', bytes), memrchr(b' ', bytes)) {
        (Some(first), Some(last)) if last > first => [
            part(t.get(..first)),
            part(t.get(first + 1..last)),
            part(t.get(last + 1..)),
        ],
        (Some(first), _) => [part(t.get(..first)), part(t.get(first + 1..)), None],
        _ => [part(Some(t)), None, None],
    }
}

/// A list AWS writes in one field (`forward,redirect`, `10.0.0.1:80 10.0.0.2:80`),
/// serialized as a JSON array by walking the field: no allocation. Empty items are skipped;
/// an item that is `-` becomes `null`, keeping the positions of parallel lists aligned.
struct List<'a> {
    text: &'a str,
    separator: char,
    /// Items are status codes, serialized as numbers (checked when parsing).
    numbers: bool,
}

impl<'a> List<'a> {
    fn items(&self) -> impl Iterator<Item = &'a str> {
        self.text
            .split(self.separator)
            .filter(|item| !item.is_empty())
    }
}

impl WriteJson for List<'_> {
    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (i, item) in self.items().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if item == "-" {
                out.push_str("null");
            } else if let Some(n) = parse_u64(item).filter(|_| self.numbers) {
                n.write_json(out);
            } else {
                item.write_json(out);
            }
        }
        out.push(']');
    }
}

impl Serialize for List<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for item in self.items() {
            if item == "-" {
                seq.serialize_element(&())?;
            } else if let Some(n) = parse_u64(item).filter(|_| self.numbers) {
                seq.serialize_element(&n)?;
            } else {
                seq.serialize_element(item)?;
            }
        }
        seq.end()
    }
}

/// Exact powers of ten, for [`seconds`].
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Parses a duration in seconds such as `0.000`, `0.001048` or `-1`; `-` is `None`.
///
/// Fast path for `-?D+(.D+)?` with at most 15 digits: the digits form an integer below 2^53
/// and the power of ten is exact, so one division gives the correctly rounded value (the same
/// `f64` as `str::parse`). Anything else goes through [`opt_f64`].
pub(crate) fn seconds(t: &str, field: &'static str) -> Result<Option<f64>, ParseError> {
    let b = t.as_bytes();
    let (negative, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    let mut mantissa: u64 = 0;
    let mut count = 0usize;
    let mut scale = 0usize;
    let mut dot = false;
    for &c in digits {
        match c {
            b'0'..=b'9' if count < 15 => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                count += 1;
                scale += usize::from(dot);
            }
            b'.' if !dot && count > 0 => dot = true,
            _ => return opt_f64(t, field),
        }
    }
    if count == 0 || (dot && scale == 0) {
        return opt_f64(t, field);
    }
    // `scale <= count <= 15`: in range of POW10.
    let value = mantissa as f64 / POW10[scale];
    Ok(Some(if negative { -value } else { value }))
}

/// Parses an HTTP status code; `-` is `None`.
pub(crate) fn status_code(t: &str, field: &'static str) -> Result<Option<u16>, ParseError> {
    if t == "-" {
        return Ok(None);
    }
    parse_u64(t)
        .and_then(|v| u16::try_from(v).ok())
        .map(Some)
        .ok_or_else(|| ParseError::invalid(field, "a status code"))
}

/// Splits `ip:port` (IPv4, or IPv6 bare `a:b::c:port` or bracketed `[a:b::c]:port`);
/// `-` gives `(None, None)`.
#[inline]
pub(crate) fn ip_port<'a>(
    t: &'a str,
    field: &'static str,
) -> Result<(Option<&'a str>, Option<u16>), ParseError> {
    if t.starts_with('[') {
        return host_port(t, field);
    }
    if t == "-" {
        return Ok((None, None));
    }
    let colon = t.as_bytes().iter().rposition(|&b| b == b':');
    // `colon` is at an ASCII byte: a char boundary.
    match colon.map(|c| (t.get(..c), t.get(c + 1..))) {
        Some((Some(ip), Some(port))) if !ip.is_empty() => {
            match parse_u64(port).and_then(|p| u16::try_from(p).ok()) {
                Some(port) => Ok((Some(ip), Some(port))),
                None => Err(ParseError::invalid(field, "ip:port")),
            }
        }
        _ => Err(ParseError::invalid(field, "ip:port")),
    }
}

/// Parses AWS's timestamps. Fast path for the layout load balancers write,
/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`; anything else goes through RFC 3339 parsing.
pub(crate) fn aws_time(t: &str, field: &'static str) -> Result<Timestamp, ParseError> {
    if let Ok(b) = <&[u8; 27]>::try_from(t.as_bytes())
        && let Some(ts) = fixed_time(b)
    {
        return Ok(ts);
    }
    rfc3339(t, field)
}

/// Whether the 8 bytes of `w` are all ASCII digits.
#[inline]
fn all_digits(w: u64) -> bool {
    const NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    // Digits are 0x30..=0x39: high nibble 3, and still 3 after adding 6.
    w & NIBBLES == ZEROS && w.wrapping_add(0x0606_0606_0606_0606) & NIBBLES == ZEROS
}

/// `byte` placed at byte `at` of a little-endian word, turned into `'0'` by XOR.
const fn sep(byte: u8, at: u32) -> u64 {
    ((byte ^ b'0') as u64) << (8 * at)
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, or `None`.
#[inline]
fn fixed_time(b: &[u8; 27]) -> Option<Timestamp> {
    let w = |at: usize| word(b, at).unwrap_or_default();
    let last = u64::from_le_bytes([b[24], b[25], b[26], b'0', b'0', b'0', b'0', b'0']);
    // XOR turns each expected separator into '0': the words are then all digits exactly when
    // every digit is a digit and every separator is the expected one.
    let valid = all_digits(w(0) ^ (sep(b'-', 4) | sep(b'-', 7)))
        && all_digits(w(8) ^ (sep(b'T', 2) | sep(b':', 5)))
        && all_digits(w(16) ^ (sep(b':', 0) | sep(b'.', 3)))
        && all_digits(last ^ sep(b'Z', 2));
    if !valid {
        return None;
    }
    let d = |i: usize| u32::from(b[i].wrapping_sub(b'0'));
    let two = |i: usize| d(i) * 10 + d(i + 1);
    Timestamp::from_civil(
        i64::from(two(0) * 100 + two(2)),
        two(5),
        two(8),
        two(11),
        two(14),
        two(17),
        (two(20) * 10_000 + two(22) * 100 + two(24)) * 1000,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(t: &str) -> [Option<String>; 3] {
        split_request(t).map(|p| p.map(str::to_owned))
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn splits_request_lines() {
        assert_eq!(
            parts("GET http://www.example.com:80/ HTTP/1.1"),
            [s("GET"), s("http://www.example.com:80/"), s("HTTP/1.1")]
        );
        assert_eq!(parts("- - - "), [None, None, None]);
        assert_eq!(parts("- - -"), [None, None, None]);
        assert_eq!(parts("-"), [None, None, None]);
        assert_eq!(parts(""), [None, None, None]);
        assert_eq!(
            parts("GET /a b c HTTP/1.1"),
            [s("GET"), s("/a b c"), s("HTTP/1.1")]
        );
        assert_eq!(parts("GET /"), [s("GET"), s("/"), None]);
        assert_eq!(parts("- a € HTTP/1.1"), [None, s("a €"), s("HTTP/1.1")]);
        // Kept as logged: ALB writes a quote as `\x22`.
        assert_eq!(
            parts(r#"GET /q?a=\x22 HTTP/1.1"#),
            [s("GET"), s(r#"/q?a=\x22"#), s("HTTP/1.1")]
        );
    }

    #[test]
    fn quoted_fields() {
        let mut f = Cursor::new(r#"a "b c" "" "d\"e" "f\\" "-" - "é\€" x"#).unwrap();
        assert_eq!(f.quoted("1").unwrap(), "a");
        assert_eq!(f.quoted("2").unwrap(), "b c");
        assert_eq!(f.quoted("3").unwrap(), "");
        // Escapes are skipped over, and kept.
        assert_eq!(f.quoted("4").unwrap(), r#"d\"e"#);
        assert_eq!(f.quoted("5").unwrap(), r#"f\\"#);
        assert_eq!(f.opt_quoted("6").unwrap(), None);
        assert_eq!(f.opt_quoted("7").unwrap(), None);
        assert_eq!(f.quoted("8").unwrap(), r#"é\€"#);
        assert_eq!(f.token("9").unwrap(), "x");
        assert!(f.is_empty());
        assert_eq!(f.token("10").unwrap_err().field(), "10");
        for bad in [r#""abc"#, r#""abc\"#, r#""abc\""#, r#""abc"x"#, "\"\\é"] {
            let mut f = Cursor::new(bad).unwrap();
            assert_eq!(
                f.quoted("user_agent").unwrap_err().field(),
                "user_agent",
                "{bad}"
            );
        }
    }

    #[test]
    fn finds_bytes_like_memchr() {
        let mut hay = Vec::new();
        for len in 0..80usize {
            hay.clear();
            hay.extend((0..len).map(|i| [b'a', 0x80, 0xff, 0x21, 0x01][i % 5]));
            for at in 0..=len {
                let mut h = hay.clone();
                if at < len {
                    h[at] = b' ';
                }
                assert_eq!(find(b' ', &h), memchr(b' ', &h), "{len} {at}");
                if at < len {
                    h[at] = b'"';
                }
                assert_eq!(
                    find2(b'"', b'\\', &h),
                    memchr2(b'"', b'\\', &h),
                    "{len} {at}"
                );
            }
        }
    }

    #[test]
    fn finds_bytes_near_and_far() {
        let hay = b"0123456789abcdefghijklmnopqrstuvwxyz \"";
        assert_eq!(find(b' ', hay), Some(36));
        assert_eq!(find(b'3', hay), Some(3));
        assert_eq!(find(b'!', hay), None);
        assert_eq!(find2(b'"', b' ', hay), Some(36));
        assert_eq!(find2(b'"', b'5', b"01\"5"), Some(2));
        assert_eq!(find(b' ', b""), None);
    }

    #[test]
    fn seconds_match_the_standard_parser() {
        for t in [
            "0.000",
            "0.001",
            "0.086",
            "0.001048",
            "0.000073",
            "1.5",
            "-1",
            "12",
            "123.456789",
            "999999999999.999",
            "0.1",
            "0.3",
            "1e3",
            "+1",
            "1.",
            ".5",
            "12345678901234567890.123",
        ] {
            let expected = t.parse::<f64>().unwrap();
            assert_eq!(seconds(t, "f").unwrap(), Some(expected), "{t}");
        }
        assert_eq!(seconds("-", "f").unwrap(), None);
        assert_eq!(seconds("-1", "f").unwrap(), Some(-1.0));
        for bad in ["", "x", ".5x", "1..2", "--1", "NaN", "inf", "1,5", "1e999"] {
            assert_eq!(seconds(bad, "f").unwrap_err().field(), "f", "{bad}");
        }
    }

    #[test]
    fn status_codes() {
        assert_eq!(status_code("200", "s").unwrap(), Some(200));
        assert_eq!(status_code("-", "s").unwrap(), None);
        assert!(status_code("70000", "s").is_err());
        assert!(status_code("2x0", "s").is_err());
        assert!(status_code("", "s").is_err());
    }

    #[test]
    fn ip_ports() {
        assert_eq!(
            ip_port("10.0.0.1:80", "c").unwrap(),
            (Some("10.0.0.1"), Some(80))
        );
        assert_eq!(
            ip_port("2001:db8::1:8080", "c").unwrap(),
            (Some("2001:db8::1"), Some(8080))
        );
        assert_eq!(ip_port("[::1]:443", "c").unwrap(), (Some("::1"), Some(443)));
        assert_eq!(ip_port("-", "c").unwrap(), (None, None));
        for bad in [
            "10.0.0.1",
            "10.0.0.1:",
            ":80",
            "10.0.0.1:99999",
            "10.0.0.1:+80",
            "é:é",
        ] {
            assert_eq!(ip_port(bad, "c").unwrap_err().field(), "c", "{bad}");
        }
    }

    #[test]
    fn timestamps_match_rfc3339_parsing() {
        for t in [
            "2018-07-02T22:23:00.186641Z",
            "2018-07-02T22:22:48.364000Z",
            "2000-02-29T00:00:00.000000Z",
            "2018-07-02T22:23:00Z",
            "2018-07-02T22:23:00.1Z",
            "2016-12-31T23:59:60.000000Z",
        ] {
            assert_eq!(
                aws_time(t, "time").unwrap(),
                Timestamp::parse_rfc3339(t).unwrap(),
                "{t}"
            );
        }
        for bad in [
            "2018-02-30T00:00:00.000000Z",
            "2018-07-02T22:23:00.18664xZ",
            "2018-07-02X22:23:00.186641Z",
            "2018-07-02T22:23:00.186641+",
            "yesterday",
            "",
        ] {
            assert_eq!(aws_time(bad, "time").unwrap_err().field(), "time", "{bad}");
        }
    }

    #[test]
    fn lists_serialize_as_arrays() {
        let json = |text: &str, separator, numbers| {
            serde_json::to_string(&List {
                text,
                separator,
                numbers,
            })
            .unwrap()
        };
        assert_eq!(
            json("authenticate,forward", ',', false),
            r#"["authenticate","forward"]"#
        );
        assert_eq!(
            json("10.0.0.1:80 10.0.0.2:80", ' ', false),
            r#"["10.0.0.1:80","10.0.0.2:80"]"#
        );
        assert_eq!(json("200 - 502", ' ', true), "[200,null,502]");
        assert_eq!(json("", ' ', true), "[]");
        assert_eq!(json("a  b ", ' ', false), r#"["a","b"]"#);
    }

    const HTTP: &str = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90 "-" "-" "-""#;

    #[test]
    fn parses_every_field() {
        let r = parse(HTTP).unwrap();
        assert_eq!(r.request_type(), "http");
        assert_eq!(r.elb(), "app/my-loadbalancer/50dc6c495c0c9188");
        assert_eq!(r.text(Field::ClientIp), Some("192.168.131.39"));
        assert_eq!(r.ports, [Some(2817), Some(80)]);
        assert_eq!(r.times[1], 0.001);
        assert_eq!(
            r.text(Field::RequestUrl),
            Some("http://www.example.com:80/")
        );
        assert_eq!(r.text(Field::UserAgent), Some("curl/7.46.0"));
        assert_eq!(r.matched_rule_priority, Some(0));
        assert_eq!(r.text(Field::ConnTraceId), Some("TID_1234abcd5678ef90"));
        assert_eq!(r.text(Field::RequestTransformStatus), None);
        let json = serde_json::to_value(&r).unwrap();
        let mut count = members::CountMembers::default();
        let Ok(()) = r.members(&mut count);
        assert_eq!(json.as_object().unwrap().len(), count.0);
    }

    #[test]
    fn a_record_is_compact() {
        assert!(
            std::mem::size_of::<AlbRecord<'_>>() <= 360,
            "{}",
            std::mem::size_of::<AlbRecord<'_>>()
        );
    }

    #[test]
    fn older_entries_end_early() {
        // Cut the entry after each field from `ssl_protocol` on: every prefix parses.
        let mut f = Cursor::new(HTTP).unwrap();
        for _ in 0..16 {
            f.quoted("skip").unwrap();
        }
        while !f.is_empty() {
            let end = HTTP.len() - f.rest.len();
            assert!(parse(&HTTP[..end]).is_ok(), "{}", &HTTP[..end]);
            f.quoted("skip").unwrap();
        }
        // Before `ssl_protocol` a field is missing.
        let cut = HTTP.find(" - - arn").unwrap();
        assert_eq!(parse(&HTTP[..cut]).unwrap_err().field(), "ssl_cipher");
    }

    #[test]
    fn trailing_fields_are_ignored() {
        let line = format!("{HTTP} \"future\" 42 \"unterminated");
        assert!(parse(&line).is_ok());
        let line = format!("{HTTP}  ");
        assert!(parse(&line).is_ok());
    }

    #[test]
    fn errors_name_the_field() {
        let bad = HTTP.replace("0.001 0.000 200", "0.001 0.000 2x0");
        assert_eq!(parse(&bad).unwrap_err().field(), "elb_status_code");
        let bad = HTTP.replace("2018-07-02T22:22:48.364000Z", "yesterday");
        assert_eq!(parse(&bad).unwrap_err().field(), "request_creation_time");
        let bad = HTTP.replace("\"curl/7.46.0\"", "\"curl/7.46.0");
        assert!(parse(&bad).is_err());
        let bad = HTTP.replace("\"200\"", "\"2OO\"");
        assert_eq!(parse(&bad).unwrap_err().field(), "target_status_code_list");
        assert_eq!(parse("http").unwrap_err().field(), "time");
    }
}
