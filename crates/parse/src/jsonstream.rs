//! A streaming splitter for whole-document JSON formats (CloudTrail, Config, CloudWatch Logs
//! via Firehose).
//!
//! [`Scanner`] reads a [`BufRead`] byte by byte at the top level and in bulk inside values: it
//! tracks string and escape state and bracket depth only, so it never builds a tree and never
//! holds more than one value of interest. A value is either skipped (nothing is kept) or copied
//! verbatim into a caller's buffer, up to a size limit; past the limit the value is still
//! scanned to its end but its bytes are dropped. The copied bytes are then validated and read
//! shallowly by serde_json (see [`crate::jsonobj::JsonObject`]).
//!
//! The structure around the values of interest (the enclosing object, member names, `:`, `,`,
//! brackets) is checked exactly; skipped values are only checked for balanced brackets and
//! terminated strings.

use std::io::BufRead;

use memchr::memchr3;

use crate::error::{DecodeError, LineError, ParseError};
use crate::format::{DecodeOptions, DecodeSummary, Located, Record};

/// Longest member name kept for comparison; longer names never match.
const MAX_KEY_BYTES: usize = 256;

/// Fills the reader's buffer, retrying on `Interrupted`, and evaluates to the available bytes
/// (empty at the end of input).
macro_rules! fill {
    ($reader:expr) => {
        loop {
            match $reader.fill_buf() {
                Ok(bytes) => break bytes,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(DecodeError::Io(e)),
            }
        }
    };
}

/// A cursor over a JSON byte stream that counts lines and enforces the input limit.
#[derive(Debug)]
pub(crate) struct Scanner<R> {
    reader: R,
    /// `\n` bytes consumed.
    newlines: u64,
    /// Bytes consumed.
    consumed: u64,
    /// Whether the last byte consumed was `\n`.
    at_line_start: bool,
    max_input: Option<u64>,
}

/// How a scanned value ended up in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Captured {
    /// The value's bytes were appended.
    Whole,
    /// The value was larger than the limit: nothing was appended.
    TooLong,
}

impl<R: BufRead> Scanner<R> {
    /// A scanner at the start of `reader`; `max_input` limits the bytes read.
    pub(crate) fn new(reader: R, max_input: Option<u64>) -> Scanner<R> {
        Scanner {
            reader,
            newlines: 0,
            consumed: 0,
            at_line_start: true,
            max_input,
        }
    }

    /// The 1-based line of the next byte (the line of the last byte consumed, unless that was
    /// a `\n`).
    pub(crate) fn line(&self) -> u64 {
        self.newlines.saturating_add(1)
    }

    /// The line of the last byte consumed.
    pub(crate) fn line_of_last_byte(&self) -> u64 {
        if self.at_line_start && self.consumed > 0 {
            self.newlines
        } else {
            self.line()
        }
    }

    /// Lines read so far; a last line without `\n` counts.
    pub(crate) fn lines(&self) -> u64 {
        self.newlines + u64::from(!self.at_line_start)
    }

    /// A [`DecodeError::Document`] at the current line.
    pub(crate) fn error(&self, message: impl Into<String>) -> DecodeError {
        DecodeError::Document {
            line: self.line(),
            message: message.into(),
        }
    }

    /// The error for an input that ends before the document does.
    pub(crate) fn truncated(&self) -> DecodeError {
        self.error("unexpected end of input: the document is truncated")
    }

    /// Marks `n` bytes as consumed, `last` being the last of them.
    fn advance(&mut self, n: usize, last: u8) -> Result<(), DecodeError> {
        if n == 0 {
            return Ok(());
        }
        self.reader.consume(n);
        self.consumed = self.consumed.saturating_add(n as u64);
        self.at_line_start = last == b'\n';
        match self.max_input {
            Some(limit) if self.consumed > limit => Err(DecodeError::TooLarge { limit }),
            _ => Ok(()),
        }
    }

