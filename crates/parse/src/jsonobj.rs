//! JSON objects read shallowly: top-level members are located, their values kept as raw
//! JSON text, so records pass through without being rebuilt.

use std::borrow::Cow;
use std::fmt;

use logferry_core::Timestamp;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::ParseError;

/// A JSON object whose top-level members are borrowed from the input as raw JSON.
#[derive(Debug, Clone, Default)]
pub struct JsonObject<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> JsonObject<'a> {
    /// Reads the top level of `text`, which must be one JSON object (surrounding whitespace
    /// allowed). `field` names the input in the error (e.g. `record`).
    pub fn parse(text: &'a str, field: &'static str) -> Result<JsonObject<'a>, ParseError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let object = JsonObject::deserialize(&mut de).map_err(|e| ParseError::json(field, &e))?;
        de.end().map_err(|e| ParseError::json(field, &e))?;
        Ok(object)
    }

    /// The raw JSON of the first member named `key`.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The member `key` if it is a JSON string, unescaped.
    pub fn get_str(&self, key: &str) -> Option<Cow<'a, str>> {
        let raw = self.get(key)?;
        let text: &'a str = raw.get();
        if !text.starts_with('"') {
            return None;
        }
        match <&'a str>::deserialize(&mut serde_json::Deserializer::from_str(text)) {
            Ok(s) => Some(Cow::Borrowed(s)),
            Err(_) => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
        }
    }

    /// The member `key` if it is a JSON number.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        serde_json::from_str::<f64>(self.get(key)?.get()).ok()
    }

    /// The member `key` if it is a JSON integer.
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        serde_json::from_str::<i64>(self.get(key)?.get()).ok()
    }

    /// Member names and raw values, in input order.
    pub fn members(&self) -> impl Iterator<Item = (&str, &'a RawValue)> + '_ {
        self.members.iter().map(|(k, v)| (k.as_ref(), *v))
    }

    /// Number of top-level members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the object has no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for JsonObject<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = JsonObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key, value));
                }
                Ok(JsonObject { members })
            }
        }
        deserializer
            .deserialize_map(ObjectVisitor)
            .map_err(de::Error::custom)
    }
}

/// A record that is a JSON object passed through with `@timestamp` put first
/// (WAF, CloudTrail, Config, JSON lines). A member of the input named `@timestamp` is replaced.
#[derive(Debug, Clone)]
pub struct JsonRecord<'a> {
    timestamp: Timestamp,
    object: JsonObject<'a>,
}

impl<'a> JsonRecord<'a> {
    /// A record of `object` at `timestamp`.
    pub fn new(timestamp: Timestamp, object: JsonObject<'a>) -> JsonRecord<'a> {
        JsonRecord { timestamp, object }
    }

    /// The event time.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The object as read.
    pub fn object(&self) -> &JsonObject<'a> {
        &self.object
    }
}

impl Serialize for JsonRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.object.len() + 1))?;
        map.serialize_entry("@timestamp", &self.timestamp)?;
        for (key, value) in self.object.members() {
            if key != "@timestamp" {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_members_through_and_replaces_timestamp() {
        let text = r#" {"a": [1, 2], "@timestamp": "x", "b\u0041": {"c": null}} "#;
        let object = JsonObject::parse(text, "record").unwrap();
        assert_eq!(object.get("a").unwrap().get(), "[1, 2]");
        assert_eq!(object.get_str("@timestamp").as_deref(), Some("x"));
        assert!(object.get("bA").is_some());
        let record = JsonRecord::new(Timestamp::UNIX_EPOCH, object);
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"@timestamp":"1970-01-01T00:00:00Z","a":[1, 2],"bA":{"c": null}}"#
        );
    }

    #[test]
    fn refuses_non_objects_and_trailing_data() {
        assert_eq!(
            JsonObject::parse("[1]", "record").unwrap_err().field(),
            "record"
        );
        assert!(JsonObject::parse("{} x", "record").is_err());
        assert!(JsonObject::parse("{\"a\":}", "record").is_err());
    }
}
