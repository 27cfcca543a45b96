//! Splits a byte stream into lines with a maximum length, tracking line numbers and offsets.

use std::io::Read;

use memchr::memchr;

use crate::error::DecodeError;

/// Why a frame carries no text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The line was longer than the maximum; its bytes were skipped.
    TooLong,
}

/// One line of input.
#[derive(Debug)]
#[non_exhaustive]
pub struct Frame<'b> {
    /// 1-based line number.
    pub number: u64,
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// The line without `\n` / `\r\n`, invalid UTF-8 replaced.
    pub text: Result<&'b str, FrameError>,
}

/// Reads lines from a byte stream, each at most `max_line` bytes long: what
/// [`crate::Format::decode`] uses, public for readers that parse line by line themselves
/// ([`crate::Format::line_parser`]) and need each line's number, offset and text.
///
/// The framer reads into its own buffer (64 KiB, grown only while one line needs more, up to
/// `max_line` + 1 bytes) and hands out lines as slices of it: a decompressor can write
/// straight into that buffer and no line is copied. Pass it an unbuffered reader; a
/// `BufReader` works too but adds one copy.
///
/// ```
/// use logferry_parse::{FrameError, Framer};
///
/// let mut framer = Framer::new(&b"one\r\nfar too long\nlast"[..], 8, None);
/// let mut lines = Vec::new();
/// while let Some(frame) = framer.next_line().unwrap() {
///     lines.push((frame.number, frame.offset, frame.text.map(str::to_owned)));
/// }
/// assert_eq!(lines, [
///     (1, 0, Ok("one".to_owned())),
///     (2, 5, Err(FrameError::TooLong)),
///     (3, 18, Ok("last".to_owned())),
/// ]);
/// ```
#[derive(Debug)]
pub struct Framer<R> {
    reader: R,
    max_line: usize,
    max_input: Option<u64>,
    /// Bytes read and not yet framed are `buf[pos..end]`.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// `buf[pos..pos + scanned]` holds no `\n`.
    scanned: usize,
    eof: bool,
    lossy: String,
    number: u64,
    offset: u64,
}

/// The framer's read buffer, and how much it asks of the reader at least.
const BUFFER: usize = 64 * 1024;

impl<R: Read> Framer<R> {
    /// A framer over `reader`. Lines longer than `max_line` bytes (without the line end) are
    /// reported as [`FrameError::TooLong`] and skipped; reading more than `max_input`
    /// bytes in all is an error ([`DecodeError::TooLarge`]).
    pub fn new(reader: R, max_line: usize, max_input: Option<u64>) -> Framer<R> {
        Framer {
            reader,
            max_line,
            max_input,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            scanned: 0,
            eof: false,
            lossy: String::new(),
            number: 0,
            offset: 0,
        }
    }

