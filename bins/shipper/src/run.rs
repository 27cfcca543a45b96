//! Wiring: tail sources -> router (match by tag) -> per-output disk buffer -> S3 uploads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use logferry_buffer::{Buffer, BufferRecord, Chunk, SourcePosition};
use logferry_core::{AckStatus, AckToken, ErrorChain, ShutdownSignal, Timestamp, shutdown_pair};
use logferry_sink_s3::{ChunkIdentity, UploadReport, Uploader};
use logferry_source_syslog::{SyslogBatch, SyslogSource};
use logferry_source_tail::{RunMode, StreamPosition, TailBatch, TailSource};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::config::{LineFormat, ResolvedConfig, ResolvedOutput, SourceConfig};

/// Batches in flight between the sources and the router (each up to the source's
/// `batch_bytes`, 1 MiB by default): enough to keep reading while the buffer syncs, small
/// enough to keep memory flat.
const CHANNEL_BATCHES: usize = 4;

/// Syslog batches queued for the router. A UDP listener never waits for the router: what does
/// not fit here is dropped, so the queue must ride out a slow fsync or a flush (a batch is one
/// datagram when messages trickle in, up to the source's `batch_size` under load).
const SYSLOG_CHANNEL_BATCHES: usize = 256;

/// Most syslog records the router takes from its queue for one round of appends: whatever has
/// queued up while the buffer synced goes into one append per tag, one fsync instead of one per
/// datagram.
const SYSLOG_COALESCE_RECORDS: usize = 8192;

/// Whether to follow files until stopped or to ship what exists and exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run until the shutdown signal.
    Follow,
    /// Read every file to its end, flush every chunk, return (`--once`).
    Once,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Lines read by the sources.
    pub lines: u64,
    /// Files read.
    pub files: u64,
    /// Records that matched no output (dropped, as fluentd does, with a warning).
    pub unmatched: u64,
    /// Objects uploaded, with their output id.
    pub uploads: Vec<(String, UploadReport)>,
    /// Where each output writes (`s3://bucket/` or a directory).
    pub locations: Vec<(String, String)>,
    /// Chunks still buffered at exit (shipped at the next start).
    pub left_in_buffer: u64,
}

struct Output {
    id: String,
    pattern: crate::TagPattern,
    format: LineFormat,
    message_key: String,
    flush_at_shutdown: bool,
    buffer: Buffer,
    uploader: Uploader,
}

