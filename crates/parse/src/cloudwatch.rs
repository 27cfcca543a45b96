//! CloudWatch Logs subscription data delivered through Firehose (`cloudwatch`).
//!
//! An object is a sequence of JSON payloads, one per Firehose record, concatenated with no
//! separator (`}{`) or separated by whitespace:
//! `{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"...","logStream":"...",
//! "subscriptionFilters":["..."],"logEvents":[{"id":"...","timestamp":1510109208016,
//! "message":"..."},...]}`. Each entry of `logEvents` of a `DATA_MESSAGE` becomes one
//! [`CloudWatchRecord`]; `CONTROL_MESSAGE` payloads are skipped.
//!
//! Payloads are streamed (see [`crate::jsonstream`]): when the payload's other members come
//! before `logEvents` (as AWS writes them), one log event is held at a time; otherwise the
//! `logEvents` array is held until the payload ends (up to `max_line_bytes`).

use std::borrow::Cow;
use std::io::BufRead;
use std::ops::Range;

use logferry_core::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{DecodeError, LineError, ParseError};
use crate::format::{DecodeOptions, DecodeSummary, Located, Record};
use crate::jsonstream::{self, Captured, Scanner};

/// One CloudWatch Logs log event delivered through Firehose, with its payload's log group,
/// log stream, owner and subscription filters. Strings are passed through as the raw JSON
/// string tokens of the payload (never unescaped and re-escaped).
///
/// Serializes as `{"@timestamp", "id", "timestamp", "message", "logGroup", "logStream",
/// "owner", "subscriptionFilters"}` (AWS's member names); members absent from the payload are
/// omitted.
#[derive(Debug, Clone, Serialize)]
pub struct CloudWatchRecord<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RawValue>,
    #[serde(rename = "timestamp")]
    millis: i64,
    message: &'a RawValue,
    #[serde(rename = "logGroup", skip_serializing_if = "Option::is_none")]
    log_group: Option<&'a RawValue>,
    #[serde(rename = "logStream", skip_serializing_if = "Option::is_none")]
    log_stream: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a RawValue>,
    #[serde(
        rename = "subscriptionFilters",
        skip_serializing_if = "Option::is_none"
    )]
    subscription_filters: Option<&'a RawValue>,
}

impl<'a> CloudWatchRecord<'a> {
    /// The event time (`timestamp` of the log event).
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The log event's `timestamp`: milliseconds since the epoch.
    pub fn millis(&self) -> i64 {
        self.millis
    }

    /// The log event's `message`, unescaped.
    pub fn message(&self) -> Cow<'a, str> {
        unescape(self.message)
    }

    /// The log event's `message` as its raw JSON string token (quotes and escapes included).
    pub fn message_json(&self) -> &'a str {
        self.message.get()
    }

    /// The log event's `id`.
    pub fn id(&self) -> Option<Cow<'a, str>> {
        self.id.map(unescape)
    }

    /// The payload's `logGroup`.
    pub fn log_group(&self) -> Option<Cow<'a, str>> {
        self.log_group.map(unescape)
    }

    /// The payload's `logStream`.
    pub fn log_stream(&self) -> Option<Cow<'a, str>> {
        self.log_stream.map(unescape)
    }

    /// The payload's `owner` (the AWS account ID).
    pub fn owner(&self) -> Option<Cow<'a, str>> {
        self.owner.map(unescape)
    }

    /// The payload's `subscriptionFilters` as its raw JSON array.
    pub fn subscription_filters_json(&self) -> Option<&'a str> {
        self.subscription_filters.map(RawValue::get)
    }
}

/// The text of a raw JSON string token (checked to be a string when it was read).
fn unescape(raw: &RawValue) -> Cow<'_, str> {
    let text = raw.get();
    match <&str>::deserialize(&mut serde_json::Deserializer::from_str(text)) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(serde_json::from_str::<String>(text).unwrap_or_default()),
    }
}

fn is_string(raw: &RawValue) -> bool {
    raw.get().starts_with('"')
}

/// The payload members kept for the records, in [`Meta::ranges`] order.
const META_MEMBERS: [&str; 5] = [
    "messageType",
    "owner",
    "logGroup",
    "logStream",
    "subscriptionFilters",
];
const MESSAGE_TYPE: usize = 0;
const OWNER: usize = 1;
const LOG_GROUP: usize = 2;
const LOG_STREAM: usize = 3;
const SUBSCRIPTION_FILTERS: usize = 4;

/// The raw JSON of the current payload's members other than `logEvents`.
#[derive(Debug, Default)]
struct Meta {
    text: String,
    ranges: [Option<Range<usize>>; 5],
    /// The first member that could not be kept (too long).
    too_long: Option<&'static str>,
}

