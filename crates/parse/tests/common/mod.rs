//! Helpers shared by the whole-document format tests (cloudtrail, cloudwatch, config).

use std::path::{Path, PathBuf};

use logferry_parse::{DecodeError, DecodeOptions, DecodeSummary, Format, Record};
use serde_json::{Value, json};

/// Path of `tests/fixtures/<format>/<name>`.
pub(crate) fn fixture(format: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format)
        .join(name)
}

/// Decodes `input` with `format`: every item as `{"line", "position", "record"}` or
/// `{"line", "position", "error": field}`, and the outcome. Each record is checked to encode
/// with `@timestamp` first and passed to `check`.
pub(crate) fn decode_items(
    format: &Format,
    input: &[u8],
    options: &DecodeOptions,
    check: impl Fn(&Record<'_>),
) -> (Vec<Value>, Result<DecodeSummary, DecodeError>) {
    let mut items = Vec::new();
    let result = format.decode(input, options, |item| {
        items.push(match item {
            Ok(located) => {
                check(&located.record);
                let mut out = Vec::new();
                located.record.write_json(&mut out);
                assert!(
                    out.starts_with(br#"{"@timestamp":""#),
                    "{}",
                    String::from_utf8_lossy(&out)
                );
                json!({
                    "line": located.line,
                    "position": located.position,
                    "record": serde_json::from_slice::<Value>(&out).unwrap(),
                })
            }
            Err(e) => json!({"line": e.line, "position": e.position, "error": e.error.field()}),
        });
    });
    (items, result)
}
