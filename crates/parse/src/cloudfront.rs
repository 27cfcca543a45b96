//! CloudFront standard access logs (`cloudfront`).
//!
//! A log file is W3C extended log format: tab-separated values, preceded by a `#Version: 1.0`
//! line and a `#Fields: date time x-edge-location ...` line that names the columns, in order.
//! The `#Fields` header sets the layout for the lines that follow it in the same input (a
//! [`crate::LineParser`] keeps it); without a header the 33 fields of AWS's "Log file fields"
//! list are assumed. Standard logging (v2) in W3C format and real-time log field names
//! (`timestamp`, `cs-user-agent`, `c-country`, ...) work the same way, through the header.
//!
//! - `date` and `time` become `@timestamp` (UTC) and are not repeated; without them, a
//!   `timestamp` (Unix seconds, `1607645125.052`) or `timestamp(ms)` column is used.
//! - Field names are AWS's, in `snake_case`: `cs(User-Agent)` becomes `cs_user_agent`,
//!   `x-edge-location` becomes `x_edge_location`. A name this parser does not know is kept, in
//!   `snake_case`, as a string.
//! - Counts (`sc-bytes`, `sc-status`, `c-port`, ...) and durations in seconds (`time-taken`,
//!   `time-to-first-byte`) are JSON numbers; `-` (and an empty value) is omitted.
//! - CloudFront URL-encodes spaces, `%` and other characters in every value. Header values
//!   (`cs(User-Agent)`, `cs(Referer)`, `cs(Cookie)`, `sc-content-type`, ...) are
//!   percent-decoded once, which gives back the header as the viewer sent it;
//!   `cs-uri-stem`, `cs-uri-query` and every other field are kept as logged (decoding a URL
//!   would merge `%2F` with `/` and `%26` with `&`).
//! - Fields after the last column of the layout are ignored; a line with fewer fields than the
//!   layout omits the missing ones.
//!
//! Parsing allocates nothing: the record keeps the line and a reference-counted layout, and
//! re-reads the line when it is serialized (percent-decoding allocates only for a value that
//! holds a `%`).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, LazyLock};

use logferry_core::Timestamp;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::error::ParseError;
use crate::fields::{Fields, opt_f64, opt_u64, parse_u64};
use crate::members::{NamedMembers, SerdeMapMembers, TextMembers, WriteJson};

/// How a column's value is read and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A string, kept as logged.
    Text,
    /// A header value, percent-decoded once.
    Header,
    /// An unsigned integer.
    Count,
    /// A decimal number (seconds).
    Seconds,
    /// `YYYY-MM-DD`, part of `@timestamp`.
    Date,
    /// `HH:MM:SS`, part of `@timestamp`.
    Time,
    /// Unix seconds with a fraction, the `@timestamp`.
    UnixSeconds,
    /// Unix milliseconds, the `@timestamp`.
    UnixMillis,
    /// A second column with the same output name: not written.
    Duplicate,
}