    /// Total bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.offset
    }

    /// The next line, or `None` at the end of input. A last line without `\n` is a line.
    pub fn next_line(&mut self) -> Result<Option<Frame<'_>>, DecodeError> {
        let start = self.offset;
        // A line longer than `max_line` is dropped as it is read: its bytes are skipped.
        let mut too_long = false;
        let (content, taken) = loop {
            let pending = &self.buf[self.pos + self.scanned..self.end];
            if let Some(i) = memchr(b'\n', pending) {
                let content = self.scanned + i;
                break (content, content + 1);
            }
            self.scanned = self.end - self.pos;
            if self.scanned > self.max_line {
                // Too long already: skip what is buffered and keep looking for its end.
                too_long = true;
                self.consume(self.scanned)?;
            }
            if self.eof || !self.fill()? {
                self.eof = true;
                if self.end == self.pos {
                    if too_long {
                        break (0, 0);
                    }
                    return Ok(None);
                }
                // The last line has no line end.
                break (self.end - self.pos, self.end - self.pos);
            }
        };
        let begin = self.pos;
        self.consume(taken)?;
        self.number += 1;
        let number = self.number;
        if too_long || content > self.max_line {
            return Ok(Some(Frame {
                number,
                offset: start,
                text: Err(FrameError::TooLong),
            }));
        }
        let mut line = &self.buf[begin..begin + content];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        // simdutf8 checks 32 bytes at a time (AVX2 or SSE4.2, chosen at run time).
        let text = match simdutf8::basic::from_utf8(line) {
            Ok(s) => s,
            Err(_) => {
                self.lossy = String::from_utf8_lossy(line).into_owned();
                &self.lossy
            }
        };
        Ok(Some(Frame {
            number,
            offset: start,
            text: Ok(text),
        }))
    }

    /// Marks `n` buffered bytes as framed.
    fn consume(&mut self, n: usize) -> Result<(), DecodeError> {
        self.pos += n;
        self.scanned = 0;
        self.offset += n as u64;
        match self.max_input {
            Some(limit) if self.offset > limit => Err(DecodeError::TooLarge { limit }),
            _ => Ok(()),
        }
    }

    /// Reads more input after the unframed bytes; `false` at the end of input.
    fn fill(&mut self) -> Result<bool, DecodeError> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < BUFFER / 4 {
            if self.pos > 0 {
                // Move the unframed bytes to the front.
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
            }
            // Grow (doubling) only while one line fills most of the buffer: up to `max_line`
            // + 1 bytes and the line end.
            if self.buf.len() - self.end < BUFFER / 4 {
                let wanted = (self.buf.len() * 2)
                    .max(BUFFER)
                    .min(self.max_line.saturating_add(2).max(BUFFER))
                    .max(self.end + 1);
                if self.buf.len() < wanted {
                    self.buf.resize(wanted, 0);
                }
            }
        }
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(DecodeError::Io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], max: usize) -> Vec<(u64, u64, Result<String, FrameError>)> {
        let mut framer = Framer::new(std::io::BufReader::with_capacity(4, input), max, None);
        let mut out = Vec::new();
        while let Some(f) = framer.next_line().unwrap() {
            out.push((f.number, f.offset, f.text.map(str::to_owned)));
        }
        out
    }

    #[test]
    fn frames_lines_with_offsets() {
        let out = collect(b"ab\r\n\ncdefgh\nlast", 100);
        assert_eq!(
            out,
            vec![
                (1, 0, Ok("ab".into())),
                (2, 4, Ok("".into())),
                (3, 5, Ok("cdefgh".into())),
                (4, 12, Ok("last".into())),
            ]
        );
    }

    #[test]
    fn skips_long_lines_and_replaces_bad_utf8() {
        let out = collect(b"0123456789\nok\n\xff\xfe\n", 5);
        assert_eq!(out[0], (1, 0, Err(FrameError::TooLong)));
        assert_eq!(out[1], (2, 11, Ok("ok".into())));
        assert_eq!(out[2], (3, 14, Ok("\u{fffd}\u{fffd}".into())));
    }

    /// Hands out its input in chunks of the given sizes (cycled), like a decompressor or a
    /// socket would.
    struct Chunked<'a> {
        data: &'a [u8],
        sizes: Vec<usize>,
        next: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let size = self.sizes[self.next % self.sizes.len()];
            self.next += 1;
            let n = size.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    /// What the framer must give: the input split at `\n` (a last line without one counts),
    /// lines over `max` bytes (before the line end) too long, `\r\n` trimmed, bad UTF-8
    /// replaced.
    fn model(input: &[u8], max: usize) -> Vec<(u64, u64, Result<String, FrameError>)> {
        let mut out = Vec::new();
        let mut offset = 0;
        let mut pieces: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
        if pieces.last().is_some_and(|p| p.is_empty()) {
            pieces.pop();
        }
        for (i, piece) in pieces.into_iter().enumerate() {
            let text = if piece.len() > max {
                Err(FrameError::TooLong)
            } else {
                let trimmed = piece.strip_suffix(b"\r").unwrap_or(piece);
                Ok(String::from_utf8_lossy(trimmed).into_owned())
            };
            out.push((i as u64 + 1, offset, text));
            offset += piece.len() as u64 + 1;
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn frames_like_splitting_at_newlines(
            input in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => proptest::prelude::any::<u8>(),
                    2 => proptest::prelude::Just(b'\n'),
                    1 => proptest::prelude::Just(b'\r'),
                ],
                0..600,
            ),
            long_runs in 0usize..3,
            max in 0usize..300,
            sizes in proptest::collection::vec(1usize..200_000, 1..5),
        ) {
            // Some inputs get lines longer than the read buffer.
            let mut input = input;
            for _ in 0..long_runs {
                input.extend(std::iter::repeat_n(b'x', BUFFER + 17));
                input.push(b'\n');
            }
            for max in [max, BUFFER + 100, BUFFER * 3] {
                let mut framer = Framer::new(
                    Chunked { data: &input, sizes: sizes.clone(), next: 0 },
                    max,
                    None,
                );
                let mut got = Vec::new();
                while let Some(f) = framer.next_line().unwrap() {
                    got.push((f.number, f.offset, f.text.map(str::to_owned)));
                }
                proptest::prop_assert_eq!(framer.bytes_read(), input.len() as u64);
                proptest::prop_assert_eq!(got, model(&input, max));
            }
        }
    }

    #[test]
    fn the_buffer_grows_only_for_a_line_that_needs_it() {
        // Lines of 1,000 bytes straddle the buffer's end again and again: it stays one size.
        let line = format!("{}\n", "a".repeat(999));
        let input = line.repeat(500);
        let chunked = Chunked {
            data: input.as_bytes(),
            sizes: vec![7_000],
            next: 0,
        };
        let mut framer = Framer::new(chunked, 1 << 20, None);
        let mut lines = 0;
        while framer.next_line().unwrap().is_some() {
            lines += 1;
        }
        assert_eq!((lines, framer.buf.len()), (500, BUFFER));
        // One line of 200,000 bytes needs a larger buffer (doubled to hold it), no more.
        let long = format!("{}\nshort\n", "b".repeat(200_000));
        let mut framer = Framer::new(long.as_bytes(), 1 << 20, None);
        assert_eq!(
            framer.next_line().unwrap().unwrap().text.unwrap().len(),
            200_000
        );
        assert_eq!(framer.next_line().unwrap().unwrap().text.unwrap(), "short");
        assert!(framer.buf.len() <= 4 * BUFFER, "{}", framer.buf.len());
    }

    #[test]
    fn enforces_input_limit() {
        let mut framer = Framer::new(&b"aaaa\nbbbb\n"[..], 100, Some(6));
        assert!(framer.next_line().unwrap().is_some());
        assert!(matches!(
            framer.next_line(),
            Err(DecodeError::TooLarge { limit: 6 })
        ));
    }
}
