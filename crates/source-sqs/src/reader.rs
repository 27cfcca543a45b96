//! Turning one object's bytes into events: decompress, frame, parse, add fields and origin.

use std::cell::Cell;
use std::io::{self, BufReader, Read};
use std::sync::Arc;

use logferry_core::text::{TextBuffer, TextPool};
use logferry_core::{AckToken, Batch, Event, Timestamp};
use logferry_parse::{Compression, DecodeError, DecodeOptions, Format, ParseError, Record};
use regex::Regex;

use crate::config::{ReaderConfig, format_options};
use crate::error::{ObjectError, ObjectErrorKind};
use crate::notification::ObjectRef;
use crate::stats::{Counters, SqsStats};
use crate::{BoxError, SourceError};

/// A batch is also flushed when its events reach this many bytes. The events of a batch share
/// one buffer ([`logferry_core::text`]), freed only when the last of them is written: larger
/// batches hold more memory in the pipeline's queues for no gain in speed (measured: 128 KiB
/// and 512 KiB take the same time).
const MAX_BATCH_BYTES: usize = 128 * 1024;

/// Room a batch's text buffer gets at once: a full batch and its last event without growing.
/// (Also a size mimalloc hands back for the next batch without returning it to the system;
/// with 64 KiB batches in 80 KiB buffers the pages were purged and faulted in again: 60,000
/// page faults instead of 4,000 for 300,000 events into Elasticsearch.)
const TEXT_BUFFER_BYTES: usize = MAX_BATCH_BYTES + 16 * 1024;

/// Text buffers kept for reuse once every event in them is written: more than the default
/// pipeline holds at once (10-40 measured), so in practice none is ever freed and the
/// allocator's pages are not fragmented by them (see [`logferry_core::text`]).
const IDLE_TEXT_BUFFERS: usize = 64;

/// A buffer that grew beyond this (a batch ending with a very large event) is not kept.
const MAX_TEXT_BUFFER: usize = 2 * TEXT_BUFFER_BYTES;

/// Buffer between the object's bytes and the decompressor.
const READ_BUFFER: usize = 64 * 1024;

/// Where an event came from in its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventOrigin {
    /// 1-based line number (document formats: the line where the record ends).
    pub line: u64,
    /// Byte offset of the line in the decompressed object (document formats: the record's
    /// index). Stable across re-reads: use it with bucket, key and ETag for document ids.
    pub offset: u64,
}

/// A line or an object that produced no event, to be dead-lettered.
#[derive(Debug)]
pub struct Failure {
    /// Location in the object (line 0, offset 0 for object-level failures).
    pub origin: EventOrigin,
    /// The line as read (`None` for too-long lines, document records and object failures).
    pub raw: Option<String>,
    /// What went wrong.
    pub error: FailureKind,
}

/// Why a [`Failure`] produced no event.
#[derive(Debug)]
#[non_exhaustive]
pub enum FailureKind {
    /// The line (or record) did not parse.
    Parse(ParseError),
    /// The line was longer than `max_line_size`; its bytes were skipped.
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// The object could not be read to its end (corrupt, missing, too large); events before
    /// the failure were emitted.
    Object(ObjectError),
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureKind::Parse(e) => write!(f, "{e}"),
            FailureKind::LineTooLong { limit } => {
                write!(f, "line longer than max_line_size ({limit} bytes)")
            }
            FailureKind::Object(e) => write!(f, "{}", e.kind),
        }
    }
}

impl Failure {
    /// The dead-letter record: one JSON object with bucket, key, version id, ETag, line,
    /// offset, the raw line (if kept) and the error.
    pub fn to_dead_letter_json(&self, object: &ObjectRef) -> String {
        serde_json::json!({
            "bucket": object.bucket,
            "key": object.key,
            "version_id": object.version_id,
            "etag": object.etag,
            "line": self.origin.line,
            "offset": self.origin.offset,
            "raw": self.raw,
            "error": self.error.to_string(),
        })
        .to_string()
    }
}

