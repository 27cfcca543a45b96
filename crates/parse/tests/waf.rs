//! AWS WAF logs: AWS's documented log entries, errors, a round trip and a never-panics check.

use std::path::{Path, PathBuf};

use logferry_parse::{DecodeOptions, Format, FormatOptions, ParseErrorKind, Record};
use proptest::prelude::*;
use serde_json::{Value, json};

const FIXTURES: [&str; 9] = [
    "sqli-terminating",
    "sqli-non-terminating",
    "rule-group",
    "json-body",
    "captcha-valid-token",
    "captcha-missing-token",
    "challenge-missing-token",
    "rate-based",
    "labels-data-protection",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/waf")
        .join(name)
}

fn waf() -> Format {
    Format::new("waf", &FormatOptions::new()).unwrap()
}

fn encode(record: &Record<'_>) -> String {
    let mut out = Vec::new();
    record.write_json(&mut out);
    String::from_utf8(out).expect("JSON is UTF-8")
}

#[test]
fn documented_examples_give_the_expected_json() {
    let format = waf();
    for name in FIXTURES {
        let input = std::fs::read_to_string(fixture(&format!("{name}.log"))).unwrap();
        let expected: Vec<Value> = serde_json::from_slice(
            &std::fs::read(fixture(&format!("{name}.expected.json"))).unwrap(),
        )
        .unwrap();
        let mut actual = Vec::new();
        let summary = format
            .decode(input.as_bytes(), &DecodeOptions::default(), |item| {
                let located = item.unwrap_or_else(|e| panic!("{name}: {e}"));
                let json = encode(&located.record);
                // The object passes through as written, `@timestamp` put first.
                let line = input.trim_end();
                let timestamp = located.record.timestamp().to_string();
                assert_eq!(
                    json,
                    format!(r#"{{"@timestamp":"{timestamp}",{}"#, &line[1..]),
                    "{name}"
                );
                actual.push(serde_json::from_str::<Value>(&json).unwrap());
            })
            .unwrap();
        assert_eq!((summary.records, summary.errors), (1, 0), "{name}");
        assert_eq!(actual, expected, "{name}");
    }
}

#[test]
fn several_entries_per_object_and_blank_lines() {
    let mut input = String::new();
    for name in FIXTURES {
        input.push_str(&std::fs::read_to_string(fixture(&format!("{name}.log"))).unwrap());
        input.push_str("\r\n\n");
    }
    let mut timestamps = Vec::new();
    let summary = waf()
        .decode(input.as_bytes(), &DecodeOptions::default(), |item| {
            timestamps.push(item.unwrap().record.timestamp().to_string());
        })
        .unwrap();
    assert_eq!(summary.records, 9);
    assert_eq!(timestamps[0], "2019-12-13T23:40:12.771Z");
    assert_eq!(timestamps[7], "2023-05-06T06:46:19.981Z");
}

#[test]
fn errors_name_timestamp_or_line() {
    let format = waf();
    let mut parser = format.line_parser();
    let err = parser
        .parse_line(r#"{"formatVersion":1,"action":"ALLOW"}"#)
        .unwrap_err();
    assert_eq!(
        (err.field(), err.kind()),
        ("timestamp", &ParseErrorKind::Missing)
    );
    for bad in [
        r#"{"timestamp":"1576280412771"}"#,
        r#"{"timestamp":-1e3}"#,
        r#"{"timestamp":1e30}"#,
    ] {
        let err = parser.parse_line(bad).unwrap_err();
        assert_eq!(err.field(), "timestamp", "{bad}");
        assert!(
            matches!(err.kind(), ParseErrorKind::Invalid { .. }),
            "{bad}"
        );
    }
    for bad in ["{", r#"{"timestamp":1576280412771} trailing"#, "[1,2]"] {
        let err = parser.parse_line(bad).unwrap_err();
        assert_eq!(err.field(), "line", "{bad}");
        assert!(matches!(err.kind(), ParseErrorKind::Json { .. }), "{bad}");
    }
    assert!(Format::new("waf", &FormatOptions::new().with("fields", "x")).is_err());
}

#[test]
fn an_input_member_named_at_timestamp_is_replaced() {
    let format = waf();
    let mut parser = format.line_parser();
    let record = parser
        .parse_line(r#"{"@timestamp":"x","timestamp":0,"action":"ALLOW"}"#)
        .unwrap()
        .unwrap();
    assert_eq!(
        encode(&record),
        r#"{"@timestamp":"1970-01-01T00:00:00Z","timestamp":0,"action":"ALLOW"}"#
    );
}

proptest! {
    #[test]
    fn generated_entries_round_trip(
        millis in 0i64..=253_402_300_799_999,
        action in prop::sample::select(vec!["ALLOW", "BLOCK", "COUNT", "CAPTCHA", "CHALLENGE"]),
        client_ip in "[0-9]{1,3}(\\.[0-9]{1,3}){3}",
        uri in "/\\PC{0,30}",
        labels in prop::collection::vec("[a-z]{1,8}(:[a-z0-9-]{1,8}){0,4}", 0..4),
    ) {
        let labels: Vec<Value> = labels.iter().map(|name| json!({ "name": name })).collect();
        let entry = json!({
            "timestamp": millis,
            "formatVersion": 1,
            "action": action,
            "httpRequest": { "clientIp": client_ip, "uri": uri, "headers": [] },
            "labels": labels,
        });
        let line = serde_json::to_string(&entry).unwrap();
        let format = waf();
        let mut parser = format.line_parser();
        let record = parser.parse_line(&line).unwrap().unwrap();
        prop_assert_eq!(record.timestamp().unix_millis(), millis);
        let mut out: Value = serde_json::from_str(&encode(&record)).unwrap();
        let timestamp = out.as_object_mut().unwrap().remove("@timestamp").unwrap();
        prop_assert_eq!(timestamp, json!(record.timestamp().to_string()));
        prop_assert_eq!(out, entry);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        check_no_panic(&text);
    }

    #[test]
    fn mutated_entries_never_panic(
        fixture_index in 0..FIXTURES.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), "\\PC{0,3}", 0usize..3), 0..6),
    ) {
        let mut text = std::fs::read_to_string(fixture(&format!("{}.log", FIXTURES[fixture_index]))).unwrap();
        for (at, insert, remove) in edits {
            let mut pos = at.index(text.len() + 1);
            while !text.is_char_boundary(pos) {
                pos -= 1;
            }
            let mut end = pos;
            for _ in 0..remove {
                end += text[end..].chars().next().map_or(0, char::len_utf8);
            }
            text.replace_range(pos..end, &insert);
        }
        check_no_panic(&text);
    }
}

/// Every record that comes out must encode to a JSON object with `@timestamp` first.
fn check_no_panic(text: &str) {
    let format = waf();
    let check = |record: &Record<'_>| {
        let json = encode(record);
        assert!(json.starts_with("{\"@timestamp\":\""), "{json}");
        assert!(
            serde_json::from_str::<Value>(&json)
                .expect("valid JSON")
                .is_object()
        );
    };
    let _ = format.decode(text.as_bytes(), &DecodeOptions::default(), |item| {
        if let Ok(located) = item {
            check(&located.record);
        }
    });
    let mut parser = format.line_parser();
    for line in text.split('\n') {
        if let Ok(Some(record)) = parser.parse_line(line) {
            check(&record);
        }
    }
}
