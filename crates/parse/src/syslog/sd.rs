//! RFC 5424 STRUCTURED-DATA: `[SD-ID PARAM-NAME="PARAM-VALUE" ...][...]`.
//!
//! Parsing validates the elements once and keeps the slice of the line they span; serializing
//! walks that slice again and writes `{"SD-ID": {"PARAM-NAME": "value", ...}, ...}`, resolving
//! the `\"`, `\\` and `\]` escapes of values as it writes them (no allocation). A parameter
//! name repeated within an element (RFC 5424 allows it, e.g. `origin`'s `ip`) becomes an array
//! of its values; a repeated SD-ID (which RFC 5424 forbids) has its parameters merged. Those
//! rare cases are serialized through a small index built at serialization time.
//!
//! The same JSON is written two ways: through serde (`Serialize`) or straight into a `String`
//! ([`WriteJson`], the ingester's path); both give serde_json's text.

use std::collections::HashMap;
use std::fmt;

use logferry_core::json;
use memchr::{memchr, memchr2};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::error::ParseError;
use crate::members::WriteJson;

const FIELD: &str = "structured_data";

/// How many SD-IDs, and parameter names per element, are checked for repeats while parsing;
/// beyond that the data is assumed to repeat some (serialization then checks exactly).
const TRACKED: usize = 16;

/// Validated structured data: one or more SD-ELEMENTs, as they appear in the line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StructuredData<'a> {
    /// From the first `[` to the last `]`.
    text: &'a str,
    /// Whether every SD-ID, and every parameter name within an element, is distinct (so the
    /// text maps one to one onto JSON objects).
    distinct: bool,
}

impl<'a> StructuredData<'a> {
    /// Reads the SD-ELEMENTs at the start of `s` (which starts with `[`); returns them and
    /// the rest of `s`.
    pub(crate) fn parse(s: &'a str) -> Result<(StructuredData<'a>, &'a str), ParseError> {
        let mut ids = [""; TRACKED];
        let mut id_count = 0;
        let mut distinct = true;
        let mut pos = 0;
        loop {
            let (id, mut at) = read_id(s, pos).map_err(|e| ParseError::invalid(FIELD, e))?;
            distinct &= remember(&mut ids, &mut id_count, id);
            let mut names = [""; TRACKED];
            let mut name_count = 0;
            while let Some(((name, _), next)) =
                read_param(s, at).map_err(|e| ParseError::invalid(FIELD, e))?
            {
                distinct &= remember(&mut names, &mut name_count, name);
                at = next;
            }
            // `read_param` returned `None`: `at` is on the closing `]`.
            pos = at + 1;
            if s.as_bytes().get(pos) != Some(&b'[') {
                break;
            }
        }
        let (text, rest) = s.split_at_checked(pos).unwrap_or((s, ""));
        Ok((StructuredData { text, distinct }, rest))
    }

    /// The elements: SD-ID and the position after it.
    fn elements(&self) -> impl Iterator<Item = (&'a str, usize)> + use<'a> {
        let text = self.text;
        let mut pos = 0;
        std::iter::from_fn(move || {
            let (id, mut at) = read_id(text, pos).ok()?;
            let start = at;
            while let Ok(Some((_, next))) = read_param(text, at) {
                at = next;
            }
            pos = at + 1;
            Some((id, start))
        })
    }
}

/// Adds `name` to `seen` unless it is there; `false` when it is there or `seen` is full.
fn remember<'a>(seen: &mut [&'a str; TRACKED], count: &mut usize, name: &'a str) -> bool {
    let known = seen.get(..*count).unwrap_or(&[]);
    if known.contains(&name) {
        return false;
    }
    match seen.get_mut(*count) {
        Some(slot) => {
            *slot = name;
            *count += 1;
            true
        }
        None => false,
    }
}

/// Whether `c` may appear in an SD-NAME (SD-ID or PARAM-NAME): printable US-ASCII except
/// `=`, space, `]` and `"`.
fn is_name_byte(c: u8) -> bool {
    matches!(c, 33..=126) && !matches!(c, b'=' | b']' | b'"')
}

