//! The `syslog` format through the public API: the examples of RFC 5424 and RFC 3164, what
//! `logger`, rsyslog and journald write (fixtures), round trips of generated messages for both
//! RFCs, and inputs that must fail cleanly or never panic.
//!
//! Fixtures' expected `@timestamp` may be `YYYY-MM-DDTHH:MM:SSZ` (an RFC 3164 time: the year
//! is the one the parser must infer today) or `NOW` (no time in the message: the time of
//! parsing).

mod writer;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use logferry_core::Timestamp;
use logferry_parse::{DecodeOptions, Format, FormatOptions};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn format() -> Format {
    Format::new("syslog", &FormatOptions::new()).unwrap()
}

/// Parses one line through the public API (see [`to_json`]); blank lines give `null`.
fn parse(line: &str) -> Result<Value, logferry_parse::ParseError> {
    let format = format();
    let mut parser = format.line_parser();
    parser
        .parse_line(line)
        .map(|record| record.as_ref().map_or(Value::Null, writer::to_json))
}

/// The time RFC 3164's year-less `month day hh:mm:ss` stands for when read at `now`: the
/// latest year that does not put it more than a day after `now`.
fn bsd_time(now: Timestamp, month: u32, day: u32, h: u32, m: u32, s: u32) -> Timestamp {
    let year = now.civil().0;
    (year - 4..=year + 1)
        .rev()
        .filter_map(|y| Timestamp::from_civil(y, month, day, h, m, s, 0))
        .find(|t| t.unix_seconds() <= now.unix_seconds() + 86_400)
        .unwrap()
}

/// Replaces the placeholders of an expected `@timestamp` (see the module docs) in `expected`
/// and the parsing time in `actual`, after checking it.
fn resolve_times(expected: &mut Value, actual: &mut Value, before: Timestamp, after: Timestamp) {
    let want = expected["@timestamp"].as_str().unwrap().to_owned();
    if want == "NOW" {
        let got = Timestamp::parse_rfc3339(actual["@timestamp"].as_str().unwrap()).unwrap();
        assert!(
            before <= got && got <= after,
            "{got} not the time of parsing"
        );
        actual["@timestamp"] = json!("NOW");
    } else if let Some(rest) = want.strip_prefix("YYYY-") {
        let n = |range: std::ops::Range<usize>| rest[range].parse::<u32>().unwrap();
        let (month, day, h, m, s) = (n(0..2), n(3..5), n(6..8), n(9..11), n(12..14));
        let t = bsd_time(before, month, day, h, m, s);
        assert_eq!(
            t,
            bsd_time(after, month, day, h, m, s),
            "clock crossed a boundary; rerun"
        );
        expected["@timestamp"] = json!(t.to_string());
    }
}

/// Every `fixtures/syslog/NAME.log` decodes to `NAME.expected.json` (an array with one object
/// per line).
#[test]
fn documented_examples() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/syslog");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        let input = std::fs::read(&path).unwrap();
        let expected: Value =
            serde_json::from_slice(&std::fs::read(path.with_extension("expected.json")).unwrap())
                .unwrap();
        let mut expected = expected.as_array().unwrap().clone();
        let before = Timestamp::now();
        let mut records = Vec::new();
        format()
            .decode(&input[..], &DecodeOptions::default(), |item| match item {
                Ok(located) => records.push(writer::to_json(&located.record)),
                Err(err) => panic!("{}: {err}", path.display()),
            })
            .unwrap();
        let after = Timestamp::now();
        assert_eq!(records.len(), expected.len(), "{}", path.display());
        for (i, (want, got)) in expected.iter_mut().zip(&mut records).enumerate() {
            resolve_times(want, got, before, after);
            assert_eq!(got, want, "{} line {}", path.display(), i + 1);
        }
        seen += 1;
    }
    // RFC 5424 and RFC 3164 examples, logger, rsyslog/journald, structured data, lenient.
    assert_eq!(seen, 6);
}

