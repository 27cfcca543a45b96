//! Shared oracle of the fuzz targets: decoding arbitrary bytes must not panic, and every
//! record that comes out must encode to a JSON object whose first member is `@timestamp`, the
//! same text through the direct writer (`write_json`) as through serde_json.

use logferry_parse::{DecodeOptions, Format, FormatOptions};

/// Decodes `data` as `format` (whole input, then line by line) and checks every record.
pub fn check(format: &str, data: &[u8]) {
    let format = Format::new(format, &FormatOptions::new()).expect("fuzzed formats exist");
    let options = DecodeOptions { max_line_bytes: 4096, max_input_bytes: Some(1 << 20) };
    let mut out = Vec::new();
    let _ = format.decode(data, &options, |item| {
        if let Ok(located) = item {
            out.clear();
            located.record.write_json(&mut out);
            assert_json_object(&out);
            assert_same_as_serde(&located.record, &out);
        }
    });
    if !format.is_document() {
        let text = String::from_utf8_lossy(data);
        let mut parser = format.line_parser();
        for line in text.lines() {
            if let Ok(Some(record)) = parser.parse_line(line) {
                out.clear();
                record.write_json(&mut out);
                assert_json_object(&out);
                assert_same_as_serde(&record, &out);
            }
        }
    }
}

fn assert_json_object(json: &[u8]) {
    let value: serde_json::Value = match serde_json::from_slice(json) {
        Ok(v) => v,
        Err(e) => panic!("record encoded to invalid JSON ({e}): {}", String::from_utf8_lossy(json)),
    };
    assert!(value.get("@timestamp").and_then(|t| t.as_str()).is_some(), "no @timestamp: {value}");
    assert!(json.starts_with(b"{\"@timestamp\":"), "@timestamp is not first");
}

fn assert_same_as_serde(record: &logferry_parse::Record<'_>, json: &[u8]) {
    let serde = serde_json::to_vec(record).expect("records serialize");
    assert!(
        serde == json,
        "direct writer and serde_json differ:\n{}\n{}",
        String::from_utf8_lossy(json),
        String::from_utf8_lossy(&serde)
    );
}
