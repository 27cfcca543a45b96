//! Syslog messages (`syslog`): RFC 5424 and RFC 3164 (BSD syslog as rsyslog, journald and
//! `logger` write it), told apart line by line.
//!
//! The output is shaped like fluentd's `in_syslog` events so that existing consumers keep
//! working: `facility` and `severity` use fluentd's names (`FACILITY_MAP`, `SEVERITY_MAP`),
//! `priority` is the PRI number, and the header fields are `host`, `ident`, `pid`, `msgid`,
//! `structured_data`, `message` and `version`; absent values are omitted.
//!
//! Detection: after `<PRI>`, a version number, a space and either `-` or a date (`YYYY-`) mean
//! RFC 5424, parsed strictly (a malformed timestamp or structured data is an error). Anything
//! else is RFC 3164, parsed leniently the way RFC 3164 relays and rsyslog do: what cannot be
//! read as a header is kept as `message`. Only a malformed `<PRI>` is an error there; a line
//! without `<PRI>` gets RFC 3164's default, `user.notice` (13).
//!
//! Nothing is copied: every field borrows from the line, and structured data is kept as the
//! validated slice of the line and walked again when serialized, unescaping values on the fly.

mod rfc3164;
mod rfc5424;
mod sd;

use logferry_core::Timestamp;
use serde::ser::{Serialize, Serializer};

use crate::error::ParseError;
use crate::members::{self, MemberList, Members, present_members};

use sd::StructuredData;

/// Facility names, by facility number (fluentd's `in_syslog` `FACILITY_MAP`).
const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "at", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Severity names, by severity number (fluentd's `in_syslog` `SEVERITY_MAP`).
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
];

/// The PRI RFC 3164 assigns to a message that has none: `user.notice`.
const DEFAULT_PRI: u8 = 13;

/// Highest valid PRI: facility 23 (`local7`), severity 7 (`debug`).
const MAX_PRI: u8 = 191;

/// One syslog message, RFC 5424 or RFC 3164. Serializes to one JSON object: `@timestamp`,
/// `facility`, `severity`, `priority`, then `host`, `ident`, `pid`, `msgid`,
/// `structured_data`, `message` and `version` when the message has them.
///
/// ```
/// use logferry_parse::{Format, FormatOptions};
///
/// let format = Format::new("syslog", &FormatOptions::new()).unwrap();
/// let line = r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event"#;
/// let record = format.line_parser().parse_line(line).unwrap().unwrap();
/// let json = serde_json::to_value(&record).unwrap();
/// assert_eq!(json["@timestamp"], "2003-10-11T22:14:15.003Z");
/// assert_eq!(json["facility"], "local4");
/// assert_eq!(json["severity"], "notice");
/// assert_eq!(json["ident"], "evntslog");
/// assert_eq!(json["structured_data"]["exampleSDID@32473"]["eventSource"], "Application");
/// ```
#[derive(Debug, Clone)]
pub struct SyslogRecord<'a> {
    timestamp: Timestamp,
    facility: &'static str,
    severity: &'static str,
    priority: u8,
    host: Option<&'a str>,
    ident: Option<&'a str>,
    pid: Option<&'a str>,
    msgid: Option<&'a str>,
    structured_data: Option<StructuredData<'a>>,
    message: Option<&'a str>,
    version: Option<u8>,
}

impl<'a> SyslogRecord<'a> {
    /// A record with only a PRI and a time; the parsers fill in the rest.
    fn new(pri: u8, timestamp: Timestamp) -> SyslogRecord<'a> {
        let pri = pri.min(MAX_PRI);
        SyslogRecord {
            timestamp,
            facility: FACILITIES[usize::from(pri >> 3)],
            severity: SEVERITIES[usize::from(pri & 7)],
            priority: pri,
            host: None,
            ident: None,
            pid: None,
            msgid: None,
            structured_data: None,
            message: None,
            version: None,
        }
    }

    /// The event time (`@timestamp`): the message's own time, or the time it was parsed when
    /// the message has none (RFC 5424 `-`, or an RFC 3164 line without a timestamp).
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The PRI value, `facility * 8 + severity` (13 when the line had no `<PRI>`).
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// The facility's name, as fluentd names it (`kern`, `user`, ..., `local7`).
    pub fn facility(&self) -> &'static str {
        self.facility
    }

    /// The severity's name, as fluentd names it (`emerg`, `alert`, `crit`, `err`, `warn`,
    /// `notice`, `info`, `debug`).
    pub fn severity(&self) -> &'static str {
        self.severity
    }

    /// The HOSTNAME, if the message has one.
    pub fn host(&self) -> Option<&'a str> {
        self.host
    }

    /// The program: the RFC 3164 TAG or the RFC 5424 APP-NAME.
    pub fn ident(&self) -> Option<&'a str> {
        self.ident
    }

    /// The message text (MSG), without RFC 5424's UTF-8 byte order mark.
    pub fn message(&self) -> Option<&'a str> {
        self.message
    }
}