/// Events and failures of one object, in order, with the acknowledgement of the unit of work
/// (SQS message, backfill object) they belong to.
///
/// The caller passes `events` (a [`Batch`] holding a clone of the token) to its outputs, and
/// `failures` to the dead-letter output, then drops `failures_ack` (or calls
/// `update(AckStatus::Errored)` on it if dead-lettering failed). The source deletes the SQS
/// message once every token of every batch is released with `Delivered`.
#[derive(Debug)]
pub struct ObjectBatch {
    /// The object (bucket, key, and after a download the version id and ETag read).
    pub object: Arc<ObjectRef>,
    /// The events, each a JSON object (`@timestamp`, static and key fields, the record's
    /// fields, the origin member).
    pub events: Batch,
    /// The origin of each event of `events.events`, same index.
    pub origins: Vec<EventOrigin>,
    /// Lines or the object that yielded no event.
    pub failures: Vec<Failure>,
    /// Acknowledgement of the failures (present when there are failures and a token).
    pub failures_ack: Option<AckToken>,
}

impl ObjectBatch {
    fn new(object: &Arc<ObjectRef>, ack: Option<&AckToken>, capacity: usize) -> ObjectBatch {
        // The events arrive all at once when the batch is emitted (`PendingEvents::take_into`),
        // which sizes their Vec; the origins come one by one.
        ObjectBatch {
            object: Arc::clone(object),
            events: Batch::new(ack.cloned()),
            origins: Vec::with_capacity(capacity),
            failures: Vec::new(),
            failures_ack: None,
        }
    }

    /// A batch holding only the failure of a whole object.
    pub fn object_failure(
        object: Arc<ObjectRef>,
        error: ObjectError,
        ack: Option<&AckToken>,
    ) -> ObjectBatch {
        let mut batch = ObjectBatch::new(&object, ack, 0);
        batch.events.ack = None;
        batch.failures.push(Failure {
            origin: EventOrigin { line: 0, offset: 0 },
            raw: None,
            error: FailureKind::Object(error),
        });
        batch.failures_ack = ack.cloned();
        batch
    }

    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.failures.is_empty()
    }
}

/// What reading one object did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjectSummary {
    /// The compression found.
    pub compression: Option<Compression>,
    /// Bytes read from the store (compressed).
    pub bytes: u64,
    /// Bytes after decompression.
    pub decompressed_bytes: u64,
    /// Events emitted.
    pub events: u64,
    /// Lines or records that failed.
    pub parse_errors: u64,
}

/// Reads objects into [`ObjectBatch`]es: format per key, fields, limits.
///
/// ```
/// use std::sync::Arc;
/// use logferry_source_sqs::{ObjectReader, ObjectRef, ReaderConfig};
///
/// let mut config = ReaderConfig::default(); // log_format = "raw"
/// config.key_regex_fields = Some("^(?P<env>[^/]+)/".to_string());
/// let reader = ObjectReader::new(&config).unwrap();
/// let object = Arc::new(ObjectRef { bucket: "b".into(), key: "prod/x.log".into(), ..Default::default() });
/// let mut events = Vec::new();
/// reader.read(&object, &b"hello\nworld\n"[..], None, None, &mut |batch| {
///     events.extend(batch.events.events.into_iter().map(|e| e.into_json()));
///     true
/// }).unwrap();
/// assert_eq!(events.len(), 2);
/// assert!(events[0].contains(r#""env":"prod","message":"hello""#));
/// assert!(events[1].ends_with(r#""log_origin":{"bucket":"b","key":"prod/x.log","line":2,"offset":6}}"#));
/// ```
#[derive(Debug, Clone)]
pub struct ObjectReader {
    default_format: Option<Format>,
    by_key: Vec<(Regex, Format)>,
    key_regex: Option<Regex>,
    static_fields: String,
    max_line: usize,
    max_object: u64,
    batch_size: usize,
    origin_field: Option<String>,
    stats: SqsStats,
    /// Shared by the reader's clones: every worker's batches reuse the same buffers.
    text_pool: TextPool,
}

/// Marks an I/O error as a download failure (not corrupt data).
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub(crate) struct FetchError {
    pub(crate) retryable: bool,
    #[source]
    pub(crate) source: BoxError,
}

#[derive(Debug, thiserror::Error)]
#[error("decompressed size limit exceeded")]
struct LimitExceeded;

#[derive(Debug, thiserror::Error)]
#[error("output closed")]
struct Cancelled;

