//! The `alb` format through the public API: AWS's documented examples (fixtures), round trips
//! of generated entries, and inputs that must fail cleanly or never panic.

mod writer;

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use logferry_core::Timestamp;
use logferry_parse::{DecodeOptions, Format, FormatOptions};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn format() -> Format {
    Format::new("alb", &FormatOptions::new()).unwrap()
}

/// Parses one line through the public API. The record's fast JSON writer (`write_json`, the
/// ingester's path) must give exactly serde_json's text for it, so every test here checks both.
fn parse(line: &str) -> Result<Value, logferry_parse::ParseError> {
    let format = format();
    let mut parser = format.line_parser();
    // Blank lines carry no record: `null`.
    parser
        .parse_line(line)
        .map(|record| record.as_ref().map_or(Value::Null, writer::to_json))
}

/// Every `fixtures/alb/NAME.log` decodes to exactly `NAME.expected.json` (an array with one
/// object per entry).
#[test]
fn documented_examples() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alb");
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
        let mut records = Vec::new();
        format()
            .decode(&input[..], &DecodeOptions::default(), |item| match item {
                Ok(located) => records.push(writer::to_json(&located.record)),
                Err(err) => panic!("{}: {err}", path.display()),
            })
            .unwrap();
        assert_eq!(Value::Array(records), expected, "{}", path.display());
        seen += 1;
    }
    // HTTP, HTTPS, HTTP/2, WebSockets, secured WebSockets, Lambda, failed Lambda, the same
    // examples in their 2018 and 2023 layouts, and constructed edge cases.
    assert_eq!(seen, 10);
}

