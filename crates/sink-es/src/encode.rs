//! Batching events and encoding them into bulk request bodies.
//!
//! Each event is rendered (index name, document id) and written into its batch's body (through
//! gzip when enabled) when it joins the batch; its document text is then let go, so a batch
//! being filled holds a compressed body, not its documents. The items keep the events'
//! metadata; documents are read back from the body only when some items must be sent again,
//! split or dead-lettered, and re-encoded into a new body.

use std::io::Write;
use std::time::Instant;

use bytes::Bytes;
use flate2::write::GzEncoder;
use logferry_core::text::Text;

use crate::config::{Compression, OpType};
use crate::event::EsEvent;
use crate::id::{DocumentId, IdMode};
use crate::template::{IndexTemplate, RenderError};

/// An event with its rendered index and id.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) event: EsEvent,
    /// Position in [`Batch::indices`].
    pub(crate) index: u32,
    pub(crate) id: Option<DocumentId>,
    /// Attempts so far.
    pub(crate) attempts: u32,
}

/// Events bound for one bulk request, and the index names they use (JSON-quoted once).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) items: Vec<Item>,
    pub(crate) indices: Vec<String>,
    pub(crate) bytes: usize,
    /// The encoded body of exactly `items`, whose documents then live only here (their
    /// `event.json` is empty); `None` when the items hold their documents.
    pub(crate) body: Option<Bytes>,
}

impl Batch {
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// A batch of `items` sharing this batch's index names.
    pub(crate) fn with_items(&self, items: Vec<Item>) -> Batch {
        let bytes = items
            .iter()
            .map(|i| estimate(&i.event, &self.indices[i.index as usize]))
            .sum();
        Batch {
            items,
            indices: self.indices.clone(),
            bytes,
            body: None,
        }
    }
}

/// Bytes an item adds to an uncompressed body.
fn estimate(event: &EsEvent, quoted_index: &str) -> usize {
    // {"create":{"_index":X,"_id":"<22>"}}\n + document + \n
    40 + quoted_index.len() + crate::id::DOCUMENT_ID_LEN + event.json.len()
}

/// Limits of one batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_events: usize,
    pub(crate) max_bytes: usize,
}

/// How bodies are encoded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Encoding {
    pub(crate) op: OpType,
    pub(crate) compression: Compression,
    pub(crate) level: u32,
}

/// Groups events into batches by count and size.
#[derive(Debug)]
pub(crate) struct Batcher {
    template: IndexTemplate,
    id_mode: IdMode,
    limits: Limits,
    encoding: Encoding,
    current: Batch,
    /// The body of `current`, from its first event.
    body: Option<BodyWriter>,
    /// When the first event of the current batch arrived.
    pub(crate) opened: Option<Instant>,
    scratch: Vec<u8>,
    name: String,
    /// `name`, JSON-quoted.
    quoted: String,
    /// [`IndexTemplate::constant_within`]: events in one such period share their index name.
    period: Option<i64>,
    /// The period `quoted` was rendered for (`None`: rendered from fields, or not yet).
    rendered_for: Option<i64>,
    /// Where `quoted` is in the current batch's indices, once looked up.
    quoted_at: Option<u32>,
}

impl Batcher {
    pub(crate) fn new(
        template: IndexTemplate,
        id_mode: IdMode,
        limits: Limits,
        encoding: Encoding,
    ) -> Batcher {
        Batcher {
            period: template.constant_within(),
            template,
            id_mode,
            limits,
            encoding,
            current: Batch::default(),
            body: None,
            opened: None,
            scratch: Vec::new(),
            name: String::new(),
            quoted: String::new(),
            rendered_for: None,
            quoted_at: None,
        }
    }