/// Every field name AWS documents for standard logs (legacy and v2) and real-time logs:
/// `(AWS name, output name, kind)`.
const KNOWN: &[(&str, &str, Kind)] = &[
    ("date", "date", Kind::Date),
    ("time", "time", Kind::Time),
    ("x-edge-location", "x_edge_location", Kind::Text),
    ("sc-bytes", "sc_bytes", Kind::Count),
    ("c-ip", "c_ip", Kind::Text),
    ("cs-method", "cs_method", Kind::Text),
    ("cs(Host)", "cs_host", Kind::Text),
    ("cs-uri-stem", "cs_uri_stem", Kind::Text),
    ("sc-status", "sc_status", Kind::Count),
    ("cs(Referer)", "cs_referer", Kind::Header),
    ("cs(User-Agent)", "cs_user_agent", Kind::Header),
    ("cs-uri-query", "cs_uri_query", Kind::Text),
    ("cs(Cookie)", "cs_cookie", Kind::Header),
    ("x-edge-result-type", "x_edge_result_type", Kind::Text),
    ("x-edge-request-id", "x_edge_request_id", Kind::Text),
    ("x-host-header", "x_host_header", Kind::Text),
    ("cs-protocol", "cs_protocol", Kind::Text),
    ("cs-bytes", "cs_bytes", Kind::Count),
    ("time-taken", "time_taken", Kind::Seconds),
    ("x-forwarded-for", "x_forwarded_for", Kind::Text),
    ("ssl-protocol", "ssl_protocol", Kind::Text),
    ("ssl-cipher", "ssl_cipher", Kind::Text),
    (
        "x-edge-response-result-type",
        "x_edge_response_result_type",
        Kind::Text,
    ),
    ("cs-protocol-version", "cs_protocol_version", Kind::Text),
    ("fle-status", "fle_status", Kind::Text),
    ("fle-encrypted-fields", "fle_encrypted_fields", Kind::Count),
    ("c-port", "c_port", Kind::Count),
    ("time-to-first-byte", "time_to_first_byte", Kind::Seconds),
    (
        "x-edge-detailed-result-type",
        "x_edge_detailed_result_type",
        Kind::Text,
    ),
    ("sc-content-type", "sc_content_type", Kind::Header),
    ("sc-content-len", "sc_content_len", Kind::Count),
    ("sc-range-start", "sc_range_start", Kind::Count),
    ("sc-range-end", "sc_range_end", Kind::Count),
    // Real-time logs, and standard logging (v2) when it selects real-time fields.
    ("timestamp", "timestamp", Kind::UnixSeconds),
    ("timestamp(ms)", "timestamp_ms", Kind::UnixMillis),
    ("cs-host", "cs_host", Kind::Text),
    ("cs-referer", "cs_referer", Kind::Header),
    ("cs-user-agent", "cs_user_agent", Kind::Header),
    ("cs-cookie", "cs_cookie", Kind::Header),
    ("c-ip-version", "c_ip_version", Kind::Text),
    ("c-country", "c_country", Kind::Text),
    ("cs-accept-encoding", "cs_accept_encoding", Kind::Header),
    ("cs-accept", "cs_accept", Kind::Header),
    (
        "cache-behavior-path-pattern",
        "cache_behavior_path_pattern",
        Kind::Text,
    ),
    ("cs-headers", "cs_headers", Kind::Header),
    ("cs-header-names", "cs_header_names", Kind::Header),
    ("cs-headers-count", "cs_headers_count", Kind::Count),
    ("origin-fbl", "origin_fbl", Kind::Seconds),
    ("origin-lbl", "origin_lbl", Kind::Seconds),
    ("asn", "asn", Kind::Count),
];

/// The 33 fields of a standard log, in order, used until a `#Fields` header says otherwise.
const STANDARD_FIELDS: &[&str] = &[
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "cs-uri-query",
    "cs(Cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
];

static STANDARD_LAYOUT: LazyLock<Arc<Layout>> =
    LazyLock::new(|| Arc::new(Layout::from_names(STANDARD_FIELDS.iter().copied())));

/// One column of a layout.
#[derive(Debug)]
struct Column {
    /// AWS's name when the parser knows it (errors name it), else `"#Fields"` (never used:
    /// unknown columns are strings and cannot fail).
    aws: &'static str,
    /// The output name, `snake_case`.
    name: Cow<'static, str>,
    kind: Kind,
}

/// Where `@timestamp` comes from.
#[derive(Debug, Clone, Copy)]
enum TimeSource {
    DateTime {
        date: usize,
        time: usize,
    },
    UnixSeconds(usize),
    UnixMillis(usize),
    /// The layout has no time: every line fails, naming this field.
    Missing(&'static str),
}

/// The columns of one input, from its `#Fields` header (or the standard 33).
pub(crate) struct Layout {
    columns: Vec<Column>,
    time: TimeSource,
}

impl fmt::Debug for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.columns.iter().map(|c| &c.name))
            .finish()
    }
}

