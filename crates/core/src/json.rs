//! Compact JSON encoding for the hot path: the same text as `serde_json::to_string`, written
//! straight into a `String`, with strings escaped eight bytes at a time.
//!
//! serde_json escapes strings one byte at a time through a lookup table; log records are
//! mostly long runs of bytes that need no escaping (URLs, user agents, ARNs), which this
//! module skips a machine word at a time. Writing into a `String` (only whole `&str` pieces are
//! appended) also spares the UTF-8 check of a byte buffer.
//!
//! ```
//! use logferry_core::json;
//!
//! #[derive(serde::Serialize)]
//! struct Line<'a> { message: &'a str, bytes: u64, ratio: f64 }
//!
//! let line = Line { message: "say \"hi\"\n", bytes: 42, ratio: 0.5 };
//! let mut out = String::new();
//! json::to_string_into(&line, &mut out).unwrap();
//! assert_eq!(out, serde_json::to_string(&line).unwrap());
//! assert_eq!(out, r#"{"message":"say \"hi\"\n","bytes":42,"ratio":0.5}"#);
//! ```

use std::fmt::{self, Display, Write as _};

use serde::Serialize;
use serde::ser::{self, Impossible};

/// Why a value could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JsonError(String);

impl ser::Error for JsonError {
    fn custom<T: Display>(msg: T) -> Self {
        JsonError(msg.to_string())
    }
}

/// Appends `value` as compact JSON to `out`: the text `serde_json::to_string` would give.
///
/// On error, `out` may hold part of the value.
pub fn to_string_into<T: Serialize + ?Sized>(value: &T, out: &mut String) -> Result<(), JsonError> {
    value.serialize(Encoder { out })
}

/// Appends `s` to `out` as a JSON string literal (quoted and escaped as serde_json does).
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    write_str_contents(out, s);
    out.push('"');
}