    /// Adds an event; full batches are pushed onto `ready`. An event whose index name cannot be
    /// rendered is handed back with the reason.
    pub(crate) fn push(
        &mut self,
        event: EsEvent,
        ready: &mut Vec<Batch>,
    ) -> Result<(), Box<(EsEvent, RenderError)>> {
        // Consecutive events of one day (or hour...) of a time-only template share the name
        // rendered for the first of them.
        let period = self
            .period
            .map(|p| event.timestamp.unix_seconds().div_euclid(p));
        if period.is_none() || period != self.rendered_for {
            if let Err(err) = self
                .template
                .render(event.timestamp, &event.json, &mut self.name)
            {
                return Err(Box::new((event, err)));
            }
            self.quoted.clear();
            logferry_core::json::write_str(&mut self.quoted, &self.name);
            self.rendered_for = period;
            self.quoted_at = None;
        }
        let size = estimate(&event, &self.quoted);
        if !self.current.is_empty() && self.current.bytes + size > self.limits.max_bytes {
            ready.push(self.take());
        }
        let index = match self.quoted_at {
            Some(i) => i,
            None => {
                let i = match self.current.indices.iter().rposition(|q| *q == self.quoted) {
                    Some(i) => i,
                    None => {
                        self.current.indices.push(self.quoted.clone());
                        self.current.indices.len() - 1
                    }
                };
                // Index positions are u32 (a batch holds far fewer names).
                let i = i as u32;
                self.quoted_at = Some(i);
                i
            }
        };
        let id = DocumentId::for_event_with(self.id_mode, &event, &mut self.scratch);
        let mut item = Item {
            event,
            index,
            id,
            attempts: 0,
        };
        let (encoding, limits) = (self.encoding, self.limits);
        self.body
            .get_or_insert_with(|| BodyWriter::new(encoding, limits.max_bytes))
            .write_item(&self.quoted, &item);
        // The document lives on in the body (a shared buffer's range is let go here).
        item.event.json = Text::default();
        self.current.items.push(item);
        self.current.bytes += size;
        if self.opened.is_none() {
            self.opened = Some(Instant::now());
        }
        if self.current.len() >= self.limits.max_events
            || self.current.bytes >= self.limits.max_bytes
        {
            ready.push(self.take());
        }
        Ok(())
    }

    /// Takes the current batch (possibly empty), with its body.
    pub(crate) fn take(&mut self) -> Batch {
        self.opened = None;
        self.quoted_at = None;
        let mut batch = std::mem::take(&mut self.current);
        batch.body = self.body.take().map(|body| Bytes::from(body.finish()));
        batch
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.current.is_empty()
    }
}

/// Writes one document, turning raw line breaks (which valid JSON has only as whitespace
/// between tokens) into spaces so the document stays on one line.
pub(crate) fn write_document(out: &mut impl Write, json: &str) -> std::io::Result<()> {
    let bytes = json.as_bytes();
    if memchr::memchr2(b'\n', b'\r', bytes).is_none() {
        return out.write_all(bytes);
    }
    let mut start = 0;
    for pos in memchr::memchr2_iter(b'\n', b'\r', bytes) {
        out.write_all(&bytes[start..pos])?;
        out.write_all(b" ")?;
        start = pos + 1;
    }
    out.write_all(&bytes[start..])
}

/// Writes one item: its action line and its document line.
fn write_item(
    out: &mut impl Write,
    op: OpType,
    quoted_index: &str,
    item: &Item,
) -> std::io::Result<()> {
    out.write_all(match op {
        OpType::Create => b"{\"create\":{\"_index\":",
        OpType::Index => b"{\"index\":{\"_index\":",
    })?;
    out.write_all(quoted_index.as_bytes())?;
    match &item.id {
        Some(id) => {
            out.write_all(b",\"_id\":\"")?;
            out.write_all(id.as_str().as_bytes())?;
            out.write_all(b"\"}}\n")?;
        }
        None => out.write_all(b"}}\n")?,
    }
    write_document(out, &item.event.json)?;
    out.write_all(b"\n")
}

/// Bytes handed to the gzip encoder at a time.
const GZIP_CHUNK: usize = 32 * 1024;

/// A bulk body being written item by item: NDJSON action and document lines, gzip when the
/// encoding says so.
pub(crate) struct BodyWriter {
    op: OpType,
    out: BodyOut,
}

enum BodyOut {
    Plain(Vec<u8>),
    // Each item is seven small writes; the compressor takes them in GZIP_CHUNK pieces (one
    // deflate call per few dozen documents instead of seven per document).
    Gzip(Box<std::io::BufWriter<GzEncoder<Vec<u8>>>>),
}

impl std::fmt::Debug for BodyWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyWriter")
            .field("op", &self.op)
            .finish_non_exhaustive()
    }
}

impl BodyWriter {
    /// A writer for up to about `max_bytes` of items before compression.
    pub(crate) fn new(encoding: Encoding, max_bytes: usize) -> BodyWriter {
        let out = match encoding.compression {
            // Sized once: growing a body of megabytes copies it and faults in fresh pages.
            Compression::None => BodyOut::Plain(Vec::with_capacity(max_bytes)),
            // Gzip bodies of log documents are about a tenth of the documents.
            Compression::Gzip => BodyOut::Gzip(Box::new(std::io::BufWriter::with_capacity(
                GZIP_CHUNK,
                GzEncoder::new(
                    Vec::with_capacity((max_bytes / 8).min(1 << 20)),
                    flate2::Compression::new(encoding.level),
                ),
            ))),
        };
        BodyWriter {
            op: encoding.op,
            out,
        }
    }