/// Reads `[SD-ID` at `pos`; returns the SD-ID and the position after it.
fn read_id(s: &str, pos: usize) -> Result<(&str, usize), &'static str> {
    let b = s.as_bytes();
    if b.get(pos) != Some(&b'[') {
        return Err("`[` starting an element");
    }
    let start = pos + 1;
    let len = b
        .get(start..)
        .unwrap_or(&[])
        .iter()
        .take_while(|&&c| is_name_byte(c))
        .count();
    if len == 0 {
        return Err("an SD-ID after `[`");
    }
    let end = start + len;
    match b.get(end) {
        Some(b' ' | b']') => Ok((s.get(start..end).unwrap_or(""), end)),
        _ => Err("a space or `]` after the SD-ID"),
    }
}

/// Reads ` PARAM-NAME="PARAM-VALUE"` at `pos`, or `None` at the element's closing `]`.
/// Returns the name, the raw (still escaped) value and the position after the closing quote.
#[allow(clippy::type_complexity)]
fn read_param(s: &str, pos: usize) -> Result<Option<((&str, &str), usize)>, &'static str> {
    let b = s.as_bytes();
    match b.get(pos) {
        Some(b']') => return Ok(None),
        Some(b' ') => {}
        _ => return Err("a space or `]` after a parameter"),
    }
    let start = pos + 1;
    let len = b
        .get(start..)
        .unwrap_or(&[])
        .iter()
        .take_while(|&&c| is_name_byte(c))
        .count();
    if len == 0 {
        return Err("a PARAM-NAME");
    }
    let end = start + len;
    if b.get(end..end + 2) != Some(b"=\"") {
        return Err("`=\"` after the PARAM-NAME");
    }
    let value_start = end + 2;
    let mut i = value_start;
    loop {
        let found = b.get(i..).and_then(|tail| memchr2(b'"', b'\\', tail));
        let Some(at) = found.map(|p| i + p) else {
            return Err("a closing quote after the PARAM-VALUE");
        };
        if b[at] == b'"' {
            let name = s.get(start..end).unwrap_or("");
            let value = s.get(value_start..at).unwrap_or("");
            return Ok(Some(((name, value), at + 1)));
        }
        // A backslash escapes the next byte (`\"`, `\\`, `\]`; any other stays literal).
        i = at + 2;
    }
}

impl Serialize for StructuredData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !self.distinct {
            return self.serialize_merged(serializer);
        }
        let mut map = serializer.serialize_map(None)?;
        for (id, at) in self.elements() {
            map.serialize_entry(
                id,
                &Params {
                    text: self.text,
                    at,
                },
            )?;
        }
        map.end()
    }
}

/// Elements merged by SD-ID, in order of first appearance: each SD-ID with its parameters,
/// each parameter name with its values (in order of first appearance too).
type Merged<'a> = Vec<(&'a str, Vec<(&'a str, Vec<Value<'a>>)>)>;

impl<'a> StructuredData<'a> {
    /// Serializes data with repeated SD-IDs or parameter names: elements merged by SD-ID,
    /// repeated parameters as arrays, both in order of first appearance.
    fn serialize_merged<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let merged = self.merged();
        let mut map = serializer.serialize_map(Some(merged.len()))?;
        for (id, params) in &merged {
            map.serialize_entry(id, &MergedParams(params))?;
        }
        map.end()
    }

    /// The elements merged by SD-ID (see [`Merged`]).
    fn merged(&self) -> Merged<'a> {
        type Element<'a> = (Vec<(&'a str, Vec<Value<'a>>)>, HashMap<&'a str, usize>);
        let mut order: Vec<(&str, Element<'_>)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (id, mut at) in self.elements() {
            let slot = *index.entry(id).or_insert_with(|| {
                order.push((id, (Vec::new(), HashMap::new())));
                order.len() - 1
            });
            let Some((_, (params, names))) = order.get_mut(slot) else {
                continue;
            };
            while let Ok(Some(((name, value), next))) = read_param(self.text, at) {
                let p = *names.entry(name).or_insert_with(|| {
                    params.push((name, Vec::new()));
                    params.len() - 1
                });
                if let Some((_, values)) = params.get_mut(p) {
                    values.push(Value(value));
                }
                at = next;
            }
        }
        order
            .into_iter()
            .map(|(id, (params, _))| (id, params))
            .collect()
    }
}