/// Appends an integer as JSON (the text serde_json writes for it).
pub fn write_u64(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Appends a signed integer as JSON (the text serde_json writes for it).
pub fn write_i64(out: &mut String, v: i64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Appends a float as JSON: the shortest text that reads back as `v`, as serde_json writes
/// it; `null` for NaN and infinities (as serde_json does).
pub fn write_f64(out: &mut String, v: f64) {
    if v.is_finite() {
        out.push_str(zmij::Buffer::new().format_finite(v));
    } else {
        out.push_str("null");
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that is zero, plus possibly of bytes after the first
/// zero byte (borrows propagate upwards): the lowest flagged byte is always a true zero.
#[inline]
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGH
}

/// Index of the first byte of `bytes[from..]` that JSON strings must escape (`"`, `\\`, or a
/// control character below 0x20), counted from 0 at `bytes[0]`; `bytes.len()` if none. Eight
/// bytes at a time.
#[inline]
fn next_escape(bytes: &[u8], start: usize) -> usize {
    let mut from = start;
    while let Some(chunk) = bytes.get(from..from + 8) {
        let hits = escapes(chunk);
        if hits != 0 {
            // Little-endian: the lowest set bit is the first byte in memory.
            return from + (hits.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    if from == bytes.len() {
        return from;
    }
    // Fewer than 8 bytes are left. When at least 8 were searched, the last 8 are checked as
    // one word: those before `from` were found clean above, so the lowest hit is in the tail.
    if let Some(last) = bytes.len().checked_sub(8).filter(|&last| last >= start) {
        let hits = escapes(&bytes[last..]);
        return if hits == 0 {
            bytes.len()
        } else {
            last + (hits.trailing_zeros() / 8) as usize
        };
    }
    while from < bytes.len() && !matches!(bytes[from], b'"' | b'\\' | 0x00..=0x1f) {
        from += 1;
    }
    from
}

/// The high bit of each byte of `chunk` (8 bytes) that JSON strings must escape, plus possibly
/// of bytes after the first such byte: the lowest flagged byte is always a true one.
#[inline]
fn escapes(chunk: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    let word = u64::from_le_bytes(word);
    // Bytes below 0x20: subtracting 0x20 borrows into the high bit only for them (bytes with
    // the high bit set are excluded by `!word`).
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let quote = zero_bytes(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_bytes(word ^ (ONES * u64::from(b'\\')));
    control | quote | backslash
}

fn write_str_contents(out: &mut String, s: &str) {
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
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
        start = i + 1;
    }
}

/// serde_json's marker for `RawValue`: a struct of this name whose one field is the raw text.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

struct Encoder<'a> {
    out: &'a mut String,
}

impl Encoder<'_> {
    fn integer(self, v: impl itoa::Integer) -> Result<(), JsonError> {
        self.out.push_str(itoa::Buffer::new().format(v));
        Ok(())
    }

    fn float(self, v: f64) -> Result<(), JsonError> {
        write_f64(self.out, v);
        Ok(())
    }
}

/// A sequence or object being written; `first` until its first element.
struct Compound<'a> {
    out: &'a mut String,
    first: bool,
    /// The struct is serde_json's `RawValue`: its field is written verbatim.
    raw: bool,
}

impl Compound<'_> {
    fn comma(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.out.push(',');
        }
    }
}

macro_rules! integers {
    ($($method:ident: $ty:ty),*) => {
        $(fn $method(self, v: $ty) -> Result<(), JsonError> {
            self.integer(v)
        })*
    };
}

impl<'a> ser::Serializer for Encoder<'a> {
    type Ok = ();
    type Error = JsonError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), JsonError> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    integers!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128);

    fn serialize_f32(self, v: f32) -> Result<(), JsonError> {
        if v.is_finite() {
            self.out.push_str(zmij::Buffer::new().format_finite(v));
        } else {
            self.out.push_str("null");
        }
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), JsonError> {
        self.float(v)
    }
    fn serialize_char(self, v: char) -> Result<(), JsonError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), JsonError> {
        write_str(self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), JsonError> {
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for b in v {
            ser::SerializeSeq::serialize_element(&mut seq, b)?;
        }
        ser::SerializeSeq::end(seq)
    }
    fn serialize_none(self) -> Result<(), JsonError> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), JsonError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), JsonError> {
        self.out.push_str("null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), JsonError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), JsonError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        self.out.push('{');
        write_str(self.out, variant);
        self.out.push(':');
        value.serialize(Encoder { out: self.out })?;
        self.out.push('}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>, JsonError> {
        self.out.push('[');
        Ok(Compound {
            out: self.out,
            first: true,
            raw: false,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, JsonError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, JsonError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, JsonError> {
        self.out.push('{');
        write_str(self.out, variant);
        self.out.push_str(":[");
        Ok(Compound {
            out: self.out,
            first: true,
            raw: false,
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a>, JsonError> {
        self.out.push('{');
        Ok(Compound {
            out: self.out,
            first: true,
            raw: false,
        })
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Compound<'a>, JsonError> {
        if name == RAW_VALUE_TOKEN {
            return Ok(Compound {
                out: self.out,
                first: true,
                raw: true,
            });
        }
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>, JsonError> {
        self.out.push('{');
        write_str(self.out, variant);
        self.out.push_str(":{");
        Ok(Compound {
            out: self.out,
            first: true,
            raw: false,
        })
    }
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), JsonError> {
        // Formatted straight into the output, escaping each piece.
        struct Escaping<'o>(&'o mut String);
        impl fmt::Write for Escaping<'_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                write_str_contents(self.0, s);
                Ok(())
            }
        }
        self.out.push('"');
        write!(Escaping(self.out), "{value}").map_err(|_| JsonError("Display failed".into()))?;
        self.out.push('"');
        Ok(())
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonError> {
        self.comma();
        value.serialize(Encoder { out: self.out })
    }
    fn end(self) -> Result<(), JsonError> {
        self.out.push(']');
        Ok(())
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), JsonError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), JsonError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonError> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<(), JsonError> {
        self.out.push_str("]}");
        Ok(())
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), JsonError> {
        self.comma();
        key.serialize(TextEncoder {
            out: self.out,
            raw: false,
        })?;
        self.out.push(':');
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), JsonError> {
        value.serialize(Encoder { out: self.out })
    }
    fn end(self) -> Result<(), JsonError> {
        self.out.push('}');
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        if self.raw {
            return value.serialize(TextEncoder {
                out: self.out,
                raw: true,
            });
        }
        self.comma();
        write_str(self.out, key);
        self.out.push(':');
        value.serialize(Encoder { out: self.out })
    }
    fn end(self) -> Result<(), JsonError> {
        if !self.raw {
            self.out.push('}');
        }
        Ok(())
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = JsonError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    fn end(self) -> Result<(), JsonError> {
        self.out.push_str("}}");
        Ok(())
    }
}

/// Object keys (`raw == false`): strings, and integers, chars and bools written as strings
/// (as serde_json does). The text of a `RawValue` (`raw == true`): a string written as it is.
struct TextEncoder<'a> {
    out: &'a mut String,
    raw: bool,
}

impl TextEncoder<'_> {
    /// An integer or bool key, quoted.
    fn quoted(self, text: &str) -> Result<(), JsonError> {
        if self.raw {
            return Err(self.unsupported());
        }
        self.out.push('"');
        self.out.push_str(text);
        self.out.push('"');
        Ok(())
    }

    fn integer(self, v: impl itoa::Integer) -> Result<(), JsonError> {
        self.quoted(itoa::Buffer::new().format(v))
    }

    fn unsupported(&self) -> JsonError {
        JsonError(
            if self.raw {
                "a raw JSON value must be text"
            } else {
                "key must be a string"
            }
            .into(),
        )
    }
}

macro_rules! unsupported {
    ($($method:ident($($arg:ty),*)),*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<(), JsonError> {
            Err(self.unsupported())
        })*
    };
}

macro_rules! unsupported_compound {
    ($($method:ident($($arg:ty),*) -> $ret:ident),*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Self::$ret, JsonError> {
            Err(self.unsupported())
        })*
    };
}

impl ser::Serializer for TextEncoder<'_> {
    type Ok = ();
    type Error = JsonError;
    type SerializeSeq = Impossible<(), JsonError>;
    type SerializeTuple = Impossible<(), JsonError>;
    type SerializeTupleStruct = Impossible<(), JsonError>;
    type SerializeTupleVariant = Impossible<(), JsonError>;
    type SerializeMap = Impossible<(), JsonError>;
    type SerializeStruct = Impossible<(), JsonError>;
    type SerializeStructVariant = Impossible<(), JsonError>;

    integers!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128);

    unsupported!(
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str)
    );

    unsupported_compound!(serialize_seq(Option<usize>) -> SerializeSeq,
        serialize_tuple(usize) -> SerializeTuple,
        serialize_tuple_struct(&'static str, usize) -> SerializeTupleStruct,
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> SerializeTupleVariant,
        serialize_map(Option<usize>) -> SerializeMap,
        serialize_struct(&'static str, usize) -> SerializeStruct,
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> SerializeStructVariant);

    fn serialize_str(self, v: &str) -> Result<(), JsonError> {
        if self.raw {
            self.out.push_str(v);
        } else {
            write_str(self.out, v);
        }
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), JsonError> {
        if self.raw {
            return Err(self.unsupported());
        }
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_bool(self, v: bool) -> Result<(), JsonError> {
        self.quoted(if v { "true" } else { "false" })
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), JsonError> {
        if self.raw {
            return Err(self.unsupported());
        }
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), JsonError> {
        value.serialize(self)
    }
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), JsonError> {
        if self.raw {
            self.out.push_str(&value.to_string());
            return Ok(());
        }
        Encoder { out: self.out }.collect_str(value)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), JsonError> {
        Err(self.unsupported())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), JsonError> {
        Err(self.unsupported())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::value::RawValue;

    use super::*;

    fn encode<T: Serialize + ?Sized>(value: &T) -> String {
        let mut out = String::new();
        to_string_into(value, &mut out).unwrap();
        out
    }

    #[derive(Serialize)]
    enum Shape {
        Unit,
        New(u8),
        Tuple(u8, i8),
        Struct { a: bool },
    }

    #[derive(Serialize)]
    struct Everything<'a> {
        s: &'a str,
        c: char,
        b: bool,
        i: i64,
        u: u128,
        f: f64,
        small: f32,
        nan: f64,
        none: Option<u8>,
        some: Option<&'a str>,
        unit: (),
        seq: Vec<u16>,
        tuple: (u8, &'a str),
        bytes: &'a [u8],
        map: BTreeMap<i32, &'a str>,
        bool_keys: BTreeMap<bool, u8>,
        shapes: Vec<Shape>,
        raw: &'a RawValue,
        value: serde_json::Value,
    }

    #[test]
    fn the_same_text_as_serde_json() {
        let raw = RawValue::from_string("{\"kept\" : [1, 2]}".into()).unwrap();
        let value = Everything {
            s: "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f} é 😀 \u{7f}",
            c: '"',
            b: true,
            i: -42,
            u: u128::MAX,
            f: 1.5e300,
            small: 0.1,
            nan: f64::NAN,
            none: None,
            some: Some("x"),
            unit: (),
            seq: vec![1, 2, 3],
            tuple: (7, "t"),
            bytes: b"\x00\xff",
            map: BTreeMap::from([(-1, "m"), (2, "n")]),
            bool_keys: BTreeMap::from([(false, 0), (true, 1)]),
            shapes: vec![
                Shape::Unit,
                Shape::New(1),
                Shape::Tuple(2, -3),
                Shape::Struct { a: false },
            ],
            raw: &raw,
            value: serde_json::json!({"z": [null, 1.25, "q\u{0}"], "a": {}}),
        };
        assert_eq!(encode(&value), serde_json::to_string(&value).unwrap());
    }

    #[test]
    fn keys_that_are_not_strings_fail_as_in_serde_json() {
        let map = BTreeMap::from([(vec![1u8], 1u8)]);
        assert!(to_string_into(&map, &mut String::new()).is_err());
        assert!(serde_json::to_string(&map).is_err());
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

    /// The first byte at or after `start` that must be escaped, one byte at a time.
    fn naive_next_escape(bytes: &[u8], start: usize) -> usize {
        (start..bytes.len())
            .find(|&i| matches!(bytes[i], b'"' | b'\\' | 0x00..=0x1f))
            .unwrap_or(bytes.len())
    }

    #[test]
    fn searches_from_any_start_ignoring_what_comes_before() {
        // Escapes right before the start must not be found again (the tail of a short search
        // reads the last 8 bytes only when all of them lie at or after the start).
        for len in 0..24 {
            for start in 0..=len {
                for special_at in 0..len {
                    let mut bytes = vec![b'a'; len];
                    bytes[special_at] = b'"';
                    assert_eq!(
                        next_escape(&bytes, start),
                        naive_next_escape(&bytes, start),
                        "len {len} start {start} at {special_at}"
                    );
                }
            }
        }
    }

    proptest! {
        #[test]
        fn next_escape_matches_a_byte_scan(
            bytes in proptest::collection::vec(prop_oneof![Just(b'"'), Just(b'\\'), Just(b'\n'), 0x20u8..0x7f, any::<u8>()], 0..40),
            start in 0usize..41,
        ) {
            let start = start.min(bytes.len());
            prop_assert_eq!(next_escape(&bytes, start), naive_next_escape(&bytes, start));
        }

        #[test]
        fn strings_escape_as_serde_json(s in "\\PC*|[\\x00-\\x7f]{0,40}") {
            let mut out = String::new();
            write_str(&mut out, &s);
            prop_assert_eq!(out, serde_json::to_string(&s).unwrap());
        }

        #[test]
        fn maps_of_strings_as_serde_json(m in proptest::collection::btree_map(".{0,12}", ".{0,30}", 0..8)) {
            prop_assert_eq!(encode(&m), serde_json::to_string(&m).unwrap());
        }

        #[test]
        fn numbers_as_serde_json(i in any::<i64>(), u in any::<u64>(), f in any::<f64>()) {
            let value = (i, u, f);
            prop_assert_eq!(encode(&value), serde_json::to_string(&value).unwrap());
        }
    }
}
