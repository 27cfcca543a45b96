//! The `cloudfront` format through the public API: AWS's documented example log files
//! (fixtures), `#Fields` headers, round trips of generated entries, and inputs that must fail
//! cleanly or never panic.

mod writer;

use std::path::Path;

use logferry_core::Timestamp;
use logferry_parse::{DecodeOptions, Format, FormatOptions, ParseError, Record};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn format() -> Format {
    Format::new("cloudfront", &FormatOptions::new()).unwrap()
}

/// Parses the lines of one input (see [`to_json`]); header lines give `None`.
fn parse_all(lines: &[&str]) -> Vec<Result<Option<Value>, ParseError>> {
    let format = format();
    let mut parser = format.line_parser();
    lines
        .iter()
        .map(|line| {
            parser
                .parse_line(line)
                .map(|r| r.as_ref().map(writer::to_json))
        })
        .collect()
}

fn parse(line: &str) -> Result<Value, ParseError> {
    parse_all(&[line]).remove(0).map(|v| v.expect("a record"))
}

/// Every `fixtures/cloudfront/NAME.log` decodes to exactly `NAME.expected.json` (an array with
/// one object per entry).
#[test]
fn documented_examples() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cloudfront");
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
    // AWS's example log file with and without its header lines, the 2014 example (26 fields),
    // a reordered custom header, and a standard logging (v2) header with real-time fields.
    assert_eq!(seen, 5);
}

const HIT: &str = "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\td111111abcdef8.cloudfront.net\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\ttext/html\t78\t-\t-";

const STANDARD_HEADER: &str = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end";

