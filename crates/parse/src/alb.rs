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
//! The hot path makes one pass over the line with `memchr` and allocates nothing unless a
//! quoted field holds a `\"` or `\\` escape.

use std::borrow::Cow;

use logferry_core::Timestamp;
use memchr::{memchr, memrchr};
use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};

use crate::error::ParseError;
use crate::fields::{Fields, dash_none, host_port, opt_f64, parse_u64, rfc3339};

/// One Application Load Balancer access log entry.
///
/// Serializes to one JSON object: `@timestamp` (the entry's `time`), then the fields under AWS's
/// names (`client:port` becomes `client_ip` and `client_port`, `"request"` becomes
/// `request_verb`, `request_url` and `request_proto`). Fields AWS writes as `-`, and fields an
/// older entry does not have, are omitted.
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
#[derive(Debug, Clone, Serialize)]
pub struct AlbRecord<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: Timestamp,
    #[serde(rename = "type")]
    kind: &'a str,
    elb: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_processing_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_processing_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_processing_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    elb_status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    received_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_verb: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_url: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_proto: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_cipher: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssl_protocol: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_group_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain_name: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chosen_cert_arn: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    matched_rule_priority: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_creation_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actions_executed: Option<List<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_url: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_reason: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_port_list: Option<List<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_status_code_list: Option<List<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    classification: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    classification_reason: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conn_trace_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transformed_host: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transformed_uri: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_transform_status: Option<Cow<'a, str>>,
}

impl AlbRecord<'_> {
    /// The entry's `time`: when the load balancer generated the response (for WebSockets,
    /// when the connection closed).
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// `type`: `http`, `https`, `h2`, `grpcs`, `ws` or `wss`.
    pub fn request_type(&self) -> &str {
        self.kind
    }

    /// `elb_status_code`: the status code of the load balancer's response.
    pub fn elb_status_code(&self) -> Option<u16> {
        self.elb_status_code
    }

    /// `target_status_code`: the status code of the target's response, if there was one.
    pub fn target_status_code(&self) -> Option<u16> {
        self.target_status_code
    }
}

/// Parses one ALB access log entry.
pub(crate) fn parse(line: &str) -> Result<AlbRecord<'_>, ParseError> {
    let mut f = Fields::new(trim_line_end(line));
    let kind = f.token("type")?;
    let timestamp = rfc3339(f.token("time")?, "time")?;
    let elb = f.token("elb")?;
    let (client_ip, client_port) = host_port(f.token("client:port")?, "client:port")?;
    let (target_ip, target_port) = host_port(f.token("target:port")?, "target:port")?;
    let request_processing_time = seconds(
        f.token("request_processing_time")?,
        "request_processing_time",
    )?;
    let target_processing_time =
        seconds(f.token("target_processing_time")?, "target_processing_time")?;
    let response_processing_time = seconds(
        f.token("response_processing_time")?,
        "response_processing_time",
    )?;
    let elb_status_code = status_code(f.token("elb_status_code")?, "elb_status_code")?;
    let target_status_code = status_code(f.token("target_status_code")?, "target_status_code")?;
    let received_bytes = f.opt_u64("received_bytes")?;
    let sent_bytes = f.opt_u64("sent_bytes")?;
    let [request_verb, request_url, request_proto] = request_parts(f.quoted("request")?);
    let user_agent = opt_quoted(&mut f, "user_agent")?;
    let ssl_cipher = f.opt_token("ssl_cipher")?;
    let ssl_protocol = f.opt_token("ssl_protocol")?;
    let mut record = AlbRecord {
        timestamp,
        kind,
        elb,
        client_ip,
        client_port,
        target_ip,
        target_port,
        request_processing_time,
        target_processing_time,
        response_processing_time,
        elb_status_code,
        target_status_code,
        received_bytes,
        sent_bytes,
        request_verb,
        request_url,
        request_proto,
        user_agent,
        ssl_cipher,
        ssl_protocol,
        target_group_arn: None,
        trace_id: None,
        domain_name: None,
        chosen_cert_arn: None,
        matched_rule_priority: None,
        request_creation_time: None,
        actions_executed: None,
        redirect_url: None,
        error_reason: None,
        target_port_list: None,
        target_status_code_list: None,
        classification: None,
        classification_reason: None,
        conn_trace_id: None,
        transformed_host: None,
        transformed_uri: None,
        request_transform_status: None,
    };
    parse_appended(&mut f, &mut record)?;
    Ok(record)
}