impl ObjectReader {
    /// Builds a reader (validates the configuration first).
    pub fn new(config: &ReaderConfig) -> Result<ObjectReader, SourceError> {
        config.validate()?;
        let default_format = match &config.log_format {
            Some(name) => Some(
                Format::new(
                    name,
                    &format_options("format_options", &config.format_options)?,
                )
                .map_err(|e| SourceError::config("log_format", e.to_string()))?,
            ),
            None => None,
        };
        let mut by_key = Vec::with_capacity(config.format_by_key.len());
        for (i, rule) in config.format_by_key.iter().enumerate() {
            let regex = Regex::new(&rule.regex).map_err(|e| {
                SourceError::config(format!("format_by_key[{i}].regex"), e.to_string())
            })?;
            let options = format_options(
                &format!("format_by_key[{i}].format_options"),
                &rule.format_options,
            )?;
            let format = Format::new(&rule.log_format, &options).map_err(|e| {
                SourceError::config(format!("format_by_key[{i}].log_format"), e.to_string())
            })?;
            by_key.push((regex, format));
        }
        let key_regex = match &config.key_regex_fields {
            Some(p) => Some(
                Regex::new(p)
                    .map_err(|e| SourceError::config("key_regex_fields", e.to_string()))?,
            ),
            None => None,
        };
        let mut static_fields = String::new();
        for (name, value) in &config.fields {
            push_member(&mut static_fields, name, value);
        }
        let origin_field =
            (!config.origin_field.is_empty()).then(|| json_string(&config.origin_field));
        Ok(ObjectReader {
            default_format,
            by_key,
            key_regex,
            static_fields,
            max_line: usize::try_from(config.max_line_size.bytes()).unwrap_or(usize::MAX),
            max_object: config.max_object_size.bytes(),
            batch_size: config.batch_size,
            origin_field,
            stats: SqsStats::default(),
            text_pool: TextPool::new(IDLE_TEXT_BUFFERS, MAX_TEXT_BUFFER),
        })
    }

    /// Counts into `stats` instead of the reader's own counters.
    pub fn with_stats(mut self, stats: SqsStats) -> ObjectReader {
        self.stats = stats;
        self
    }

    /// The counters this reader adds to.
    pub fn stats(&self) -> &SqsStats {
        &self.stats
    }

    /// The format of the object `key`: the first `format_by_key` match, else `log_format`.
    pub fn format_for(&self, key: &str) -> Option<&Format> {
        self.by_key
            .iter()
            .find(|(regex, _)| regex.is_match(key))
            .map(|(_, f)| f)
            .or(self.default_format.as_ref())
    }

