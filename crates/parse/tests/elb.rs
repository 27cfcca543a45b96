//! The `elb` format (Classic Load Balancer) through the public API: AWS's documented examples
//! (fixtures), round trips of generated entries, and inputs that must fail cleanly or never
//! panic.

mod writer;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use logferry_core::Timestamp;
use logferry_parse::{DecodeOptions, Format, FormatOptions};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn format() -> Format {
    Format::new("elb", &FormatOptions::new()).unwrap()
}

/// Parses one line through the public API (see [`to_json`]).
fn parse(line: &str) -> Result<Value, logferry_parse::ParseError> {
    let format = format();
    let mut parser = format.line_parser();
    // Blank lines carry no record: `null`.
    parser
        .parse_line(line)
        .map(|record| record.as_ref().map_or(Value::Null, writer::to_json))
}

/// Every `fixtures/elb/NAME.log` decodes to exactly `NAME.expected.json` (an array with one
/// object per entry).
#[test]
fn documented_examples() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/elb");
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
    // HTTP, HTTPS, TCP and SSL listeners, and constructed edge cases.
    assert_eq!(seen, 5);
}

const HTTP: &str = r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#;

#[test]
fn first_member_is_the_timestamp() {
    let record = format().line_parser().parse_line(HTTP).unwrap().unwrap();
    let mut out = Vec::new();
    record.write_json(&mut out);
    assert!(out.starts_with(br#"{"@timestamp":"2015-05-13T23:39:43.945958Z","elb":"#));
}

#[test]
fn errors_name_the_aws_field() {
    assert_eq!(parse("my-loadbalancer").unwrap_err().field(), "time");
    assert_eq!(
        parse("2015-05-13T23:39:43Z lb").unwrap_err().field(),
        "client:port"
    );
    let replaced = [
        ("10.0.0.1:80", "10.0.0.1", "backend:port"),
        ("0.000073", "soon", "request_processing_time"),
        (" 200 200 ", " 2000000 200 ", "elb_status_code"),
        (" 0 29 ", " zero 29 ", "received_bytes"),
        ("\"curl/7.38.0\"", "\"curl/7.38.0", "user_agent"),
        (" - -", " -", "ssl_protocol"),
    ];
    for (from, to, field) in replaced {
        let line = HTTP.replacen(from, to, 1);
        assert_ne!(line, HTTP);
        assert_eq!(parse(&line).unwrap_err().field(), field, "{line}");
    }
}

#[test]
fn unknown_trailing_fields_are_ignored() {
    assert_eq!(
        parse(&format!("{HTTP} \"new\" 1")).unwrap(),
        parse(HTTP).unwrap()
    );
}

// ---- Round trips: generate the fields, write them as AWS does, parse, compare. ----

#[derive(Debug, Clone)]
struct Entry {
    time: (i64, u32),
    elb: String,
    client: (String, u16),
    backend: Option<(String, u16)>,
    /// Seconds with 6 decimals as integers of microseconds, or -1.
    times: [Option<i64>; 3],
    codes: [Option<u16>; 2],
    bytes: [u64; 2],
    /// `None`: a TCP/SSL listener entry, `"- - - "`.
    request: Option<(String, String, String)>,
    user_agent: Option<String>,
    ssl: Option<(String, String)>,
}

fn ip() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<[u8; 4]>().prop_map(|o| Ipv4Addr::from(o).to_string()),
        1 => any::<[u16; 8]>().prop_map(|s| Ipv6Addr::from(s).to_string()),
    ]
}

