//! The `s3access` format through the public API: AWS's documented examples (fixtures), round
//! trips of generated records, and inputs that must fail cleanly or never panic.

mod writer;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use logferry_core::Timestamp;
use logferry_parse::{DecodeOptions, Format, FormatOptions, ParseError};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn format() -> Format {
    Format::new("s3access", &FormatOptions::new()).unwrap()
}

/// Parses one line through the public API (see [`to_json`]); blank lines give `null`.
fn parse(line: &str) -> Result<Value, ParseError> {
    let format = format();
    let mut parser = format.line_parser();
    parser
        .parse_line(line)
        .map(|record| record.as_ref().map_or(Value::Null, writer::to_json))
}

/// Every `fixtures/s3access/NAME.log` decodes to exactly `NAME.expected.json` (an array with
/// one object per record).
#[test]
fn documented_examples() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/s3access");
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
        let summary = format()
            .decode(&input[..], &DecodeOptions::default(), |item| match item {
                Ok(located) => records.push(writer::to_json(&located.record)),
                Err(err) => panic!("{}: {err}", path.display()),
            })
            .unwrap();
        assert_eq!(summary.errors, 0);
        assert_eq!(Value::Array(records), expected, "{}", path.display());
        seen += 1;
    }
    // The five documented records in their 2019 (through TLS version), 2023 (through
    // aclRequired) and current (through Source region) layouts, and constructed edge cases.
    assert_eq!(seen, 4);
}

const CURRENT: &str = r#"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be amzn-s3-demo-bucket1 [06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE REST.GET.VERSIONING - "GET /amzn-s3-demo-bucket1?versioning HTTP/1.1" 200 - 113 - 7 - "-" "S3Console/0.4" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader amzn-s3-demo-bucket1.s3.us-west-1.amazonaws.com TLSV1.2 arn:aws:s3:us-west-1:123456789012:accesspoint/example-AP Yes us-east-1"#;