    /// Reads one object from `body` (compressed or not: gzip, multi-member gzip and zstd are
    /// recognized by their magic bytes; a `Content-Encoding` naming a compression the bytes
    /// are not in is an error), calling `emit` with each batch in order. `emit` returns false
    /// when the receiver is gone, which stops the read with [`ObjectErrorKind::OutputClosed`].
    ///
    /// Bad lines are [`Failure`]s inside the batches and never stop the object. An error that
    /// stops the object (corrupt data, limit, download failure) is returned after the batches
    /// of everything read before it were emitted.
    pub fn read<R: Read>(
        &self,
        object: &Arc<ObjectRef>,
        body: R,
        content_encoding: Option<&str>,
        ack: Option<&AckToken>,
        emit: &mut dyn FnMut(ObjectBatch) -> bool,
    ) -> Result<ObjectSummary, ObjectError> {
        let counters = &self.stats.counters;
        let fail = |kind| ObjectError::new(&object.bucket, &object.key, kind);
        let Some(format) = self.format_for(&object.key) else {
            return Err(fail(ObjectErrorKind::NoFormat));
        };
        let compressed = Cell::new(0u64);
        let decompressed = Cell::new(0u64);
        let cancelled = Cell::new(false);
        let mut summary = ObjectSummary::default();
        let counted = CountingRead {
            inner: body,
            count: &compressed,
        };
        let (compression, decoder) =
            match logferry_parse::decompress_read(BufReader::with_capacity(READ_BUFFER, counted)) {
                Ok(found) => found,
                Err(e) => return Err(fail(self.io_kind(e, Compression::None, 0))),
            };
        summary.compression = Some(compression);
        if let Some(declared) = content_encoding.and_then(Compression::from_content_encoding)
            && declared != Compression::None
            && compression == Compression::None
        {
            return Err(fail(ObjectErrorKind::Corrupt {
                compression: compression_name(declared),
                decompressed_bytes: 0,
                message: "Content-Encoding names a compression the object is not in".to_string(),
            }));
        }
        let limited = LimitedRead {
            inner: decoder,
            count: &decompressed,
            limit: self.max_object,
            cancelled: &cancelled,
        };
        let builder = self.event_builder(object);
        let mut batch = ObjectBatch::new(object, ack, self.batch_size.min(1024));
        // The events of `batch` are written into `text` one after another; they become
        // `Event`s sharing it when the batch is emitted.
        let mut pending = PendingEvents::new(&self.text_pool, self.batch_size.min(1024));
        let mut flush = |batch: &mut ObjectBatch, pending: &mut PendingEvents, force: bool| {
            let full = pending.events.len() >= self.batch_size
                || batch.failures.len() >= self.batch_size
                || pending.text.len() >= MAX_BATCH_BYTES;
            if (batch.is_empty() && pending.events.is_empty())
                || !(force || full)
                || cancelled.get()
            {
                return;
            }
            let next = ObjectBatch::new(object, ack, self.batch_size.min(1024));
            let mut done = std::mem::replace(batch, next);
            pending.take_into(&mut done.events.events);
            if !done.failures.is_empty() {
                done.failures_ack = ack.cloned();
            }
            if !emit(done) {
                cancelled.set(true);
            }
        };
        let result: Result<(), io::Error> = if format.is_document() {
            let options = DecodeOptions {
                max_line_bytes: self.max_line,
                max_input_bytes: None,
            };
            let decoded = format.decode(
                BufReader::with_capacity(READ_BUFFER, limited),
                &options,
                |item| {
                    match item {
                        Ok(located) => {
                            pending.push(located.record.timestamp(), |out| {
                                builder.write(&located.record, located.line, located.position, out)
                            });
                            summary.events += 1;
                            batch.origins.push(EventOrigin {
                                line: located.line,
                                offset: located.position,
                            });
                        }
                        Err(e) => {
                            summary.parse_errors += 1;
                            batch.failures.push(Failure {
                                origin: EventOrigin {
                                    line: e.line,
                                    offset: e.position,
                                },
                                raw: None,
                                error: FailureKind::Parse(e.error),
                            });
                        }
                    }
                    flush(&mut batch, &mut pending, false);
                },
            );
            match decoded {
                Ok(_) => Ok(()),
                Err(DecodeError::Io(e)) => Err(e),
                Err(DecodeError::Document { line, message }) => Err(io::Error::other(
                    DocumentError(format!("line {line}: malformed document: {message}")),
                )),
                Err(other) => Err(io::Error::other(DocumentError(other.to_string()))),
            }
        } else {
            // The framer has its own buffer: the decompressor writes into it.
            let mut framer = logferry_parse::Framer::new(limited, self.max_line, None);
            let mut parser = format.line_parser();
            loop {
                let frame = match framer.next_line() {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break Ok(()),
                    Err(DecodeError::Io(e)) => break Err(e),
                    Err(other) => break Err(io::Error::other(other)),
                };
                let origin = EventOrigin {
                    line: frame.number,
                    offset: frame.offset,
                };
                match frame.text {
                    Err(_too_long) => {
                        summary.parse_errors += 1;
                        batch.failures.push(Failure {
                            origin,
                            raw: None,
                            error: FailureKind::LineTooLong {
                                limit: self.max_line,
                            },
                        });
                    }
                    Ok(text) => match parser.parse_line(text) {
                        Ok(Some(record)) => {
                            pending.push(record.timestamp(), |out| {
                                builder.write(&record, origin.line, origin.offset, out)
                            });
                            summary.events += 1;
                            batch.origins.push(origin);
                        }
                        Ok(None) => {}
                        Err(error) => {
                            summary.parse_errors += 1;
                            batch.failures.push(Failure {
                                origin,
                                raw: Some(text.to_string()),
                                error: FailureKind::Parse(error),
                            });
                        }
                    },
                }
                flush(&mut batch, &mut pending, false);
                if cancelled.get() {
                    break Err(io::Error::other(Cancelled));
                }
            }
        };
        // Everything parsed before an error is still emitted.
        flush(&mut batch, &mut pending, true);
        summary.bytes = compressed.get();
        summary.decompressed_bytes = decompressed.get();
        Counters::add(&counters.bytes, summary.bytes);
        Counters::add(&counters.decompressed_bytes, summary.decompressed_bytes);
        Counters::add(&counters.events, summary.events);
        Counters::add(&counters.parse_errors, summary.parse_errors);
        if cancelled.get() {
            return Err(fail(ObjectErrorKind::OutputClosed));
        }
        match result {
            Ok(()) => {
                Counters::add(&counters.objects, 1);
                Ok(summary)
            }
            Err(e) => {
                let kind = self.io_kind(e, compression, summary.decompressed_bytes);
                Err(fail(kind))
            }
        }
    }