    /// Skips whitespace and returns the next byte without consuming it (`None` at the end).
    pub(crate) fn peek(&mut self) -> Result<Option<u8>, DecodeError> {
        loop {
            let (n, last, found) = {
                let avail = fill!(self.reader);
                if avail.is_empty() {
                    return Ok(None);
                }
                let mut found = None;
                let mut n = avail.len();
                for (i, &b) in avail.iter().enumerate() {
                    match b {
                        b' ' | b'\t' | b'\r' => {}
                        b'\n' => self.newlines += 1,
                        _ => {
                            found = Some(b);
                            n = i;
                            break;
                        }
                    }
                }
                // `n` whitespace bytes are consumed; the last of them, if any, is avail[n - 1].
                let last = if n > 0 { avail[n - 1] } else { 0 };
                (n, last, found)
            };
            self.advance(n, last)?;
            if found.is_some() {
                return Ok(found);
            }
        }
    }

    /// Consumes one byte (the one [`Scanner::peek`] returned).
    pub(crate) fn bump(&mut self) -> Result<(), DecodeError> {
        let last = {
            let avail = fill!(self.reader);
            match avail.first() {
                Some(&b) => b,
                None => return Err(self.truncated()),
            }
        };
        if last == b'\n' {
            self.newlines += 1;
        }
        self.advance(1, last)
    }

    /// Skips whitespace and consumes `byte`, or fails with `what` (e.g. "`:` after a member
    /// name").
    pub(crate) fn expect(&mut self, byte: u8, what: &str) -> Result<(), DecodeError> {
        match self.peek()? {
            Some(b) if b == byte => self.bump(),
            Some(_) => Err(self.error(format!("expected {what}"))),
            None => Err(self.truncated()),
        }
    }

    /// Reads a member name (a JSON string, quotes included, escapes left as they are) into
    /// `key`, which is cleared first. A name longer than [`MAX_KEY_BYTES`] leaves `key` empty.
    pub(crate) fn key(&mut self, key: &mut Vec<u8>) -> Result<(), DecodeError> {
        key.clear();
        match self.peek()? {
            Some(b'"') => {}
            Some(_) => return Err(self.error("expected a member name (a JSON string)")),
            None => return Err(self.truncated()),
        }
        self.value(Some((key, MAX_KEY_BYTES)))?;
        Ok(())
    }

    /// Skips one JSON value (after whitespace).
    pub(crate) fn skip(&mut self) -> Result<(), DecodeError> {
        self.value(None).map(|_| ())
    }