fn seconds() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![1 => Just(Some(-1)), 6 => (0i64..100_000_000).prop_map(Some)]
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        (946_684_800i64..4_102_444_800, 0u32..1_000_000),
        "[a-zA-Z0-9-]{1,32}",
        (ip(), any::<u16>()),
        proptest::option::of((ip(), any::<u16>())),
        [seconds(), seconds(), seconds()],
        [
            proptest::option::of(100u16..600),
            proptest::option::of(100u16..600),
        ],
        [any::<u64>(), any::<u64>()],
        proptest::option::of((
            prop::sample::select(vec!["GET", "POST", "HEAD", "PUT", "DELETE", "PATCH"]),
            "[a-z]{2,5}://[a-z.]{1,12}:[0-9]{2,5}/([a-zA-Z0-9/?=&%._~ -]|\\\\x22|\\\\){0,30}[a-z0-9/]",
            prop::sample::select(vec!["HTTP/1.1", "HTTP/1.0", "HTTP/2.0"]),
        )),
        proptest::option::of("([a-zA-Z0-9 ./;:()é,-]|\\\\x22|\\\\[a-z]){0,40}"),
        proptest::option::of(("[A-Z0-9-]{4,30}", "TLSv1(\\.[123])?|SSLv3")),
    )
        .prop_map(
            |(time, elb, client, backend, times, codes, bytes, request, user_agent, ssl)| Entry {
                time,
                elb,
                client,
                backend,
                times,
                codes,
                bytes,
                request: request.map(|(v, u, p)| (v.to_owned(), u, p.to_owned())),
                user_agent,
                ssl,
            },
        )
}

fn quote(value: Option<&str>) -> String {
    match value {
        None => "\"-\"".to_owned(),
        Some(v) => format!("\"{v}\""),
    }
}

fn dash(value: Option<impl ToString>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn seconds_text(v: Option<i64>) -> String {
    match v {
        None => "-".to_owned(),
        Some(-1) => "-1".to_owned(),
        Some(us) => format!("{}.{:06}", us / 1_000_000, us % 1_000_000),
    }
}

impl Entry {
    fn line(&self) -> String {
        let (secs, micros) = self.time;
        let (y, mo, d, h, mi, s) = Timestamp::from_unix(secs, micros * 1000).unwrap().civil();
        let request = match &self.request {
            Some((verb, url, proto)) => format!("{verb} {url} {proto}"),
            None => "- - - ".to_owned(),
        };
        let (cipher, protocol) = match &self.ssl {
            Some((c, p)) => (c.as_str(), p.as_str()),
            None => ("-", "-"),
        };
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{micros:06}Z {} {}:{} {} {} {} {} {} {} {} {} {} {} {cipher} {protocol}",
            self.elb,
            self.client.0,
            self.client.1,
            dash(
                self.backend
                    .as_ref()
                    .map(|(ip, port)| format!("{ip}:{port}"))
            ),
            seconds_text(self.times[0]),
            seconds_text(self.times[1]),
            seconds_text(self.times[2]),
            dash(self.codes[0]),
            dash(self.codes[1]),
            self.bytes[0],
            self.bytes[1],
            quote(Some(&request)),
            quote(self.user_agent.as_deref()),
        )
    }

    fn expected(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        };
        let secs = |v: Option<i64>| v.map(|v| json!(seconds_text(Some(v)).parse::<f64>().unwrap()));
        let (secs_since, micros) = self.time;
        let time = Timestamp::from_unix(secs_since, micros * 1000).unwrap();
        put("@timestamp", Some(json!(time.to_string())));
        put("elb", Some(json!(self.elb)));
        put("client_ip", Some(json!(self.client.0)));
        put("client_port", Some(json!(self.client.1)));
        put("backend_ip", self.backend.as_ref().map(|b| json!(b.0)));
        put("backend_port", self.backend.as_ref().map(|b| json!(b.1)));
        put("request_processing_time", secs(self.times[0]));
        put("backend_processing_time", secs(self.times[1]));
        put("response_processing_time", secs(self.times[2]));
        put("elb_status_code", self.codes[0].map(|c| json!(c)));
        put("backend_status_code", self.codes[1].map(|c| json!(c)));
        put("received_bytes", Some(json!(self.bytes[0])));
        put("sent_bytes", Some(json!(self.bytes[1])));
        if let Some((verb, url, proto)) = &self.request {
            put("request_verb", Some(json!(verb)));
            put("request_url", Some(json!(url)));
            put("request_proto", Some(json!(proto)));
        }
        put(
            "user_agent",
            self.user_agent
                .as_deref()
                .filter(|ua| *ua != "-")
                .map(|ua| json!(ua)),
        );
        if let Some((cipher, protocol)) = &self.ssl {
            put("ssl_cipher", Some(json!(cipher)));
            put("ssl_protocol", Some(json!(protocol)));
        }
        Value::Object(m)
    }
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
    fn never_panics_on_mutated_entries(line in mutated_line()) {
        if let Ok(value) = parse(&line) {
            prop_assert!(value.get("@timestamp").is_some());
        }
    }
}