impl MemberList for SyslogRecord<'_> {
    /// The JSON members, in order (see the type's documentation).
    fn members<M: Members>(&self, out: &mut M) -> Result<(), M::Error> {
        out.member("@timestamp", &self.timestamp)?;
        out.member("facility", self.facility)?;
        out.member("severity", self.severity)?;
        out.member("priority", &self.priority)?;
        present_members!(
            out,
            self,
            host,
            ident,
            pid,
            msgid,
            structured_data,
            message,
            version
        );
        Ok(())
    }
}

impl Serialize for SyslogRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        members::serialize_struct(self, "SyslogRecord", serializer)
    }
}

/// Parses one syslog line, RFC 5424 or RFC 3164; times that need "now" use the system clock.
pub(crate) fn parse(line: &str) -> Result<SyslogRecord<'_>, ParseError> {
    parse_at(line, Timestamp::now)
}

/// [`parse`] with a clock: `now` is called at most once, for RFC 3164 lines (to find the
/// year) and for messages without a time.
pub(crate) fn parse_at(
    line: &str,
    now: impl FnOnce() -> Timestamp,
) -> Result<SyslogRecord<'_>, ParseError> {
    let Some((pri, rest)) = pri(line)? else {
        return Ok(rfc3164::parse(DEFAULT_PRI, line, now));
    };
    match rfc5424_version(rest) {
        Some((1, header)) => rfc5424::parse(pri, header, now),
        Some(_) => Err(ParseError::invalid("version", "1")),
        None => Ok(rfc3164::parse(pri, rest, now)),
    }
}

/// Reads `<PRI>` at the start of the line: `None` when the line does not start with `<`,
/// an error when it does but `<0>`..`<191>` does not follow. Returns the PRI and the rest.
fn pri(line: &str) -> Result<Option<(u8, &str)>, ParseError> {
    let Some(inner) = line.strip_prefix('<') else {
        return Ok(None);
    };
    let b = inner.as_bytes();
    let digits = b.iter().take(4).take_while(|c| c.is_ascii_digit()).count();
    let valid = (1..=3).contains(&digits) && b.get(digits) == Some(&b'>');
    let value = b[..digits]
        .iter()
        .fold(0u32, |v, &c| v * 10 + u32::from(c - b'0'));
    match u8::try_from(value) {
        Ok(pri) if valid && pri <= MAX_PRI => Ok(Some((pri, &inner[digits + 1..]))),
        _ => Err(ParseError::invalid(
            "pri",
            "<0> to <191> at the start of the line",
        )),
    }
}

/// RFC 5424's `VERSION SP` when it is followed by what starts a 5424 TIMESTAMP (`-` or
/// `YYYY-`): the version number and the text from the TIMESTAMP on.
fn rfc5424_version(rest: &str) -> Option<(u32, &str)> {
    let b = rest.as_bytes();
    let digits = b.iter().take(4).take_while(|c| c.is_ascii_digit()).count();
    if !(1..=3).contains(&digits) || b.get(digits) != Some(&b' ') {
        return None;
    }
    let header = &rest[digits + 1..];
    let h = header.as_bytes();
    let nil = h.first() == Some(&b'-') && matches!(h.get(1), None | Some(b' '));
    let date = h.len() > 4 && h[..4].iter().all(u8::is_ascii_digit) && h[4] == b'-';
    if !(nil || date) {
        return None;
    }
    let version = b[..digits]
        .iter()
        .fold(0u32, |v, &c| v * 10 + u32::from(c - b'0'));
    Some((version, header))
}

/// `None` for an empty message.
fn non_empty(s: &str) -> Option<&str> {
    if s.is_empty() { None } else { Some(s) }
}