    pub(crate) fn write_item(&mut self, quoted_index: &str, item: &Item) {
        let written = match &mut self.out {
            BodyOut::Plain(out) => write_item(out, self.op, quoted_index, item),
            BodyOut::Gzip(out) => write_item(out, self.op, quoted_index, item),
        };
        // Writing into memory cannot fail.
        debug_assert!(written.is_ok());
    }

    /// The body; a large unused surplus of its buffer is given back (it is kept until the
    /// batch is delivered).
    pub(crate) fn finish(self) -> Vec<u8> {
        let mut body = match self.out {
            BodyOut::Plain(out) => out,
            BodyOut::Gzip(out) => {
                let finished = (*out)
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .and_then(GzEncoder::finish);
                // Writing into memory cannot fail.
                debug_assert!(finished.is_ok());
                finished.unwrap_or_default()
            }
        };
        if body.capacity() - body.len() > body.len() / 8 {
            body.shrink_to_fit();
        }
        body
    }
}

/// Encodes the items of `batch` (which hold their documents) into a new body.
pub(crate) fn encode_batch(batch: &Batch, encoding: Encoding) -> Vec<u8> {
    let mut body = BodyWriter::new(encoding, batch.bytes);
    for item in &batch.items {
        body.write_item(&batch.indices[item.index as usize], item);
    }
    body.finish()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use logferry_core::Timestamp;

    use super::*;
    use crate::event::EventOrigin;

    fn event(i: u64, json: &str) -> EsEvent {
        EsEvent::new(
            json.to_string(),
            Timestamp::parse_rfc3339("2024-05-06T07:08:09Z").unwrap(),
            EventOrigin::new("b", "k", i + 1, i * 100),
        )
    }

    fn encoding(op: OpType, compression: Compression) -> Encoding {
        Encoding {
            op,
            compression,
            level: 1,
        }
    }

    fn batcher(max_events: usize, max_bytes: usize, template: &str, id: IdMode) -> Batcher {
        batcher_with(
            max_events,
            max_bytes,
            template,
            id,
            encoding(OpType::Create, Compression::None),
        )
    }

    fn batcher_with(
        max_events: usize,
        max_bytes: usize,
        template: &str,
        id: IdMode,
        encoding: Encoding,
    ) -> Batcher {
        Batcher::new(
            IndexTemplate::parse(template).unwrap(),
            id,
            Limits {
                max_events,
                max_bytes,
            },
            encoding,
        )
    }

    /// The body a batch was given, as text (plain encoding).
    fn body_text(batch: &Batch) -> String {
        String::from_utf8(batch.body.as_ref().expect("a body").to_vec()).unwrap()
    }

    #[test]
    fn batches_close_at_the_event_limit() {
        let mut b = batcher(3, 1 << 20, "i", IdMode::Position);
        let mut ready = Vec::new();
        for i in 0..7 {
            b.push(event(i, "{}"), &mut ready).unwrap();
        }
        assert_eq!(ready.iter().map(Batch::len).collect::<Vec<_>>(), [3, 3]);
        assert!(b.opened.is_some());
        assert_eq!(b.take().len(), 1);
        assert!(b.is_empty() && b.opened.is_none());
    }

    #[test]
    fn batches_close_at_the_byte_limit_and_never_exceed_it() {
        let doc = format!("{{\"m\":\"{}\"}}", "x".repeat(200));
        let mut b = batcher(1000, 1024, "i", IdMode::Position);
        let mut ready = Vec::new();
        for i in 0..20 {
            b.push(event(i, &doc), &mut ready).unwrap();
        }
        assert!(ready.len() >= 4);
        for batch in &ready {
            assert!(batch.bytes <= 1024, "{}", batch.bytes);
            let body = body_text(batch);
            assert!(
                body.len() <= batch.bytes,
                "estimate {} < body {}",
                batch.bytes,
                body.len()
            );
        }
        // A document larger than the limit goes alone.
        let big = format!("{{\"m\":\"{}\"}}", "x".repeat(5000));
        let mut b = batcher(1000, 1024, "i", IdMode::Position);
        let mut ready = Vec::new();
        b.push(event(0, "{}"), &mut ready).unwrap();
        b.push(event(1, &big), &mut ready).unwrap();
        assert_eq!(ready.iter().map(Batch::len).collect::<Vec<_>>(), [1, 1]);
    }

    #[test]
    fn time_only_templates_reuse_the_name_rendered_for_the_period() {
        let times = [
            "2024-05-06T07:08:09Z",
            "2024-05-06T07:59:59.999Z",
            "2024-05-06T08:00:00Z",
            "2024-05-06T07:30:00Z",
            "2024-05-08T08:00:01Z",
            "2024-05-08T08:10:00Z",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00Z",
        ];
        for template in ["t-%Y.%m.%d-%H", "t-%Y.%m.%d", "t-%j", "t"] {
            let parsed = IndexTemplate::parse(template).unwrap();
            // Batches of 3 events: the cached position must not outlive its batch.
            let mut b = batcher(3, 1 << 20, template, IdMode::None);
            let mut ready = Vec::new();
            for (i, t) in times.iter().enumerate() {
                let mut e = event(i as u64, "{}");
                e.timestamp = Timestamp::parse_rfc3339(t).unwrap();
                b.push(e, &mut ready).unwrap();
            }
            ready.push(b.take());
            let mut seen = 0;
            for batch in &ready {
                for item in &batch.items {
                    let mut name = String::new();
                    parsed
                        .render(item.event.timestamp, "{}", &mut name)
                        .unwrap();
                    let quoted = serde_json::to_string(&name).unwrap();
                    assert_eq!(
                        batch.indices[item.index as usize], quoted,
                        "{template} at {}",
                        item.event.timestamp
                    );
                    seen += 1;
                }
                let mut names = batch.indices.clone();
                names.sort();
                names.dedup();
                assert_eq!(names.len(), batch.indices.len(), "{template}: {names:?}");
            }
            assert_eq!(seen, times.len());
        }
    }

    #[test]
    fn encodes_actions_and_documents() {
        let mut b = batcher_with(
            10,
            1 << 20,
            "logs-%{[app]}-%Y.%m.%d",
            IdMode::None,
            encoding(OpType::Index, Compression::None),
        );
        let mut ready = Vec::new();
        b.push(event(0, "{\"app\":\"a\",\"n\":1}"), &mut ready)
            .unwrap();
        b.push(event(1, "{\"app\":\"b\",\n\"n\":2}"), &mut ready)
            .unwrap();
        b.push(event(2, "{\"app\":\"a\",\"n\":3}"), &mut ready)
            .unwrap();
        let (bad, reason) = *b.push(event(3, "{\"n\":4}"), &mut ready).unwrap_err();
        // An event that cannot be routed comes back whole.
        assert_eq!(bad.json.as_ref(), "{\"n\":4}");
        assert_eq!(bad.origin.line, 4);
        assert_eq!(reason.to_string(), "index template field `app` is missing");
        let batch = b.take();
        assert_eq!(
            batch.indices,
            ["\"logs-a-2024.05.06\"", "\"logs-b-2024.05.06\""]
        );
        let expected = "{\"index\":{\"_index\":\"logs-a-2024.05.06\"}}\n{\"app\":\"a\",\"n\":1}\n\
             {\"index\":{\"_index\":\"logs-b-2024.05.06\"}}\n{\"app\":\"b\", \"n\":2}\n\
             {\"index\":{\"_index\":\"logs-a-2024.05.06\"}}\n{\"app\":\"a\",\"n\":3}\n";
        assert_eq!(body_text(&batch), expected);
        // The documents now live only in the body; read back, they encode to it again.
        assert!(batch.items.iter().all(|i| i.event.json.is_empty()));
        let mut items = batch.items;
        let docs = [
            "{\"app\":\"a\",\"n\":1}",
            "{\"app\":\"b\", \"n\":2}",
            "{\"app\":\"a\",\"n\":3}",
        ];
        for (item, doc) in items.iter_mut().zip(docs) {
            item.event.json = doc.into();
        }
        let again = Batch {
            items,
            indices: batch.indices,
            bytes: 0,
            body: None,
        };
        let body = encode_batch(&again, encoding(OpType::Index, Compression::None));
        assert_eq!(String::from_utf8(body).unwrap(), expected);
    }

    #[test]
    fn gzip_bodies_decode_to_the_plain_body() {
        let take = |compression| {
            let mut b = batcher_with(
                100,
                1 << 20,
                "i",
                IdMode::Position,
                encoding(OpType::Create, compression),
            );
            let mut ready = Vec::new();
            for i in 0..50 {
                b.push(event(i, "{\"msg\":\"same line\"}"), &mut ready)
                    .unwrap();
            }
            assert!(ready.is_empty());
            b.take()
        };
        let batch = take(Compression::None);
        let plain = batch.body.clone().unwrap().to_vec();
        let gz = take(Compression::Gzip).body.unwrap();
        assert!(gz.len() < plain.len() / 3);
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, plain);
        let text = String::from_utf8(plain).unwrap();
        let first = text.lines().next().unwrap();
        let id = batch.items[0].id.unwrap();
        assert_eq!(
            first,
            format!("{{\"create\":{{\"_index\":\"i\",\"_id\":\"{id}\"}}}}")
        );
        // Identical documents at different offsets get different ids.
        let ids: std::collections::HashSet<_> = batch.items.iter().map(|i| i.id).collect();
        assert_eq!(ids.len(), 50);
    }
}