/// Runs the shipper until `shutdown` fires (Follow) or everything is shipped (Once).
pub async fn run(
    config: ResolvedConfig,
    mode: Mode,
    shutdown: ShutdownSignal,
) -> anyhow::Result<RunSummary> {
    let data_dir = config.file.data_dir.clone();
    let shutdown_timeout = config.file.shutdown_timeout.as_duration();
    let mut outputs = Vec::new();
    let mut summary = RunSummary::default();
    for (id, out) in &config.outputs {
        outputs.push(Arc::new(open_output(&data_dir, id, out).await?));
        summary.locations.push((id.clone(), location(&out.s3)));
    }
    let progress: Arc<Mutex<Progress>> = Arc::default();

    // Uploads run until `flush_stop` fires, after the sources and the final flush are done.
    let (flush_stop_trigger, flush_stop) = shutdown_pair();
    let mut flushers = JoinSet::new();
    for (out, (_, config)) in outputs.iter().zip(&config.outputs) {
        for _ in 0..config.buffer.flush_thread_count {
            flushers.spawn(flush_loop(
                out.clone(),
                flush_stop.clone(),
                progress.clone(),
            ));
        }
    }

    // Sources resume from what the buffers already hold (exactly once across crashes); an
    // output that holds more of a stream than that skips the records it has.
    let resume = resume_positions(&outputs);
    let stored = outputs.iter().map(|o| o.buffer.positions()).collect();
    let (tx, rx) = mpsc::channel::<TailBatch>(CHANNEL_BATCHES);
    let (syslog_tx, syslog_rx) = mpsc::channel::<SyslogBatch>(SYSLOG_CHANNEL_BATCHES);
    let router = tokio::spawn(route(rx, syslog_rx, outputs.clone(), stored));
    let mut sources = JoinSet::new();
    let mut listeners = JoinSet::new();
    for (id, source) in &config.file.sources {
        match source {
            SourceConfig::Syslog(_) if mode == Mode::Once => {
                tracing::warn!(source = %id, "A syslog source has no end: it is not started with --once.");
            }
            SourceConfig::Syslog(syslog) => {
                let source = SyslogSource::bind(id, syslog.clone())
                    .await
                    .with_context(|| format!("source {id}"))?;
                let id = id.clone();
                let run = source.run(syslog_tx.clone(), shutdown.clone());
                listeners.spawn(async move {
                    let summary = run.await?;
                    tracing::info!(
                        source = %id,
                        messages = summary.messages,
                        parse_errors = summary.parse_errors,
                        truncated = summary.truncated,
                        dropped = summary.dropped,
                        incomplete_frames = summary.incomplete_frames,
                        rejected_connections = summary.rejected_connections,
                        tls_handshake_failures = summary.tls_handshake_failures,
                        "Syslog source stopped."
                    );
                    Ok::<_, logferry_source_syslog::SyslogError>(summary)
                });
            }
            SourceConfig::Tail(tail) => {
                let pos_file = data_dir.join(format!("{id}.pos"));
                let source = TailSource::new(id, tail.clone(), pos_file, resume.clone())
                    .with_context(|| format!("source {id}"))?;
                let run_mode = if mode == Mode::Once {
                    RunMode::Once
                } else {
                    RunMode::Follow
                };
                sources.spawn(source.run(tx.clone(), shutdown.clone(), run_mode, shutdown_timeout));
            }
        }
    }
    drop(tx);
    drop(syslog_tx);
    while let Some(result) = listeners.join_next().await {
        let s = result
            .context("syslog source task panicked")?
            .context("syslog source failed")?;
        summary.lines += s.messages;
    }
    while let Some(result) = sources.join_next().await {
        let s = result
            .context("source task panicked")?
            .context("source failed")?;
        summary.lines += s.lines;
        summary.files += s.files;
    }
    summary.unmatched = router.await.context("router panicked")?;

    // Final flush: everything in Once mode; at shutdown only where flush_at_shutdown is set.
    let deadline = match mode {
        Mode::Once => None,
        Mode::Follow => Some(tokio::time::Instant::now() + shutdown_timeout),
    };
    for out in &outputs {
        if mode == Mode::Once || out.flush_at_shutdown {
            out.buffer
                .seal_all()
                .with_context(|| format!("output {}: sealing chunks", out.id))?;
        }
    }
    loop {
        let pending = outputs
            .iter()
            .filter(|o| (mode == Mode::Once || o.flush_at_shutdown) && !o.buffer.is_empty())
            .count();
        if pending == 0 {
            break;
        }
        if mode == Mode::Once && (shutdown.is_triggered() || !lock(&progress).failures.is_empty()) {
            break;
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            tracing::warn!(
                "Shutdown timeout reached; unsent chunks stay in the buffer for the next start."
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    flush_stop_trigger.trigger();
    while flushers.join_next().await.is_some() {}
    summary.left_in_buffer = outputs
        .iter()
        .map(|o| {
            let s = o.buffer.stats();
            // `sealed_chunks` already counts the chunks in flight and those retrying.
            (s.open_chunks + s.sealed_chunks) as u64
        })
        .sum();
    let mut progress = lock(&progress);
    summary.uploads = std::mem::take(&mut progress.uploads);
    if mode == Mode::Once
        && let Some(first) = progress.failures.first()
    {
        anyhow::bail!(
            "{first} (retrying cannot fix this; {} chunk(s) stay in the buffer for the next run)",
            summary.left_in_buffer
        );
    }
    Ok(summary)
}

/// What the upload tasks did so far.
#[derive(Debug, Default)]
struct Progress {
    /// Objects uploaded, with their output id.
    uploads: Vec<(String, UploadReport)>,
    /// Uploads that failed with an error retrying cannot fix (access denied, no such bucket):
    /// `--once` stops on the first; a daemon keeps retrying (an operator may fix the cause).
    failures: Vec<String>,
}

fn lock(progress: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    progress.lock().unwrap_or_else(|e| e.into_inner())
}

async fn open_output(
    data_dir: &std::path::Path,
    id: &str,
    out: &ResolvedOutput,
) -> anyhow::Result<Output> {
    let default_dir: PathBuf = data_dir.join("buffer").join(id);
    let buffer = Buffer::open(&out.buffer, &default_dir)
        .with_context(|| format!("output {id}: opening buffer"))?;
    // Encoded objects larger than 2 MiB spill here while they upload; what a crash left
    // behind is garbage (the chunks themselves are in the buffer).
    let spill_dir = default_dir.join("tmp");
    if let Err(e) = std::fs::remove_dir_all(&spill_dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %spill_dir.display(), error = %e, "Cannot clean the upload spill directory.");
    }
    let uploader = out
        .s3
        .build_uploader()
        .await
        .with_context(|| format!("output {id}: S3 output"))?
        .with_temp_dir(spill_dir.clone());
    Ok(Output {
        id: id.to_owned(),
        pattern: out.pattern.clone(),
        format: out.format,
        message_key: out.message_key.clone(),
        flush_at_shutdown: out.buffer.effective_flush_at_shutdown(),
        buffer,
        uploader,
    })
}

/// Where an output's objects go, for people: the directory of a `file://` bucket, else
/// `s3://bucket/`.
fn location(s3: &logferry_sink_s3::S3Config) -> String {
    match s3.local_dir() {
        Some(dir) => std::path::absolute(&dir)
            .unwrap_or(dir)
            .display()
            .to_string(),
        None => format!("s3://{}/", s3.bucket),
    }
}

/// For each stream any buffer holds, the smallest offset every output holds it to, 0 when an
/// output lacks it (then the checkpoint file decides where the file starts). Naming every such
/// stream also gives its file back the id its records were stored under, even when the
/// checkpoint file was not written since: `route` skips, per output, the records it has by
/// that id.
fn resume_positions(outputs: &[Arc<Output>]) -> HashMap<String, u64> {
    let mut merged: HashMap<String, (u64, usize)> = HashMap::new();
    for out in outputs {
        for (stream, offset) in out.buffer.positions() {
            let entry = merged.entry(stream).or_insert((offset, 0));
            entry.0 = entry.0.min(offset);
            entry.1 += 1;
        }
    }
    let all = outputs.len();
    merged
        .into_iter()
        .map(|(k, (o, n))| (k, if n == all { o } else { 0 }))
        .collect()
}

/// A batch from any source, as the router takes it.
struct Incoming {
    tag: Arc<str>,
    records: Vec<IncomingRecord>,
    /// One per source batch (syslog batches are merged), each released with the outcome.
    acks: Vec<AckToken>,
    /// Where a file's batch ends (none for syslog, which has no position to resume from).
    position: Option<StreamPosition>,
}

struct IncomingRecord {
    time: Timestamp,
    json: String,
    /// A file record's end offset (0 for syslog).
    end_offset: u64,
}

impl Incoming {
    fn from_tail(batch: TailBatch) -> Incoming {
        Incoming {
            tag: batch.tag,
            records: batch
                .records
                .into_iter()
                .map(|r| IncomingRecord {
                    time: r.time,
                    json: r.json,
                    end_offset: r.end_offset,
                })
                .collect(),
            acks: vec![batch.ack],
            position: Some(batch.position),
        }
    }

    /// `first` and the syslog batches already queued behind it (up to
    /// [`SYSLOG_COALESCE_RECORDS`] records), merged into one batch per tag in order of first
    /// appearance. Syslog records carry no position, so merging changes nothing but the number
    /// of appends.
    fn from_syslog(first: SyslogBatch, rx: &mut mpsc::Receiver<SyslogBatch>) -> Vec<Incoming> {
        let mut merged: Vec<Incoming> = Vec::new();
        let mut taken = 0;
        let mut next = Some(first);
        while let Some(batch) = next.take() {
            taken += batch.records.len();
            let records = batch.records.into_iter().map(|r| IncomingRecord {
                time: r.time,
                json: r.json,
                end_offset: 0,
            });
            match merged.iter_mut().find(|m| m.tag == batch.tag) {
                Some(m) => {
                    m.records.extend(records);
                    m.acks.push(batch.ack);
                }
                None => merged.push(Incoming {
                    tag: batch.tag,
                    records: records.collect(),
                    acks: vec![batch.ack],
                    position: None,
                }),
            }
            if taken < SYSLOG_COALESCE_RECORDS {
                next = rx.try_recv().ok();
            }
        }
        merged
    }
}

/// Appends each batch to the buffer of every output whose pattern matches its tag, and reports
/// the batch delivered once every such buffer holds it durably.
///
/// `stored` is, per output, how far its buffer held each stream at the start. A source
/// resumes from the least any output holds, so the records an output already has (it was
/// appended to before a crash, the next output was not) are skipped for it, by their end
/// offsets: else they would be stored twice.
async fn route(
    mut tail_rx: mpsc::Receiver<TailBatch>,
    mut syslog_rx: mpsc::Receiver<SyslogBatch>,
    outputs: Vec<Arc<Output>>,
    mut stored: Vec<HashMap<String, u64>>,
) -> u64 {
    let mut unmatched = 0u64;
    // `single_value` lines, end to end, and where each ends (reused across batches).
    let mut values: Vec<u8> = Vec::new();
    let mut ends: Vec<usize> = Vec::new();
    loop {
        let batches = tokio::select! {
            Some(batch) = tail_rx.recv() => vec![Incoming::from_tail(batch)],
            Some(batch) = syslog_rx.recv() => Incoming::from_syslog(batch, &mut syslog_rx),
            else => break,
        };
        for batch in batches {
            let targets: Vec<usize> = (0..outputs.len())
                .filter(|&i| outputs[i].pattern.matches(&batch.tag))
                .collect();
            if targets.is_empty() {
                if unmatched == 0 {
                    tracing::warn!(tag = %batch.tag, "No output matches this tag; its records are dropped.");
                }
                unmatched += batch.records.len() as u64;
                continue;
            }
            for i in targets {
                let out = &outputs[i];
                let from = match &batch.position {
                    Some(position) => match stored[i].get(&position.stream) {
                        Some(&held) if position.end_offset <= held => continue,
                        Some(&held) => {
                            stored[i].remove(&position.stream);
                            batch.records.partition_point(|r| r.end_offset <= held)
                        }
                        None => 0,
                    },
                    None => 0,
                };
                let batch_records = &batch.records[from..];
                let records: Vec<BufferRecord<'_>> = match out.format {
                    // The record's JSON is the line: borrowed, not copied.
                    LineFormat::Json => batch_records
                        .iter()
                        .map(|r| BufferRecord {
                            time: r.time,
                            line: r.json.as_bytes(),
                        })
                        .collect(),
                    LineFormat::SingleValue => {
                        values.clear();
                        ends.clear();
                        for record in batch_records {
                            single_value(&record.json, &out.message_key, &mut values);
                            ends.push(values.len());
                        }
                        let mut start = 0;
                        batch_records
                            .iter()
                            .zip(&ends)
                            .map(|(r, &end)| {
                                let line = &values[start..end];
                                start = end;
                                BufferRecord { time: r.time, line }
                            })
                            .collect()
                    }
                };
                let position = batch.position.as_ref().map(|p| SourcePosition {
                    stream: &p.stream,
                    offset: p.end_offset,
                });
                match out.buffer.append(&batch.tag, &records, position).await {
                    Ok(receiver) => {
                        let tokens = batch.acks.clone();
                        tokio::spawn(async move {
                            let status = receiver.await;
                            tokens.into_iter().for_each(|t| t.finish(status));
                        });
                    }
                    Err(e) => {
                        tracing::error!(output = %out.id, error = %ErrorChain(&e), "Cannot append to the buffer; the lines will be read again.");
                        batch.acks.iter().for_each(|t| t.update(AckStatus::Errored));
                    }
                }
            }
        }
    }
    unmatched
}

/// Appends the `single_value` line of a record to `out`: the text of member `key` (a string
/// member as its unescaped text, any other value as JSON), or the whole record when it has no
/// such member.
fn single_value(json: &str, key: &str, out: &mut Vec<u8>) {
    // Fast path: the tail source's `{"message":"..."}` for plain lines.
    if let Some(literal) = json
        .strip_prefix("{\"")
        .and_then(|rest| rest.strip_prefix(key))
        .and_then(|rest| rest.strip_prefix("\":"))
        .and_then(|rest| rest.strip_suffix('}'))
        && literal.starts_with('"')
        && let Ok(text) = serde_json::from_str::<std::borrow::Cow<'_, str>>(literal)
    {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    let value: Option<serde_json::Value> = serde_json::from_str(json).ok();
    match value.as_ref().and_then(|v| v.get(key)) {
        Some(serde_json::Value::String(s)) => out.extend_from_slice(s.as_bytes()),
        Some(other) => out.extend_from_slice(other.to_string().as_bytes()),
        None => out.extend_from_slice(json.as_bytes()),
    }
}

async fn flush_loop(out: Arc<Output>, stop: ShutdownSignal, progress: Arc<Mutex<Progress>>) {
    loop {
        let chunk = tokio::select! {
            chunk = out.buffer.next_ready() => chunk,
            () = stop.clone().wait() => return,
        };
        upload_chunk(&out, chunk, &progress).await;
    }
}

async fn upload_chunk(out: &Output, chunk: Chunk, progress: &Mutex<Progress>) {
    let meta = chunk.meta();
    let identity = ChunkIdentity {
        tag: meta.tag.clone(),
        timekey: meta.timekey,
        seq: meta.seq,
        id: meta.id,
        sealed_at: meta.sealed_at.unwrap_or(meta.created_at),
    };
    let reader = match chunk.open_reader() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(output = %out.id, error = %ErrorChain(&e), "Cannot read a buffered chunk.");
            out.buffer.retry_later(chunk, &e);
            return;
        }
    };
    match out.uploader.upload(&identity, reader).await {
        Ok(report) => {
            tracing::info!(output = %out.id, key = %report.key, bytes = report.bytes_out, "Uploaded.");
            match out.buffer.complete(chunk) {
                Ok(()) => lock(progress).uploads.push((out.id.clone(), report)),
                Err(e) => {
                    tracing::error!(output = %out.id, error = %ErrorChain(&e), "Uploaded, but the chunk could not be deleted; it will be uploaded again to the same key.")
                }
            }
        }
        Err(e) if e.is_retryable() => {
            tracing::warn!(output = %out.id, error = %ErrorChain(&e), "Upload failed; will retry.");
            out.buffer.retry_later(chunk, &e);
        }
        Err(e) => {
            tracing::error!(output = %out.id, error = %ErrorChain(&e), "Upload failed with an error that retrying cannot fix (permissions, bucket, request); will retry in case it is fixed.");
            lock(progress)
                .failures
                .push(format!("output {}: {}", out.id, ErrorChain(&e)));
            out.buffer.retry_later(chunk, &e);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use logferry_core::{AckToken, Timestamp};
    use logferry_source_syslog::{SyslogBatch, SyslogRecord};
    use tokio::sync::mpsc;

    use super::{Incoming, SYSLOG_COALESCE_RECORDS, single_value};

    fn syslog_batch(tag: &str, messages: &[&str]) -> SyslogBatch {
        SyslogBatch {
            tag: Arc::from(tag),
            records: messages
                .iter()
                .map(|m| SyslogRecord {
                    time: Timestamp::from_unix(0, 0).unwrap(),
                    json: format!("{{\"message\":\"{m}\"}}"),
                })
                .collect(),
            ack: AckToken::new().0,
        }
    }

    #[test]
    fn queued_syslog_batches_merge_into_one_batch_per_tag_in_order() {
        let (tx, mut rx) = mpsc::channel(16);
        for batch in [
            syslog_batch("s.user.notice", &["b"]),
            syslog_batch("s.auth.info", &["c"]),
            syslog_batch("s.user.notice", &["d", "e"]),
        ] {
            tx.try_send(batch).unwrap();
        }
        let merged = Incoming::from_syslog(syslog_batch("s.user.notice", &["a"]), &mut rx);
        let shape: Vec<(&str, Vec<&str>, usize)> = merged
            .iter()
            .map(|m| {
                let messages = m.records.iter().map(|r| &r.json[12..13]).collect();
                (&*m.tag, messages, m.acks.len())
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("s.user.notice", vec!["a", "b", "d", "e"], 3),
                ("s.auth.info", vec!["c"], 1)
            ]
        );
        assert!(merged.iter().all(|m| m.position.is_none()));
        assert!(rx.try_recv().is_err(), "the queue was drained");
    }

    #[test]
    fn merging_stops_after_the_record_limit_and_leaves_the_rest_queued() {
        let (tx, mut rx) = mpsc::channel(4);
        let big: Vec<String> = (0..SYSLOG_COALESCE_RECORDS)
            .map(|i| i.to_string())
            .collect();
        let big: Vec<&str> = big.iter().map(String::as_str).collect();
        tx.try_send(syslog_batch("t", &big)).unwrap();
        tx.try_send(syslog_batch("t", &["later"])).unwrap();
        let merged = Incoming::from_syslog(syslog_batch("t", &["first"]), &mut rx);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].records.len(), SYSLOG_COALESCE_RECORDS + 1);
        assert_eq!(
            rx.try_recv().unwrap().records[0].json,
            r#"{"message":"later"}"#
        );
    }

    fn value(json: &str, key: &str) -> String {
        let mut out = Vec::new();
        single_value(json, key, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn errors_are_logged_with_their_causes() {
        let inner = std::io::Error::other("disk full");
        let outer = logferry_sink_s3::SinkError::Encode {
            key: "k.gz".into(),
            source: inner,
        };
        assert_eq!(
            logferry_core::ErrorChain(&outer).to_string(),
            "encoding the chunk for `k.gz` failed: disk full"
        );
    }

    #[test]
    fn single_value_unescapes_the_member() {
        assert_eq!(
            value(r#"{"message":"a \"b\"\tc"}"#, "message"),
            "a \"b\"\tc"
        );
        assert_eq!(value(r#"{"message":"x\u00e9"}"#, "message"), "x\u{e9}");
        assert_eq!(value(r#"{"level":"info","log":"hi"}"#, "log"), "hi");
        assert_eq!(value(r#"{"log":{"a":1}}"#, "log"), r#"{"a":1}"#);
        assert_eq!(value(r#"{"n":1}"#, "message"), r#"{"n":1}"#);
        // Not the fast path's shape: a second member after the message.
        assert_eq!(value(r#"{"message":"a","b":"c"}"#, "message"), "a");
    }
}