    /// Appends one JSON value (after whitespace) to `out`, verbatim, unless it is longer than
    /// `limit` bytes: then the value is skipped and `out` is left as it was.
    pub(crate) fn capture(
        &mut self,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<Captured, DecodeError> {
        self.value(Some((out, limit)))
    }

    fn value(&mut self, mut sink: Option<(&mut Vec<u8>, usize)>) -> Result<Captured, DecodeError> {
        let first = match self.peek()? {
            Some(b) => b,
            None => return Err(self.truncated()),
        };
        let start = sink.as_ref().map_or(0, |(out, _)| out.len());
        let mut fits = true;
        match first {
            b'"' | b'{' | b'[' => self.nested(&mut sink, start, &mut fits)?,
            b if is_scalar_byte(b) => self.scalar(&mut sink, start, &mut fits)?,
            _ => return Err(self.error("expected a JSON value")),
        }
        Ok(if fits {
            Captured::Whole
        } else {
            Captured::TooLong
        })
    }

    /// Appends `bytes` to the sink while the value still fits.
    fn keep(sink: &mut Option<(&mut Vec<u8>, usize)>, start: usize, fits: &mut bool, bytes: &[u8]) {
        if let Some((out, limit)) = sink
            && *fits
        {
            let kept = out.len().saturating_sub(start);
            if kept.saturating_add(bytes.len()) > *limit {
                *fits = false;
                out.truncate(start);
            } else {
                out.extend_from_slice(bytes);
            }
        }
    }

    /// A number, `true`, `false` or `null` (checked later by serde_json, or not at all when
    /// skipped).
    fn scalar(
        &mut self,
        sink: &mut Option<(&mut Vec<u8>, usize)>,
        start: usize,
        fits: &mut bool,
    ) -> Result<(), DecodeError> {
        loop {
            let (n, last, done) = {
                let avail = fill!(self.reader);
                if avail.is_empty() {
                    return Ok(());
                }
                let n = avail
                    .iter()
                    .position(|&b| !is_scalar_byte(b))
                    .unwrap_or(avail.len());
                Self::keep(sink, start, fits, &avail[..n]);
                let last = if n > 0 { avail[n - 1] } else { 0 };
                (n, last, n < avail.len())
            };
            self.advance(n, last)?;
            if done {
                return Ok(());
            }
        }
    }

    /// A string, object or array: scanned to its matching end.
    fn nested(
        &mut self,
        sink: &mut Option<(&mut Vec<u8>, usize)>,
        start: usize,
        fits: &mut bool,
    ) -> Result<(), DecodeError> {
        let mut depth: u64 = 0;
        let mut in_string = false;
        let mut escaped = false;
        loop {
            let (n, last, done) = {
                let avail = fill!(self.reader);
                if avail.is_empty() {
                    return Err(self.truncated());
                }
                let mut newlines = 0u64;
                let mut i = 0;
                let mut done = false;
                while i < avail.len() {
                    if in_string {
                        if escaped {
                            // The escaped byte itself; serde_json checks the escape later.
                            escaped = false;
                            newlines += u64::from(avail[i] == b'\n');
                            i += 1;
                            continue;
                        }
                        let Some(p) = find_string_stop(&avail[i..]) else {
                            i = avail.len();
                            break;
                        };
                        i += p;
                        let stop = avail[i];
                        i += 1;
                        match stop {
                            b'"' => {
                                in_string = false;
                                if depth == 0 {
                                    done = true;
                                    break;
                                }
                            }
                            b'\\' => escaped = true,
                            _ => newlines += 1,
                        }
                    } else {
                        let b = avail[i];
                        i += 1;
                        match b {
                            b'"' => in_string = true,
                            b'{' | b'[' => depth += 1,
                            b'}' | b']' => {
                                depth = depth.saturating_sub(1);
                                if depth == 0 {
                                    done = true;
                                    break;
                                }
                            }
                            b'\n' => newlines += 1,
                            _ => {}
                        }
                    }
                }
                self.newlines += newlines;
                Self::keep(sink, start, fits, &avail[..i]);
                let last = if i > 0 { avail[i - 1] } else { 0 };
                (i, last, done)
            };
            self.advance(n, last)?;
            if done {
                return Ok(());
            }
        }
    }
}

/// Bytes that end a run of plain string content: `"`, `\` and `\n` (counted as a line).
const STRING_STOP: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[b'\n' as usize] = true;
    table
};

/// The index of the first `"`, `\` or `\n` in `bytes`. Most strings in AWS documents are
/// short: eight bytes at a time in a `u64` beats setting up a vector search, which takes over
/// for the rest of a long string.
#[inline]
fn find_string_stop(bytes: &[u8]) -> Option<usize> {
    const SHORT: usize = 32;
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let mask = string_stops(u64::from_le_bytes(word));
        if mask != 0 {
            return Some(i + (mask.trailing_zeros() / 8) as usize);
        }
        i += 8;
        if i >= SHORT {
            return memchr3(b'"', b'\\', b'\n', &bytes[i..]).map(|p| p + i);
        }
    }
    let tail = bytes.get(i..).unwrap_or_default();
    tail.iter()
        .position(|&b| STRING_STOP[usize::from(b)])
        .map(|p| p + i)
}

/// A mask whose lowest set bit is the high bit of the first `"`, `\` or `\n` byte of `word`
/// (little-endian); 0 when there is none. (Bits above the first match may be spurious.)
#[inline]
fn string_stops(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    zero_bytes(word ^ (ONES * u64::from(b'"')))
        | zero_bytes(word ^ (ONES * u64::from(b'\\')))
        | zero_bytes(word ^ (ONES * u64::from(b'\n')))
}

/// Bytes that can appear in a JSON number or literal (`true`, `false`, `null`).
fn is_scalar_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.')
}

/// `bytes` as text; invalid UTF-8 is replaced with U+FFFD (into `lossy`).
pub(crate) fn text<'b>(bytes: &'b [u8], lossy: &'b mut String) -> &'b str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => {
            *lossy = String::from_utf8_lossy(bytes).into_owned();
            lossy
        }
    }
}