impl Layout {
    fn from_names<'n>(names: impl Iterator<Item = &'n str>) -> Layout {
        let mut columns: Vec<Column> = names
            .enumerate()
            .map(|(i, name)| match known(name) {
                Some(&(aws, out, kind)) => Column {
                    aws,
                    name: Cow::Borrowed(out),
                    kind,
                },
                None => {
                    let mut out = snake_case(name);
                    if out.is_empty() {
                        out = format!("field_{}", i + 1);
                    }
                    Column {
                        aws: "#Fields",
                        name: Cow::Owned(out),
                        kind: Kind::Text,
                    }
                }
            })
            .collect();
        let mut seen = HashSet::with_capacity(columns.len());
        for column in &mut columns {
            if !seen.insert(column.name.clone()) {
                column.kind = Kind::Duplicate;
            }
        }
        let first = |kind: Kind| columns.iter().position(|c| c.kind == kind);
        let time = match (first(Kind::Date), first(Kind::Time)) {
            (Some(date), Some(time)) => TimeSource::DateTime { date, time },
            (date, _) => match (first(Kind::UnixSeconds), first(Kind::UnixMillis)) {
                (Some(i), _) => TimeSource::UnixSeconds(i),
                (None, Some(i)) => TimeSource::UnixMillis(i),
                (None, None) => TimeSource::Missing(if date.is_none() { "date" } else { "time" }),
            },
        };
        // Time columns that do not make `@timestamp` (a duplicate, a lone `date`, `timestamp`
        // next to `date` and `time`) are ordinary fields.
        let used = match time {
            TimeSource::DateTime { date, time } => [Some(date), Some(time)],
            TimeSource::UnixSeconds(i) | TimeSource::UnixMillis(i) => [Some(i), None],
            TimeSource::Missing(_) => [None, None],
        };
        for (i, column) in columns.iter_mut().enumerate() {
            if used.contains(&Some(i)) {
                continue;
            }
            column.kind = match column.kind {
                Kind::Date | Kind::Time => Kind::Text,
                Kind::UnixSeconds => Kind::Seconds,
                Kind::UnixMillis => Kind::Count,
                other => other,
            };
        }
        Layout { columns, time }
    }

    /// Reads a `#Fields:` header (what follows the colon): names separated by spaces.
    fn from_header(names: &str) -> Result<Layout, ParseError> {
        if names.split_ascii_whitespace().next().is_none() {
            return Err(ParseError::invalid("#Fields", "at least one field name"));
        }
        Ok(Layout::from_names(names.split_ascii_whitespace()))
    }
}

fn known(name: &str) -> Option<&'static (&'static str, &'static str, Kind)> {
    KNOWN.iter().find(|(aws, _, _)| *aws == name).or_else(|| {
        KNOWN
            .iter()
            .find(|(aws, _, _)| aws.eq_ignore_ascii_case(name))
    })
}

/// `cs(User-Agent)` → `cs_user_agent`, `DistributionId` → `distribution_id`: runs of
/// non-alphanumeric characters become one `_`, a lower-to-upper case change starts a word,
/// everything is lowercased.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut separate = false;
    let mut after_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            separate = true;
            after_lower = false;
            continue;
        }
        if (separate || (after_lower && c.is_uppercase())) && !out.is_empty() {
            out.push('_');
        }
        separate = false;
        after_lower = c.is_lowercase() || c.is_numeric();
        out.extend(c.to_lowercase());
    }
    out
}

/// The layout of the input being read: set by its `#Fields` header.
#[derive(Debug)]
pub(crate) struct CloudFrontState {
    layout: Arc<Layout>,
}

impl Default for CloudFrontState {
    fn default() -> Self {
        CloudFrontState {
            layout: Arc::clone(&STANDARD_LAYOUT),
        }
    }
}

/// One CloudFront standard (or real-time) access log entry.
///
/// Serializes to one JSON object: `@timestamp` (from `date` and `time`), then every other
/// field of the layout, in its order, under AWS's name in `snake_case`. Fields logged as `-`
/// are omitted.
///
/// ```
/// use logferry_parse::{Format, FormatOptions};
///
/// let format = Format::new("cloudfront", &FormatOptions::new()).unwrap();
/// let mut parser = format.line_parser();
/// let line = "2019-12-13\t22:37:02\tSEA19-C2\t900\t192.0.2.200\tGET\td111111abcdef8.cloudfront.net\t/\t502\t-\tcurl/7.55.1\t-\t-\tError\tkBkDzGnceVtWHqSCqBUqtA_cEs2T3tFUBbnBNkB9El_uVRhHgcZfcw==\twww.example.com\thttp\t387\t0.103\t-\t-\t-\tError\tHTTP/1.1\t-\t-\t12644\t0.103\tOriginDnsError\ttext/html\t507\t-\t-";
/// let record = parser.parse_line(line).unwrap().unwrap();
/// let json = serde_json::to_value(&record).unwrap();
/// assert_eq!(json["@timestamp"], "2019-12-13T22:37:02Z");
/// assert_eq!(json["sc_status"], 502);
/// assert_eq!(json["time_taken"], 0.103);
/// assert_eq!(json["cs_user_agent"], "curl/7.55.1");
/// assert!(json.get("cs_referer").is_none());
/// ```
#[derive(Debug, Clone)]
pub struct CloudFrontRecord<'a> {
    timestamp: Timestamp,
    layout: Arc<Layout>,
    line: &'a str,
}

