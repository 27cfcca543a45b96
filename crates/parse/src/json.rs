//! JSON lines (`json`) and plain lines (`raw`).

use logferry_core::Timestamp;
use serde::Serialize;

use crate::error::{FormatError, ParseError};
use crate::format::FormatOptions;
use crate::jsonobj::{JsonObject, JsonRecord};

/// Options the `json` format takes.
pub(crate) const OPTIONS: &str = "timestamp_field, timestamp_format";

/// Members tried, in order, when `timestamp_field` is not set.
const DEFAULT_TIMESTAMP_FIELDS: &[&str] = &["@timestamp", "timestamp", "time"];

/// How the `json` format reads the event time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonOptions {
    /// Member holding the time; `None` tries `@timestamp`, `timestamp`, `time`, then uses the
    /// time of reading.
    field: Option<String>,
    format: TimeFormat,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TimeFormat {
    /// Numbers: seconds if below 1e11 else milliseconds; strings: RFC 3339.
    Auto,
    UnixMs,
    UnixS,
    Iso8601,
    Strftime(String),
}

impl JsonOptions {
    pub(crate) fn from_options(options: &FormatOptions) -> Result<JsonOptions, FormatError> {
        let field = options.get("timestamp_field").map(str::to_owned);
        let format = match options.get("timestamp_format") {
            None | Some("auto") => TimeFormat::Auto,
            Some("unix_ms") => TimeFormat::UnixMs,
            Some("unix_s" | "unix") => TimeFormat::UnixS,
            Some("iso8601" | "rfc3339") => TimeFormat::Iso8601,
            Some(layout) if layout.contains('%') => {
                check_strftime(layout)?;
                TimeFormat::Strftime(layout.to_owned())
            }
            Some(other) => {
                return Err(FormatError::InvalidOption {
                    format: "json",
                    option: "timestamp_format",
                    reason: format!(
                        "`{other}` is not one of unix_ms, unix_s, iso8601 or a strftime layout (with %)"
                    ),
                });
            }
        };
        Ok(JsonOptions { field, format })
    }
}

fn check_strftime(layout: &str) -> Result<(), FormatError> {
    use chrono::format::{Item, StrftimeItems};
    if StrftimeItems::new(layout).any(|item| matches!(item, Item::Error)) {
        return Err(FormatError::InvalidOption {
            format: "json",
            option: "timestamp_format",
            reason: format!("`{layout}` is not a valid strftime layout"),
        });
    }
    Ok(())
}

/// Parses one JSON line: an object passed through with `@timestamp` first.
pub(crate) fn parse<'a>(
    line: &'a str,
    options: &JsonOptions,
) -> Result<JsonRecord<'a>, ParseError> {
    let object = JsonObject::parse(line, "line")?;
    let timestamp = match &options.field {
        Some(field) => {
            let name: &'static str = "timestamp_field";
            let raw = object.get(field).ok_or_else(|| ParseError::missing(name))?;
            read_time(raw.get(), &options.format)
                .ok_or_else(|| ParseError::invalid(name, "a timestamp in timestamp_format"))?
        }
        None => DEFAULT_TIMESTAMP_FIELDS
            .iter()
            .find_map(|f| {
                object
                    .get(f)
                    .and_then(|raw| read_time(raw.get(), &options.format))
            })
            .unwrap_or_else(Timestamp::now),
    };
    Ok(JsonRecord::new(timestamp, object))
}

/// Reads a raw JSON value (number or string) as a time.
fn read_time(raw: &str, format: &TimeFormat) -> Option<Timestamp> {
    let text: std::borrow::Cow<'_, str> = if raw.starts_with('"') {
        serde_json::from_str::<String>(raw).ok()?.into()
    } else {
        raw.into()
    };
    let text = text.trim();
    let number = || text.parse::<f64>().ok();
    match format {
        TimeFormat::Auto => {
            if raw.starts_with('"') {
                Timestamp::parse_rfc3339(text)
            } else {
                let n = number()?;
                if n.abs() < 1e11 {
                    Timestamp::from_unix_f64(n)
                } else {
                    Timestamp::from_unix_f64(n / 1000.0)
                }
            }
        }
        TimeFormat::UnixMs => match text.parse::<i64>() {
            Ok(ms) => Timestamp::from_unix_millis(ms),
            Err(_) => Timestamp::from_unix_f64(number()? / 1000.0),
        },
        TimeFormat::UnixS => Timestamp::from_unix_f64(number()?),
        TimeFormat::Iso8601 => Timestamp::parse_rfc3339(text),
        TimeFormat::Strftime(layout) => strftime(text, layout),
    }
}