/// The error for a record larger than `max_line_bytes`.
pub(crate) fn too_long(field: &'static str) -> ParseError {
    ParseError::invalid(
        field,
        "a record within the maximum record size (max_line_bytes)",
    )
}

/// Decodes a document that is one JSON object with an array member `member` whose elements
/// are the records (CloudTrail `Records`, Config `configurationItems`); other members are
/// skipped. `parse` turns one element's JSON text into a record. A document without `member`,
/// or an empty (or all-whitespace) input, yields no records.
pub(crate) fn decode_array_member<R, P>(
    reader: R,
    options: &DecodeOptions,
    member: &str,
    mut parse: P,
    on_item: &mut dyn FnMut(Result<Located<'_>, LineError>),
) -> Result<DecodeSummary, DecodeError>
where
    R: BufRead,
    P: for<'a> FnMut(&'a str) -> Result<Record<'a>, ParseError>,
{
    let mut scanner = Scanner::new(reader, options.max_input_bytes);
    let mut summary = DecodeSummary::default();
    let mut key = Vec::new();
    let mut element = Vec::new();
    let mut lossy = String::new();
    let mut index = 0u64;

    match scanner.peek()? {
        None => return Ok(summary),
        Some(b'{') => scanner.bump()?,
        Some(_) => return Err(scanner.error("expected a JSON object (`{`)")),
    }
    if scanner.peek()? == Some(b'}') {
        scanner.bump()?;
    } else {
        loop {
            scanner.key(&mut key)?;
            scanner.expect(b':', "`:` after a member name")?;
            if is_key(&key, member) {
                match scanner.peek()? {
                    Some(b'[') => scanner.bump()?,
                    Some(_) => return Err(scanner.error(format!("`{member}` is not an array"))),
                    None => return Err(scanner.truncated()),
                }
                if scanner.peek()? == Some(b']') {
                    scanner.bump()?;
                } else {
                    loop {
                        element.clear();
                        let captured = scanner.capture(&mut element, options.max_line_bytes)?;
                        let line = scanner.line_of_last_byte();
                        let result = match captured {
                            Captured::Whole => parse(text(&element, &mut lossy)),
                            Captured::TooLong => Err(too_long("record")),
                        };
                        match result {
                            Ok(record) => {
                                summary.records += 1;
                                on_item(Ok(Located {
                                    line,
                                    position: index,
                                    record,
                                }));
                            }
                            Err(error) => {
                                summary.errors += 1;
                                on_item(Err(LineError {
                                    line,
                                    position: index,
                                    error,
                                }));
                            }
                        }
                        index += 1;
                        match scanner.peek()? {
                            Some(b',') => scanner.bump()?,
                            Some(b']') => {
                                scanner.bump()?;
                                break;
                            }
                            Some(_) => {
                                return Err(scanner.error(format!(
                                    "expected `,` or `]` after an element of `{member}`"
                                )));
                            }
                            None => return Err(scanner.truncated()),
                        }
                    }
                }
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
    }
    if scanner.peek()?.is_some() {
        return Err(scanner.error("unexpected data after the end of the document"));
    }
    summary.lines = scanner.lines();
    Ok(summary)
}

/// Whether the raw member name `key` (quotes included) is `name`.
pub(crate) fn is_key(key: &[u8], name: &str) -> bool {
    key.len() == name.len() + 2
        && key.first() == Some(&b'"')
        && key.last() == Some(&b'"')
        && &key[1..key.len() - 1] == name.as_bytes()
}

#[cfg(test)]
mod tests {
    use std::io::BufReader;

    use super::*;

    /// Scans `input` through a 1-byte buffer: every value is split across refills.
    fn scanner(input: &[u8]) -> Scanner<BufReader<&[u8]>> {
        Scanner::new(BufReader::with_capacity(1, input), None)
    }

    fn capture_all(input: &[u8], limit: usize) -> Vec<Result<String, Captured>> {
        let mut s = scanner(input);
        let mut out = Vec::new();
        s.expect(b'[', "[").unwrap();
        loop {
            let mut buf = Vec::new();
            match s.capture(&mut buf, limit).unwrap() {
                Captured::Whole => out.push(Ok(String::from_utf8(buf).unwrap())),
                Captured::TooLong => out.push(Err(Captured::TooLong)),
            }
            match s.peek().unwrap() {
                Some(b',') => s.bump().unwrap(),
                _ => break,
            }
        }
        out
    }

    #[test]
    fn captures_values_verbatim_across_refills() {
        let input = br#"[ {"a":"}\"]{[","b":[1,{"c":null}]} , "x\\" ,-1.5e3,true,[],"\u00e9"]"#;
        let got = capture_all(input, 1000);
        assert_eq!(
            got,
            vec![
                Ok(r#"{"a":"}\"]{[","b":[1,{"c":null}]}"#.to_owned()),
                Ok(r#""x\\""#.to_owned()),
                Ok("-1.5e3".to_owned()),
                Ok("true".to_owned()),
                Ok("[]".to_owned()),
                Ok(r#""\u00e9""#.to_owned()),
            ]
        );
    }

    #[test]
    fn drops_values_over_the_limit_and_continues() {
        let got = capture_all(br#"[{"a":"0123456789"},{"b":1}]"#, 10);
        assert_eq!(
            got,
            vec![Err(Captured::TooLong), Ok(r#"{"b":1}"#.to_owned())]
        );
    }

    #[test]
    fn counts_lines() {
        let mut s = scanner(b"\n[\n{\"a\":\n1}\n,\n2]\n");
        s.expect(b'[', "[").unwrap();
        assert_eq!(s.line(), 2);
        s.skip().unwrap();
        assert_eq!(s.line_of_last_byte(), 4);
        s.expect(b',', ",").unwrap();
        s.skip().unwrap();
        assert_eq!(s.line_of_last_byte(), 6);
        s.expect(b']', "]").unwrap();
        assert_eq!(s.peek().unwrap(), None);
        assert_eq!(s.lines(), 6);
        let mut s = scanner(b"1\n2");
        s.skip().unwrap();
        s.skip().unwrap();
        assert_eq!(s.lines(), 2);
    }

    #[test]
    fn reports_truncation_and_junk() {
        let mut s = scanner(b"{\"a\": [1, \"x");
        assert!(matches!(
            s.skip(),
            Err(DecodeError::Document { line: 1, .. })
        ));
        let mut s = scanner(b"\n\n}");
        assert!(matches!(
            s.skip(),
            Err(DecodeError::Document { line: 3, .. })
        ));
    }

    #[test]
    fn enforces_the_input_limit() {
        let mut s = Scanner::new(&b"[1, 2, 3, 4, 5]"[..], Some(4));
        assert!(matches!(s.skip(), Err(DecodeError::TooLarge { limit: 4 })));
    }

    proptest::proptest! {
        #[test]
        fn finds_string_stops_like_a_plain_search(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => proptest::prelude::any::<u8>(),
                    1 => proptest::sample::select(vec![b'"', b'\\', b'\n', 0x80, 0xff, 0x21, 0x5b, 0x09, 0x0b]),
                ],
                0..100,
            ),
        ) {
            let expected = bytes.iter().position(|b| matches!(b, b'"' | b'\\' | b'\n'));
            proptest::prop_assert_eq!(find_string_stop(&bytes), expected);
        }
    }

    #[test]
    fn finds_string_stops_in_every_position() {
        for len in 0..80 {
            for at in 0..len {
                for stop in [b'"', b'\\', b'\n'] {
                    let mut bytes = vec![0xe9u8; len];
                    bytes[at] = stop;
                    assert_eq!(find_string_stop(&bytes), Some(at), "{len} {at}");
                }
            }
            assert_eq!(find_string_stop(&vec![b'a'; len]), None);
        }
    }

    #[test]
    fn matches_raw_keys() {
        assert!(is_key(br#""Records""#, "Records"));
        assert!(!is_key(br#""Record""#, "Records"));
        assert!(!is_key(b"", "Records"));
        assert!(!is_key(b"\"", ""));
    }

    #[test]
    fn replaces_invalid_utf8() {
        let mut lossy = String::new();
        assert_eq!(text(b"a\xffb", &mut lossy), "a\u{fffd}b");
        assert_eq!(text(b"ab", &mut lossy), "ab");
    }
}