#[test]
fn members_come_in_fluentd_order() {
    let line = r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 77 ID47 [exampleSDID@32473 iut="3" eventSource="Application"][b@1 x="\"y\""] An application event"#;
    let record = format().line_parser().parse_line(line).unwrap().unwrap();
    let mut out = Vec::new();
    record.write_json(&mut out);
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        r#"{"@timestamp":"2003-10-11T22:14:15.003Z","facility":"local4","severity":"notice","priority":165,"host":"mymachine.example.com","ident":"evntslog","pid":"77","msgid":"ID47","structured_data":{"exampleSDID@32473":{"iut":"3","eventSource":"Application"},"b@1":{"x":"\"y\""}},"message":"An application event","version":1}"#
    );
    assert_eq!(record.timestamp().to_string(), "2003-10-11T22:14:15.003Z");
}

#[test]
fn names_every_facility_and_severity_like_fluentd() {
    let facilities = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "at", "local0", "local1", "local2", "local3",
        "local4", "local5", "local6", "local7",
    ];
    let severities = [
        "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
    ];
    for pri in 0..=191u32 {
        let v = parse(&format!("<{pri}>1 - - - - - -")).unwrap();
        assert_eq!(v["priority"], pri);
        assert_eq!(v["facility"], facilities[(pri / 8) as usize]);
        assert_eq!(v["severity"], severities[(pri % 8) as usize]);
    }
}

#[test]
fn errors_name_the_field() {
    let cases = [
        ("<192>Oct 11 22:14:15 host app: x", "pri"),
        ("<abc>Oct 11 22:14:15 host app: x", "pri"),
        ("<13 Oct 11 22:14:15 host app: x", "pri"),
        ("<>x", "pri"),
        ("<1000>x", "pri"),
        ("<13>2 2003-10-11T22:14:15Z host app - - - x", "version"),
        ("<13>10 - host app - - - x", "version"),
        ("<13>1 2003-10-11T25:14:15Z host app - - - x", "timestamp"),
        ("<13>1 2003-10-11 host app - - - x", "timestamp"),
        ("<13>1 -", "hostname"),
        ("<13>1 -  app - - - x", "hostname"),
        ("<13>1 - host", "app_name"),
        ("<13>1 - host app", "procid"),
        ("<13>1 - host app -", "msgid"),
        ("<13>1 - host app - -", "structured_data"),
        ("<13>1 - host app - - x", "structured_data"),
        ("<13>1 - host app - - [x", "structured_data"),
        ("<13>1 - host app - - [x a=1] m", "structured_data"),
        ("<13>1 - host app - - [x a=\"1] m", "structured_data"),
        ("<13>1 - host app - - [x a=\"1\"]m", "structured_data"),
        ("<13>1 - host app - - [ x a=\"1\"] m", "structured_data"),
    ];
    for (line, field) in cases {
        assert_eq!(parse(line).unwrap_err().field(), field, "{line}");
    }
}

// ---- Round trips: generate the fields, write the message as a sender does, parse, compare. ----

/// A time as seconds, microseconds and the sender's UTC offset in minutes.
fn time() -> impl Strategy<Value = (i64, u32, i32)> {
    // 2000-01-01 .. 2100-01-01; offsets -12:00 ..= +14:00.
    (
        946_684_800i64..4_102_444_800,
        0u32..1_000_000,
        -720i32..=840,
    )
}

/// Writes `secs.micros` as RFC 3339 in the sender's offset.
fn rfc3339((secs, micros, offset): (i64, u32, i32)) -> String {
    let local = Timestamp::from_unix(secs + i64::from(offset) * 60, 0).unwrap();
    let (y, mo, d, h, mi, s) = local.civil();
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{micros:06}");
    if offset == 0 {
        out.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let _ = write!(
            out,
            "{sign}{:02}:{:02}",
            offset.abs() / 60,
            offset.abs() % 60
        );
    }
    out
}