impl<'a> CloudFrontRecord<'a> {
    /// The event time: `date` and `time` (UTC).
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The value of a field as logged (not percent-decoded), by its output name
    /// (`cs_user_agent`) or AWS's name (`cs(User-Agent)`); `None` when the layout has no such
    /// field or the entry logs it as `-`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.layout
            .columns
            .iter()
            .zip(values(self.line))
            .find(|(c, _)| c.name == name || (c.aws == name && c.aws != "#Fields"))
            .and_then(|(_, v)| present(v))
    }
}

/// The tab-separated values of a line.
fn values(line: &str) -> impl Iterator<Item = &str> {
    let mut fields = Fields::with_delimiter(line, b'\t');
    std::iter::from_fn(move || fields.token("").ok())
}

/// `None` for `-` (AWS's "absent") and for an empty value.
fn present(v: &str) -> Option<&str> {
    if v == "-" || v.is_empty() {
        None
    } else {
        Some(v)
    }
}

/// Parses one line. Header lines (`#Version`, `#Fields`, any `#` comment) give `Ok(None)`;
/// `#Fields` sets the layout of the following lines.
pub(crate) fn parse_line<'a>(
    state: &mut CloudFrontState,
    line: &'a str,
) -> Result<Option<CloudFrontRecord<'a>>, ParseError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    // A file written by a Windows tool may start with a byte order mark.
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    if let Some(comment) = line.strip_prefix('#') {
        if let Some(names) = comment.strip_prefix("Fields:") {
            state.layout = Arc::new(Layout::from_header(names)?);
        }
        return Ok(None);
    }
    if line.trim().is_empty() {
        return Ok(None);
    }
    let layout = &state.layout;
    let mut date = None;
    let mut time = None;
    for (column, v) in layout.columns.iter().zip(values(line)) {
        match column.kind {
            Kind::Text | Kind::Header | Kind::Duplicate => {}
            Kind::Count => {
                if present(v).is_some() {
                    opt_u64(v, column.aws)?;
                }
            }
            Kind::Seconds => {
                if present(v).is_some() {
                    opt_f64(v, column.aws)?;
                }
            }
            Kind::Date | Kind::UnixSeconds | Kind::UnixMillis => date = Some(v),
            Kind::Time => time = Some(v),
        }
    }
    let timestamp = match layout.time {
        TimeSource::DateTime { .. } => {
            let date = date.ok_or_else(|| ParseError::missing("date"))?;
            let time = time.ok_or_else(|| ParseError::missing("time"))?;
            date_time(date, time)?
        }
        TimeSource::UnixSeconds(_) => {
            let t = date.ok_or_else(|| ParseError::missing("timestamp"))?;
            unix_seconds(t).ok_or_else(|| ParseError::invalid("timestamp", "Unix seconds"))?
        }
        TimeSource::UnixMillis(_) => {
            let t = date.ok_or_else(|| ParseError::missing("timestamp(ms)"))?;
            parse_u64(t)
                .and_then(|ms| i64::try_from(ms).ok())
                .and_then(Timestamp::from_unix_millis)
                .ok_or_else(|| ParseError::invalid("timestamp(ms)", "Unix milliseconds"))?
        }
        TimeSource::Missing(field) => return Err(ParseError::missing(field)),
    };
    Ok(Some(CloudFrontRecord {
        timestamp,
        layout: Arc::clone(layout),
        line,
    }))
}