impl WriteJson for StructuredData<'_> {
    fn write_json(&self, out: &mut String) {
        out.push('{');
        if self.distinct {
            for (i, (id, mut at)) in self.elements().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                // SD-IDs and parameter names may hold `\`: escaped like any map key.
                json::write_str(out, id);
                out.push_str(":{");
                let mut first = true;
                while let Ok(Some(((name, value), next))) = read_param(self.text, at) {
                    if !std::mem::take(&mut first) {
                        out.push(',');
                    }
                    json::write_str(out, name);
                    out.push(':');
                    Value(value).write_json(out);
                    at = next;
                }
                out.push('}');
            }
        } else {
            for (i, (id, params)) in self.merged().iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json::write_str(out, id);
                out.push_str(":{");
                for (j, (name, values)) in params.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    json::write_str(out, name);
                    out.push(':');
                    match values.as_slice() {
                        [one] => one.write_json(out),
                        many => {
                            out.push('[');
                            for (k, value) in many.iter().enumerate() {
                                if k > 0 {
                                    out.push(',');
                                }
                                value.write_json(out);
                            }
                            out.push(']');
                        }
                    }
                }
                out.push('}');
            }
        }
        out.push('}');
    }
}

/// The parameters of the element whose SD-ID ends at `at`, as a JSON object.
struct Params<'a> {
    text: &'a str,
    at: usize,
}

impl Serialize for Params<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let mut at = self.at;
        while let Ok(Some(((name, value), next))) = read_param(self.text, at) {
            map.serialize_entry(name, &Value(value))?;
            at = next;
        }
        map.end()
    }
}

/// Merged parameters: a name with one value maps to it, a repeated name to an array.
struct MergedParams<'p, 'a>(&'p [(&'a str, Vec<Value<'a>>)]);

impl Serialize for MergedParams<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, values) in self.0 {
            match values.as_slice() {
                [one] => map.serialize_entry(name, one)?,
                many => map.serialize_entry(name, &Values(many))?,
            }
        }
        map.end()
    }
}

struct Values<'p, 'a>(&'p [Value<'a>]);

impl Serialize for Values<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for value in self.0 {
            seq.serialize_element(value)?;
        }
        seq.end()
    }
}

/// A PARAM-VALUE as written (escaped); serializes unescaped.
#[derive(Debug, Clone, Copy)]
struct Value<'a>(&'a str);

impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if memchr(b'\\', self.0.as_bytes()).is_none() {
            serializer.serialize_str(self.0)
        } else {
            serializer.collect_str(self)
        }
    }
}

impl WriteJson for Value<'_> {
    fn write_json(&self, out: &mut String) {
        if memchr(b'\\', self.0.as_bytes()).is_none() {
            json::write_str(out, self.0);
        } else {
            json::write_str(out, &self.to_string());
        }
    }
}