    fn io_kind(
        &self,
        e: io::Error,
        compression: Compression,
        decompressed: u64,
    ) -> ObjectErrorKind {
        if e.get_ref().is_some_and(|inner| inner.is::<LimitExceeded>()) {
            return ObjectErrorKind::TooLarge {
                limit: self.max_object,
            };
        }
        if e.get_ref().is_some_and(|inner| inner.is::<Cancelled>()) {
            return ObjectErrorKind::OutputClosed;
        }
        if e.get_ref().is_some_and(|inner| inner.is::<DocumentError>()) {
            return ObjectErrorKind::Document(e.to_string());
        }
        if e.get_ref().is_some_and(|inner| inner.is::<FetchError>()) {
            let fetch = e
                .into_inner()
                .and_then(|inner| inner.downcast::<FetchError>().ok());
            if let Some(fetch) = fetch {
                return ObjectErrorKind::Download {
                    retryable: fetch.retryable,
                    source: fetch.source,
                };
            }
            return ObjectErrorKind::Download {
                retryable: true,
                source: "download failed".into(),
            };
        }
        ObjectErrorKind::Corrupt {
            compression: compression_name(compression),
            decompressed_bytes: decompressed,
            message: e.to_string(),
        }
    }

    fn event_builder(&self, object: &ObjectRef) -> EventBuilder {
        let mut insert = self.static_fields.clone();
        if let Some(regex) = &self.key_regex
            && let Some(captures) = regex.captures(&object.key)
        {
            for name in regex.capture_names().flatten() {
                if let Some(m) = captures.name(name) {
                    push_member(&mut insert, name, m.as_str());
                }
            }
        }
        let origin_head = self.origin_field.as_ref().map(|field| {
            format!(
                "{field}:{{\"bucket\":{},\"key\":{},\"line\":",
                json_string(&object.bucket),
                json_string(&object.key)
            )
        });
        EventBuilder {
            after_timestamp: format!(",{insert}"),
            insert,
            origin_head,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct DocumentError(String);

fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
        _ => "plain",
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

fn push_member<V: serde::Serialize + ?Sized>(out: &mut String, name: &str, value: &V) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(&json_string(name));
    out.push(':');
    out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "null".to_string()));
}

/// The events of the batch being filled: their text in one buffer, their timestamps and
/// ranges beside it.
struct PendingEvents<'p> {
    pool: &'p TextPool,
    text: TextBuffer,
    events: Vec<(Timestamp, std::ops::Range<usize>)>,
}

impl<'p> PendingEvents<'p> {
    fn new(pool: &'p TextPool, capacity: usize) -> PendingEvents<'p> {
        PendingEvents {
            pool,
            // Taken from the pool at the first event.
            text: TextBuffer::new(),
            events: Vec::with_capacity(capacity),
        }
    }

    fn push(&mut self, timestamp: Timestamp, write: impl FnOnce(&mut String)) {
        if self.text.capacity() == 0 {
            self.text = self.pool.buffer();
            self.text.reserve(TEXT_BUFFER_BYTES);
        }
        let range = self.text.push_with(write);
        self.events.push((timestamp, range));
    }

    /// Moves the events into `out` (sharing one frozen buffer); the next event starts a new
    /// buffer.
    fn take_into(&mut self, out: &mut Vec<Event>) {
        if self.events.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.text).freeze();
        out.extend(self.events.drain(..).map(|(timestamp, range)| {
            Event::from_json_text(timestamp, text.slice(range))
                .unwrap_or_else(|_| unreachable!("the builder writes objects"))
        }));
    }
}

