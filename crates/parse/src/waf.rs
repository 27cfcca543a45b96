//! AWS WAF logs (`waf`): one JSON object per line, as AWS WAF (v2) writes them to S3,
//! CloudWatch Logs or Firehose.
//!
//! The object passes through unchanged (AWS's own camelCase member names, values as written);
//! `@timestamp` comes from the `timestamp` member, a Unix time in milliseconds.

use logferry_core::Timestamp;

use crate::error::ParseError;
use crate::jsonobj::{JsonObject, JsonRecord};

/// What a valid `timestamp` member holds.
const TIMESTAMP: &str = "an integer Unix time in milliseconds (years 0 to 9999)";

/// Parses one WAF log line.
pub(crate) fn parse(line: &str) -> Result<JsonRecord<'_>, ParseError> {
    let object = JsonObject::parse(line, "line")?;
    if object.get("timestamp").is_none() {
        return Err(ParseError::missing("timestamp"));
    }
    let timestamp = object
        .get_i64("timestamp")
        .and_then(Timestamp::from_unix_millis)
        .ok_or_else(|| ParseError::invalid("timestamp", TIMESTAMP))?;
    Ok(JsonRecord::new(timestamp, object))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ParseErrorKind;

    #[test]
    fn puts_timestamp_first_and_passes_members_through() {
        let line = r#"{"timestamp":1576280412771,"formatVersion":1,"action":"BLOCK","httpRequest":{"clientIp":"1.1.1.1","headers":[]}}"#;
        let record = parse(line).unwrap();
        assert_eq!(record.timestamp().to_string(), "2019-12-13T23:40:12.771Z");
        let out = serde_json::to_string(&record).unwrap();
        assert_eq!(
            out,
            format!(
                r#"{{"@timestamp":"2019-12-13T23:40:12.771Z",{}"#,
                &line[1..]
            )
        );
    }

    #[test]
    fn timestamp_errors_name_the_member() {
        let err = parse(r#"{"formatVersion":1}"#).unwrap_err();
        assert_eq!(
            (err.field(), err.kind()),
            ("timestamp", &ParseErrorKind::Missing)
        );
        for bad in [
            r#"{"timestamp":"1576280412771"}"#,
            r#"{"timestamp":1576280412771.5}"#,
            r#"{"timestamp":null}"#,
            r#"{"timestamp":9223372036854775807}"#,
            r#"{"timestamp":99999999999999999999}"#,
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.field(), "timestamp", "{bad}");
            assert!(
                matches!(err.kind(), ParseErrorKind::Invalid { .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_json_names_the_line() {
        for bad in ["", "[]", "{\"timestamp\":1", "{} {}", "not json"] {
            assert_eq!(parse(bad).unwrap_err().field(), "line", "{bad:?}");
        }
    }
}
