//! The check the line-format tests apply to every record they look at.

use logferry_parse::Record;
use serde_json::Value;

/// The record's JSON. Its direct writer (`write_json`, the ingester's path) must give exactly
/// serde_json's text for it, so every record checked through this is checked both ways.
pub(crate) fn to_json(record: &Record<'_>) -> Value {
    let serde_text = serde_json::to_string(record).unwrap();
    let mut direct = Vec::new();
    record.write_json(&mut direct);
    assert_eq!(String::from_utf8(direct).unwrap(), serde_text);
    serde_json::from_str(&serde_text).unwrap()
}