/// Writes the events of one object: the record's JSON with the object's fields after
/// `@timestamp` and the origin member last.
#[derive(Debug)]
struct EventBuilder {
    /// Static and key fields, `"a":1,"b":"x"`.
    insert: String,
    /// The same after a comma, as inserted after `@timestamp`.
    after_timestamp: String,
    /// `"log_origin":{"bucket":"..","key":"..","line":`.
    origin_head: Option<String>,
}

impl EventBuilder {
    /// Appends the event of `record` to `out`: one JSON object.
    fn write(&self, record: &Record<'_>, line: u64, offset: u64, out: &mut String) {
        let start = out.len();
        record.write_json_str(out);
        if !(out.len() >= start + 2 && out[start..].starts_with('{') && out.ends_with('}')) {
            // Records are objects; were one not, its event holds just the added fields.
            out.truncate(start);
            out.push_str("{}");
        }
        if !self.insert.is_empty() {
            const TS: &str = "{\"@timestamp\":\"";
            let members = &out[start..];
            match members.strip_prefix(TS).and_then(|r| r.find('"')) {
                // After the `@timestamp` member.
                Some(end) => out.insert_str(start + TS.len() + end + 1, &self.after_timestamp),
                None => {
                    let at = start + 1;
                    if out[at..] != *"}" {
                        out.insert(at, ',');
                    }
                    out.insert_str(at, &self.insert);
                }
            }
        }
        if let Some(head) = &self.origin_head {
            out.pop();
            if out.len() > start + 1 {
                out.push(',');
            }
            out.push_str(head);
            out.push_str(itoa::Buffer::new().format(line));
            out.push_str(",\"offset\":");
            out.push_str(itoa::Buffer::new().format(offset));
            out.push_str("}}");
        }
    }
}

struct CountingRead<'c, R> {
    inner: R,
    count: &'c Cell<u64>,
}

impl<R: Read> Read for CountingRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Counts decompressed bytes, enforces the object size limit, and stops when cancelled.
struct LimitedRead<'c, R> {
    inner: R,
    count: &'c Cell<u64>,
    limit: u64,
    cancelled: &'c Cell<bool>,
}

