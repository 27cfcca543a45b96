//! Reading one file: framing lines with a maximum length and turning them into records.
//!
//! A [`Reader`] is driven by blocking steps (run on tokio's blocking pool); each step reads
//! until a batch is full or the file's end is reached.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logferry_core::Timestamp;

use crate::fingerprint::Fingerprint;
use crate::record::line_to_json;
use crate::{ParseMode, TailRecord};

/// Parse-error warnings logged per file and window; the rest are counted and summarized.
const WARNINGS_PER_WINDOW: u32 = 5;
const WARNING_WINDOW: Duration = Duration::from_secs(60);

/// Sizes that shape reading, from the configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_line: usize,
    pub(crate) read_size: usize,
    pub(crate) batch_records: usize,
    pub(crate) batch_bytes: usize,
    pub(crate) parse: ParseMode,
}

/// An open file and the bytes read from it that are not yet consumed as lines.
#[derive(Debug)]
pub(crate) struct Reader {
    file: File,
    /// File offset of the next read.
    pos: u64,
    buf: Vec<u8>,
    /// First byte of `buf` not yet consumed.
    start: usize,
    /// Inside an overlong line whose head was emitted: bytes are dropped up to its newline.
    skipping: bool,
    /// The fingerprint of the file's current content.
    pub(crate) fingerprint: Fingerprint,
    meta: LineMeta,
}

/// What parse-error warnings need to know.
#[derive(Debug)]
struct LineMeta {
    path: Arc<Path>,
    /// Number of the next line, known when reading started at offset 0.
    line_no: Option<u64>,
    warnings: WarnLimiter,
}

/// What one step did.
#[derive(Debug, Default)]
pub(crate) struct Step {
    /// Records read, in file order (those of the old content when `replaced`).
    pub(crate) records: Vec<TailRecord>,
    /// Offset just after the last consumed byte (of the old content when `replaced`).
    pub(crate) end_offset: u64,
    /// Bytes read from the file.
    pub(crate) read: u64,
    /// Bytes consumed as lines or skipped.
    pub(crate) consumed: u64,
    pub(crate) truncated_lines: u64,
    pub(crate) parse_errors: u64,
    /// The end of the file was reached.
    pub(crate) eof: bool,
    /// The file shrank below the read offset or its first bytes changed: the reader now
    /// starts over at offset 0 of the new content.
    pub(crate) replaced: bool,
    /// Bytes of an unfinished last line are held.
    pub(crate) partial: bool,
    /// The file's size as of this step.
    pub(crate) size: u64,
    /// Its number of hard links (0 once deleted); `u64::MAX` when unknown.
    pub(crate) links: u64,
    /// Reading failed; the reader keeps its position.
    pub(crate) error: Option<io::Error>,
}

/// Whether a step emits an unfinished last line at the end of the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Flush {
    /// Hold it.
    #[default]
    Never,
    /// Emit it when the step read no new bytes (the file did not grow since the last step).
    IfIdle,
    /// Emit it.
    Always,
}

/// Options of one step.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StepOptions {
    /// What happens to an unfinished last line at the end of the file.
    pub(crate) flush: Flush,
    /// Check the full fingerprint against the file's first bytes.
    pub(crate) verify_fingerprint: bool,
}

impl Reader {
    /// A reader of `file` (whose first bytes have `fingerprint`) starting at `offset`.
    pub(crate) fn new(
        file: File,
        path: Arc<Path>,
        offset: u64,
        fingerprint: Fingerprint,
    ) -> Reader {
        Reader {
            file,
            pos: offset,
            buf: Vec::new(),
            start: 0,
            skipping: false,
            fingerprint,
            meta: LineMeta {
                path,
                line_no: (offset == 0).then_some(1),
                warnings: WarnLimiter::default(),
            },
        }
    }

    /// Offset of the first byte not yet consumed.
    pub(crate) fn consumed_offset(&self) -> u64 {
        self.pos - (self.buf.len() - self.start) as u64
    }

    /// Forgets buffered bytes and reads again from `offset` (a delivery failed).
    pub(crate) fn rewind(&mut self, offset: u64) {
        self.pos = offset;
        self.buf.clear();
        self.start = 0;
        self.skipping = false;
        self.meta.line_no = (offset == 0).then_some(1);
    }

