//! AWS Config snapshot and history files (`config`): one JSON document
//! `{"fileVersion":"1.0",...,"configurationItems":[{...},...]}` per object. Each configuration
//! item becomes one record, its JSON passed through as it is with `@timestamp` (from
//! `configurationItemCaptureTime`) put first.
//!
//! The document is streamed (see [`crate::jsonstream`]): only one item is held at a time. The
//! empty `ConfigWritabilityCheckFile` AWS Config writes, and documents without
//! `configurationItems`, yield no records.

use std::io::BufRead;

use logferry_core::Timestamp;

use crate::error::{DecodeError, LineError, ParseError};
use crate::format::{DecodeOptions, DecodeSummary, Located, Record};
use crate::jsonobj::{JsonObject, JsonRecord};
use crate::jsonstream;

/// The member of the document that holds the configuration items.
const ITEMS: &str = "configurationItems";

/// The member of an item that holds its time.
const CAPTURE_TIME: &str = "configurationItemCaptureTime";

/// Decodes one Config snapshot or history file (already decompressed).
pub(crate) fn decode<R: BufRead>(
    reader: R,
    options: &DecodeOptions,
    on_item: &mut dyn FnMut(Result<Located<'_>, LineError>),
) -> Result<DecodeSummary, DecodeError> {
    jsonstream::decode_array_member(
        reader,
        options,
        ITEMS,
        |text| parse(text).map(Record::Json),
        on_item,
    )
}

/// Parses one configuration item (one element of `configurationItems`).
pub(crate) fn parse(text: &str) -> Result<JsonRecord<'_>, ParseError> {
    const EXPECTED: &str = "an ISO 8601 timestamp (or a number of seconds)";
    let object = JsonObject::parse(text, "record")?;
    let raw = object
        .get(CAPTURE_TIME)
        .ok_or_else(|| ParseError::missing(CAPTURE_TIME))?;
    let timestamp = match object.get_str(CAPTURE_TIME) {
        Some(time) => Timestamp::parse_rfc3339(&time),
        // The Config API (not the S3 files) gives epoch seconds, e.g. 1414708529.922.
        None => serde_json::from_str::<f64>(raw.get())
            .ok()
            .and_then(seconds_to_millis),
    }
    .ok_or_else(|| ParseError::invalid(CAPTURE_TIME, EXPECTED))?;
    Ok(JsonRecord::new(timestamp, object))
}

/// Epoch seconds with a fraction (as the Config API writes them) to the nearest millisecond.
fn seconds_to_millis(secs: f64) -> Option<Timestamp> {
    let millis = (secs * 1000.0).round();
    if !millis.is_finite() || millis.abs() > 1e15 {
        return None;
    }
    Timestamp::from_unix_millis(millis as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ParseErrorKind;

    #[test]
    fn stamps_items_with_capture_time() {
        let text =
            r#"{"configurationItemCaptureTime":"2014-03-07T23:47:08.918Z","resourceId":"vol-1"}"#;
        assert_eq!(
            serde_json::to_string(&parse(text).unwrap()).unwrap(),
            r#"{"@timestamp":"2014-03-07T23:47:08.918Z","configurationItemCaptureTime":"2014-03-07T23:47:08.918Z","resourceId":"vol-1"}"#
        );
        let text = r#"{"configurationItemCaptureTime":1414708529.922}"#;
        assert_eq!(
            parse(text).unwrap().timestamp().to_string(),
            "2014-10-30T22:35:29.922Z"
        );
    }

    #[test]
    fn errors_name_capture_time() {
        let err = parse(r#"{"resourceId":"vol-1"}"#).unwrap_err();
        assert_eq!(
            (err.field(), err.kind()),
            (CAPTURE_TIME, &ParseErrorKind::Missing)
        );
        assert_eq!(
            parse(r#"{"configurationItemCaptureTime":"soon"}"#)
                .unwrap_err()
                .field(),
            CAPTURE_TIME
        );
        assert_eq!(
            parse(r#"{"configurationItemCaptureTime":null}"#)
                .unwrap_err()
                .field(),
            CAPTURE_TIME
        );
        assert_eq!(parse("1").unwrap_err().field(), "record");
    }
}