/// `YYYY-MM-DD` and `HH:MM:SS[.fraction]`, UTC.
fn date_time(date: &str, time: &str) -> Result<Timestamp, ParseError> {
    let d = date.as_bytes();
    let (year, month, day) = match d {
        [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] => (
            num(&[*y0, *y1, *y2, *y3]),
            num(&[*m0, *m1]),
            num(&[*d0, *d1]),
        ),
        _ => (None, None, None),
    };
    let (Some(year), Some(month), Some(day)) = (year, month, day) else {
        return Err(ParseError::invalid("date", "a date YYYY-MM-DD"));
    };
    let bad_time = || ParseError::invalid("time", "a time HH:MM:SS");
    let t = time.as_bytes();
    let (hms, fraction) = t.split_at_checked(8).ok_or_else(bad_time)?;
    let (hour, minute, second) = match hms {
        [h0, h1, b':', m0, m1, b':', s0, s1] => {
            (num(&[*h0, *h1]), num(&[*m0, *m1]), num(&[*s0, *s1]))
        }
        _ => (None, None, None),
    };
    let (Some(hour @ 0..=23), Some(minute @ 0..=59), Some(second @ 0..=60)) =
        (hour, minute, second)
    else {
        return Err(bad_time());
    };
    let nanos = match fraction {
        [] => 0,
        [b'.', digits @ ..] => nanos(digits).ok_or_else(bad_time)?,
        _ => return Err(bad_time()),
    };
    Timestamp::from_civil(i64::from(year), month, day, hour, minute, second, nanos)
        .ok_or_else(|| ParseError::invalid("date", "a valid date and time"))
}

/// Unix seconds with an optional fraction (`1607645125.052`), read exactly.
fn unix_seconds(t: &str) -> Option<Timestamp> {
    let (whole, fraction) = match t.split_once('.') {
        Some((whole, fraction)) => (whole, nanos(fraction.as_bytes())?),
        None => (t, 0),
    };
    Timestamp::from_unix(i64::try_from(parse_u64(whole)?).ok()?, fraction)
}

/// 1 to 9 digits after the decimal point, as nanoseconds.
fn nanos(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let mut v = 0u32;
    for i in 0..9 {
        let d = match digits.get(i) {
            Some(c) if c.is_ascii_digit() => u32::from(c - b'0'),
            Some(_) => return None,
            None => 0,
        };
        v = v * 10 + d;
    }
    Some(v)
}

/// ASCII digits as a number (at most 4 digits here).
fn num(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |v, c| {
        c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
    })
}

/// Decodes `%XX` escapes once; a `%` not followed by two hex digits stays as is. Borrows when
/// there is no `%`; bytes that do not form UTF-8 become U+FFFD.
fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%'
            && let (Some(hi), Some(lo)) = (
                b.get(i + 1).and_then(|h| hex(*h)),
                b.get(i + 2).and_then(|l| hex(*l)),
            )
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(text) => Cow::Owned(text),
        Err(err) => Cow::Owned(String::from_utf8_lossy(err.as_bytes()).into_owned()),
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl CloudFrontRecord<'_> {
    /// The JSON members, in order (see the type's documentation).
    fn members<M: NamedMembers>(&self, out: &mut M) -> Result<(), M::Error> {
        /// One member under the column's name: a literal of this parser (a known field) or a
        /// name made from the `#Fields` header (a field it does not know).
        fn member<M: NamedMembers, T: WriteJson + ?Sized>(
            out: &mut M,
            column: &Column,
            value: &T,
        ) -> Result<(), M::Error> {
            match &column.name {
                Cow::Borrowed(name) => out.member(name, value),
                Cow::Owned(name) => out.named_member(name, value),
            }
        }
        out.member("@timestamp", &self.timestamp)?;
        for (column, v) in self.layout.columns.iter().zip(values(self.line)) {
            let Some(v) = present(v) else { continue };
            match column.kind {
                Kind::Text => member(out, column, v)?,
                Kind::Header => member(out, column, &*percent_decode(v))?,
                // Checked when the line was parsed; the fallbacks cannot happen.
                Kind::Count => match parse_u64(v) {
                    Some(n) => member(out, column, &n)?,
                    None => member(out, column, v)?,
                },
                Kind::Seconds => match opt_f64(v, "") {
                    Ok(Some(n)) => member(out, column, &n)?,
                    _ => member(out, column, v)?,
                },
                Kind::Date
                | Kind::Time
                | Kind::UnixSeconds
                | Kind::UnixMillis
                | Kind::Duplicate => {}
            }
        }
        Ok(())
    }

    /// Appends the record's JSON object to `out`: the text of its `Serialize` through
    /// serde_json, written directly.
    pub(crate) fn write_json_str(&self, out: &mut String) {
        let mut members = TextMembers::begin(out);
        let Ok(()) = self.members(&mut members);
        members.end();
    }
}