#[test]
fn first_member_is_the_timestamp() {
    let format = format();
    let record = format.line_parser().parse_line(CURRENT).unwrap().unwrap();
    let mut out = Vec::new();
    record.write_json(&mut out);
    assert!(out.starts_with(br#"{"@timestamp":"2019-02-06T00:00:38Z","bucket_owner":"79a59"#));
    assert_eq!(record.timestamp().to_string(), "2019-02-06T00:00:38Z");
}

#[test]
fn errors_name_the_aws_field() {
    assert_eq!(parse("owner").unwrap_err().field(), "Bucket");
    assert_eq!(parse("owner bucket").unwrap_err().field(), "Time");
    let replaced = [
        (
            "[06/Feb/2019:00:00:38 +0000]",
            "06/Feb/2019:00:00:38",
            "Time",
        ),
        (
            "[06/Feb/2019:00:00:38 +0000]",
            "[06/Feb/2019:00:00:38]",
            "Time",
        ),
        (
            "[06/Feb/2019:00:00:38 +0000]",
            "[2019-02-06T00:00:38Z]",
            "Time",
        ),
        (
            "[06/Feb/2019:00:00:38 +0000]",
            "[31/Feb/2019:00:00:38 +0000]",
            "Time",
        ),
        (" 200 - 113", " OK - 113", "HTTP status"),
        (" 200 - 113", " 200 - -113", "Bytes Sent"),
        (" 113 - 7 ", " 113 big 7 ", "Object Size"),
        (" 113 - 7 ", " 113 - 7ms ", "Total Time"),
        (" 7 - \"-\"", " 7 1.5 \"-\"", "Turn-Around Time"),
        (
            "\"S3Console/0.4\" - s9l",
            "\"S3Console/0.4 - s9l",
            "User-Agent",
        ),
    ];
    for (from, to, field) in replaced {
        let line = CURRENT.replacen(from, to, 1);
        assert_ne!(line, CURRENT);
        assert_eq!(parse(&line).unwrap_err().field(), field, "{line}");
    }
    // The line ends inside a quoted field, or before a required field.
    let cut = CURRENT.find("HTTP/1.1\"").unwrap() + "HTTP/1.1".len();
    assert_eq!(parse(&CURRENT[..cut]).unwrap_err().field(), "Request-URI");
    let cut = CURRENT.find(" \"S3Console").unwrap();
    assert_eq!(parse(&CURRENT[..cut]).unwrap_err().field(), "User-Agent");
    let cut = CURRENT.find(" 7 - ").unwrap();
    assert_eq!(parse(&CURRENT[..cut]).unwrap_err().field(), "Total Time");
}

#[test]
fn records_end_early_or_carry_unknown_fields() {
    let full = parse(CURRENT).unwrap();
    // The original format: nothing after User-Agent.
    let cut = CURRENT.find(" - s9lz").unwrap();
    let old = parse(&CURRENT[..cut]).unwrap();
    assert_eq!(old["user_agent"], "S3Console/0.4");
    assert!(old.get("host_id").is_none());
    assert!(old.get("source_region").is_none());
    let mut expected = full.as_object().unwrap().clone();
    for name in [
        "host_id",
        "signature_version",
        "cipher_suite",
        "authentication_type",
        "host_header",
        "tls_version",
        "access_point_arn",
        "acl_required",
        "source_region",
    ] {
        expected.remove(name);
    }
    assert_eq!(old, Value::Object(expected));
    // Fields added after Source region are ignored, whatever they hold; so are a trailing
    // space and a trailing `\r`.
    for line in [
        format!(r#"{CURRENT} future "quoted field" 12"#),
        format!("{CURRENT} "),
        format!("{CURRENT}\r"),
        format!(r#"{CURRENT} "unterminated"#),
    ] {
        assert_eq!(parse(&line).unwrap(), full, "{line}");
    }
}

#[test]
fn typed_accessors() {
    let format = format();
    let mut parser = format.line_parser();
    let record = parser.parse_line(CURRENT).unwrap().unwrap();
    let logferry_parse::Record::S3Access(record) = record else {
        panic!("an s3access record")
    };
    assert_eq!(record.bucket(), Some("amzn-s3-demo-bucket1"));
    assert_eq!(record.operation(), Some("REST.GET.VERSIONING"));
    assert_eq!(record.http_status(), Some(200));
}

// ---- Round trips: generate the fields, write them as S3 does, parse, compare. ----

/// A generated record: every field's value, `None` where S3 writes `-`.
#[derive(Debug, Clone)]
struct Entry {
    strings: [Option<String>; 6],
    time: (i64, i32),
    request: Option<(String, String, String)>,
    http_status: Option<u16>,
    error_code: Option<String>,
    numbers: [Option<u64>; 4],
    referer: Option<String>,
    user_agent: Option<String>,
    /// Version Id through Source region; the line ends after `appended_len` of them.
    appended: [Option<String>; 10],
    appended_len: usize,
}

const STRING_NAMES: [&str; 6] = [
    "bucket_owner",
    "bucket",
    "remote_ip",
    "requester",
    "request_id",
    "operation",
];
const NUMBER_NAMES: [&str; 4] = [
    "bytes_sent",
    "object_size",
    "total_time",
    "turn_around_time",
];
const APPENDED_NAMES: [&str; 10] = [
    "version_id",
    "host_id",
    "signature_version",
    "cipher_suite",
    "authentication_type",
    "host_header",
    "tls_version",
    "access_point_arn",
    "acl_required",
    "source_region",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A field without spaces that is not `-` (S3 writes `-` for "absent").
fn word() -> BoxedStrategy<String> {
    "[A-Za-z0-9+/=:._%\\-]{1,24}"
        .prop_filter("not the absent marker", |s| s != "-")
        .boxed()
}

fn ip() -> BoxedStrategy<String> {
    prop_oneof![
        any::<u32>().prop_map(|v| Ipv4Addr::from(v).to_string()),
        any::<u128>().prop_map(|v| Ipv6Addr::from(v).to_string()),
    ]
    .boxed()
}

/// Quoted text as S3 writes it: anything but a quote followed by a space (or ending the
/// field) or a backslash before the closing quote.
fn quoted_text() -> impl Strategy<Value = String> {
    "[ -~é€]{1,40}".prop_filter("unambiguous", |s| {
        s != "-" && !s.ends_with('\\') && !s.ends_with('"') && !s.contains("\" ")
    })
}

fn entry() -> impl Strategy<Value = Entry> {
    let strings = [
        proptest::option::of(word()),
        proptest::option::of(word()),
        proptest::option::of(ip()),
        proptest::option::of(word()),
        proptest::option::of(word()),
        proptest::option::of(word()),
    ];
    let request = proptest::option::of((
        "[A-Z]{3,7}",
        "/[!-~]{0,30}".prop_filter("no quote before a space", |s| !s.ends_with('"')),
        "HTTP/[12]\\.[01]",
    ));
    let appended = std::array::from_fn::<_, 10, _>(|_| proptest::option::of(word()));
    (
        (
            strings,
            (-62_167_132_800i64..253_402_214_399, -1439i32..=1439),
            request,
        ),
        (
            proptest::option::of(100u16..600),
            proptest::option::of(word()),
            std::array::from_fn::<_, 4, _>(|_| proptest::option::of(any::<u64>())),
        ),
        (
            proptest::option::of(quoted_text()),
            proptest::option::of(quoted_text()),
        ),
        (appended, 0usize..=10),
    )
        .prop_map(
            |(
                (strings, time, request),
                (http_status, error_code, numbers),
                (referer, user_agent),
                (appended, appended_len),
            )| Entry {
                strings,
                time,
                request,
                http_status,
                error_code,
                numbers,
                referer,
                user_agent,
                appended,
                appended_len,
            },
        )
}

fn dash(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

fn quote(v: &Option<String>) -> String {
    format!("\"{}\"", dash(v))
}

impl Entry {
    /// The local time and zone as S3 writes them, and the UTC time they stand for.
    fn time(&self) -> (String, String) {
        let (secs, offset_minutes) = self.time;
        let utc = Timestamp::from_unix(secs, 0).unwrap();
        let local = Timestamp::from_unix(secs + i64::from(offset_minutes) * 60, 0).unwrap();
        let (y, mo, d, h, mi, s) = local.civil();
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        let abs = offset_minutes.abs();
        let text = format!(
            "[{d:02}/{}/{y:04}:{h:02}:{mi:02}:{s:02} {sign}{:02}{:02}]",
            MONTHS[mo as usize - 1],
            abs / 60,
            abs % 60
        );
        (text, utc.to_string())
    }

    fn line(&self) -> String {
        let s = &self.strings;
        let mut line = format!("{} {} {}", dash(&s[0]), dash(&s[1]), self.time().0);
        for v in &s[2..] {
            line.push(' ');
            line.push_str(dash(v));
        }
        line.push_str(" -");
        match &self.request {
            Some((verb, url, proto)) => line.push_str(&format!(" \"{verb} {url} {proto}\"")),
            None => line.push_str(" \"-\""),
        }
        match self.http_status {
            Some(v) => line.push_str(&format!(" {v}")),
            None => line.push_str(" -"),
        }
        line.push(' ');
        line.push_str(dash(&self.error_code));
        for v in self.numbers {
            match v {
                Some(v) => line.push_str(&format!(" {v}")),
                None => line.push_str(" -"),
            }
        }
        line.push_str(&format!(
            " {} {}",
            quote(&self.referer),
            quote(&self.user_agent)
        ));
        for v in &self.appended[..self.appended_len] {
            line.push(' ');
            line.push_str(dash(v));
        }
        line
    }

    fn expected(&self) -> Value {
        let mut m = Map::new();
        m.insert("@timestamp".into(), self.time().1.into());
        let put = |m: &mut Map<String, Value>, k: &str, v: &Option<String>| {
            if let Some(v) = v {
                m.insert(k.into(), v.clone().into());
            }
        };
        for (name, v) in STRING_NAMES.iter().zip(&self.strings) {
            put(&mut m, name, v);
        }
        if let Some((verb, url, proto)) = &self.request {
            m.insert("request_uri".into(), format!("{verb} {url} {proto}").into());
            m.insert("request_verb".into(), verb.clone().into());
            m.insert("request_url".into(), url.clone().into());
            m.insert("request_proto".into(), proto.clone().into());
        }
        if let Some(v) = self.http_status {
            m.insert("http_status".into(), v.into());
        }
        put(&mut m, "error_code", &self.error_code);
        for (name, v) in NUMBER_NAMES.iter().zip(self.numbers) {
            if let Some(v) = v {
                m.insert((*name).into(), v.into());
            }
        }
        put(&mut m, "referer", &self.referer);
        put(&mut m, "user_agent", &self.user_agent);
        for (name, v) in APPENDED_NAMES
            .iter()
            .zip(&self.appended[..self.appended_len])
        {
            put(&mut m, name, v);
        }
        Value::Object(m)
    }
}

/// Replaces, inserts or deletes characters of `line` at the given positions.
fn mutate(line: &str, edits: &[(usize, u8, char)]) -> String {
    let mut chars: Vec<char> = line.chars().collect();
    for &(at, op, c) in edits {
        if chars.is_empty() {
            chars.push(c);
            continue;
        }
        let at = at % chars.len();
        match op % 3 {
            0 => chars[at] = c,
            1 => chars.insert(at, c),
            _ => {
                chars.remove(at);
            }
        }
    }
    chars.into_iter().collect()
}

fn interesting_char() -> impl Strategy<Value = char> {
    prop_oneof![
        Just(' '),
        Just('"'),
        Just('\\'),
        Just('['),
        Just(']'),
        Just('-'),
        Just('+'),
        Just(':'),
        Just('/'),
        Just('9'),
        any::<char>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_records_round_trip(entry in entry()) {
        let line = entry.line();
        let parsed = parse(&line).map_err(|e| TestCaseError::fail(format!("{line}: {e}")))?;
        prop_assert_eq!(parsed, entry.expected(), "{}", line);
    }

    #[test]
    fn arbitrary_text_never_panics(line in "\\PC{0,300}") {
        let _ = parse(&line);
    }

    #[test]
    fn mutated_records_never_panic(
        entry in entry(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), interesting_char()), 1..8),
        cut in any::<usize>(),
    ) {
        let line = mutate(&entry.line(), &edits);
        if let Ok(value) = parse(&line) {
            prop_assert!(value.get("@timestamp").is_some());
        }
        let cut = line.char_indices().map(|(i, _)| i).nth(cut % line.chars().count().max(1));
        let _ = parse(&line[..cut.unwrap_or(0)]);
    }
}
