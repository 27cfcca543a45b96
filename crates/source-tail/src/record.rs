//! Lines to JSON records.

use std::fmt::Write;

use crate::ParseMode;

/// The JSON object of one line, and whether a `json` line failed to parse.
pub(crate) fn line_to_json(line: &[u8], mode: ParseMode) -> (String, bool) {
    let text = String::from_utf8_lossy(line);
    match mode {
        ParseMode::None => (message_object(&text), false),
        ParseMode::Json => {
            let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
            if trimmed.starts_with('{')
                && serde_json::from_str::<serde::de::IgnoredAny>(trimmed).is_ok()
            {
                (trimmed.to_owned(), false)
            } else {
                (message_object(&text), true)
            }
        }
    }
}

/// `{"message":"<text>"}` with `text` escaped as a JSON string.
fn message_object(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8 + 16);
    out.push_str("{\"message\":");
    push_json_string(&mut out, text);
    out.push('}');
    out
}

/// Appends `s` as a JSON string literal.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `i` is an ASCII byte, so both slices end on character boundaries.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn messages_and_json() {
        assert_eq!(
            line_to_json(b"hi \"x\"", ParseMode::None).0,
            r#"{"message":"hi \"x\""}"#
        );
        assert_eq!(
            line_to_json(b"a\x01\tb", ParseMode::None).0,
            r#"{"message":"a\u0001\tb"}"#
        );
        assert_eq!(
            line_to_json(b"bad \xff", ParseMode::None).0,
            "{\"message\":\"bad \u{fffd}\"}"
        );
        assert_eq!(
            line_to_json(br#" {"a": 1} "#, ParseMode::Json),
            (r#"{"a": 1}"#.into(), false)
        );
        assert_eq!(
            line_to_json(b"[1]", ParseMode::Json),
            (r#"{"message":"[1]"}"#.into(), true)
        );
        assert!(line_to_json(b"{\"a\":1} x", ParseMode::Json).1);
        assert!(line_to_json(b"", ParseMode::Json).1);
    }

    proptest! {
        #[test]
        fn message_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let (json, _) = line_to_json(&bytes, ParseMode::None);
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(v["message"].as_str().unwrap(), String::from_utf8_lossy(&bytes));
        }
    }
}
