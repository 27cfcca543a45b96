//! Event text that the events of a batch share, in buffers that are reused instead of freed.
//!
//! A source that builds many small events (the ingester writes about a hundred JSON documents
//! per read batch) writes them one after another into one [`TextBuffer`],
//! [freezes](TextBuffer::freeze) it and hands each event a [`Text`] that is a range of the
//! frozen buffer. When the last event of the buffer is dropped (an output has written it), the
//! buffer goes back to its [`TextPool`] and a later batch writes into the same memory.
//!
//! One allocation per event, made on the reading thread and freed on the output's, had the
//! allocator return the memory to the system and fault it in again page by page for the next
//! events, which cost more than the parsing it carried. Batch-sized blocks freed to the
//! allocator avoid the faults but stay resident in pages that are never entirely free, so the
//! resident set grows; blocks kept in a pool are neither faulted in again nor scattered. A pool
//! keeps at most `max_idle` buffers of at most `max_capacity` bytes each (the most the pipeline
//! holds at once is what it keeps); larger or surplus buffers are freed.
//!
//! ```
//! use logferry_core::text::TextPool;
//!
//! let pool = TextPool::new(4, 1 << 20);
//! let mut buffer = pool.buffer();
//! let first = buffer.push_with(|s| s.push_str("{\"n\":1}"));
//! let second = buffer.push_with(|s| s.push_str("{\"n\":2}"));
//! let shared = buffer.freeze();
//! let (a, b) = (shared.slice(first), shared.slice(second));
//! drop(shared);
//! assert_eq!((a.as_str(), b.as_str()), ("{\"n\":1}", "{\"n\":2}"));
//! assert_eq!(pool.idle(), 0);
//! drop((a, b));
//! assert_eq!(pool.idle(), 1); // the buffer waits for the next batch
//! ```

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::{Arc, Mutex};

/// Keeps buffers of event text for reuse. Cloning gives another handle to the same pool.
#[derive(Clone)]
pub struct TextPool {
    shared: Arc<PoolShared>,
}

struct PoolShared {
    idle: Mutex<Vec<String>>,
    max_idle: usize,
    max_capacity: usize,
}

impl TextPool {
    /// A pool that keeps up to `max_idle` unused buffers of up to `max_capacity` bytes.
    pub fn new(max_idle: usize, max_capacity: usize) -> TextPool {
        TextPool {
            shared: Arc::new(PoolShared {
                idle: Mutex::new(Vec::with_capacity(max_idle)),
                max_idle,
                max_capacity,
            }),
        }
    }

    /// An empty buffer: an idle one (with its capacity) if there is one, else a new one.
    pub fn buffer(&self) -> TextBuffer {
        let reused = self.shared.lock().pop();
        TextBuffer {
            chunk: Chunk {
                text: reused.unwrap_or_default(),
                pool: Some(Arc::clone(&self.shared)),
            },
        }
    }

    /// How many buffers wait to be reused.
    pub fn idle(&self) -> usize {
        self.shared.lock().len()
    }
}

impl PoolShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        // A panic while holding the lock leaves a valid Vec behind.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn give_back(&self, mut text: String) {
        if text.capacity() == 0 || text.capacity() > self.max_capacity {
            return;
        }
        text.clear();
        let mut idle = self.lock();
        if idle.len() < self.max_idle {
            idle.push(text);
        }
    }
}

impl fmt::Debug for TextPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextPool")
            .field("idle", &self.idle())
            .field("max_idle", &self.shared.max_idle)
            .field("max_capacity", &self.shared.max_capacity)
            .finish()
    }
}

/// The storage of a buffer; returns its string to the pool when dropped.
struct Chunk {
    text: String,
    pool: Option<Arc<PoolShared>>,
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.give_back(std::mem::take(&mut self.text));
        }
    }
}

/// A buffer being filled with the text of several events.
pub struct TextBuffer {
    chunk: Chunk,
}

impl TextBuffer {
    /// A buffer that belongs to no pool (it is freed when its last [`Text`] is dropped).
    pub fn new() -> TextBuffer {
        TextBuffer {
            chunk: Chunk {
                text: String::new(),
                pool: None,
            },
        }
    }

    /// Appends one piece of text written by `write` and returns its range, for
    /// [`SharedText::slice`] once the buffer is frozen.
    pub fn push_with(&mut self, write: impl FnOnce(&mut String)) -> Range<usize> {
        let start = self.chunk.text.len();
        write(&mut self.chunk.text);
        start..self.chunk.text.len()
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        &self.chunk.text
    }

    /// Bytes the buffer holds without growing.
    pub fn capacity(&self) -> usize {
        self.chunk.text.capacity()
    }

    /// Makes room for at least `additional` more bytes.
    pub fn reserve(&mut self, additional: usize) {
        self.chunk.text.reserve(additional);
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.chunk.text.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.chunk.text.is_empty()
    }

