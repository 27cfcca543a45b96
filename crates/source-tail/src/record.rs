//! Lines to JSON records.

use crate::ParseMode;

/// The JSON object of one line, and whether a `json` line failed to parse.
pub(crate) fn line_to_json(line: &[u8], mode: ParseMode) -> (String, bool) {
    // Valid UTF-8 (nearly every line) is checked by the fast validator and borrowed; only an
    // invalid line pays for the replacement.
    let text = match std::str::from_utf8(line) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(line),
    };
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
    logferry_core::json::write_str(&mut out, text);
    out.push('}');
    out
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
