//! Syslog messages to records shaped like fluentd's `in_syslog` events, and their tags.

use std::borrow::Cow;
use std::sync::Arc;

use logferry_core::Timestamp;
use logferry_parse::{Format, FormatOptions, Record};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::SyslogRecord;
use crate::framing::trim_end;

/// Facility names by number, as `logferry-parse` (and fluentd) name them.
const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "at", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Severity names by number.
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
];

/// The fields of the parser's JSON output that records keep, borrowed as raw JSON.
#[derive(Deserialize)]
struct Parsed<'a> {
    #[serde(rename = "@timestamp", borrow)]
    timestamp: &'a RawValue,
    #[serde(borrow)]
    facility: &'a RawValue,
    #[serde(borrow)]
    severity: &'a RawValue,
    #[serde(default, borrow)]
    host: Option<&'a RawValue>,
    #[serde(default, borrow)]
    ident: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pid: Option<&'a RawValue>,
    #[serde(default, borrow)]
    msgid: Option<&'a RawValue>,
    #[serde(default, borrow)]
    structured_data: Option<&'a RawValue>,
    #[serde(default, borrow)]
    message: Option<&'a RawValue>,
}

/// A record as it is written: fluentd's `in_syslog` keys first.
#[derive(Serialize)]
struct Output<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ident: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a RawValue>,
    facility: &'a RawValue,
    severity: &'a RawValue,
    time: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    msgid: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    structured_data: Option<&'a RawValue>,
}

/// A message that did not parse: kept whole.
#[derive(Serialize)]
struct Unmatched<'a> {
    message: &'a str,
}

/// One message turned into a record.
#[derive(Debug)]
pub(crate) struct Shaped {
    /// `<tag>.<facility>.<severity>` or `<tag>.unmatched`.
    pub(crate) tag: Arc<str>,
    pub(crate) record: SyslogRecord,
    /// Why the message did not parse, if it did not (it is then kept whole as `message`).
    pub(crate) unmatched: Option<String>,
}

/// Turns messages into records and tags; shared by every connection of a source.
#[derive(Debug)]
pub(crate) struct Shaper {
    format: Format,
    /// Tags by PRI value.
    tags: Vec<Arc<str>>,
    unmatched: Arc<str>,
}

impl Shaper {
    /// A shaper tagging records `<tag>.<facility>.<severity>`.
    pub(crate) fn new(tag: &str) -> Shaper {
        let format = Format::new("syslog", &FormatOptions::new())
            .expect("`syslog` is a format of logferry-parse without options");
        let tags = (0..192)
            .map(|pri: usize| {
                Arc::from(format!(
                    "{tag}.{}.{}",
                    FACILITIES[pri >> 3],
                    SEVERITIES[pri & 7]
                ))
            })
            .collect();
        Shaper {
            format,
            tags,
            unmatched: Arc::from(format!("{tag}.unmatched")),
        }
    }

    /// The record of one message (one datagram or one frame). Never fails: a message that
    /// does not parse becomes `{"message":"<the whole message>"}` with the time `now()`.
    pub(crate) fn shape(&self, raw: &[u8], now: impl FnOnce() -> Timestamp) -> Shaped {
        let raw = trim_end(raw);
        let text = match std::str::from_utf8(raw) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(raw),
        };
        let error = match self.format.line_parser().parse_line(&text) {
            Ok(Some(Record::Syslog(parsed))) => match reshape(&parsed) {
                Some(json) => {
                    return Shaped {
                        tag: Arc::clone(&self.tags[usize::from(parsed.priority().min(191))]),
                        record: SyslogRecord {
                            time: parsed.timestamp(),
                            json,
                        },
                        unmatched: None,
                    };
                }
                None => "the parsed message could not be serialized".to_owned(),
            },
            Ok(_) => "the message is blank".to_owned(),
            Err(e) => e.to_string(),
        };
        let json = serde_json::to_string(&Unmatched { message: &text })
            .expect("a string field serializes");
        Shaped {
            tag: Arc::clone(&self.unmatched),
            record: SyslogRecord { time: now(), json },
            unmatched: Some(error),
        }
    }
}