impl Serialize for CloudFrontRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = SerdeMapMembers(serializer.serialize_map(None)?);
        self.members(&mut out)?;
        out.0.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// serde_json's text for `record`, after checking that the direct writer gives the same.
    fn json_text(record: &CloudFrontRecord<'_>) -> String {
        let text = serde_json::to_string(record).unwrap();
        let mut fast = String::new();
        record.write_json_str(&mut fast);
        assert_eq!(fast, text);
        text
    }

    fn parse_with(state: &mut CloudFrontState, line: &str) -> Option<Value> {
        parse_line(state, line)
            .unwrap()
            .map(|r| serde_json::from_str(&json_text(&r)).unwrap())
    }

    #[test]
    fn standard_layout_has_the_33_documented_fields() {
        assert_eq!(STANDARD_LAYOUT.columns.len(), 33);
        assert!(STANDARD_LAYOUT.columns.iter().all(|c| c.aws != "#Fields"));
        assert!(matches!(
            STANDARD_LAYOUT.time,
            TimeSource::DateTime { date: 0, time: 1 }
        ));
    }

    #[test]
    fn every_known_name_is_its_snake_case() {
        for (aws, out, _) in KNOWN {
            assert_eq!(snake_case(aws), *out, "{aws}");
        }
        assert_eq!(snake_case("DistributionId"), "distribution_id");
        assert_eq!(snake_case("x-My--Field_"), "x_my_field");
        assert_eq!(snake_case("()"), "");
    }

    #[test]
    fn decodes_percent_escapes_once() {
        assert!(matches!(
            percent_decode("curl/7.55.1"),
            Cow::Borrowed("curl/7.55.1")
        ));
        assert_eq!(percent_decode("Mozilla/5.0%20(X11)"), "Mozilla/5.0 (X11)");
        assert_eq!(percent_decode("a%2520b"), "a%20b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("caf%C3%A9"), "café");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
    }

    #[test]
    fn reads_dates_times_and_unix_seconds() {
        let ts = date_time("2019-12-04", "21:02:31").unwrap();
        assert_eq!(ts.to_string(), "2019-12-04T21:02:31Z");
        let ts = date_time("2019-12-04", "21:02:31.25").unwrap();
        assert_eq!(ts.to_string(), "2019-12-04T21:02:31.250Z");
        assert_eq!(
            date_time("2019-13-04", "21:02:31").unwrap_err().field(),
            "date"
        );
        assert_eq!(
            date_time("2019/12/04", "21:02:31").unwrap_err().field(),
            "date"
        );
        assert_eq!(
            date_time("2019-12-04", "21:02").unwrap_err().field(),
            "time"
        );
        assert_eq!(
            date_time("2019-12-04", "21:02:31Z").unwrap_err().field(),
            "time"
        );
        assert_eq!(
            date_time("2019-12-04", "25:02:31").unwrap_err().field(),
            "time"
        );
        assert_eq!(
            date_time("2019-02-30", "05:02:31").unwrap_err().field(),
            "date"
        );
        let ts = unix_seconds("1607645125.052").unwrap();
        assert_eq!(ts.to_string(), "2020-12-11T00:05:25.052Z");
        assert_eq!(
            unix_seconds("1607645125").unwrap().to_string(),
            "2020-12-11T00:05:25Z"
        );
        assert!(unix_seconds("1607645125.").is_none());
        assert!(unix_seconds("-1").is_none());
        assert!(unix_seconds("99999999999999999999").is_none());
    }

    #[test]
    fn header_sets_the_layout_and_unknown_fields_are_strings() {
        let mut state = CloudFrontState::default();
        assert_eq!(parse_with(&mut state, "\u{feff}#Version: 1.0"), None);
        assert_eq!(
            parse_with(
                &mut state,
                "#Fields: time date sc-status My-Header(X) sc-status"
            ),
            None
        );
        // A repeated name is written once (the first); values past the layout are ignored.
        let v = parse_with(&mut state, "01:02:03\t2020-01-02\t200\ta%20b\t404\textra").unwrap();
        assert_eq!(
            v,
            json!({
                "@timestamp": "2020-01-02T01:02:03Z",
                "sc_status": 200,
                "my_header_x": "a%20b",
            })
        );
        // The order is the header's.
        let record = parse_line(&mut state, "01:02:03\t2020-01-02\t7\tx\t1")
            .unwrap()
            .unwrap();
        let text = json_text(&record);
        assert_eq!(
            text,
            r#"{"@timestamp":"2020-01-02T01:02:03Z","sc_status":7,"my_header_x":"x"}"#
        );
        assert_eq!(
            parse_line(&mut state, "#Fields:   ").unwrap_err().field(),
            "#Fields"
        );
    }

    #[test]
    fn real_time_fields_give_the_timestamp() {
        let mut state = CloudFrontState::default();
        parse_line(
            &mut state,
            "#Fields: timestamp c-ip sc-status cs-user-agent origin-fbl asn",
        )
        .unwrap();
        let v = parse_with(
            &mut state,
            "1607645125.052\t192.0.2.1\t200\tcurl/8%200\t0.5\t16509",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "@timestamp": "2020-12-11T00:05:25.052Z",
                "c_ip": "192.0.2.1",
                "sc_status": 200,
                "cs_user_agent": "curl/8 0",
                "origin_fbl": 0.5,
                "asn": 16509,
            })
        );
        parse_line(&mut state, "#Fields: sc-status timestamp(ms)").unwrap();
        let v = parse_with(&mut state, "200\t1607645125052").unwrap();
        assert_eq!(
            v,
            json!({"@timestamp": "2020-12-11T00:05:25.052Z", "sc_status": 200})
        );
        // `timestamp` next to `date` and `time` is an ordinary number.
        parse_line(&mut state, "#Fields: date time timestamp").unwrap();
        let v = parse_with(&mut state, "2020-12-11\t00:05:25\t1607645125.052").unwrap();
        assert_eq!(
            v,
            json!({"@timestamp": "2020-12-11T00:05:25Z", "timestamp": 1607645125.052})
        );
    }

    #[test]
    fn a_layout_without_a_time_fails_every_line() {
        let mut state = CloudFrontState::default();
        parse_line(&mut state, "#Fields: c-ip sc-status").unwrap();
        assert_eq!(
            parse_line(&mut state, "1.2.3.4\t200").unwrap_err().field(),
            "date"
        );
        parse_line(&mut state, "#Fields: date c-ip").unwrap();
        assert_eq!(
            parse_line(&mut state, "2020-01-01\t1.2.3.4")
                .unwrap_err()
                .field(),
            "time"
        );
    }

    #[test]
    fn numbers_are_checked_when_parsing() {
        let mut state = CloudFrontState::default();
        parse_line(&mut state, "#Fields: date time sc-bytes time-taken").unwrap();
        let err = parse_line(&mut state, "2020-01-01\t00:00:00\tmany\t0.1").unwrap_err();
        assert_eq!(err.field(), "sc-bytes");
        let err = parse_line(&mut state, "2020-01-01\t00:00:00\t1\tslow").unwrap_err();
        assert_eq!(err.field(), "time-taken");
        let v = parse_with(&mut state, "2020-01-01\t00:00:00\t-\t").unwrap();
        assert_eq!(v, json!({"@timestamp": "2020-01-01T00:00:00Z"}));
        assert_eq!(
            parse_line(&mut state, "2020-01-01").unwrap_err().field(),
            "time"
        );
    }

    #[test]
    fn get_returns_raw_values() {
        let mut state = CloudFrontState::default();
        parse_line(&mut state, "#Fields: date time cs(User-Agent) x-thing").unwrap();
        let r = parse_line(&mut state, "2020-01-01\t00:00:00\ta%20b\t-")
            .unwrap()
            .unwrap();
        assert_eq!(r.get("cs_user_agent"), Some("a%20b"));
        assert_eq!(r.get("cs(User-Agent)"), Some("a%20b"));
        assert_eq!(r.get("x_thing"), None);
        assert_eq!(r.get("#Fields"), None);
        assert_eq!(r.get("nope"), None);
    }
}