    /// Reads up to one batch.
    pub(crate) fn step(&mut self, limits: &Limits, options: StepOptions) -> Step {
        let mut step = Step {
            links: u64::MAX,
            ..Step::default()
        };
        let size = match self.file.metadata() {
            Ok(meta) => {
                step.links = meta.nlink();
                meta.len()
            }
            Err(err) => {
                step.error = Some(err);
                step.end_offset = self.consumed_offset();
                return step;
            }
        };
        step.size = size;
        match self.check_content(size, options.verify_fingerprint) {
            Ok(true) => {}
            Ok(false) => {
                // The old content's unfinished line was written: emit it before starting over.
                let start_offset = self.consumed_offset();
                if !self.skipping && self.start < self.buf.len() {
                    let line = &self.buf[self.start..];
                    let end = self.pos;
                    emit(line, start_offset, end, limits, &mut step, &mut self.meta);
                }
                step.consumed = self.pos - start_offset;
                step.end_offset = self.pos;
                step.replaced = true;
                self.rewind(0);
                self.fingerprint = match Fingerprint::of_file(&self.file, size) {
                    Ok(fp) => fp,
                    Err(err) => {
                        step.error = Some(err);
                        Fingerprint::empty()
                    }
                };
                return step;
            }
            Err(err) => {
                step.error = Some(err);
                step.end_offset = self.consumed_offset();
                return step;
            }
        }
        let first_offset = self.consumed_offset();
        self.read_lines(limits, options, &mut step);
        self.cover_read_bytes(&mut step);
        step.end_offset = self.consumed_offset();
        step.consumed = step.end_offset - first_offset;
        step.partial = self.start < self.buf.len() && !self.skipping;
        step
    }

    /// Whether the file still holds the content being read (updating a fingerprint that does
    /// not cover 1024 bytes yet).
    fn check_content(&mut self, size: u64, verify: bool) -> io::Result<bool> {
        if size < self.pos {
            return Ok(false);
        }
        let growing = !self.fingerprint.is_complete() && size > self.fingerprint.len;
        if !(verify || growing) {
            return Ok(true);
        }
        if !self.fingerprint.matches(&self.file, size)? {
            return Ok(false);
        }
        if growing {
            self.fingerprint = Fingerprint::of_file(&self.file, size)?;
        }
        Ok(true)
    }

    /// Extends a fingerprint that does not cover 1024 bytes yet over every byte read: the
    /// file may have grown after `check_content` looked at its size, and the reads go on to
    /// its end. A stream id is taken from this fingerprint when the file's first batch is
    /// sent; one that covered fewer bytes than the batch (none, for a file that was empty when
    /// the step began) would match other content of the same inode after a copytruncate or
    /// an inode reuse, and lend it this content's resume position.
    fn cover_read_bytes(&mut self, step: &mut Step) {
        if self.fingerprint.is_complete() || self.pos <= self.fingerprint.len {
            return;
        }
        match self.fingerprint.extended(&self.file, self.pos) {
            Ok(fingerprint) => self.fingerprint = fingerprint,
            // Shrank since it was read: the next step finds it truncated.
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {}
            Err(err) => step.error = Some(err),
        }
    }

    fn read_lines(&mut self, limits: &Limits, options: StepOptions, step: &mut Step) {
        let mut batch_bytes = 0usize;
        loop {
            // Consume complete lines.
            while step.records.len() < limits.batch_records && batch_bytes < limits.batch_bytes {
                let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..]) else {
                    break;
                };
                let line_start = self.start;
                let line_offset = self.consumed_offset();
                self.start += i + 1;
                if self.skipping {
                    self.skipping = false;
                    self.meta.line_no = self.meta.line_no.map(|n| n + 1);
                    continue;
                }
                let mut line = &self.buf[line_start..line_start + i];
                if let [head @ .., b'\r'] = line {
                    line = head;
                }
                batch_bytes += line.len();
                let end = line_offset + i as u64 + 1;
                emit(line, line_offset, end, limits, step, &mut self.meta);
            }
            if step.records.len() >= limits.batch_records || batch_bytes >= limits.batch_bytes {
                return;
            }
            // No newline in what is buffered.
            let pending = self.buf.len() - self.start;
            if self.skipping {
                self.start = self.buf.len();
            } else if pending > limits.max_line {
                let line_offset = self.consumed_offset();
                emit(
                    &self.buf[self.start..],
                    line_offset,
                    self.pos,
                    limits,
                    step,
                    &mut self.meta,
                );
                self.start = self.buf.len();
                self.skipping = true;
                batch_bytes += limits.max_line;
                continue;
            }
            match self.fill(limits.read_size) {
                Ok(0) => {
                    step.eof = true;
                    let flush = match options.flush {
                        Flush::Never => false,
                        Flush::IfIdle => step.read == 0,
                        Flush::Always => true,
                    };
                    if flush && self.start < self.buf.len() {
                        let line_offset = self.consumed_offset();
                        let mut line = &self.buf[self.start..];
                        if let [head @ .., b'\r'] = line {
                            line = head;
                        }
                        let end = self.pos;
                        emit(line, line_offset, end, limits, step, &mut self.meta);
                        self.start = self.buf.len();
                    }
                    return;
                }
                Ok(n) => step.read += n as u64,
                Err(err) => {
                    step.error = Some(err);
                    return;
                }
            }
        }
    }

    /// Reads up to `read_size` more bytes at `pos`; `Ok(0)` at the end of the file.
    fn fill(&mut self, read_size: usize) -> io::Result<usize> {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        // Give back the memory of an overlong line once it is consumed.
        if self.buf.is_empty() && self.buf.capacity() > 4 * read_size {
            self.buf = Vec::new();
        }
        let old = self.buf.len();
        self.buf.resize(old + read_size, 0);
        let result = loop {
            match self.file.read_at(&mut self.buf[old..], self.pos) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(old + n);
        self.pos += n as u64;
        result
    }
}

