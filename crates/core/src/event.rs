//! Events: a timestamp plus a JSON object of fields, encoded once.

use serde::Serialize;

use crate::Timestamp;
use crate::text::Text;

/// One log event: its time and its fields as an encoded JSON object.
///
/// Fields are encoded once, when the event is built from a parsed record, and are then copied
/// as bytes into whatever the output writes (a bulk request body, an S3 chunk). The encoded
/// object always includes `"@timestamp"` as its first member when built with [`Event::from_record`].
/// The text is owned, or a range of a buffer the events of a batch share ([`crate::text`]).
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
    json: Text,
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
        Ok(Event {
            timestamp,
            json: json.into(),
        })
    }

    /// Builds an event from text that is exactly a JSON object (no surrounding whitespace),
    /// typically a range of a shared buffer. Only the outer braces are checked.
    pub fn from_json_text(timestamp: Timestamp, json: Text) -> Result<Event, EventError> {
        if !(json.starts_with('{') && json.ends_with('}')) {
            return Err(EventError::NotAnObject);
        }
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

    /// Consumes the event and returns its encoded JSON object (copied when it is a range of a
    /// shared buffer; [`Event::into_text`] does not copy).
    pub fn into_json(self) -> String {
        self.json.into_string()
    }

    /// Consumes the event and returns its encoded JSON object as it is stored.
    pub fn into_text(self) -> Text {
        self.json
    }

    /// Appends a member to the object. A key already present is not replaced; JSON readers
    /// that keep the last duplicate (Elasticsearch does) see the new value.
    pub fn insert_field<V: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &V,
    ) -> Result<(), EventError> {
        // The member is encoded first: an error leaves the event as it was.
        let empty = self.json[1..self.json.len() - 1].trim().is_empty();
        let mut tail = Vec::with_capacity(key.len() + 16);
        if !empty {
            tail.push(b',');
        }
        serde_json::to_writer(&mut tail, key)?;
        tail.push(b':');
        serde_json::to_writer(&mut tail, value)?;
        tail.push(b'}');
        let json = self.json.to_mut();
        json.truncate(json.len() - 1);
        // serde_json writes valid UTF-8.
        json.push_str(std::str::from_utf8(&tail).unwrap_or_default());
        Ok(())
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
    fn events_in_a_shared_buffer_take_fields_without_touching_their_neighbours() {
        let mut buffer = crate::text::TextBuffer::new();
        let a = buffer.push_with(|s| s.push_str("{\"n\":1}"));
        let b = buffer.push_with(|s| s.push_str("{}"));
        let shared = buffer.freeze();
        let mut first = Event::from_json_text(Timestamp::UNIX_EPOCH, shared.slice(a)).unwrap();
        let second = Event::from_json_text(Timestamp::UNIX_EPOCH, shared.slice(b)).unwrap();
        first.insert_field("m", &2).unwrap();
        assert_eq!(first.json(), r#"{"n":1,"m":2}"#);
        assert_eq!(second.json(), "{}");
        assert_eq!(second.clone().into_json(), "{}");
        assert!(second.into_text().is_shared());
        assert!(Event::from_json_text(Timestamp::UNIX_EPOCH, " {}".into()).is_err());
    }

    #[test]
    fn rejects_non_objects() {
        assert!(Event::from_json_object(Timestamp::UNIX_EPOCH, "[1]".into()).is_err());
        assert!(Event::from_record(Timestamp::UNIX_EPOCH, &5).is_err());
    }
}
