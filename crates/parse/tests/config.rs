//! The `config` format (AWS Config snapshot and history files) through the public API: AWS's
//! documented examples (fixtures), the writability check file, errors, truncated documents and
//! inputs that must never panic.

mod common;

use std::path::PathBuf;

use logferry_parse::{DecodeError, DecodeOptions, DecodeSummary, Format, FormatOptions};
use proptest::prelude::*;
use serde_json::{Value, json};

fn format() -> Format {
    Format::new("config", &FormatOptions::new()).unwrap()
}

fn fixture(name: &str) -> PathBuf {
    common::fixture("config", name)
}

/// Decodes `input`; see [`common::decode_items`].
fn decode(
    input: &[u8],
    options: &DecodeOptions,
) -> (Vec<Value>, Result<DecodeSummary, DecodeError>) {
    common::decode_items(&format(), input, options, |_| {})
}

/// `snapshot.json`, `history.json` and the empty `ConfigWritabilityCheckFile` decode to
/// exactly their `.expected.json`: one `{"line", "position", "record"}` per configuration item.
#[test]
fn documented_examples() {
    for name in [
        "snapshot.json",
        "history.json",
        "ConfigWritabilityCheckFile",
    ] {
        let input = std::fs::read(fixture(name)).unwrap();
        let expected_name = format!("{}.expected.json", name.trim_end_matches(".json"));
        let expected: Value =
            serde_json::from_slice(&std::fs::read(fixture(&expected_name)).unwrap()).unwrap();
        let (items, result) = decode(&input, &DecodeOptions::default());
        let summary = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(Value::Array(items), expected, "{name}");
        let count = expected.as_array().unwrap().len() as u64;
        assert_eq!((summary.records, summary.errors), (count, 0), "{name}");
        let lines = input.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(summary.lines, lines, "{name}");
    }
}

#[test]
fn the_writability_check_file_yields_nothing() {
    let (items, result) = decode(b"", &DecodeOptions::default());
    assert!(items.is_empty());
    assert_eq!(result.unwrap(), DecodeSummary::default());
}

#[test]
fn items_pass_through_verbatim() {
    let input = std::fs::read(fixture("snapshot.json")).unwrap();
    let mut out = Vec::new();
    format()
        .decode(&input[..], &DecodeOptions::default(), |item| {
            if item.as_ref().unwrap().position == 0 {
                item.unwrap().record.write_json(&mut out);
            }
        })
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with(concat!(
        r#"{"@timestamp":"2014-03-07T23:47:08.918Z","configurationItemVersion":"1.0","#,
        r#""resourceId":"vol-ce676ccc","#
    )));
    // Nested values keep the document's own layout.
    assert!(
        out.contains("\"tags\":{},\"relationships\":[\n                {\n"),
        "{out}"
    );
}

#[test]
fn snapshot_with_an_id_and_a_bad_item() {
    let input = concat!(
        "{\"fileVersion\":\"1.0\",\"configSnapshotId\":\"94ccff53-83be-42d9-996f-b4624b3c1a55\",",
        "\"configurationItems\":[\n",
        "{\"resourceId\":\"a\",\"configurationItemCaptureTime\":\"2019-02-19T17:07:07.599Z\"},\n",
        "{\"resourceId\":\"b\"},\n",
        "{\"resourceId\":\"c\",\"configurationItemCaptureTime\":\"2019-02-19 17:07:08\"}\n",
        "]}"
    );
    let (items, result) = decode(input.as_bytes(), &DecodeOptions::default());
    assert_eq!(
        items,
        vec![
            json!({"line": 2, "position": 0, "record": {
                "@timestamp": "2019-02-19T17:07:07.599Z",
                "resourceId": "a",
                "configurationItemCaptureTime": "2019-02-19T17:07:07.599Z"
            }}),
            json!({"line": 3, "position": 1, "error": "configurationItemCaptureTime"}),
            json!({"line": 4, "position": 2, "record": {
                "@timestamp": "2019-02-19T17:07:08Z",
                "resourceId": "c",
                "configurationItemCaptureTime": "2019-02-19 17:07:08"
            }}),
        ]
    );
    let summary = result.unwrap();
    assert_eq!((summary.lines, summary.records, summary.errors), (5, 2, 1));
}

#[test]
fn items_over_the_size_limit_are_skipped_with_an_error() {
    // Each item of the history example is a little over 2000 bytes; the snapshot's second item
    // is over 6000.
    let input = std::fs::read(fixture("history.json")).unwrap();
    let options = DecodeOptions {
        max_line_bytes: 2000,
        ..DecodeOptions::default()
    };
    let (items, result) = decode(&input, &options);
    assert_eq!(
        items,
        vec![
            json!({"line": 57, "position": 0, "error": "record"}),
            json!({"line": 110, "position": 1, "error": "record"}),
            json!({"line": 163, "position": 2, "error": "record"}),
        ]
    );
    assert_eq!(result.unwrap().errors, 3);
    let input = std::fs::read(fixture("snapshot.json")).unwrap();
    let options = DecodeOptions {
        max_line_bytes: 3000,
        ..DecodeOptions::default()
    };
    let (items, result) = decode(&input, &options);
    assert_eq!(items[0]["record"]["resourceId"], "vol-ce676ccc");
    assert_eq!(
        items[1],
        json!({"line": 212, "position": 1, "error": "record"})
    );
    assert_eq!(result.unwrap().records, 1);
}

#[test]
fn truncated_documents_report_the_line() {
    let input = std::fs::read(fixture("history.json")).unwrap();
    let end = input.iter().rposition(|&b| b == b'}').unwrap();
    for cut in 1..=end {
        let prefix = &input[..cut];
        let line = prefix.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        match decode(prefix, &DecodeOptions::default()).1 {
            Err(DecodeError::Document { line: got, .. }) => assert_eq!(got, line, "cut at {cut}"),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn malformed_documents_stop_with_the_line() {
    let cases: &[(&str, u64)] = &[
        ("ConfigWritabilityCheckFile", 1),
        ("{\"configurationItems\":null}", 1),
        (
            "{\"fileVersion\":\"1.0\",\n\"configurationItems\":[{}\n,]}",
            3,
        ),
        ("{\"fileVersion\":\"1.0\"}\n}", 2),
    ];
    for &(input, line) in cases {
        match decode(input.as_bytes(), &DecodeOptions::default()).1 {
            Err(DecodeError::Document { line: got, .. }) => assert_eq!(got, line, "{input:?}"),
            other => panic!("{input:?}: {other:?}"),
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&input, &DecodeOptions { max_line_bytes: 64, ..DecodeOptions::default() });
        let _ = decode(&input, &DecodeOptions::default());
    }

    #[test]
    fn mutated_documents_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut input = std::fs::read(fixture("snapshot.json")).unwrap();
        for (at, byte, op) in edits {
            let i = at.index(input.len());
            match op {
                0 => input[i] = byte,
                1 => { input.remove(i); }
                _ => input.insert(i, byte),
            }
        }
        let _ = decode(&input, &DecodeOptions { max_line_bytes: 1500, ..DecodeOptions::default() });
        let cut = cut.index(input.len() + 1);
        let _ = decode(&input[..cut], &DecodeOptions::default());
    }
}