impl fmt::Display for Value<'_> {
    /// Writes the value with `\"`, `\\` and `\]` resolved; other backslashes stay.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(p) = memchr(b'\\', rest.as_bytes()) {
            f.write_str(rest.get(..p).unwrap_or(""))?;
            let after = rest.get(p + 1..).unwrap_or("");
            match after.as_bytes().first() {
                Some(&c @ (b'"' | b'\\' | b']')) => {
                    f.write_str(if c == b'"' {
                        "\""
                    } else if c == b'\\' {
                        "\\"
                    } else {
                        "]"
                    })?;
                    rest = after.get(1..).unwrap_or("");
                }
                _ => {
                    f.write_str("\\")?;
                    rest = after;
                }
            }
        }
        f.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// serde_json's text for `data`, after checking that the direct writer gives the same.
    fn checked_text(data: &StructuredData<'_>) -> String {
        let text = serde_json::to_string(data).unwrap();
        let mut fast = String::new();
        data.write_json(&mut fast);
        assert_eq!(fast, text);
        text
    }

    fn sd(s: &str) -> (serde_json::Value, &str) {
        let (data, rest) = StructuredData::parse(s).unwrap();
        (serde_json::from_str(&checked_text(&data)).unwrap(), rest)
    }

    fn sd_text(s: &str) -> String {
        let (data, _) = StructuredData::parse(s).unwrap();
        checked_text(&data)
    }

    #[test]
    fn reads_elements_and_stops_after_the_last() {
        let (v, rest) = sd(
            r#"[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] msg"#,
        );
        assert_eq!(
            v,
            json!({"exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
                   "examplePriority@32473": {"class": "high"}})
        );
        assert_eq!(rest, " msg");
        let (v, rest) = sd("[x@1]");
        assert_eq!(v, json!({"x@1": {}}));
        assert_eq!(rest, "");
        // A space between elements ends the structured data (RFC 5424 6.3.5).
        let (v, rest) = sd(r#"[a x="1"] [b y="2"]"#);
        assert_eq!(v, json!({"a": {"x": "1"}}));
        assert_eq!(rest, r#" [b y="2"]"#);
    }

    #[test]
    fn unescapes_values_in_place() {
        assert_eq!(
            sd_text(r#"[a q="say \"hi\"" b="back\\slash" c="\]" d="C:\temp" e="é\"€" f="]"]"#),
            r#"{"a":{"q":"say \"hi\"","b":"back\\slash","c":"]","d":"C:\\temp","e":"é\"€","f":"]"}}"#
        );
        assert_eq!(sd_text(r#"[a v="\\"]"#), r#"{"a":{"v":"\\"}}"#);
        assert_eq!(sd_text(r#"[a v="\\\""]"#), r#"{"a":{"v":"\\\""}}"#);
        assert_eq!(sd_text(r#"[a v=""]"#), r#"{"a":{"v":""}}"#);
    }

    #[test]
    fn merges_repeats() {
        assert_eq!(
            sd_text(
                r#"[origin ip="192.0.2.1" ip="192.0.2.129" software="x"][meta a="1"][origin ip="10.0.0.1" enterpriseId="32473"]"#,
            ),
            r#"{"origin":{"ip":["192.0.2.1","192.0.2.129","10.0.0.1"],"software":"x","enterpriseId":"32473"},"meta":{"a":"1"}}"#
        );
        assert_eq!(
            sd_text(r#"[a k="1" k="2\"\]"]"#),
            r#"{"a":{"k":["1","2\"]"]}}"#
        );
        // More elements than are tracked while parsing: still exact.
        let many: String = (0..40).map(|i| format!("[id{i} k=\"{i}\"]")).collect();
        let (data, _) = StructuredData::parse(&many).unwrap();
        assert!(!data.distinct);
        let v: serde_json::Value = serde_json::from_str(&checked_text(&data)).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 40);
        assert_eq!(v["id39"]["k"], "39");
    }

    #[test]
    fn rejects_malformed_elements() {
        for bad in [
            "[",
            "[]",
            "[ a]",
            "[a",
            "[a ]",
            "[a b]",
            "[a b=]",
            "[a b=1]",
            "[a b=\"1]",
            "[a b=\"1\\\"]",
            "[a b=\"1\"",
            "[a b=\"1\"c=\"2\"]",
            "[a  b=\"1\"]",
            "[a=b]",
            "[a\"b c=\"1\"]",
            "[a b=\"1\"][",
            "[a b=\"1\"][]",
            "[a\tb=\"1\"]",
            "[é b=\"1\"]",
        ] {
            let err = StructuredData::parse(bad).unwrap_err();
            assert_eq!(err.field(), "structured_data", "{bad}");
        }
    }
}