/// What a payload's `messageType` says to do.
enum Kind {
    Data,
    Control,
    Invalid(ParseError),
}

/// The payload members a record carries, as raw JSON.
struct MetaView<'m> {
    owner: Option<&'m RawValue>,
    log_group: Option<&'m RawValue>,
    log_stream: Option<&'m RawValue>,
    subscription_filters: Option<&'m RawValue>,
}

impl Meta {
    fn clear(&mut self) {
        self.text.clear();
        self.ranges = Default::default();
        self.too_long = None;
    }

    /// Stores the raw value of member `index`.
    fn set(&mut self, index: usize, bytes: &[u8], captured: Captured) {
        if captured == Captured::TooLong {
            self.too_long.get_or_insert(META_MEMBERS[index]);
            self.ranges[index] = Some(0..0);
            return;
        }
        let mut lossy = String::new();
        let start = self.text.len();
        self.text.push_str(jsonstream::text(bytes, &mut lossy));
        self.ranges[index] = Some(start..self.text.len());
    }

    /// Whether every member a record needs has been read (so log events can be streamed).
    fn complete(&self) -> bool {
        self.ranges.iter().all(Option::is_some)
    }

    fn raw(&self, index: usize) -> Result<Option<&RawValue>, ParseError> {
        let field = META_MEMBERS[index];
        let Some(range) = self.ranges[index].clone() else {
            return Ok(None);
        };
        let text = self.text.get(range).unwrap_or_default();
        serde_json::from_str::<&RawValue>(text)
            .map(Some)
            .map_err(|e| ParseError::json(field, &e))
    }

    fn kind(&self) -> Kind {
        if let Some(field) = self.too_long {
            return Kind::Invalid(jsonstream::too_long(field));
        }
        let field = META_MEMBERS[MESSAGE_TYPE];
        let expected = "DATA_MESSAGE or CONTROL_MESSAGE";
        match self.raw(MESSAGE_TYPE) {
            Err(e) => Kind::Invalid(e),
            Ok(None) => Kind::Invalid(ParseError::missing(field)),
            Ok(Some(raw)) if !is_string(raw) => Kind::Invalid(ParseError::invalid(field, expected)),
            Ok(Some(raw)) => match unescape(raw).as_ref() {
                "DATA_MESSAGE" => Kind::Data,
                "CONTROL_MESSAGE" => Kind::Control,
                _ => Kind::Invalid(ParseError::invalid(field, expected)),
            },
        }
    }

    fn view(&self) -> Result<MetaView<'_>, ParseError> {
        let string = |index: usize| -> Result<Option<&RawValue>, ParseError> {
            match self.raw(index)? {
                Some(raw) if !is_string(raw) => {
                    Err(ParseError::invalid(META_MEMBERS[index], "a JSON string"))
                }
                other => Ok(other),
            }
        };
        let subscription_filters = match self.raw(SUBSCRIPTION_FILTERS)? {
            Some(raw) if !raw.get().starts_with('[') => {
                return Err(ParseError::invalid("subscriptionFilters", "a JSON array"));
            }
            other => other,
        };
        Ok(MetaView {
            owner: string(OWNER)?,
            log_group: string(LOG_GROUP)?,
            log_stream: string(LOG_STREAM)?,
            subscription_filters,
        })
    }
}

/// One entry of `logEvents`, members borrowed as raw JSON.
#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
}

/// Parses one log event (one element of `logEvents`) of a `DATA_MESSAGE` payload.
fn parse_event<'a>(text: &'a str, meta: &MetaView<'a>) -> Result<CloudWatchRecord<'a>, ParseError> {
    // serde would also read a struct from an array: insist on an object.
    if !text.trim_start().starts_with('{') {
        return Err(ParseError::invalid(
            "logEvents",
            "log events that are JSON objects",
        ));
    }
    let event: RawEvent<'a> =
        serde_json::from_str(text).map_err(|e| ParseError::json("logEvents", &e))?;
    let raw_ts = event
        .timestamp
        .ok_or_else(|| ParseError::missing("timestamp"))?;
    let millis: i64 = raw_ts
        .get()
        .parse()
        .map_err(|_| ParseError::invalid("timestamp", "an integer number of milliseconds"))?;
    let timestamp = Timestamp::from_unix_millis(millis)
        .ok_or_else(|| ParseError::invalid("timestamp", "milliseconds within years 0 to 9999"))?;
    let message = event
        .message
        .ok_or_else(|| ParseError::missing("message"))?;
    if !is_string(message) {
        return Err(ParseError::invalid("message", "a JSON string"));
    }
    if event.id.is_some_and(|id| !is_string(id)) {
        return Err(ParseError::invalid("id", "a JSON string"));
    }
    Ok(CloudWatchRecord {
        timestamp,
        id: event.id,
        millis,
        message,
        log_group: meta.log_group,
        log_stream: meta.log_stream,
        owner: meta.owner,
        subscription_filters: meta.subscription_filters,
    })
}

