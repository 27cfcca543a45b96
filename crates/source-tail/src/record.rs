//! Lines to JSON records.

use std::fmt::Write;

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
    push_json_string(&mut out, text);
    out.push('}');
    out
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that is zero, plus possibly of bytes after the first
/// zero byte (borrows propagate upwards): the lowest flagged byte is always a true zero.
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGH
}

/// Index of the first byte of `bytes[from..]` that JSON strings must escape (`"`, `\\`, or a
/// control character below 0x20), counted from 0 at `bytes[0]`; `bytes.len()` if none. Eight
/// bytes at a time.
fn next_escape(bytes: &[u8], mut from: usize) -> usize {
    while from + 8 <= bytes.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[from..from + 8]);
        let word = u64::from_le_bytes(word);
        // Bytes below 0x20: subtracting 0x20 borrows into the high bit only for them (bytes
        // with the high bit set are excluded by `!word`).
        let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
        let quote = zero_bytes(word ^ (ONES * u64::from(b'"')));
        let backslash = zero_bytes(word ^ (ONES * u64::from(b'\\')));
        let hits = control | quote | backslash;
        if hits != 0 {
            // Little-endian: the lowest set bit is the first byte in memory.
            return from + (hits.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    while from < bytes.len() && !matches!(bytes[from], b'"' | b'\\' | 0x00..=0x1f) {
        from += 1;
    }
    from
}

/// Appends `s` as a JSON string literal.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    loop {
        let i = next_escape(bytes, start);
        // `i` is at an ASCII byte or the end, so both slices end on character boundaries.
        out.push_str(&s[start..i]);
        let Some(&b) = bytes.get(i) else { break };
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        start = i + 1;
    }
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

    #[test]
    fn finds_every_byte_to_escape() {
        for len in 0..40 {
            for at in 0..len {
                for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                    let mut bytes = vec![b'a'; len];
                    // Bytes around the one to find that must not be taken for it.
                    if at > 0 {
                        bytes[at - 1] = 0x20;
                    }
                    if at + 1 < len {
                        bytes[at + 1] = 0xff;
                    }
                    bytes[at] = special;
                    assert_eq!(next_escape(&bytes, 0), at, "{bytes:?}");
                }
            }
            let plain: Vec<u8> = (0..len).map(|i| 0x20 + (i as u8 % 0x5f)).collect();
            let expected = plain
                .iter()
                .position(|&b| b == b'"' || b == b'\\')
                .unwrap_or(len);
            assert_eq!(next_escape(&plain, 0), expected);
        }
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
