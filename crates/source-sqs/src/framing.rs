//! Splits a decompressed object into lines with a maximum line length.

use std::io::{self, BufRead};

use memchr::memchr;

/// One line of an object.
#[derive(Debug)]
pub(crate) struct Frame<'b> {
    /// 1-based line number.
    pub(crate) number: u64,
    /// Byte offset of the line's first byte in the decompressed object.
    pub(crate) offset: u64,
    /// The line without `\n` / `\r\n` (invalid UTF-8 replaced), or `None` when it was longer
    /// than the limit (its bytes were skipped, never held).
    pub(crate) text: Option<&'b str>,
}

/// Reads lines from a [`BufRead`] without holding more than `max_line` bytes of one.
#[derive(Debug)]
pub(crate) struct Framer<R> {
    reader: R,
    max_line: usize,
    buf: Vec<u8>,
    lossy: String,
    number: u64,
    offset: u64,
}

impl<R: BufRead> Framer<R> {
    pub(crate) fn new(reader: R, max_line: usize) -> Framer<R> {
        Framer {
            reader,
            max_line,
            buf: Vec::new(),
            lossy: String::new(),
            number: 0,
            offset: 0,
        }
    }

    /// The next line, or `None` at the end. A last line without `\n` is a line.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<Frame<'_>>> {
        self.buf.clear();
        let start = self.offset;
        let mut too_long = false;
        let mut any = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if !any {
                    return Ok(None);
                }
                break;
            }
            any = true;
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
            if done {
                break;
            }
        }
        self.number += 1;
        if too_long {
            return Ok(Some(Frame {
                number: self.number,
                offset: start,
                text: None,
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
            number: self.number,
            offset: start,
            text: Some(text),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], max: usize) -> Vec<(u64, u64, Option<String>)> {
        let mut framer = Framer::new(io::BufReader::with_capacity(3, input), max);
        let mut out = Vec::new();
        while let Some(f) = framer.next_line().unwrap() {
            out.push((f.number, f.offset, f.text.map(str::to_owned)));
        }
        out
    }

    #[test]
    fn lines_offsets_limits() {
        assert_eq!(
            collect(b"ab\r\n\n0123456789\nlast\xff", 6),
            vec![
                (1, 0, Some("ab".into())),
                (2, 4, Some("".into())),
                (3, 5, None),
                (4, 16, Some("last\u{fffd}".into())),
            ]
        );
        assert!(collect(b"", 5).is_empty());
    }
}
