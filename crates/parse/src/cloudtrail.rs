//! CloudTrail log files (`cloudtrail`): one JSON document `{"Records":[{...},{...}]}` per
//! object. Each element of `Records` becomes one record, its JSON passed through as it is
//! with `@timestamp` (from `eventTime`) put first.
//!
//! The document is streamed (see [`crate::jsonstream`]): only one event is held at a time.
//! A document without `Records` (e.g. a CloudTrail digest file) yields no records.

use std::io::BufRead;

use logferry_core::Timestamp;

use crate::error::{DecodeError, LineError, ParseError};
use crate::format::{DecodeOptions, DecodeSummary, Located, Record};
use crate::jsonobj::{JsonObject, JsonRecord};
use crate::jsonstream;

/// The member of the document that holds the events.
const RECORDS: &str = "Records";

/// Decodes one CloudTrail log file (already decompressed).
pub(crate) fn decode<R: BufRead>(
    reader: R,
    options: &DecodeOptions,
    on_item: &mut dyn FnMut(Result<Located<'_>, LineError>),
) -> Result<DecodeSummary, DecodeError> {
    jsonstream::decode_array_member(
        reader,
        options,
        RECORDS,
        |text| parse(text).map(Record::Json),
        on_item,
    )
}

/// Parses one CloudTrail event (one element of `Records`).
pub(crate) fn parse(text: &str) -> Result<JsonRecord<'_>, ParseError> {
    let object = JsonObject::parse(text, "record")?;
    let time = object
        .get_str("eventTime")
        .ok_or_else(|| match object.get("eventTime") {
            None => ParseError::missing("eventTime"),
            Some(_) => ParseError::invalid("eventTime", "an ISO 8601 timestamp string"),
        })?;
    let timestamp = Timestamp::parse_rfc3339(&time)
        .ok_or_else(|| ParseError::invalid("eventTime", "an ISO 8601 timestamp string"))?;
    Ok(JsonRecord::new(timestamp, object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ParseErrorKind;

    #[test]
    fn stamps_events_with_event_time() {
        let record =
            parse(r#"{"eventVersion":"1.08","eventTime":"2014-03-06T21:22:54Z","x":[1]}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"@timestamp":"2014-03-06T21:22:54Z","eventVersion":"1.08","eventTime":"2014-03-06T21:22:54Z","x":[1]}"#
        );
    }

    #[test]
    fn errors_name_event_time() {
        let err = parse(r#"{"eventName":"x"}"#).unwrap_err();
        assert_eq!(
            (err.field(), err.kind()),
            ("eventTime", &ParseErrorKind::Missing)
        );
        assert_eq!(
            parse(r#"{"eventTime":"yesterday"}"#).unwrap_err().field(),
            "eventTime"
        );
        assert_eq!(
            parse(r#"{"eventTime":1394140974}"#).unwrap_err().field(),
            "eventTime"
        );
        assert_eq!(parse("[1]").unwrap_err().field(), "record");
    }
}