#[test]
fn first_member_is_the_timestamp() {
    let line = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/alb/http.log"),
    )
    .unwrap();
    let record = format()
        .line_parser()
        .parse_line(line.trim_end())
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    record.write_json(&mut out);
    assert!(out.starts_with(br#"{"@timestamp":"2018-07-02T22:23:00.186641Z","type":"http","#));
    assert_eq!(
        record.timestamp().to_string(),
        "2018-07-02T22:23:00.186641Z"
    );
}

const HTTP: &str = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90 "-" "-" "-""#;

#[test]
fn errors_name_the_aws_field() {
    let cases = [
        ("http", "time"),
        ("http 2018-07-02T22:23:00Z app/x", "client:port"),
        ("http 02/07/2018 app/x", "time"),
    ];
    for (line, field) in cases {
        assert_eq!(parse(line).unwrap_err().field(), field, "{line}");
    }
    let replaced = [
        ("192.168.131.39:2817", "192.168.131.39", "client:port"),
        ("10.0.0.1:80 0.000", "10.0.0.1:99999 0.000", "target:port"),
        (" 0.001 ", " fast ", "target_processing_time"),
        (" 200 200 ", " 200 OK ", "target_status_code"),
        (" 34 366 ", " 34 -366 ", "sent_bytes"),
        ("\"curl/7.46.0\"", "\"curl/7.46.0", "user_agent"),
        (
            " 0 2018-07-02T22:22:48",
            " first 2018-07-02T22:22:48",
            "matched_rule_priority",
        ),
        (
            "2018-07-02T22:22:48.364000Z",
            "2018-13-02T22:22:48Z",
            "request_creation_time",
        ),
        (
            "\"10.0.0.1:80\" \"200\"",
            "\"10.0.0.1:80\" \"OK\"",
            "target_status_code_list",
        ),
    ];
    for (from, to, field) in replaced {
        let line = HTTP.replacen(from, to, 1);
        assert_ne!(line, HTTP);
        assert_eq!(parse(&line).unwrap_err().field(), field, "{line}");
    }
}

#[test]
fn entries_end_early_or_carry_unknown_fields() {
    // The oldest layout: nothing after ssl_protocol.
    let cut = HTTP.find(" arn:aws").unwrap();
    let old = parse(&HTTP[..cut]).unwrap();
    assert_eq!(old["ssl_protocol"], Value::Null);
    assert!(old.get("target_group_arn").is_none());
    assert_eq!(old["user_agent"], "curl/7.46.0");
    // Fields added after request_transform_status are ignored, whatever they hold.
    let newer = parse(&format!(r#"{HTTP} "x y" 12 "unterminated"#)).unwrap();
    assert_eq!(newer, parse(HTTP).unwrap());
}

#[test]
fn quoted_values_are_kept_as_logged() {
    // ALB writes a quote in a request as `\x22`; a backslash-escaped quote does not end the
    // field either. Neither is decoded.
    let line = HTTP
        .replacen(
            "http://www.example.com:80/",
            r#"http://www.example.com:80/?q=\x22a\x22"#,
            1,
        )
        .replacen("curl/7.46.0", r#"say \"hi\" \\o/"#, 1);
    let event = parse(&line).unwrap();
    assert_eq!(
        event["request_url"],
        r#"http://www.example.com:80/?q=\x22a\x22"#
    );
    assert_eq!(event["user_agent"], r#"say \"hi\" \\o/"#);
    assert_eq!(event["ssl_cipher"], Value::Null);
    assert_eq!(event["conn_trace_id"], "TID_1234abcd5678ef90");
}

// ---- Round trips: generate the fields, write them as AWS does, parse, compare. ----

/// A generated entry: every field's value, `None` where AWS writes `-`.
#[derive(Debug, Clone)]
struct Entry {
    kind: &'static str,
    time: (i64, u32),
    elb: String,
    client: (String, u16),
    target: Option<(String, u16)>,
    times: [Option<Millis>; 3],
    codes: [Option<u16>; 2],
    bytes: [Option<u64>; 2],
    request: (String, String, String),
    user_agent: Option<String>,
    ssl: [Option<String>; 2],
    appended: Appended,
    /// How many of the appended fields the entry has (older layouts end early).
    appended_count: usize,
    /// Fields after the last known one (only written when every known field is).
    unknown: Vec<String>,
}

/// A duration in seconds with 3 decimals, or `-1`.
#[derive(Debug, Clone, Copy)]
enum Millis {
    NoResponse,
    Value(u32),
}

#[derive(Debug, Clone)]
struct Appended {
    target_group_arn: Option<String>,
    trace_id: Option<String>,
    domain_name: Option<String>,
    chosen_cert_arn: Option<String>,
    matched_rule_priority: Option<i64>,
    request_creation_time: Option<(i64, u32)>,
    actions_executed: Option<Vec<&'static str>>,
    redirect_url: Option<String>,
    error_reason: Option<String>,
    target_port_list: Option<Vec<(String, u16)>>,
    target_status_code_list: Option<Vec<Option<u16>>>,
    classification: Option<String>,
    classification_reason: Option<String>,
    conn_trace_id: Option<String>,
    transformed_host: Option<String>,
    transformed_uri: Option<String>,
    request_transform_status: Option<String>,
}

const APPENDED_FIELDS: usize = 17;

fn ip() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<[u8; 4]>().prop_map(|o| Ipv4Addr::from(o).to_string()),
        1 => any::<[u16; 8]>().prop_map(|s| Ipv6Addr::from(s).to_string()),
    ]
}

fn time() -> impl Strategy<Value = (i64, u32)> {
    // 2000-01-01 .. 2100-01-01, microseconds as AWS writes.
    (946_684_800i64..4_102_444_800, 0u32..1_000_000)
}

/// Text of a quoted field as ALB logs it: printable, with spaces, non-ASCII, backslashes and
/// quotes written as `\x22`.
fn text() -> impl Strategy<Value = String> {
    "([a-zA-Z0-9 ./:;,=()é€-]|\\\\x22|\\\\[a-z]){0,16}"
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_./:=-]{1,24}"
}

fn millis() -> impl Strategy<Value = Option<Millis>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Millis::NoResponse)),
        6 => (0u32..10_000_000).prop_map(|v| Some(Millis::Value(v))),
    ]
}

fn request() -> impl Strategy<Value = (String, String, String)> {
    (
        prop_oneof![
            Just("GET"),
            Just("POST"),
            Just("PUT"),
            Just("DELETE"),
            Just("OPTIONS"),
            Just("-")
        ],
        // A URL: no space at either end; spaces, `\x22` and backslashes inside (`SpaceInUri`).
        "[a-zA-Z0-9/:.?=&%_~-](([a-zA-Z0-9/:.?=&%_~ é-]|\\\\x22|\\\\){0,30}[a-zA-Z0-9/:.?=&%_~-])?",
        prop_oneof![
            Just("HTTP/1.1"),
            Just("HTTP/2.0"),
            Just("HTTP/1.0"),
            Just("-")
        ],
    )
        .prop_map(|(verb, url, proto)| (verb.to_owned(), url, proto.to_owned()))
}