#[test]
fn first_member_is_the_timestamp() {
    let format = format();
    let record = format.line_parser().parse_line(HIT).unwrap().unwrap();
    let mut out = Vec::new();
    record.write_json(&mut out);
    assert!(out.starts_with(br#"{"@timestamp":"2019-12-04T21:02:31Z","x_edge_location":"LAX1","#));
    assert_eq!(record.timestamp().to_string(), "2019-12-04T21:02:31Z");
    let Record::CloudFront(record) = record else {
        panic!("a cloudfront record")
    };
    assert_eq!(record.get("sc_status"), Some("200"));
    assert_eq!(
        record
            .get("cs(User-Agent)")
            .map(|ua| ua.starts_with("Mozilla/5.0%20")),
        Some(true)
    );
    assert_eq!(record.get("cs_referer"), None);
}

#[test]
fn header_lines_carry_no_record_and_set_the_layout_per_input() {
    let custom = "#Fields: sc-status time date";
    let results = parse_all(&["#Version: 1.0", custom, "200\t01:02:03\t2020-01-02", HIT]);
    assert_eq!(results[0], Ok(None));
    assert_eq!(results[1], Ok(None));
    assert_eq!(
        results[2],
        Ok(Some(
            json!({"@timestamp": "2020-01-02T01:02:03Z", "sc_status": 200})
        ))
    );
    // The custom layout still applies: `HIT`'s first field is not a status.
    assert_eq!(results[3].as_ref().unwrap_err().field(), "sc-status");
    // A new input (a new line parser) starts from the standard layout again.
    assert!(parse(HIT).is_ok());
    // Another header replaces the layout; the standard header gives the default layout back.
    let results = parse_all(&[custom, STANDARD_HEADER, HIT]);
    assert_eq!(results[2], Ok(Some(parse(HIT).unwrap())));
}

#[test]
fn errors_name_the_aws_field() {
    let replaced = [
        ("2019-12-04\t", "2019-12-4\t", "date"),
        ("\t21:02:31\t", "\t21:02\t", "time"),
        ("\t21:02:31\t", "\t21:61:31\t", "time"),
        ("\t392\t", "\t-392\t", "sc-bytes"),
        ("\t200\t", "\tOK\t", "sc-status"),
        ("\t23\t0.001\t", "\t23\t1ms\t", "time-taken"),
        ("\t11040\t", "\t11040.5\t", "c-port"),
        ("\t0.001\tHit\t", "\tfast\tHit\t", "time-to-first-byte"),
        ("\t78\t-\t-", "\t78\tfirst\t-", "sc-range-start"),
    ];
    for (from, to, field) in replaced {
        let line = HIT.replacen(from, to, 1);
        assert_ne!(line, HIT);
        assert_eq!(parse(&line).unwrap_err().field(), field, "{line}");
    }
    assert_eq!(parse("2019-12-04").unwrap_err().field(), "time");
    let results = parse_all(&["#Fields:", HIT]);
    assert_eq!(results[0].as_ref().unwrap_err().field(), "#Fields");
    assert!(results[1].is_ok(), "a bad header keeps the previous layout");
}

#[test]
fn entries_end_early_or_carry_unknown_fields() {
    let full = parse(HIT).unwrap();
    // Fields after the layout's last are ignored, like the trailing tab in AWS's example.
    for line in [
        format!("{HIT}\t"),
        format!("{HIT}\tnew\tfields"),
        format!("{HIT}\r"),
    ] {
        assert_eq!(parse(&line).unwrap(), full, "{line:?}");
    }
    // An entry with fewer fields omits the missing ones.
    let cut = HIT.find("\tHTTP/2.0").unwrap();
    let short = parse(&HIT[..cut]).unwrap();
    let mut expected = full.as_object().unwrap().clone();
    for name in [
        "cs_protocol_version",
        "c_port",
        "time_to_first_byte",
        "x_edge_detailed_result_type",
        "sc_content_type",
        "sc_content_len",
    ] {
        expected.remove(name);
    }
    assert_eq!(short, Value::Object(expected));
}

#[test]
fn header_values_are_percent_decoded_and_urls_are_not() {
    let results = parse_all(&[
        "#Fields: date time cs-uri-stem cs-uri-query cs(Referer) cs(User-Agent) cs(Cookie) x-thing",
        "2020-01-01\t00:00:00\t/a%20b\tq=%26\thttp://x/?q=a%2520b\tcurl%2F8\tk=v;%20k2=v%25\t%41",
    ]);
    assert_eq!(
        results[1],
        Ok(Some(json!({
            "@timestamp": "2020-01-01T00:00:00Z",
            "cs_uri_stem": "/a%20b",
            "cs_uri_query": "q=%26",
            "cs_referer": "http://x/?q=a%20b",
            "cs_user_agent": "curl/8",
            "cs_cookie": "k=v; k2=v%",
            "x_thing": "%41",
        })))
    );
}

// ---- Round trips: generate the fields, write them as CloudFront does, parse, compare. ----

/// What a generated value is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Header,
    Count,
    Seconds,
}

/// The standard fields after `date` and `time`: AWS name, output name, kind.
const FIELDS: [(&str, &str, Kind); 31] = [
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
];

/// A generated value: how CloudFront writes it and what it parses to.
#[derive(Debug, Clone)]
struct Generated {
    logged: String,
    json: Value,
}

/// Text as CloudFront writes it: characters 0-32, 127 and above, and `%` among others are
/// URL-encoded, so no tab, newline or space remains.
fn encoded(decode: bool) -> impl Strategy<Value = Generated> {
    "[ -~é€\t]{1,30}"
        .prop_filter("not the absent marker", |s| s != "-")
        .prop_map(move |raw| {
            let mut logged = String::new();
            for b in raw.bytes() {
                if b <= 32 || b >= 127 || b"<>\"#%{}|\\^~[]`'".contains(&b) {
                    logged.push_str(&format!("%{b:02X}"));
                } else {
                    logged.push(b as char);
                }
            }
            let json = if decode {
                raw.into()
            } else {
                logged.clone().into()
            };
            Generated { logged, json }
        })
}

fn value(kind: Kind) -> BoxedStrategy<Option<Generated>> {
    let present = match kind {
        Kind::Text => encoded(false).boxed(),
        Kind::Header => encoded(true).boxed(),
        Kind::Count => any::<u64>()
            .prop_map(|n| Generated {
                logged: n.to_string(),
                json: n.into(),
            })
            .boxed(),
        Kind::Seconds => (0u32..100_000, 0u32..1000)
            .prop_map(|(s, ms)| {
                let logged = format!("{s}.{ms:03}");
                let json = logged.parse::<f64>().unwrap().into();
                Generated { logged, json }
            })
            .boxed(),
    };
    proptest::option::of(present).boxed()
}

/// A generated entry: the time, and a value (or `-`) for every field of `FIELDS`.
#[derive(Debug, Clone)]
struct Entry {
    secs: i64,
    values: Vec<Option<Generated>>,
}

fn entry() -> impl Strategy<Value = Entry> {
    let values: Vec<_> = FIELDS.iter().map(|&(_, _, kind)| value(kind)).collect();
    (-62_167_219_200i64..253_402_300_800, values).prop_map(|(secs, values)| Entry { secs, values })
}

impl Entry {
    fn date_time(&self) -> (String, String, String) {
        let ts = Timestamp::from_unix(self.secs, 0).unwrap();
        let (y, mo, d, h, mi, s) = ts.civil();
        (
            format!("{y:04}-{mo:02}-{d:02}"),
            format!("{h:02}:{mi:02}:{s:02}"),
            ts.to_string(),
        )
    }

    /// The header and the line for the columns `order` (indexes into `FIELDS`; `date` and
    /// `time` are put at `date_at` and `time_at`), and the JSON it parses to.
    fn write(&self, order: &[usize], date_at: usize, time_at: usize) -> (String, String, Value) {
        let (date, time, timestamp) = self.date_time();
        let mut names: Vec<&str> = Vec::new();
        let mut cells: Vec<String> = Vec::new();
        let mut json = Map::new();
        json.insert("@timestamp".into(), timestamp.into());
        for &i in order {
            let (aws, out, _) = FIELDS[i];
            names.push(aws);
            match &self.values[i] {
                Some(v) => {
                    cells.push(v.logged.clone());
                    json.insert(out.into(), v.json.clone());
                }
                None => cells.push("-".into()),
            }
        }
        let date_at = date_at.min(names.len());
        names.insert(date_at, "date");
        cells.insert(date_at, date);
        let time_at = time_at.min(names.len());
        names.insert(time_at, "time");
        cells.insert(time_at, time);
        (
            format!("#Fields: {}", names.join(" ")),
            cells.join("\t"),
            Value::Object(json),
        )
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
        Just('\t'),
        Just('%'),
        Just('-'),
        Just(':'),
        Just('.'),
        Just('#'),
        Just('9'),
        any::<char>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn standard_entries_round_trip(entry in entry()) {
        let all: Vec<usize> = (0..FIELDS.len()).collect();
        let (header, line, expected) = entry.write(&all, 0, 1);
        prop_assert_eq!(&header, STANDARD_HEADER);
        // Without a header (the standard layout) and with AWS's header.
        prop_assert_eq!(parse(&line).unwrap(), expected.clone());
        let results = parse_all(&[&header, &line]);
        prop_assert_eq!(results[1].clone(), Ok(Some(expected)));
    }

    #[test]
    fn custom_layouts_round_trip(
        entry in entry(),
        order in Just((0..FIELDS.len()).collect::<Vec<_>>()).prop_shuffle(),
        keep in 0..=FIELDS.len(),
        date_at in any::<usize>(),
        time_at in any::<usize>(),
    ) {
        let order = &order[..keep];
        let (header, line, expected) = entry.write(order, date_at % (keep + 1), time_at % (keep + 2));
        let results = parse_all(&["#Version: 1.0", &header, &line]);
        prop_assert_eq!(results[2].clone(), Ok(Some(expected)), "{}\n{}", header, line);
    }

    #[test]
    fn arbitrary_text_never_panics(header in "#Fields:\\PC{0,80}", lines in proptest::collection::vec("[\\PC\t]{0,200}", 1..4)) {
        let mut all = vec![header.as_str()];
        all.extend(lines.iter().map(String::as_str));
        let _ = parse_all(&all);
        let _ = parse_all(&lines.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn mutated_entries_never_panic(
        entry in entry(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), interesting_char()), 1..8),
        header_edits in proptest::collection::vec((any::<usize>(), any::<u8>(), interesting_char()), 0..4),
    ) {
        let all: Vec<usize> = (0..FIELDS.len()).collect();
        let (header, line, _) = entry.write(&all, 0, 1);
        let line = mutate(&line, &edits);
        let header = mutate(&header, &header_edits);
        for result in parse_all(&[&header, &line]) {
            if let Ok(Some(value)) = result {
                prop_assert!(value.get("@timestamp").is_some());
            }
        }
        // Alone, the line may have become a header or a blank line.
        let _ = parse_all(&[&line]);
    }
}