/// The record's JSON through serde_json, after checking that the direct writer gives the same
/// text.
#[cfg(test)]
fn checked_json(record: &SyslogRecord<'_>) -> serde_json::Value {
    let text = serde_json::to_string(record).unwrap();
    let mut fast = String::new();
    record.write_json_str(&mut fast);
    assert_eq!(fast, text);
    serde_json::from_str(&text).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse_rfc3339("2024-03-15T12:00:00Z").unwrap()
    }

    fn json(line: &str) -> serde_json::Value {
        checked_json(&parse_at(line, now).unwrap())
    }

    #[test]
    fn reads_pri() {
        assert_eq!(pri("<0>x").unwrap(), Some((0, "x")));
        assert_eq!(pri("<191>").unwrap(), Some((191, "")));
        assert_eq!(pri("<013>a").unwrap(), Some((13, "a")));
        assert_eq!(pri("no pri").unwrap(), None);
        for bad in [
            "<", "<>", "<192>", "<999>", "<1000>", "<13", "<1a>", "<-1>", "<0013>",
        ] {
            assert_eq!(pri(bad).unwrap_err().field(), "pri", "{bad}");
        }
    }

    #[test]
    fn names_facility_and_severity_like_fluentd() {
        let r = parse_at("<0>x", now).unwrap();
        assert_eq!(
            (r.facility(), r.severity(), r.priority()),
            ("kern", "emerg", 0)
        );
        let r = parse_at("<191>x", now).unwrap();
        assert_eq!((r.facility(), r.severity()), ("local7", "debug"));
        let r = parse_at("<108>x", now).unwrap();
        assert_eq!((r.facility(), r.severity()), ("audit", "warn"));
        let r = parse_at("<123>x", now).unwrap();
        assert_eq!((r.facility(), r.severity()), ("at", "err"));
        let r = parse_at("no pri at all", now).unwrap();
        assert_eq!(
            (r.facility(), r.severity(), r.priority()),
            ("user", "notice", 13)
        );
    }

    #[test]
    fn detects_rfc5424() {
        assert_eq!(rfc5424_version("1 - h"), Some((1, "- h")));
        assert_eq!(rfc5424_version("1 -"), Some((1, "-")));
        assert_eq!(
            rfc5424_version("1 2003-10-11T22:14:15Z h"),
            Some((1, "2003-10-11T22:14:15Z h"))
        );
        assert_eq!(rfc5424_version("2 - h"), Some((2, "- h")));
        assert_eq!(rfc5424_version("1 apple"), None);
        assert_eq!(rfc5424_version("1 2 apples"), None);
        assert_eq!(rfc5424_version("1 -x"), None);
        assert_eq!(rfc5424_version("1990 Oct 22"), None);
        assert_eq!(rfc5424_version("Oct 11 22:14:15"), None);
        assert_eq!(rfc5424_version("2003-10-11T22:14:15Z"), None);
        let err = parse_at("<13>2 2003-10-11T22:14:15Z h a p m - x", now).unwrap_err();
        assert_eq!(err.field(), "version");
        assert_eq!(json("<13>1 2 apples")["message"], "1 2 apples");
    }

    #[test]
    fn serializes_in_fluentd_shape() {
        let line = r#"<165>1 2003-10-11T22:14:15.003Z host app 42 ID7 [a@1 k="v"] hi"#;
        let record = parse_at(line, now).unwrap();
        let mut out = String::new();
        record.write_json_str(&mut out);
        assert_eq!(out, serde_json::to_string(&record).unwrap());
        assert_eq!(
            out,
            r#"{"@timestamp":"2003-10-11T22:14:15.003Z","facility":"local4","severity":"notice","priority":165,"host":"host","ident":"app","pid":"42","msgid":"ID7","structured_data":{"a@1":{"k":"v"}},"message":"hi","version":1}"#
        );
        let line = "<34>Oct 11 22:14:15 mymachine su: 'su root' failed";
        let record = parse_at(line, now).unwrap();
        let mut out = String::new();
        record.write_json_str(&mut out);
        assert_eq!(out, serde_json::to_string(&record).unwrap());
        assert_eq!(
            out,
            r#"{"@timestamp":"2023-10-11T22:14:15Z","facility":"auth","severity":"crit","priority":34,"host":"mymachine","ident":"su","message":"'su root' failed"}"#
        );
    }
}