    /// Ends writing: the text can now be shared.
    ///
    /// Text that fills less than a quarter of the buffer is copied into an exactly sized
    /// string and the buffer goes back to its pool at once: the few events of a small object
    /// must not hold a large buffer (which may be resident in full from an earlier batch) for
    /// as long as they wait in an output.
    pub fn freeze(mut self) -> SharedText {
        let chunk = if self.chunk.text.len() < self.chunk.text.capacity() / 4 {
            Chunk {
                text: self.chunk.text.as_str().to_owned(),
                pool: None,
            }
        } else {
            Chunk {
                text: std::mem::take(&mut self.chunk.text),
                pool: self.chunk.pool.take(),
            }
        };
        SharedText {
            chunk: Arc::new(chunk),
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
            .field("capacity", &self.chunk.text.capacity())
            .finish()
    }
}

/// A frozen [`TextBuffer`] that hands out [`Text`]s.
#[derive(Clone)]
pub struct SharedText {
    chunk: Arc<Chunk>,
}

impl SharedText {
    /// The text in `range` (a range [`TextBuffer::push_with`] returned).
    ///
    /// # Panics
    ///
    /// When `range` is out of bounds or not on character boundaries.
    pub fn slice(&self, range: Range<usize>) -> Text {
        assert!(
            self.chunk.text.get(range.clone()).is_some(),
            "range {range:?} is not text of this buffer"
        );
        Text(Repr::Shared {
            chunk: Arc::clone(&self.chunk),
            start: range.start,
            end: range.end,
        })
    }

    /// The whole text.
    pub fn as_str(&self) -> &str {
        &self.chunk.text
    }
}

impl fmt::Debug for SharedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedText")
            .field("len", &self.chunk.text.len())
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
        chunk: Arc<Chunk>,
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
            Repr::Shared { chunk, start, end } => &chunk.text[*start..*end],
        }
    }

    /// The text as a `String` it owns, copied out of its shared buffer if it was in one
    /// (which lets that buffer be reused sooner).
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
    fn buffers_return_to_the_pool_when_their_last_text_is_dropped() {
        let pool = TextPool::new(2, 1024);
        let mut buffer = pool.buffer();
        let r = buffer.push_with(|s| s.push_str("hello"));
        let shared = buffer.freeze();
        let text = shared.slice(r);
        let copy = text.clone();
        drop(shared);
        drop(text);
        assert_eq!(pool.idle(), 0, "a text still holds the buffer");
        assert_eq!(copy, "hello");
        drop(copy);
        assert_eq!(pool.idle(), 1);
        // The reused buffer is empty and keeps its capacity.
        let again = pool.buffer();
        assert!(again.is_empty());
        assert!(again.chunk.text.capacity() >= 5);
        assert_eq!(pool.idle(), 0);
    }

    #[test]
    fn the_pool_keeps_at_most_max_idle_buffers_of_at_most_max_capacity() {
        let pool = TextPool::new(2, 64);
        let buffers: Vec<TextBuffer> = (0..3)
            .map(|_| {
                let mut b = pool.buffer();
                b.push_with(|s| s.push('x'));
                b
            })
            .collect();
        drop(buffers);
        assert_eq!(pool.idle(), 2);
        let mut big = pool.buffer();
        assert_eq!(pool.idle(), 1);
        big.push_with(|s| s.push_str(&"y".repeat(100)));
        drop(big);
        assert_eq!(pool.idle(), 1, "a buffer grown over max_capacity is freed");
        // `a` is the idle buffer again; `b` is new and never written: no capacity to keep.
        let (a, b) = (pool.buffer(), pool.buffer());
        assert_eq!(pool.idle(), 0);
        drop((a, b));
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn a_buffer_filled_to_less_than_a_quarter_is_copied_and_returned_at_freeze() {
        let pool = TextPool::new(2, 1 << 20);
        let mut buffer = pool.buffer();
        buffer.reserve(1000);
        let r = buffer.push_with(|s| s.push_str("small"));
        let shared = buffer.freeze();
        assert_eq!(pool.idle(), 1, "the large buffer went back at once");
        assert_eq!(shared.chunk.text.capacity(), 5);
        assert_eq!(shared.slice(r), "small");
        drop(shared);
        assert_eq!(pool.idle(), 1, "the copy belongs to no pool");
        // A buffer filled to a quarter or more is shared as it is.
        let mut buffer = pool.buffer();
        let r = buffer.push_with(|s| s.push_str(&"x".repeat(400)));
        let text = buffer.freeze().slice(r);
        assert_eq!(pool.idle(), 0);
        drop(text);
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn making_a_text_owned_copies_it_out_of_the_buffer() {
        let pool = TextPool::new(1, 1024);
        let mut buffer = pool.buffer();
        let r = buffer.push_with(|s| s.push_str("abc"));
        let mut text = buffer.freeze().slice(r);
        assert!(text.is_shared());
        text.to_mut().push('d');
        assert!(!text.is_shared());
        assert_eq!(pool.idle(), 1);
        assert_eq!(text.into_string(), "abcd");
    }

    #[test]
    #[should_panic(expected = "not text of this buffer")]
    fn slices_must_be_on_char_boundaries() {
        let mut buffer = TextBuffer::new();
        buffer.push_with(|s| s.push('é'));
        let _ = buffer.freeze().slice(0..1);
    }
}
