//! Splits a byte stream into lines with a maximum length, tracking line numbers and offsets.

use std::io::BufRead;

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

/// Reads lines from a [`BufRead`] without ever holding more than `max_line` bytes of one:
/// what [`crate::Format::decode`] uses, public for readers that parse line by line themselves
/// ([`crate::Format::line_parser`]) and need each line's number, offset and text.
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
    buf: Vec<u8>,
    lossy: String,
    number: u64,
    offset: u64,
}

impl<R: BufRead> Framer<R> {
    /// Lines of `reader`, each at most `max_line` bytes; reading more than `max_input`
    /// bytes in all is an error ([`DecodeError::TooLarge`]).
    pub fn new(reader: R, max_line: usize, max_input: Option<u64>) -> Framer<R> {
        Framer {
            reader,
            max_line,
            max_input,
            buf: Vec::new(),
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
        self.buf.clear();
        let start = self.offset;
        let mut too_long = false;
        let mut consumed_any = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(DecodeError::Io(e)),
            };
            if available.is_empty() {
                if !consumed_any {
                    return Ok(None);
                }
                break;
            }
            consumed_any = true;
            let (take, done) = match memchr(b'\n', available) {
                Some(p) => (p + 1, true),
                None => (available.len(), false),
            };
            if !too_long {
                let content = if done { take - 1 } else { take };
                if self.buf.len() + content > self.max_line {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(&available[..take]);
                }
            }
            self.reader.consume(take);
            self.offset += take as u64;
            if let Some(limit) = self.max_input
                && self.offset > limit
            {
                return Err(DecodeError::TooLarge { limit });
            }
            if done {
                break;
            }
        }
        self.number += 1;
        let number = self.number;
        if too_long {
            return Ok(Some(Frame {
                number,
                offset: start,
                text: Err(FrameError::TooLong),
            }));
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        let text = match std::str::from_utf8(&self.buf) {
            Ok(s) => s,
            Err(_) => {
                self.lossy = String::from_utf8_lossy(&self.buf).into_owned();
                &self.lossy
            }
        };
        Ok(Some(Frame {
            number,
            offset: start,
            text: Ok(text),
        }))
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