fn strftime(text: &str, layout: &str) -> Option<Timestamp> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let utc = if let Ok(dt) = DateTime::parse_from_str(text, layout) {
        dt.naive_utc()
    } else if let Ok(dt) = NaiveDateTime::parse_from_str(text, layout) {
        dt
    } else {
        NaiveDate::parse_from_str(text, layout)
            .ok()?
            .and_hms_opt(0, 0, 0)?
    };
    let utc = utc.and_utc();
    Timestamp::from_unix(utc.timestamp(), utc.timestamp_subsec_nanos())
}

/// A line kept whole as `message`, stamped with the time it was read (`raw` format).
#[derive(Debug, Clone, Serialize)]
pub struct RawRecord<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: Timestamp,
    message: &'a str,
}

impl<'a> RawRecord<'a> {
    /// A record of `line`, stamped now.
    pub fn new(line: &'a str) -> RawRecord<'a> {
        RawRecord {
            timestamp: Timestamp::now(),
            message: line,
        }
    }

    /// The time the line was read.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The line.
    pub fn message(&self) -> &'a str {
        self.message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Result<JsonOptions, FormatError> {
        JsonOptions::from_options(&pairs.iter().copied().collect())
    }

    fn ts_of(line: &str, options: &JsonOptions) -> String {
        parse(line, options).unwrap().timestamp().to_string()
    }

    #[test]
    fn timestamp_formats() {
        let ms = opts(&[("timestamp_field", "ts"), ("timestamp_format", "unix_ms")]).unwrap();
        assert_eq!(
            ts_of(r#"{"ts":1510109208016}"#, &ms),
            "2017-11-08T02:46:48.016Z"
        );
        assert_eq!(
            ts_of(r#"{"ts":"1510109208016"}"#, &ms),
            "2017-11-08T02:46:48.016Z"
        );
        let s = opts(&[("timestamp_field", "ts"), ("timestamp_format", "unix_s")]).unwrap();
        assert_eq!(
            ts_of(r#"{"ts":1510109208.25}"#, &s),
            "2017-11-08T02:46:48.250Z"
        );
        let iso = opts(&[("timestamp_field", "t"), ("timestamp_format", "iso8601")]).unwrap();
        assert_eq!(
            ts_of(r#"{"t":"2017-11-08T03:46:48+01:00"}"#, &iso),
            "2017-11-08T02:46:48Z"
        );
        let layout = opts(&[
            ("timestamp_field", "t"),
            ("timestamp_format", "%d/%b/%Y:%H:%M:%S %z"),
        ])
        .unwrap();
        assert_eq!(
            ts_of(r#"{"t":"06/Feb/2019:00:00:38 +0000"}"#, &layout),
            "2019-02-06T00:00:38Z"
        );
        let naive = opts(&[
            ("timestamp_field", "t"),
            ("timestamp_format", "%Y-%m-%d %H:%M:%S"),
        ])
        .unwrap();
        assert_eq!(
            ts_of(r#"{"t":"2019-02-06 00:00:38"}"#, &naive),
            "2019-02-06T00:00:38Z"
        );
    }

    #[test]
    fn auto_detects_common_members() {
        let auto = opts(&[]).unwrap();
        assert_eq!(
            ts_of(r#"{"time":1510109208}"#, &auto),
            "2017-11-08T02:46:48Z"
        );
        assert_eq!(
            ts_of(r#"{"@timestamp":"2017-11-08T02:46:48Z"}"#, &auto),
            "2017-11-08T02:46:48Z"
        );
        let out = serde_json::to_string(
            &parse(r#"{"@timestamp":"2017-11-08T02:46:48Z","a":1}"#, &auto).unwrap(),
        )
        .unwrap();
        assert_eq!(out, r#"{"@timestamp":"2017-11-08T02:46:48Z","a":1}"#);
    }

    #[test]
    fn errors_name_the_option_or_line() {
        let ms = opts(&[("timestamp_field", "ts"), ("timestamp_format", "unix_ms")]).unwrap();
        assert_eq!(
            parse(r#"{"x":1}"#, &ms).unwrap_err().field(),
            "timestamp_field"
        );
        assert_eq!(
            parse(r#"{"ts":"soon"}"#, &ms).unwrap_err().field(),
            "timestamp_field"
        );
        assert_eq!(parse("not json", &ms).unwrap_err().field(), "line");
        assert!(opts(&[("timestamp_format", "weekly")]).is_err());
    }
}