/// Reads the fields AWS appended after `ssl_protocol`, in order, while the line lasts.
/// Whatever follows the last known field is ignored.
fn parse_appended<'a>(f: &mut Fields<'a>, r: &mut AlbRecord<'a>) -> Result<(), ParseError> {
    macro_rules! next {
        ($field:ident = $value:expr) => {
            if f.is_empty() {
                return Ok(());
            }
            r.$field = $value;
        };
    }
    next!(target_group_arn = f.opt_token("target_group_arn")?);
    next!(trace_id = opt_quoted(f, "trace_id")?);
    next!(domain_name = opt_quoted(f, "domain_name")?);
    next!(chosen_cert_arn = opt_quoted(f, "chosen_cert_arn")?);
    next!(matched_rule_priority = f.opt_i64("matched_rule_priority")?);
    next!(request_creation_time = opt_time(f.token("request_creation_time")?)?);
    next!(actions_executed = opt_list(f, "actions_executed", b',', false)?);
    next!(redirect_url = opt_quoted(f, "redirect_url")?);
    next!(error_reason = opt_quoted(f, "error_reason")?);
    next!(target_port_list = opt_list(f, "target:port_list", b' ', false)?);
    next!(target_status_code_list = opt_list(f, "target_status_code_list", b' ', true)?);
    next!(classification = opt_quoted(f, "classification")?);
    next!(classification_reason = opt_quoted(f, "classification_reason")?);
    next!(conn_trace_id = opt_quoted(f, "conn_trace_id")?);
    next!(transformed_host = opt_quoted(f, "transformed_host")?);
    next!(transformed_uri = opt_quoted(f, "transformed_uri")?);
    next!(request_transform_status = opt_quoted(f, "request_transform_status")?);
    Ok(())
}

fn opt_time(t: &str) -> Result<Option<Timestamp>, ParseError> {
    match dash_none(t) {
        None => Ok(None),
        Some(t) => rfc3339(t, "request_creation_time").map(Some),
    }
}

/// The line without trailing spaces, tabs or a carriage return.
pub(crate) fn trim_line_end(line: &str) -> &str {
    line.trim_end_matches([' ', '\t', '\r'])
}

/// The next field, quoted or not; `-` (quoted or not) is `None`.
pub(crate) fn opt_quoted<'a>(
    f: &mut Fields<'a>,
    field: &'static str,
) -> Result<Option<Cow<'a, str>>, ParseError> {
    let value = f.quoted(field)?;
    Ok(if value == "-" { None } else { Some(value) })
}

/// A list field: `None` for `-`; numeric lists are checked here so that serializing cannot
/// meet a value that is not a number.
fn opt_list<'a>(
    f: &mut Fields<'a>,
    field: &'static str,
    separator: u8,
    numbers: bool,
) -> Result<Option<List<'a>>, ParseError> {
    let Some(text) = opt_quoted(f, field)? else {
        return Ok(None);
    };
    let list = List {
        text,
        separator,
        numbers,
    };
    if numbers
        && !list
            .items()
            .all(|item| item == "-" || parse_u64(item).is_some())
    {
        return Err(ParseError::invalid(
            field,
            "a space-separated list of status codes",
        ));
    }
    Ok(Some(list))
}

/// A list AWS writes in one field (`forward,redirect`, `10.0.0.1:80 10.0.0.2:80`),
/// serialized as a JSON array by walking the field: no allocation. Empty items are skipped;
/// an item that is `-` becomes `null`, keeping the positions of parallel lists aligned.
#[derive(Debug, Clone)]
struct List<'a> {
    text: Cow<'a, str>,
    separator: u8,
    /// Items are status codes: serialized as numbers.
    numbers: bool,
}