/// Turns one line (without its newline) into a record; `offset` is where it starts, `end` the
/// offset just after what reading it consumed.
fn emit(line: &[u8], offset: u64, end: u64, limits: &Limits, step: &mut Step, meta: &mut LineMeta) {
    let line = if line.len() > limits.max_line {
        step.truncated_lines += 1;
        &line[..char_boundary(line, limits.max_line)]
    } else {
        line
    };
    let (json, parse_error) = line_to_json(line, limits.parse);
    if parse_error {
        step.parse_errors += 1;
        if meta.warnings.allow() {
            tracing::warn!(
                path = %meta.path.display(),
                line = ?meta.line_no,
                offset,
                "Line is not a JSON object; emitted as `message`."
            );
        }
    }
    meta.line_no = meta.line_no.map(|n| n + 1);
    step.records.push(TailRecord {
        time: Timestamp::now(),
        json,
        end_offset: end,
    });
}

/// The largest length `<= max` that does not split a UTF-8 sequence (looking back at most 3
/// bytes; invalid text is cut at `max`).
fn char_boundary(line: &[u8], max: usize) -> usize {
    let mut end = max;
    while end > 0 && max - end < 3 && line.get(end).is_some_and(|b| b & 0xC0 == 0x80) {
        end -= 1;
    }
    if line.get(end).is_some_and(|b| b & 0xC0 == 0x80) {
        max
    } else {
        end
    }
}

/// Lets a few warnings through per window and reports how many were held back.
#[derive(Debug)]
struct WarnLimiter {
    window_start: Instant,
    allowed: u32,
    suppressed: u64,
}

impl Default for WarnLimiter {
    fn default() -> Self {
        WarnLimiter {
            window_start: Instant::now(),
            allowed: 0,
            suppressed: 0,
        }
    }
}