/// Counts and passes on items.
struct Emitter<'f> {
    on_item: &'f mut dyn FnMut(Result<Located<'_>, LineError>),
    summary: DecodeSummary,
    /// Index of the next log event in the input.
    position: u64,
}

impl Emitter<'_> {
    fn error(&mut self, line: u64, error: ParseError) {
        self.summary.errors += 1;
        (self.on_item)(Err(LineError {
            line,
            position: self.position,
            error,
        }));
    }

    /// Parses and passes on one log event (or its error), which takes the next position.
    fn event<'a>(&mut self, line: u64, text: Result<&'a str, ParseError>, meta: &MetaView<'a>) {
        match text.and_then(|text| parse_event(text, meta)) {
            Ok(record) => {
                self.summary.records += 1;
                let located = Located {
                    line,
                    position: self.position,
                    record: Record::CloudWatch(record),
                };
                (self.on_item)(Ok(located));
            }
            Err(error) => self.error(line, error),
        }
        self.position += 1;
    }
}

/// Decodes one object of CloudWatch Logs payloads delivered by Firehose (decompressed).
pub(crate) fn decode<R: BufRead>(
    reader: R,
    options: &DecodeOptions,
    on_item: &mut dyn FnMut(Result<Located<'_>, LineError>),
) -> Result<DecodeSummary, DecodeError> {
    let mut scanner = Scanner::new(reader, options.max_input_bytes);
    let limit = options.max_line_bytes;
    let mut emitter = Emitter {
        on_item,
        summary: DecodeSummary::default(),
        position: 0,
    };
    let mut meta = Meta::default();
    let mut key = Vec::new();
    let mut value = Vec::new();
    let mut event = Vec::new();
    let mut lossy = String::new();
    // `logEvents` read before the members it needs: held until the payload ends.
    let mut pending = Vec::new();

    while let Some(first) = scanner.peek()? {
        if first != b'{' {
            return Err(scanner.error("expected a CloudWatch Logs payload (a JSON object)"));
        }
        scanner.bump()?;
        meta.clear();
        pending.clear();
        let mut pending_events: Option<Captured> = None;
        let mut saw_events = false;
        let mut reported = false;
        let mut first_member = true;
        loop {
            match scanner.peek()? {
                Some(b'}') if first_member => {
                    scanner.bump()?;
                    break;
                }
                Some(_) => {}
                None => return Err(scanner.truncated()),
            }
            first_member = false;
            scanner.key(&mut key)?;
            scanner.expect(b':', "`:` after a member name")?;
            if let Some(index) = META_MEMBERS
                .iter()
                .position(|m| jsonstream::is_key(&key, m))
            {
                value.clear();
                let captured = scanner.capture(&mut value, limit)?;
                meta.set(index, &value, captured);
            } else if jsonstream::is_key(&key, "logEvents") && !saw_events && meta.complete() {
                saw_events = true;
                match meta.kind() {
                    Kind::Data => match meta.view() {
                        Ok(view) => {
                            stream_events(
                                &mut scanner,
                                &view,
                                limit,
                                &mut event,
                                &mut lossy,
                                &mut emitter,
                            )?;
                        }
                        Err(error) => {
                            reported = true;
                            emitter.error(scanner.line(), error);
                            scanner.skip()?;
                        }
                    },
                    Kind::Control => scanner.skip()?,
                    Kind::Invalid(error) => {
                        reported = true;
                        emitter.error(scanner.line(), error);
                        scanner.skip()?;
                    }
                }
            } else if jsonstream::is_key(&key, "logEvents") && !saw_events {
                saw_events = true;
                pending.clear();
                pending_events = Some(scanner.capture(&mut pending, limit)?);
            } else {
                scanner.skip()?;
            }
            match scanner.peek()? {
                Some(b',') => scanner.bump()?,
                Some(b'}') => {
                    scanner.bump()?;
                    break;
                }
                Some(_) => return Err(scanner.error("expected `,` or `}` after a member")),
                None => return Err(scanner.truncated()),
            }
        }

        // The end of the payload: report it, or decode the log events it held back.
        let line = scanner.line_of_last_byte();
        match meta.kind() {
            Kind::Control => {}
            Kind::Invalid(error) => {
                if !reported {
                    emitter.error(line, error);
                }
            }
            Kind::Data if !saw_events => emitter.error(line, ParseError::missing("logEvents")),
            Kind::Data => match pending_events {
                None => {}
                Some(Captured::TooLong) => emitter.error(line, jsonstream::too_long("logEvents")),
                Some(Captured::Whole) => match meta.view() {
                    Err(error) => emitter.error(line, error),
                    Ok(view) => {
                        let text = jsonstream::text(&pending, &mut lossy);
                        match serde_json::from_str::<Vec<&RawValue>>(text) {
                            Err(e) => emitter.error(line, ParseError::json("logEvents", &e)),
                            Ok(events) => {
                                for raw in events {
                                    emitter.event(line, Ok(raw.get()), &view);
                                }
                            }
                        }
                    }
                },
            },
        }
    }
    emitter.summary.lines = scanner.lines();
    Ok(emitter.summary)
}

/// Decodes a `logEvents` array one event at a time.
fn stream_events<R: BufRead>(
    scanner: &mut Scanner<R>,
    view: &MetaView<'_>,
    limit: usize,
    event: &mut Vec<u8>,
    lossy: &mut String,
    emitter: &mut Emitter<'_>,
) -> Result<(), DecodeError> {
    match scanner.peek()? {
        Some(b'[') => scanner.bump()?,
        Some(_) => {
            // Not an array: one error for the payload, then go on with the next member.
            emitter.error(
                scanner.line(),
                ParseError::invalid("logEvents", "a JSON array"),
            );
            return scanner.skip();
        }
        None => return Err(scanner.truncated()),
    }
    if scanner.peek()? == Some(b']') {
        return scanner.bump();
    }
    loop {
        event.clear();
        let captured = scanner.capture(event, limit)?;
        let line = scanner.line_of_last_byte();
        let text = match captured {
            Captured::Whole => Ok(jsonstream::text(event, lossy)),
            Captured::TooLong => Err(jsonstream::too_long("logEvents")),
        };
        emitter.event(line, text, view);
        match scanner.peek()? {
            Some(b',') => scanner.bump()?,
            Some(b']') => return scanner.bump(),
            Some(_) => return Err(scanner.error("expected `,` or `]` after a log event")),
            None => return Err(scanner.truncated()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ParseErrorKind;

    fn view() -> MetaView<'static> {
        let raw = |s: &'static str| Some(serde_json::from_str::<&RawValue>(s).unwrap());
        MetaView {
            owner: raw(r#""123""#),
            log_group: raw(r#""g""#),
            log_stream: raw(r#""s""#),
            subscription_filters: raw(r#"["f"]"#),
        }
    }

    #[test]
    fn passes_strings_through_raw() {
        let text = r#"{"id":"1","timestamp":1510109208016,"message":"a \"quoted\" \u00e9"}"#;
        let view = view();
        let record = parse_event(text, &view).unwrap();
        assert_eq!(record.message_json(), r#""a \"quoted\" \u00e9""#);
        assert_eq!(record.message(), "a \"quoted\" é");
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"@timestamp":"2017-11-08T02:46:48.016Z","id":"1","timestamp":1510109208016,"message":"a \"quoted\" \u00e9","logGroup":"g","logStream":"s","owner":"123","subscriptionFilters":["f"]}"#
        );
    }

    #[test]
    fn event_errors_name_the_member() {
        let view = view();
        let field = |text: &str| parse_event(text, &view).unwrap_err().field();
        assert_eq!(field(r#"{"id":"1","message":"m"}"#), "timestamp");
        assert_eq!(field(r#"{"timestamp":1.5,"message":"m"}"#), "timestamp");
        assert_eq!(field(r#"{"timestamp":"1","message":"m"}"#), "timestamp");
        assert_eq!(
            field(r#"{"timestamp":999999999999999999,"message":"m"}"#),
            "timestamp"
        );
        assert_eq!(field(r#"{"timestamp":1}"#), "message");
        assert_eq!(field(r#"{"timestamp":1,"message":{}}"#), "message");
        assert_eq!(field(r#"{"timestamp":1,"message":"m","id":2}"#), "id");
        assert_eq!(field(r#"[1]"#), "logEvents");
    }

    #[test]
    fn reads_the_message_type() {
        let mut meta = Meta::default();
        assert!(matches!(meta.kind(), Kind::Invalid(e) if e.kind() == &ParseErrorKind::Missing));
        meta.set(MESSAGE_TYPE, br#""DATA_\u004dESSAGE""#, Captured::Whole);
        assert!(matches!(meta.kind(), Kind::Data));
        meta.clear();
        meta.set(MESSAGE_TYPE, br#""CONTROL_MESSAGE""#, Captured::Whole);
        assert!(matches!(meta.kind(), Kind::Control));
        meta.clear();
        meta.set(MESSAGE_TYPE, br#""OTHER""#, Captured::Whole);
        assert!(matches!(meta.kind(), Kind::Invalid(e) if e.field() == "messageType"));
        meta.clear();
        meta.set(OWNER, b"12", Captured::Whole);
        assert_eq!(meta.view().err().map(|e| e.field()), Some("owner"));
    }
}