impl List<'_> {
    fn items(&self) -> impl Iterator<Item = &str> {
        self.text
            .split(char::from(self.separator))
            .filter(|item| !item.is_empty())
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

/// Splits a request line `VERB URL PROTO` (AWS's `"request"` field) into its parts. The verb
/// is the first word and the protocol the last, so a URL holding spaces stays whole; trailing
/// spaces are ignored, so `- - - ` gives three `None`. Empty parts and `-` are `None`.
pub(crate) fn split_request(t: &str) -> (Option<&str>, Option<&str>, Option<&str>) {
    let t = t.trim_end_matches(' ');
    // The indices come from memchr on an ASCII space: always char boundaries.
    let Some(first) = memchr(b' ', t.as_bytes()) else {
        return (part(t), None, None);
    };
    let (verb, rest) = (&t[..first], &t[first + 1..]);
    match memrchr(b' ', rest.as_bytes()) {
        Some(last) => (part(verb), part(&rest[..last]), part(&rest[last + 1..])),
        None => (part(verb), part(rest), None),
    }
}

/// A part of a request line: `None` when empty or `-`.
fn part(s: &str) -> Option<&str> {
    if s.is_empty() || s == "-" {
        None
    } else {
        Some(s)
    }
}

/// [`split_request`] over a field that may own its text (when it held an escape).
pub(crate) fn request_parts(request: Cow<'_, str>) -> [Option<Cow<'_, str>>; 3] {
    match request {
        Cow::Borrowed(t) => {
            let (verb, url, proto) = split_request(t);
            [
                verb.map(Cow::Borrowed),
                url.map(Cow::Borrowed),
                proto.map(Cow::Borrowed),
            ]
        }
        Cow::Owned(t) => {
            let (verb, url, proto) = split_request(&t);
            let own = |s: &str| Cow::Owned(s.to_owned());
            [verb.map(own), url.map(own), proto.map(own)]
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_request_lines() {
        assert_eq!(
            split_request("GET http://www.example.com:80/ HTTP/1.1"),
            (
                Some("GET"),
                Some("http://www.example.com:80/"),
                Some("HTTP/1.1")
            )
        );
        assert_eq!(split_request("- - - "), (None, None, None));
        assert_eq!(split_request("- - -"), (None, None, None));
        assert_eq!(split_request("-"), (None, None, None));
        assert_eq!(split_request(""), (None, None, None));
        assert_eq!(
            split_request("GET /a b c HTTP/1.1"),
            (Some("GET"), Some("/a b c"), Some("HTTP/1.1"))
        );
        assert_eq!(split_request("GET /"), (Some("GET"), Some("/"), None));
        assert_eq!(
            split_request("- a € HTTP/1.1"),
            (None, Some("a €"), Some("HTTP/1.1"))
        );
    }

    #[test]
    fn owned_request_parts_keep_their_text() {
        let [verb, url, proto] = request_parts(Cow::Owned("GET /\"x\" HTTP/1.1".to_owned()));
        assert_eq!(verb.as_deref(), Some("GET"));
        assert_eq!(url.as_deref(), Some("/\"x\""));
        assert_eq!(proto.as_deref(), Some("HTTP/1.1"));
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
        ] {
            let expected = t.parse::<f64>().unwrap();
            assert_eq!(seconds(t, "f").unwrap(), Some(expected), "{t}");
        }
        assert_eq!(seconds("-", "f").unwrap(), None);
        assert_eq!(seconds("-1", "f").unwrap(), Some(-1.0));
        for bad in ["", "x", ".5x", "1..2", "--1", "NaN", "inf", "1,5"] {
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
    fn lists_serialize_as_arrays() {
        let list = |text: &'static str, separator, numbers| List {
            text: Cow::Borrowed(text),
            separator,
            numbers,
        };
        let json = |l: List<'_>| serde_json::to_string(&l).unwrap();
        assert_eq!(
            json(list("authenticate,forward", b',', false)),
            r#"["authenticate","forward"]"#
        );
        assert_eq!(
            json(list("10.0.0.1:80 10.0.0.2:80", b' ', false)),
            r#"["10.0.0.1:80","10.0.0.2:80"]"#
        );
        assert_eq!(json(list("200 - 502", b' ', true)), "[200,null,502]");
        assert_eq!(json(list("", b' ', true)), "[]");
    }

    #[test]
    fn numeric_lists_are_checked() {
        let mut f = Fields::new(r#""200 x""#);
        let err = opt_list(&mut f, "target_status_code_list", b' ', true).unwrap_err();
        assert_eq!(err.field(), "target_status_code_list");
        let mut f = Fields::new(r#""-""#);
        assert!(
            opt_list(&mut f, "target_status_code_list", b' ', true)
                .unwrap()
                .is_none()
        );
    }

    const HTTP: &str = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90 "-" "-" "-""#;

    #[test]
    fn parses_every_field_without_allocating() {
        let r = parse(HTTP).unwrap();
        assert_eq!(r.kind, "http");
        assert_eq!(r.client_ip, Some("192.168.131.39"));
        assert_eq!(r.target_port, Some(80));
        assert_eq!(r.target_processing_time, Some(0.001));
        assert!(matches!(
            r.request_url,
            Some(Cow::Borrowed("http://www.example.com:80/"))
        ));
        assert!(matches!(r.user_agent, Some(Cow::Borrowed("curl/7.46.0"))));
        assert_eq!(r.matched_rule_priority, Some(0));
        assert!(matches!(
            r.conn_trace_id,
            Some(Cow::Borrowed("TID_1234abcd5678ef90"))
        ));
        assert!(r.request_transform_status.is_none());
    }

    #[test]
    fn older_entries_end_early() {
        // Cut the entry after each field from `ssl_protocol` on: every prefix parses.
        let mut f = Fields::new(HTTP);
        for _ in 0..16 {
            f.quoted("skip").unwrap();
        }
        while !f.is_empty() {
            let end = HTTP.len() - f.rest().len();
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
        assert_eq!(parse("http").unwrap_err().field(), "time");
    }
}