impl<R: Read> Read for LimitedRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancelled.get() {
            return Err(io::Error::other(Cancelled));
        }
        let n = self.inner.read(buf)?;
        let total = self.count.get() + n as u64;
        self.count.set(total);
        if total > self.limit {
            return Err(io::Error::other(LimitExceeded));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::config::FormatByKey;

    const ALB: &str = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90"#;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn object(key: &str) -> Arc<ObjectRef> {
        Arc::new(ObjectRef {
            bucket: "logs".into(),
            key: key.into(),
            ..Default::default()
        })
    }

    fn read_all(
        reader: &ObjectReader,
        key: &str,
        body: &[u8],
    ) -> (
        Vec<serde_json::Value>,
        Vec<Failure>,
        Result<ObjectSummary, ObjectError>,
    ) {
        let mut events = Vec::new();
        let mut failures = Vec::new();
        let result = reader.read(&object(key), body, None, None, &mut |batch| {
            assert_eq!(batch.events.len(), batch.origins.len());
            for e in batch.events.events {
                events.push(serde_json::from_str(e.json()).expect("events are JSON"));
            }
            failures.extend(batch.failures);
            true
        });
        (events, failures, result)
    }

    fn config(format: &str) -> ReaderConfig {
        ReaderConfig {
            log_format: Some(format.to_string()),
            ..ReaderConfig::default()
        }
    }

    #[test]
    fn alb_gzip_with_fields_and_origin() {
        let mut cfg = config("alb");
        cfg.key_regex_fields = Some(r"^(?P<environment>[^\-]+)-(?P<application>[^/\-]+)/".into());
        cfg.fields.insert("team".into(), serde_json::json!("web"));
        cfg.fields.insert("n".into(), serde_json::json!(3));
        let reader = ObjectReader::new(&cfg).unwrap();
        let text = format!("{ALB}\nnot an alb line\n{ALB}\n");
        let (events, failures, result) =
            read_all(&reader, "prod-shop/x.log.gz", &gzip(text.as_bytes()));
        let summary = result.unwrap();
        assert_eq!(summary.compression, Some(Compression::Gzip));
        assert_eq!((summary.events, summary.parse_errors), (2, 1));
        assert_eq!(summary.decompressed_bytes, text.len() as u64);
        assert_eq!(events.len(), 2);
        let e = &events[1];
        assert_eq!(e["@timestamp"], "2018-07-02T22:23:00.186641Z");
        assert_eq!(e["environment"], "prod");
        assert_eq!(e["application"], "shop");
        assert_eq!(e["team"], "web");
        assert_eq!(e["n"], 3);
        assert_eq!(e["elb_status_code"], 200);
        assert_eq!(e["log_origin"]["bucket"], "logs");
        assert_eq!(e["log_origin"]["key"], "prod-shop/x.log.gz");
        assert_eq!(e["log_origin"]["line"], 3);
        assert_eq!(e["log_origin"]["offset"], ALB.len() + 1 + 16);
        assert_eq!(failures.len(), 1);
        assert_eq!(
            failures[0].origin,
            EventOrigin {
                line: 2,
                offset: ALB.len() as u64 + 1
            }
        );
        assert_eq!(failures[0].raw.as_deref(), Some("not an alb line"));
        let dead = failures[0].to_dead_letter_json(&object("prod-shop/x.log.gz"));
        assert!(dead.contains(r#""line":2"#), "{dead}");
        // @timestamp stays first, the static fields follow it.
        let json = serde_json::to_string(&events[0]).unwrap();
        assert!(json.starts_with(r#"{"@timestamp":"#), "{json}");
        assert_eq!(reader.stats().events(), 2);
        assert_eq!(reader.stats().parse_errors(), 1);
    }

    #[test]
    fn zstd_multimember_gzip_and_plain() {
        let reader = ObjectReader::new(&config("raw")).unwrap();
        let mut two = gzip(b"a\nb\n");
        two.extend(gzip(b"c\n"));
        let (events, _, r) = read_all(&reader, "k", &two);
        r.unwrap();
        assert_eq!(
            events
                .iter()
                .map(|e| e["message"].as_str().unwrap())
                .collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        let (events, _, r) = read_all(&reader, "k", &zstd::encode_all(&b"z\n"[..], 1).unwrap());
        assert_eq!(r.unwrap().compression, Some(Compression::Zstd));
        assert_eq!(events[0]["message"], "z");
        let (events, _, _) = read_all(&reader, "k", b"p");
        assert_eq!(events[0]["message"], "p");
        // Content-Encoding that lies.
        let err = reader
            .read(&object("k"), &b"plain"[..], Some("gzip"), None, &mut |_| {
                true
            })
            .unwrap_err();
        assert!(matches!(err.kind, ObjectErrorKind::Corrupt { .. }), "{err}");
    }

    #[test]
    fn corrupt_gzip_names_the_object_after_emitting_what_came_before() {
        let reader = ObjectReader::new(&config("raw")).unwrap();
        let mut data = gzip(&b"line\n".repeat(100_000));
        let cut = data.len() / 2;
        data.truncate(cut);
        data.extend_from_slice(&[0xff; 64]);
        let (events, _, result) = read_all(&reader, "dir/bad.gz", &data);
        let err = result.unwrap_err();
        assert!(
            err.to_string().starts_with("s3://logs/dir/bad.gz: corrupt"),
            "{err}"
        );
        assert!(!err.is_retryable());
        assert!(!events.is_empty() && events.len() < 100_000);
    }

    #[test]
    fn limits() {
        let mut cfg = config("raw");
        cfg.max_line_size = logferry_core::ByteSize::new(4);
        cfg.max_object_size = logferry_core::ByteSize::new(20);
        let reader = ObjectReader::new(&cfg).unwrap();
        let (events, failures, r) = read_all(&reader, "k", b"ok\ntoolong\nok2\n");
        r.unwrap();
        assert_eq!(events.len(), 2);
        assert!(matches!(
            failures[0].error,
            FailureKind::LineTooLong { limit: 4 }
        ));
        assert_eq!(failures[0].origin.line, 2);
        let (_, _, r) = read_all(&reader, "k", &gzip(&b"a\n".repeat(100)));
        assert!(matches!(
            r.unwrap_err().kind,
            ObjectErrorKind::TooLarge { limit: 20 }
        ));
    }

    #[test]
    fn batches_share_one_pooled_buffer_and_events_outlive_the_batches_after_them() {
        let mut cfg = config("raw");
        cfg.batch_size = 10;
        cfg.fields.insert("team".into(), serde_json::json!("web"));
        let reader = ObjectReader::new(&cfg).unwrap();
        // Batches of 10 lines of 4 KB fill more than a quarter of a buffer: shared as they are
        // (the last, of 5 lines, is copied and its buffer returned at once).
        let pad = "x".repeat(4000);
        let body: String = (0..95).map(|i| format!("line {i} {pad}\n")).collect();
        let mut kept = Vec::new();
        reader
            .read(&object("k"), body.as_bytes(), None, None, &mut |b| {
                let events = b.events.events;
                assert!(events.iter().all(|e| e.clone().into_text().is_shared()));
                // Every other batch is held on to, the others are dropped (written).
                if b.origins[0].line % 20 == 1 {
                    kept.extend(events);
                }
                true
            })
            .unwrap();
        // The dropped batches' buffers went back to the pool and served the next batches.
        assert_eq!(reader.text_pool.idle(), 1);
        assert_eq!(kept.len(), 50);
        for (i, event) in kept.iter().enumerate() {
            let line = (i / 10) * 20 + i % 10;
            let v: serde_json::Value = serde_json::from_str(event.json()).unwrap();
            assert_eq!(v["message"], format!("line {line} {pad}"));
            assert_eq!(v["team"], "web");
            assert_eq!(v["log_origin"]["line"], line + 1);
        }
        drop(kept);
        assert_eq!(reader.text_pool.idle(), 6);
    }

    #[test]
    fn format_by_key_and_documents() {
        let mut cfg = config("raw");
        cfg.format_by_key.push(FormatByKey {
            regex: r"AWSLogs/\d+/CloudTrail/".into(),
            log_format: "cloudtrail".into(),
            format_options: Default::default(),
        });
        cfg.batch_size = 1;
        let reader = ObjectReader::new(&cfg).unwrap();
        let trail = br#"{"Records":[{"eventTime":"2014-03-06T21:22:54Z","eventName":"A"},{"eventName":"bad"},{"eventTime":"2014-03-06T21:22:55Z","eventName":"B"}]}"#;
        let mut batches = 0;
        let mut names = Vec::new();
        reader
            .read(&object("AWSLogs/123/CloudTrail/x.json.gz"), &gzip(trail)[..], None, None, &mut |b| {
                batches += 1;
                names.extend(b.events.events.iter().map(|e| {
                    serde_json::from_str::<serde_json::Value>(e.json()).unwrap()["eventName"].clone()
                }));
                true
            })
            .unwrap();
        assert_eq!(names, ["A", "B"]);
        assert_eq!(batches, 3);
        let (events, _, _) = read_all(&reader, "other.log", trail);
        assert_eq!(events.len(), 1, "raw: one line");
        let no_default = ObjectReader::new(&ReaderConfig {
            log_format: None,
            ..cfg
        })
        .unwrap();
        let (_, _, r) = read_all(&no_default, "other.log", b"x");
        assert!(matches!(r.unwrap_err().kind, ObjectErrorKind::NoFormat));
    }

    #[test]
    fn output_closed_stops_the_read() {
        let mut cfg = config("raw");
        cfg.batch_size = 10;
        let reader = ObjectReader::new(&cfg).unwrap();
        let body = b"x\n".repeat(1000);
        let mut calls = 0;
        let err = reader
            .read(&object("k"), &body[..], None, None, &mut |_| {
                calls += 1;
                false
            })
            .unwrap_err();
        assert!(matches!(err.kind, ObjectErrorKind::OutputClosed));
        assert_eq!(calls, 1);
    }

    #[test]
    fn origin_field_can_be_disabled() {
        let mut cfg = config("json");
        cfg.origin_field = String::new();
        let reader = ObjectReader::new(&cfg).unwrap();
        let (events, _, _) = read_all(&reader, "k", br#"{"a":1}"#);
        assert!(events[0].get("log_origin").is_none());
        assert_eq!(events[0]["a"], 1);
    }
}