fn utc((secs, micros, _): (i64, u32, i32)) -> String {
    Timestamp::from_unix(secs, micros * 1000)
        .unwrap()
        .to_string()
}

/// A 5424 header field: printable ASCII without spaces, `None` written as `-`.
fn header_field(max: usize) -> impl Strategy<Value = Option<String>> {
    let pattern = proptest::string::string_regex(&format!("[!-~]{{1,{max}}}")).unwrap();
    proptest::option::of(pattern).prop_map(|f| f.filter(|f| f != "-"))
}

/// An SD-NAME: printable ASCII except space, `=`, `]` and `"`.
fn sd_name() -> impl Strategy<Value = String> {
    "[!#-<>-\\[\\\\^-~]{1,12}"
}

/// Parameter values: any text, with the characters that must be escaped.
fn sd_value() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9 \"\\\\\\]\\[=é€]{0,12}", "\\PC{0,12}"]
}

#[derive(Debug, Clone)]
struct Rfc5424 {
    pri: u8,
    time: Option<(i64, u32, i32)>,
    host: Option<String>,
    app: Option<String>,
    procid: Option<String>,
    msgid: Option<String>,
    sd: BTreeMap<String, BTreeMap<String, String>>,
    bom: bool,
    message: Option<String>,
}

fn rfc5424() -> impl Strategy<Value = Rfc5424> {
    (
        0u8..=191,
        proptest::option::of(time()),
        header_field(40),
        header_field(48),
        header_field(20),
        header_field(32),
        proptest::collection::btree_map(
            sd_name(),
            proptest::collection::btree_map(sd_name(), sd_value(), 0..4),
            0..4,
        ),
        any::<bool>(),
        proptest::option::of("\\PC{1,40}"),
    )
        .prop_map(
            |(pri, time, host, app, procid, msgid, sd, bom, message)| Rfc5424 {
                pri,
                time,
                host,
                app,
                procid,
                msgid,
                sd,
                bom,
                message,
            },
        )
}

impl Rfc5424 {
    fn line(&self) -> String {
        let dash = |f: &Option<String>| f.clone().unwrap_or_else(|| "-".into());
        let mut line = format!(
            "<{}>1 {} {} {} {} {} ",
            self.pri,
            self.time.map_or_else(|| "-".into(), rfc3339),
            dash(&self.host),
            dash(&self.app),
            dash(&self.procid),
            dash(&self.msgid)
        );
        if self.sd.is_empty() {
            line.push('-');
        }
        for (id, params) in &self.sd {
            let _ = write!(line, "[{id}");
            for (name, value) in params {
                let escaped = value
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace(']', "\\]");
                let _ = write!(line, " {name}=\"{escaped}\"");
            }
            line.push(']');
        }
        if let Some(message) = &self.message {
            line.push(' ');
            if self.bom {
                line.push('\u{feff}');
            }
            line.push_str(message);
        }
        line
    }

    /// The expected event, without `@timestamp` when the message has no time.
    fn expected(&self) -> Value {
        let mut o = Map::new();
        if let Some(time) = self.time {
            o.insert("@timestamp".into(), json!(utc(time)));
        }
        priority(&mut o, self.pri);
        let fields = [
            ("host", &self.host),
            ("ident", &self.app),
            ("pid", &self.procid),
        ];
        for (name, value) in fields.into_iter().chain([("msgid", &self.msgid)]) {
            if let Some(v) = value {
                o.insert(name.into(), json!(v));
            }
        }
        if !self.sd.is_empty() {
            o.insert("structured_data".into(), json!(self.sd));
        }
        if let Some(m) = &self.message {
            o.insert("message".into(), json!(m));
        }
        o.insert("version".into(), json!(1));
        Value::Object(o)
    }
}

