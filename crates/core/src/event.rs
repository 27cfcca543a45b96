//! Events: a timestamp plus a JSON object of fields, encoded once.

use serde::Serialize;

use crate::Timestamp;

/// One log event: its time and its fields as an encoded JSON object.
///
/// Fields are encoded once, when the event is built from a parsed record, and are then copied
/// as bytes into whatever the output writes (a bulk request body, an S3 chunk). The encoded
/// object always includes `"@timestamp"` as its first member when built with [`Event::from_record`].
///
/// ```
/// use logferry_core::{Event, Timestamp};
///
/// #[derive(serde::Serialize)]
/// struct Line<'a> {
///     #[serde(rename = "@timestamp")]
///     timestamp: Timestamp,
///     message: &'a str,
/// }
///
/// let ts = Timestamp::from_unix(0, 0).unwrap();
/// let mut event = Event::from_record(ts, &Line { timestamp: ts, message: "hello" }).unwrap();
/// event.insert_field("team", &"web").unwrap();
/// assert_eq!(event.json(), r#"{"@timestamp":"1970-01-01T00:00:00Z","message":"hello","team":"web"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    timestamp: Timestamp,
    json: String,
}

/// Why an [`Event`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The record did not serialize to a JSON object.
    #[error("record is not a JSON object")]
    NotAnObject,
    /// The record's serializer failed.
    #[error("record could not be encoded as JSON: {0}")]
    Encode(#[from] serde_json::Error),
}

impl Event {
    /// Builds an event from a record that serializes to a JSON object whose members include
    /// `@timestamp` (parsed records of `logferry-parse` do).
    pub fn from_record<T: Serialize + ?Sized>(
        timestamp: Timestamp,
        record: &T,
    ) -> Result<Event, EventError> {
        let json = serde_json::to_string(record)?;
        Self::from_json_object(timestamp, json)
    }

    /// Builds an event from text that is already a JSON object. Only the outer braces are
    /// checked: the caller vouches for the rest (it comes from a serializer).
    pub fn from_json_object(timestamp: Timestamp, json: String) -> Result<Event, EventError> {
        let trimmed = json.trim();
        if !(trimmed.starts_with('{') && trimmed.ends_with('}')) {
            return Err(EventError::NotAnObject);
        }
        let json = if trimmed.len() == json.len() {
            json
        } else {
            trimmed.to_owned()
        };
        Ok(Event { timestamp, json })
    }

    /// The event's time.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The encoded JSON object.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// Consumes the event and returns its encoded JSON object.
    pub fn into_json(self) -> String {
        self.json
    }

    /// Appends a member to the object. A key already present is not replaced; JSON readers
    /// that keep the last duplicate (Elasticsearch does) see the new value.
    pub fn insert_field<V: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &V,
    ) -> Result<(), EventError> {
        let closing = self.json.len() - 1;
        self.json.truncate(closing);
        let empty = self.json[1..].trim().is_empty();
        let mut tail = Vec::with_capacity(key.len() + 16);
        if !empty {
            tail.push(b',');
        }
        serde_json::to_writer(&mut tail, key)?;
        tail.push(b':');
        let result = serde_json::to_writer(&mut tail, value);
        if result.is_ok() {
            // serde_json writes valid UTF-8.
            self.json
                .push_str(std::str::from_utf8(&tail).unwrap_or_default());
        }
        self.json.push('}');
        result.map_err(EventError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_into_empty_object() {
        let mut e = Event::from_json_object(Timestamp::UNIX_EPOCH, "{}".into()).unwrap();
        e.insert_field("a", &1).unwrap();
        e.insert_field("b\"", &"x").unwrap();
        assert_eq!(e.json(), r#"{"a":1,"b\"":"x"}"#);
        let v: serde_json::Value = serde_json::from_str(e.json()).unwrap();
        assert_eq!(v["a"], 1);
    }

    #[test]
    fn rejects_non_objects() {
        assert!(Event::from_json_object(Timestamp::UNIX_EPOCH, "[1]".into()).is_err());
        assert!(Event::from_record(Timestamp::UNIX_EPOCH, &5).is_err());
    }
}