/// The parser's record in the shape of fluentd's `in_syslog`: `@timestamp` becomes `time`;
/// `priority` and `version` are left out (`facility` and `severity` carry the PRI).
fn reshape(parsed: &logferry_parse::SyslogRecord<'_>) -> Option<String> {
    let full = serde_json::to_string(parsed).ok()?;
    let p: Parsed<'_> = serde_json::from_str(&full).ok()?;
    serde_json::to_string(&Output {
        host: p.host,
        ident: p.ident,
        pid: p.pid,
        message: p.message,
        facility: p.facility,
        severity: p.severity,
        time: p.timestamp,
        msgid: p.msgid,
        structured_data: p.structured_data,
    })
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse_rfc3339("2024-03-15T12:00:00Z").unwrap()
    }

    fn shape(raw: &str) -> Shaped {
        Shaper::new("system").shape(raw.as_bytes(), now)
    }

    #[test]
    fn rfc3164() {
        let s = shape("<38>Feb  5 17:32:18 myhost sshd[1234]: Accepted publickey for bob\n");
        assert_eq!(&*s.tag, "system.auth.info");
        assert!(s.unmatched.is_none());
        assert!(s.record.json.starts_with(r#"{"host":"myhost","ident":"sshd","pid":"1234","message":"Accepted publickey for bob","facility":"auth","severity":"info","time":""#));
        let v: serde_json::Value = serde_json::from_str(&s.record.json).unwrap();
        assert!(v["time"].as_str().unwrap().ends_with("-02-05T17:32:18Z"));
        assert_eq!(v.as_object().unwrap().len(), 7);
        // logger's local form has no HOSTNAME; the year is the parser's guess (current year).
        let s = shape("<13>Mar 15 11:59:00 alice: hello");
        assert!(s.record.json.starts_with(
            r#"{"ident":"alice","message":"hello","facility":"user","severity":"notice","time":""#
        ));
        assert!(s.record.json.ends_with(r#"-03-15T11:59:00Z"}"#));
        assert_eq!(&*s.tag, "system.user.notice");
    }

    #[test]
    fn rfc5424() {
        let s = shape(
            r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 99 ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event"#,
        );
        assert_eq!(&*s.tag, "system.local4.notice");
        assert_eq!(
            s.record.json,
            r#"{"host":"mymachine.example.com","ident":"evntslog","pid":"99","message":"An application event","facility":"local4","severity":"notice","time":"2003-10-11T22:14:15.003Z","msgid":"ID47","structured_data":{"exampleSDID@32473":{"iut":"3","eventSource":"Application"}}}"#
        );
        assert_eq!(
            s.record.time,
            Timestamp::parse_rfc3339("2003-10-11T22:14:15.003Z").unwrap()
        );
        // Without a TIMESTAMP the parser uses the time of parsing.
        let s = shape("<14>1 - - - - - -");
        let v: serde_json::Value = serde_json::from_str(&s.record.json).unwrap();
        assert_eq!(v["facility"], "user");
        assert_eq!(v["severity"], "info");
        assert_eq!(v.as_object().unwrap().len(), 3);
        let time = Timestamp::parse_rfc3339(v["time"].as_str().unwrap()).unwrap();
        assert_eq!(time, s.record.time);
        assert!((time.unix_seconds() - Timestamp::now().unix_seconds()).abs() < 60);
    }

    #[test]
    fn unparsable_messages_are_kept_whole() {
        for raw in [
            "<999>x",
            "<13>1 2003-13-45T99:00:00Z h a p m - x",
            "<13>1 - h a p m [bad",
        ] {
            let s = shape(raw);
            assert!(s.unmatched.is_some(), "{raw}");
            assert_eq!(&*s.tag, "system.unmatched");
            let v: serde_json::Value = serde_json::from_str(&s.record.json).unwrap();
            assert_eq!(v, serde_json::json!({ "message": raw }));
            assert_eq!(s.record.time, now());
        }
        let s = shape("<13>bad \u{1}\"utf8 \u{fffd}");
        assert!(s.unmatched.is_none());
        let s = Shaper::new("t").shape(b"<13>x \xff", now);
        assert!(s.record.json.contains("x \u{fffd}"), "{}", s.record.json);
    }
}