fn priority(o: &mut Map<String, Value>, pri: u8) {
    const F: [&str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "at", "local0", "local1", "local2", "local3",
        "local4", "local5", "local6", "local7",
    ];
    const S: [&str; 8] = [
        "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
    ];
    o.insert("facility".into(), json!(F[usize::from(pri / 8)]));
    o.insert("severity".into(), json!(S[usize::from(pri % 8)]));
    o.insert("priority".into(), json!(pri));
}

/// An RFC 3164 TIMESTAMP: `Mmm dd hh:mm:ss` (with the day written in one of three ways) or
/// RFC 3339.
#[derive(Debug, Clone, Copy)]
enum BsdTime {
    Classic {
        month: u32,
        day: u32,
        h: u32,
        m: u32,
        s: u32,
        padding: u8,
    },
    Rfc3339((i64, u32, i32)),
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

#[derive(Debug, Clone)]
struct Rfc3164 {
    pri: Option<u8>,
    time: BsdTime,
    host: Option<String>,
    tag: Option<(String, Option<u32>)>,
    message: Option<String>,
}

fn rfc3164() -> impl Strategy<Value = Rfc3164> {
    let time = prop_oneof![
        (1u32..=12, 1u32..=28, 0u32..24, 0u32..60, 0u32..60, 0u8..3).prop_map(
            |(month, day, h, m, s, padding)| BsdTime::Classic {
                month,
                day,
                h,
                m,
                s,
                padding
            }
        ),
        time().prop_map(BsdTime::Rfc3339),
    ];
    let tag = (
        "[a-zA-Z0-9_][a-zA-Z0-9_./()@-]{0,20}",
        proptest::option::of(any::<u32>()),
    );
    (
        proptest::option::of(0u8..=191),
        time,
        proptest::option::of("[a-z0-9][a-z0-9.-]{0,20}|[0-9a-f:]{1,19}[0-9a-f]"),
        proptest::option::of(tag),
        proptest::option::of("\\PC{1,40}"),
        "[A-Za-z]{1,8}",
    )
        .prop_filter(
            "a message without HOSTNAME nor TAG starts with what reads as a HOSTNAME",
            |t| t.2.is_some() || t.3.is_some(),
        )
        .prop_map(|(pri, time, host, tag, message, word)| {
            // Without a TAG, the message starts with a word that is not one (no colon).
            let message = match (&tag, message) {
                (None, Some(m)) => Some(format!("{word} {m}")),
                (None, None) => Some(word),
                (Some(_), m) => m,
            };
            Rfc3164 {
                pri,
                time,
                host,
                tag,
                message,
            }
        })
}

impl Rfc3164 {
    fn line(&self) -> String {
        let mut line = self.pri.map(|p| format!("<{p}>")).unwrap_or_default();
        match self.time {
            BsdTime::Classic {
                month,
                day,
                h,
                m,
                s,
                padding,
            } => {
                let day = match padding {
                    0 => format!("{day:>2}"),
                    1 => format!("{day:02}"),
                    _ => day.to_string(),
                };
                let _ = write!(
                    line,
                    "{} {day} {h:02}:{m:02}:{s:02}",
                    MONTHS[month as usize - 1]
                );
            }
            BsdTime::Rfc3339(t) => line.push_str(&rfc3339(t)),
        }
        if let Some(host) = &self.host {
            let _ = write!(line, " {host}");
        }
        if let Some((ident, pid)) = &self.tag {
            let _ = write!(line, " {ident}");
            if let Some(pid) = pid {
                let _ = write!(line, "[{pid}]");
            }
            line.push(':');
        }
        if let Some(message) = &self.message {
            let _ = write!(line, " {message}");
        }
        line
    }