fn appended() -> impl Strategy<Value = Appended> {
    let actions = prop::sample::select(vec![
        "waf",
        "waf-failed",
        "authenticate",
        "redirect",
        "fixed-response",
        "forward",
    ]);
    (
        (
            proptest::option::of(
                "arn:aws:elasticloadbalancing:[a-z0-9-]{1,12}:[0-9]{12}:targetgroup/[a-z-]{1,10}/[0-9a-f]{16}",
            ),
            proptest::option::of("Root=1-[0-9a-f]{8}-[0-9a-f]{24}"),
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(-1i64..=50_000),
            proptest::option::of(time()),
        ),
        (
            proptest::option::of(prop::collection::vec(actions, 1..4)),
            proptest::option::of(text()),
            proptest::option::of("[A-Za-z]{1,30}"),
            proptest::option::of(prop::collection::vec((ip(), any::<u16>()), 1..4)),
            // The first code is present: a list that is only `-` is the absent list.
            proptest::option::of(
                (100u16..600, prop::collection::vec(proptest::option::of(100u16..600), 0..3))
                    .prop_map(|(first, rest)| [vec![Some(first)], rest].concat()),
            ),
        ),
        (
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of("TID_[0-9a-f]{16,32}"),
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(text()),
        ),
    )
        .prop_map(|((tg, trace, domain, cert, rule, created), (actions, redirect, error, targets, codes), (class, reason, tid, host, uri, status))| Appended {
            target_group_arn: tg,
            trace_id: trace,
            domain_name: domain,
            chosen_cert_arn: cert,
            matched_rule_priority: rule,
            request_creation_time: created,
            actions_executed: actions,
            redirect_url: redirect,
            error_reason: error,
            target_port_list: targets,
            target_status_code_list: codes,
            classification: class,
            classification_reason: reason,
            conn_trace_id: tid,
            transformed_host: host,
            transformed_uri: uri,
            request_transform_status: status,
        })
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        (
            prop::sample::select(vec!["http", "https", "h2", "grpcs", "ws", "wss"]),
            time(),
            "app/[a-z0-9-]{1,20}/[0-9a-f]{16}",
            (ip(), any::<u16>()),
            proptest::option::of((ip(), any::<u16>())),
            [millis(), millis(), millis()],
        ),
        (
            [
                proptest::option::of(100u16..600),
                proptest::option::of(100u16..600),
            ],
            [
                proptest::option::of(any::<u64>()),
                proptest::option::of(any::<u64>()),
            ],
            request(),
            proptest::option::of(text()),
            [proptest::option::of(token()), proptest::option::of(token())],
        ),
        appended(),
        0..=APPENDED_FIELDS,
        prop::collection::vec("[a-z0-9\"]{1,8}", 0..3),
    )
        .prop_map(
            |(
                (kind, time, elb, client, target, times),
                (codes, bytes, request, user_agent, ssl),
                appended,
                appended_count,
                unknown,
            )| Entry {
                kind,
                time,
                elb,
                client,
                target,
                times,
                codes,
                bytes,
                request,
                user_agent,
                ssl,
                appended,
                appended_count,
                unknown,
            },
        )
}

/// AWS's ISO 8601 form: `2018-07-02T22:23:00.186641Z`.
fn aws_time((secs, micros): (i64, u32)) -> String {
    let (y, mo, d, h, mi, s) = Timestamp::from_unix(secs, micros * 1000).unwrap().civil();
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{micros:06}Z")
}

fn rfc3339((secs, micros): (i64, u32)) -> String {
    Timestamp::from_unix(secs, micros * 1000)
        .unwrap()
        .to_string()
}

/// A quoted field as AWS writes it: the value between quotes (a `"` in a value is written
/// `\x22`, which the generators produce as such).
fn quote(value: Option<&str>) -> String {
    match value {
        None => "\"-\"".to_owned(),
        Some(v) => format!("\"{v}\""),
    }
}

fn dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn millis_text(m: Option<Millis>) -> String {
    match m {
        None => "-".to_owned(),
        Some(Millis::NoResponse) => "-1".to_owned(),
        Some(Millis::Value(v)) => format!("{}.{:03}", v / 1000, v % 1000),
    }
}