impl WarnLimiter {
    fn allow(&mut self) -> bool {
        if self.window_start.elapsed() >= WARNING_WINDOW {
            if self.suppressed > 0 {
                tracing::warn!(
                    suppressed = self.suppressed,
                    "More lines were not JSON objects."
                );
            }
            *self = WarnLimiter::default();
        }
        if self.allowed < WARNINGS_PER_WINDOW {
            self.allowed += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::FINGERPRINT_BYTES;
    use std::io::Write;

    fn limits(max_line: usize) -> Limits {
        Limits {
            max_line,
            read_size: 7,
            batch_records: 1000,
            batch_bytes: 1 << 20,
            parse: ParseMode::None,
        }
    }

    fn messages(step: &Step) -> Vec<String> {
        step.records
            .iter()
            .map(|r| {
                let v: serde_json::Value = serde_json::from_str(&r.json).unwrap();
                v["message"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    fn reader(content: &[u8]) -> (Reader, File) {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(content).unwrap();
        let fp = Fingerprint::of_file(&f, content.len() as u64).unwrap();
        let r = Reader::new(f.try_clone().unwrap(), Arc::from(Path::new("t")), 0, fp);
        (r, f)
    }

    #[test]
    fn frames_lines_with_crlf_and_holds_partial() {
        let (mut r, mut f) = reader(b"one\r\ntwo\n\nthree");
        let step = r.step(&limits(100), StepOptions::default());
        assert_eq!(messages(&step), ["one", "two", ""]);
        let ends: Vec<u64> = step.records.iter().map(|r| r.end_offset).collect();
        assert_eq!(ends, [5, 9, 10], "each record's end, its newline included");
        assert_eq!(step.end_offset, 10);
        assert!(step.eof && step.partial);
        f.write_all(b" more\n").unwrap();
        let step = r.step(&limits(100), StepOptions::default());
        assert_eq!(messages(&step), ["three more"]);
        assert!(!step.partial);
        f.write_all(b"tail\r").unwrap();
        let flush = StepOptions {
            flush: Flush::IfIdle,
            ..StepOptions::default()
        };
        let step = r.step(&limits(100), flush);
        assert!(
            step.records.is_empty() && step.partial,
            "the file grew during this step"
        );
        let step = r.step(&limits(100), flush);
        assert_eq!(messages(&step), ["tail"]);
        assert_eq!(step.records[0].end_offset, 26);
        assert_eq!(step.end_offset, 26);
        assert!(!step.partial);
    }

    #[test]
    fn truncates_overlong_lines_and_skips_the_rest() {
        let long = "x".repeat(50);
        let (mut r, _f) = reader(format!("ab\n{long}\ncd\n{long}").as_bytes());
        let step = r.step(&limits(10), StepOptions::default());
        assert_eq!(messages(&step), ["ab", "xxxxxxxxxx", "cd", "xxxxxxxxxx"]);
        assert_eq!(step.truncated_lines, 2);
        assert!(!step.partial);
        assert_eq!(step.end_offset, 3 + 51 + 3 + 50);
    }

    #[test]
    fn truncation_keeps_utf8_characters_whole() {
        assert_eq!(char_boundary("aé".as_bytes(), 2), 1);
        assert_eq!(char_boundary(b"abc", 2), 2);
        assert_eq!(char_boundary(&[0x80; 8], 5), 5);
    }

    #[test]
    fn batch_limits() {
        let (mut r, _f) = reader(b"1\n2\n3\n4\n5\n");
        let l = Limits {
            batch_records: 2,
            ..limits(100)
        };
        let step = r.step(&l, StepOptions::default());
        assert_eq!(messages(&step), ["1", "2"]);
        assert_eq!(step.end_offset, 4);
        assert!(!step.eof);
        let step = r.step(&l, StepOptions::default());
        assert_eq!(messages(&step), ["3", "4"]);
    }

    /// Regression: the fingerprint was taken of the file's size at the start of a step, but
    /// the step reads on to the end of the file, which may have grown meanwhile. A first batch
    /// could then carry a stream id whose fingerprint covered fewer bytes than the batch (none
    /// at all for a file that was empty at the start of the step), and such an id matches
    /// unrelated later content of the same inode (after copytruncate): its resume position was
    /// applied to the new content after a restart, which re-read or skipped lines. Every byte
    /// read must be covered by the fingerprint (up to 1024 bytes), whatever the timing.
    #[test]
    fn fingerprint_covers_every_byte_read_while_the_file_grows() {
        let dir = tempfile::tempdir().unwrap();
        for rounds in 1..=30 {
            let path = dir.path().join(format!("grow-{rounds}.log"));
            let mut writer = File::create(&path).unwrap();
            let file = File::open(&path).unwrap();
            let mut r = Reader::new(file, Arc::from(path.as_path()), 0, Fingerprint::empty());
            let appender = std::thread::spawn(move || {
                // One byte per write: the file grows during every step of the reader.
                for i in 0..1500u32 {
                    let byte = if i % 50 == 49 {
                        b'\n'
                    } else {
                        b'a' + (i % 26) as u8
                    };
                    writer.write_all(&[byte]).unwrap();
                }
            });
            let mut limits = limits(4096);
            limits.read_size = 4096;
            loop {
                let done = appender.is_finished();
                let step = r.step(&limits, StepOptions::default());
                assert!(step.error.is_none(), "{:?}", step.error);
                let want = r.pos.min(FINGERPRINT_BYTES);
                assert!(
                    r.fingerprint.len >= want,
                    "round {rounds}: {} bytes read, the fingerprint covers {}",
                    r.pos,
                    r.fingerprint.len
                );
                let expect = Fingerprint::of_prefix(&r.file, r.fingerprint.len).unwrap();
                assert_eq!(r.fingerprint, expect, "round {rounds}");
                if done && step.eof {
                    break;
                }
            }
            appender.join().unwrap();
        }
    }

    #[test]
    fn shrinking_file_is_replaced() {
        let (mut r, f) = reader(b"aaaa\nbbbb\npart");
        let step = r.step(&limits(100), StepOptions::default());
        assert_eq!(step.end_offset, 10);
        f.set_len(0).unwrap();
        f.write_all_at(b"new\n", 0).unwrap();
        let step = r.step(&limits(100), StepOptions::default());
        assert!(step.replaced);
        assert_eq!(messages(&step), ["part"]);
        let step = r.step(&limits(100), StepOptions::default());
        assert_eq!(messages(&step), ["new"]);
        assert_eq!(step.end_offset, 4);
    }
}
