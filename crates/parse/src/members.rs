//! One list of a record's JSON members, written two ways: through serde (`Serialize`, for
//! `serde_json::to_value` and any other serializer) or straight into a `String` (the hot
//! path: keys are the parser's own literals, so they are copied, never escaped or scanned).
//!
//! A record type writes its members once, in `fn members<M: Members>(&self, m: &mut M)`; its
//! `Serialize` impl passes a [`SerdeMembers`] (a struct, as `#[derive(Serialize)]` gives; its
//! length counted by [`CountMembers`]) or a [`SerdeMapMembers`] (a map, for records whose
//! members follow a layout read from the input), and its fast writer a [`TextMembers`]. Both
//! give the same text (tests compare them for every format that has a fast writer).
//!
//! Keys are the parser's literals, except where a layout read from the input names a column
//! the parser does not know (CloudFront's `#Fields`): such keys go through [`NamedMembers`],
//! which escapes them as serde_json escapes map keys.

use logferry_core::Timestamp;
use logferry_core::json;
use serde::Serialize;
use serde::Serializer;
use serde::ser::{SerializeMap, SerializeStruct};

/// A value that can be written as JSON straight into a `String`, with the same text serde_json
/// gives for its `Serialize`.
pub(crate) trait WriteJson: Serialize {
    fn write_json(&self, out: &mut String);
}

impl WriteJson for str {
    #[inline]
    fn write_json(&self, out: &mut String) {
        json::write_str(out, self);
    }
}

impl WriteJson for &str {
    #[inline]
    fn write_json(&self, out: &mut String) {
        json::write_str(out, self);
    }
}

impl WriteJson for u64 {
    #[inline]
    fn write_json(&self, out: &mut String) {
        json::write_u64(out, *self);
    }
}

impl WriteJson for u8 {
    #[inline]
    fn write_json(&self, out: &mut String) {
        json::write_u64(out, u64::from(*self));
    }
}

impl WriteJson for u16 {
    #[inline]
    fn write_json(&self, out: &mut String) {
        json::write_u64(out, u64::from(*self));
    }
}

impl WriteJson for i64 {
    #[inline]
    fn write_json(&self, out: &mut String) {
        json::write_i64(out, *self);
    }
}

impl WriteJson for f64 {
    #[inline]
    fn write_json(&self, out: &mut String) {
        json::write_f64(out, *self);
    }
}

impl WriteJson for Timestamp {
    #[inline]
    fn write_json(&self, out: &mut String) {
        Timestamp::write_json(self, out);
    }
}

/// Where a record's members go.
pub(crate) trait Members {
    type Error;
    /// One member. `key` is a literal of the parser that needs no JSON escaping.
    fn member<T: WriteJson + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Self::Error>;
}

/// Members whose key may also be a name read from the input (not a literal of the parser).
pub(crate) trait NamedMembers: Members {
    /// One member under any `key`, escaped as serde_json escapes map keys.
    fn named_member<T: WriteJson + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), Self::Error>;
}

/// A record whose JSON members are listed once, in [`MemberList::members`], for both its
/// `Serialize` impl ([`serialize_struct`] or [`serialize_map`]) and the direct writer.
pub(crate) trait MemberList {
    /// The members, in order.
    fn members<M: Members>(&self, out: &mut M) -> Result<(), M::Error>;

    /// Appends the record's JSON object to `out`: the text of its `Serialize` through
    /// serde_json, written directly.
    fn write_json_str(&self, out: &mut String) {
        let mut members = TextMembers::begin(out);
        let Ok(()) = self.members(&mut members);
        members.end();
    }
}

/// Serializes `record` as a struct of exactly the members it writes (the length
/// `#[derive(Serialize)]` would give).
pub(crate) fn serialize_struct<T: MemberList + ?Sized, S: Serializer>(
    record: &T,
    name: &'static str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut count = CountMembers::default();
    let Ok(()) = record.members(&mut count);
    let mut out = SerdeMembers(serializer.serialize_struct(name, count.0)?);
    record.members(&mut out)?;
    out.0.end()
}

/// Serializes `record` as a map (records whose members follow the input's layout).
pub(crate) fn serialize_map<T: MemberList + ?Sized, S: Serializer>(
    record: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut out = SerdeMapMembers(serializer.serialize_map(None)?);
    record.members(&mut out)?;
    out.0.end()
}

/// Writes every named `Option` field of `$record` that is `Some` as a member named like the
/// field, in the order given.
macro_rules! present_members {
    ($out:ident, $record:expr, $($field:ident),* $(,)?) => {
        $(
            if let Some(value) = &$record.$field {
                $out.member(stringify!($field), value)?;
            }
        )*
    };
}
pub(crate) use present_members;

/// Members through serde's `SerializeStruct`.
pub(crate) struct SerdeMembers<S>(pub(crate) S);

impl<S: SerializeStruct> Members for SerdeMembers<S> {
    type Error = S::Error;
    #[inline]
    fn member<T: WriteJson + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), S::Error> {
        self.0.serialize_field(key, value)
    }
}

/// Members through serde's `SerializeMap` (through serde_json, the same object as a struct).
pub(crate) struct SerdeMapMembers<S>(pub(crate) S);

impl<S: SerializeMap> Members for SerdeMapMembers<S> {
    type Error = S::Error;
    #[inline]
    fn member<T: WriteJson + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), S::Error> {
        self.0.serialize_entry(key, value)
    }
}

impl<S: SerializeMap> NamedMembers for SerdeMapMembers<S> {
    #[inline]
    fn named_member<T: WriteJson + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), S::Error> {
        self.0.serialize_entry(key, value)
    }
}

/// Counts the members: the length `serialize_struct` is given (as `#[derive(Serialize)]` gives
/// it, the members actually written).
#[derive(Default)]
pub(crate) struct CountMembers(pub(crate) usize);

impl Members for CountMembers {
    type Error = std::convert::Infallible;
    #[inline]
    fn member<T: WriteJson + ?Sized>(
        &mut self,
        _key: &'static str,
        _value: &T,
    ) -> Result<(), Self::Error> {
        self.0 += 1;
        Ok(())
    }
}

/// Members appended to a `String` as compact JSON, after a `{` the caller wrote.
pub(crate) struct TextMembers<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> TextMembers<'a> {
    /// Writes `{`; [`TextMembers::end`] writes `}`.
    pub(crate) fn begin(out: &'a mut String) -> TextMembers<'a> {
        out.push('{');
        TextMembers { out, first: true }
    }

    pub(crate) fn end(self) {
        self.out.push('}');
    }
}

impl Members for TextMembers<'_> {
    type Error = std::convert::Infallible;
    #[inline]
    fn member<T: WriteJson + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        debug_assert!(
            !key.bytes().any(|b| matches!(b, b'"' | b'\\' | 0..=0x1f)),
            "member keys are literals that need no escaping: {key:?}"
        );
        if !std::mem::take(&mut self.first) {
            self.out.push(',');
        }
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
        value.write_json(self.out);
        Ok(())
    }
}

impl NamedMembers for TextMembers<'_> {
    #[inline]
    fn named_member<T: WriteJson + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), Self::Error> {
        if !std::mem::take(&mut self.first) {
            self.out.push(',');
        }
        json::write_str(self.out, key);
        self.out.push(':');
        value.write_json(self.out);
        Ok(())
    }
}