impl Entry {
    fn line(&self) -> String {
        let mut l = String::new();
        let host = |h: &Option<(String, u16)>| h.as_ref().map(|(ip, port)| format!("{ip}:{port}"));
        let (verb, url, proto) = &self.request;
        let request = if (verb.as_str(), url.as_str(), proto.as_str()) == ("-", "-", "-") {
            "- - - ".to_owned()
        } else {
            format!("{verb} {url} {proto}")
        };
        let _ = write!(
            l,
            "{} {} {} {}:{} {} {} {} {} {} {} {} {} {} {} {} {}",
            self.kind,
            aws_time(self.time),
            self.elb,
            self.client.0,
            self.client.1,
            dash(host(&self.target)),
            millis_text(self.times[0]),
            millis_text(self.times[1]),
            millis_text(self.times[2]),
            dash(self.codes[0]),
            dash(self.codes[1]),
            dash(self.bytes[0]),
            dash(self.bytes[1]),
            quote(Some(&request)),
            quote(self.user_agent.as_deref()),
            dash(self.ssl[0].as_ref()),
            dash(self.ssl[1].as_ref()),
        );
        let a = &self.appended;
        let appended = [
            dash(a.target_group_arn.as_ref()),
            quote(a.trace_id.as_deref()),
            quote(a.domain_name.as_deref()),
            quote(a.chosen_cert_arn.as_deref()),
            dash(a.matched_rule_priority),
            dash(a.request_creation_time.map(aws_time)),
            quote(a.actions_executed.as_ref().map(|v| v.join(",")).as_deref()),
            quote(a.redirect_url.as_deref()),
            quote(a.error_reason.as_deref()),
            quote(
                a.target_port_list
                    .as_ref()
                    .map(|v| {
                        v.iter()
                            .map(|(ip, p)| format!("{ip}:{p}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .as_deref(),
            ),
            quote(
                a.target_status_code_list
                    .as_ref()
                    .map(|v| v.iter().map(|c| dash(*c)).collect::<Vec<_>>().join(" "))
                    .as_deref(),
            ),
            quote(a.classification.as_deref()),
            quote(a.classification_reason.as_deref()),
            dash(a.conn_trace_id.as_ref()),
            quote(a.transformed_host.as_deref()),
            quote(a.transformed_uri.as_deref()),
            quote(a.request_transform_status.as_deref()),
        ];
        for field in appended.iter().take(self.appended_count) {
            l.push(' ');
            l.push_str(field);
        }
        if self.appended_count == APPENDED_FIELDS {
            for field in &self.unknown {
                l.push(' ');
                l.push_str(field);
            }
        }
        l
    }

    fn expected(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        };
        // A string field: absent when AWS writes `-` (or the value is `-`).
        let s = |v: Option<&str>| v.filter(|v| *v != "-").map(|v| json!(v));
        let secs = |m: Option<Millis>| {
            m.map(|m| match m {
                Millis::NoResponse => json!(-1.0),
                Millis::Value(v) => json!(
                    format!("{}.{:03}", v / 1000, v % 1000)
                        .parse::<f64>()
                        .unwrap()
                ),
            })
        };
        put("@timestamp", Some(json!(rfc3339(self.time))));
        put("type", Some(json!(self.kind)));
        put("elb", Some(json!(self.elb)));
        put("client_ip", Some(json!(self.client.0)));
        put("client_port", Some(json!(self.client.1)));
        put("target_ip", self.target.as_ref().map(|t| json!(t.0)));
        put("target_port", self.target.as_ref().map(|t| json!(t.1)));
        put("request_processing_time", secs(self.times[0]));
        put("target_processing_time", secs(self.times[1]));
        put("response_processing_time", secs(self.times[2]));
        put("elb_status_code", self.codes[0].map(|c| json!(c)));
        put("target_status_code", self.codes[1].map(|c| json!(c)));
        put("received_bytes", self.bytes[0].map(|c| json!(c)));
        put("sent_bytes", self.bytes[1].map(|c| json!(c)));
        put("request_verb", s(Some(&self.request.0)));
        put("request_url", s(Some(&self.request.1)));
        put("request_proto", s(Some(&self.request.2)));
        put("user_agent", s(self.user_agent.as_deref()));
        put("ssl_cipher", s(self.ssl[0].as_deref()));
        put("ssl_protocol", s(self.ssl[1].as_deref()));
        let a = &self.appended;
        let appended: [(&str, Option<Value>); APPENDED_FIELDS] = [
            ("target_group_arn", s(a.target_group_arn.as_deref())),
            ("trace_id", s(a.trace_id.as_deref())),
            ("domain_name", s(a.domain_name.as_deref())),
            ("chosen_cert_arn", s(a.chosen_cert_arn.as_deref())),
            (
                "matched_rule_priority",
                a.matched_rule_priority.map(|v| json!(v)),
            ),
            (
                "request_creation_time",
                a.request_creation_time.map(|t| json!(rfc3339(t))),
            ),
            (
                "actions_executed",
                a.actions_executed.as_ref().map(|v| json!(v)),
            ),
            ("redirect_url", s(a.redirect_url.as_deref())),
            ("error_reason", s(a.error_reason.as_deref())),
            (
                "target_port_list",
                a.target_port_list.as_ref().map(|v| {
                    json!(
                        v.iter()
                            .map(|(ip, p)| format!("{ip}:{p}"))
                            .collect::<Vec<_>>()
                    )
                }),
            ),
            (
                "target_status_code_list",
                a.target_status_code_list.as_ref().map(|v| json!(v)),
            ),
            ("classification", s(a.classification.as_deref())),
            (
                "classification_reason",
                s(a.classification_reason.as_deref()),
            ),
            ("conn_trace_id", s(a.conn_trace_id.as_deref())),
            ("transformed_host", s(a.transformed_host.as_deref())),
            ("transformed_uri", s(a.transformed_uri.as_deref())),
            (
                "request_transform_status",
                s(a.request_transform_status.as_deref()),
            ),
        ];
        for (k, v) in appended.into_iter().take(self.appended_count) {
            put(k, v);
        }
        Value::Object(m)
    }
}

/// Tokens that stress the field splitter: quotes, escapes, dashes, numbers, addresses.
fn tricky_line() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "-",
        "\"",
        "\\",
        "\"-\"",
        "\"- - - \"",
        "\"a b\"",
        "\\\"",
        "1",
        "-1",
        "0.5",
        "1e999",
        "99999999999999999999999",
        "2018-07-02T22:23:00.186641Z",
        "2018-02-30T00:00:00Z",
        "10.0.0.1:80",
        "[::1]:443",
        "::1",
        ":",
        "é",
        "€",
        "http",
        "GET / HTTP/1.1",
        "",
        " ",
    ]);
    prop::collection::vec((piece, prop::sample::select(vec![" ", "", "  "])), 0..50).prop_map(
        |parts| {
            parts
                .into_iter()
                .flat_map(|(p, sep)| [p, sep])
                .collect::<String>()
        },
    )
}

