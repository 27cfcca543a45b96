//! Event text that the events of a batch share.
//!
//! A source that builds many small events (the ingester writes about a hundred JSON documents
//! per read batch) writes them one after another into one [`TextBuffer`],
//! [freezes](TextBuffer::freeze) it and hands each event a [`Text`] that is a range of the
//! frozen buffer; the buffer is freed when the last of its events is dropped (an output has
//! written it).
//!
//! This replaces one allocation per event, made on the reading thread and freed on the
//! output's, with one per batch. With small allocations freed on another thread, mimalloc
//! returned the memory to the system and faulted it in again page by page for the next events,
//! which cost more than the parsing it carried; batch-sized blocks are reused instead.
//!
//! ```
//! use logferry_core::text::TextBuffer;
//!
//! let mut buffer = TextBuffer::new();
//! let first = buffer.push_with(|s| s.push_str("{\"n\":1}"));
//! let second = buffer.push_with(|s| s.push_str("{\"n\":2}"));
//! let shared = buffer.freeze();
//! let (a, b) = (shared.slice(first), shared.slice(second));
//! drop(shared);
//! assert_eq!((a.as_str(), b.as_str()), ("{\"n\":1}", "{\"n\":2}"));
//! assert!(a.is_shared());
//! ```

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

/// A buffer being filled with the text of several events.
pub struct TextBuffer {
    text: String,
}

impl TextBuffer {
    /// An empty buffer (no allocation until text is written or room reserved).
    pub fn new() -> TextBuffer {
        TextBuffer {
            text: String::new(),
        }
    }

    /// Appends one piece of text written by `write` and returns its range, for
    /// [`SharedText::slice`] once the buffer is frozen.
    pub fn push_with(&mut self, write: impl FnOnce(&mut String)) -> Range<usize> {
        let start = self.text.len();
        write(&mut self.text);
        start..self.text.len()
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Bytes the buffer holds without growing.
    pub fn capacity(&self) -> usize {
        self.text.capacity()
    }

    /// Makes room for at least `additional` more bytes.
    pub fn reserve(&mut self, additional: usize) {
        self.text.reserve(additional);
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Ends writing: the text can now be shared.
    pub fn freeze(self) -> SharedText {
        SharedText {
            text: Arc::new(self.text),
        }
    }
}

impl Default for TextBuffer {
    fn default() -> TextBuffer {
        TextBuffer::new()
    }
}

impl fmt::Debug for TextBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextBuffer")
            .field("len", &self.len())
            .field("capacity", &self.text.capacity())
            .finish()
    }
}

/// A frozen [`TextBuffer`] that hands out [`Text`]s.
#[derive(Clone)]
pub struct SharedText {
    // Arc<String>, not Arc<str>: freezing does not copy the text.
    text: Arc<String>,
}

impl SharedText {
    /// The text in `range` (a range [`TextBuffer::push_with`] returned).
    ///
    /// # Panics
    ///
    /// When `range` is out of bounds or not on character boundaries.
    pub fn slice(&self, range: Range<usize>) -> Text {
        assert!(
            self.text.get(range.clone()).is_some(),
            "range {range:?} is not text of this buffer"
        );
        Text(Repr::Shared {
            text: Arc::clone(&self.text),
            start: range.start,
            end: range.end,
        })
    }

    /// The whole text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for SharedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedText")
            .field("len", &self.text.len())
            .finish()
    }
}

/// A string that is either owned or a range of a [`SharedText`]. Reads as a `&str`.
#[derive(Clone, Default)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Owned(String),
    Shared {
        text: Arc<String>,
        start: usize,
        end: usize,
    },
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Owned(String::new())
    }
}

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Owned(s) => s,
            Repr::Shared { text, start, end } => &text[*start..*end],
        }
    }

    /// The text as a `String` it owns, copied out of its shared buffer if it was in one.
    pub fn to_mut(&mut self) -> &mut String {
        if let Repr::Shared { .. } = self.0 {
            self.0 = Repr::Owned(self.as_str().to_owned());
        }
        match &mut self.0 {
            Repr::Owned(s) => s,
            Repr::Shared { .. } => unreachable!("made owned above"),
        }
    }

    /// The text as a `String` (a copy when it is shared).
    pub fn into_string(self) -> String {
        match self.0 {
            Repr::Owned(s) => s,
            shared => Text(shared).as_str().to_owned(),
        }
    }

    /// Whether the text is a range of a shared buffer.
    pub fn is_shared(&self) -> bool {
        matches!(self.0, Repr::Shared { .. })
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(Repr::Owned(s))
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(Repr::Owned(s.to_owned()))
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.into_string()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn making_a_text_owned_copies_it_out_of_the_buffer() {
        let mut buffer = TextBuffer::new();
        let r = buffer.push_with(|s| s.push_str("abc"));
        let s = buffer.push_with(|s| s.push_str("xyz"));
        let shared = buffer.freeze();
        let (mut text, other) = (shared.slice(r), shared.slice(s));
        assert!(text.is_shared());
        text.to_mut().push('d');
        assert!(!text.is_shared());
        assert_eq!(text, "abcd");
        assert_eq!(other, "xyz");
        assert_eq!(shared.as_str(), "abcxyz");
        assert_eq!(other.clone().into_string(), "xyz");
        assert_eq!(Text::from("q"), "q");
    }

    #[test]
    #[should_panic(expected = "not text of this buffer")]
    fn slices_must_be_on_char_boundaries() {
        let mut buffer = TextBuffer::new();
        buffer.push_with(|s| s.push('é'));
        let _ = buffer.freeze().slice(0..1);
    }
}