    fn expected(&self, now: Timestamp) -> Value {
        let mut o = Map::new();
        let time = match self.time {
            BsdTime::Classic {
                month,
                day,
                h,
                m,
                s,
                ..
            } => bsd_time(now, month, day, h, m, s),
            BsdTime::Rfc3339(t) => Timestamp::parse_rfc3339(&utc(t)).unwrap(),
        };
        o.insert("@timestamp".into(), json!(time.to_string()));
        priority(&mut o, self.pri.unwrap_or(13));
        if let Some(host) = &self.host {
            o.insert("host".into(), json!(host));
        }
        if let Some((ident, pid)) = &self.tag {
            o.insert("ident".into(), json!(ident));
            if let Some(pid) = pid {
                o.insert("pid".into(), json!(pid.to_string()));
            }
        }
        if let Some(message) = &self.message {
            o.insert("message".into(), json!(message));
        }
        Value::Object(o)
    }
}

/// Valid lines to mutate.
const SEEDS: &[&str] = &[
    r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] msg"#,
    r#"<13>1 - - - - - [a b="\"\\\]" b="2"][a c="3"] ﻿x"#,
    "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    "<30>2026-11-23T10:00:00.123456+00:00 web-1 nginx[812]: GET / 200",
    "Nov  3 10:00:00 systemd[1]: Started.",
];

/// An edit of a line: insert, delete or replace one char, or cut the line.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, char),
    Delete(usize),
    Replace(usize, char),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let c = prop_oneof![
        prop::sample::select(vec![
            '<', '>', ' ', '-', '[', ']', '"', '\\', '=', ':', '1', '\u{feff}', 'é'
        ]),
        any::<char>(),
    ];
    prop_oneof![
        (any::<usize>(), c.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), c).prop_map(|(i, c)| Edit::Replace(i, c)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(line: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = line.chars().collect();
    for e in edits {
        let n = chars.len().max(1);
        match *e {
            Edit::Insert(i, c) => chars.insert(i % (chars.len() + 1), c),
            Edit::Delete(i) if !chars.is_empty() => {
                chars.remove(i % n);
            }
            Edit::Replace(i, c) if !chars.is_empty() => chars[i % n] = c,
            Edit::Truncate(i) => chars.truncate(i % (chars.len() + 1)),
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// Parses without panicking; a parsed record serializes to a JSON object starting with
/// `@timestamp`, the same text both ways (see [`to_json`]).
fn check_never_panics(line: &str) {
    if let Ok(Some(record)) = format().line_parser().parse_line(line) {
        let mut out = Vec::new();
        record.write_json(&mut out);
        assert!(out.starts_with(br#"{"@timestamp":""#), "{line:?}");
        assert!(writer::to_json(&record).is_object());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn rfc5424_round_trips(m in rfc5424()) {
        let line = m.line();
        let before = Timestamp::now();
        let mut got = parse(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        let after = Timestamp::now();
        let mut want = m.expected();
        if m.time.is_none() {
            let t = Timestamp::parse_rfc3339(got["@timestamp"].as_str().unwrap()).unwrap();
            prop_assert!(before <= t && t <= after);
            got.as_object_mut().unwrap().remove("@timestamp");
            want.as_object_mut().unwrap().remove("@timestamp");
        }
        prop_assert_eq!(got, want, "{:?}", line);
    }

    #[test]
    fn rfc3164_round_trips(m in rfc3164()) {
        let line = m.line();
        let before = Timestamp::now();
        let got = parse(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        prop_assert_eq!(got, m.expected(before), "{:?}", line);
    }

    #[test]
    fn never_panics_on_arbitrary_text(line in "\\PC{0,120}|[<>0-9 TZ:.+\\-\\[\\]=\"\\\\a-c\u{feff}é]{0,80}") {
        check_never_panics(&line);
    }

    #[test]
    fn never_panics_on_mutated_lines(
        seed in prop::sample::select(SEEDS),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        check_never_panics(&apply(seed, &edits));
    }

    #[test]
    fn never_panics_on_mutated_generated_lines(
        m in rfc5424(),
        edits in proptest::collection::vec(edit(), 1..4),
    ) {
        check_never_panics(&apply(&m.line(), &edits));
    }
}