/// A valid line with a few edits at char boundaries: deletions, insertions, truncation.
fn mutated_line() -> impl Strategy<Value = String> {
    (
        entry(),
        prop::collection::vec(
            (
                any::<prop::sample::Index>(),
                0usize..8,
                "[\" \\\\:.é-]{0,3}",
            ),
            1..5,
        ),
    )
        .prop_map(|(entry, edits)| {
            let mut line = entry.line();
            for (at, delete, insert) in edits {
                let mut start = at.index(line.len() + 1);
                while !line.is_char_boundary(start) {
                    start -= 1;
                }
                let mut end = (start + delete).min(line.len());
                while !line.is_char_boundary(end) {
                    end += 1;
                }
                line.replace_range(start..end, &insert);
            }
            line
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip(entry in entry()) {
        let line = entry.line();
        let parsed = parse(&line).map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
        prop_assert_eq!(parsed, entry.expected(), "{}", line);
    }

    #[test]
    fn never_panics_on_arbitrary_text(line in any::<String>()) {
        let _ = parse(&line);
    }

    #[test]
    fn never_panics_on_tricky_tokens(line in tricky_line()) {
        let _ = parse(&line);
        let _ = parse(&format!("{HTTP} {line}"));
        let _ = parse(&format!("http 2018-07-02T22:23:00Z app/x 1.2.3.4:5 {line}"));
    }

    #[test]
    fn never_panics_on_mutated_entries(line in mutated_line()) {
        if let Ok(value) = parse(&line) {
            // Whatever parses serializes to an object that starts with the timestamp.
            prop_assert!(value.get("@timestamp").is_some());
        }
    }
}
