//! From the sources' object batches to the outputs: events become [`EsEvent`]s carrying the
//! batch's acknowledgement, failed lines and objects go to the dead-letter output.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use logferry_core::AckStatus;
use logferry_sink_es::{DeadLetterWriter, EsEvent, EventOrigin, OutputConfig, Sink, SinkStats};
use logferry_source_sqs::ObjectBatch;
use tokio::sync::mpsc;

use crate::config::IngesterConfig;

/// The running outputs and the dead-letter writer.
#[derive(Debug)]
pub struct Outputs {
    sinks: BTreeMap<String, Sink>,
    dead_letter: Option<DeadLetterWriter>,
    failures: AtomicU64,
}

impl Outputs {
    /// Opens the dead-letter file and starts every output of `config` (on the current Tokio
    /// runtime).
    pub async fn start(config: &IngesterConfig) -> anyhow::Result<Outputs> {
        let dead_letter = match &config.dead_letter {
            Some(c) => Some(DeadLetterWriter::open(c).context("dead_letter")?),
            None => None,
        };
        let mut sinks = BTreeMap::new();
        for (id, output) in &config.outputs {
            let sink = match output {
                OutputConfig::Elasticsearch(es) => es.build(id, dead_letter.clone()).await,
                OutputConfig::Ndjson(nd) => nd.build(id, dead_letter.clone()),
            }
            .with_context(|| format!("output {id}"))?;
            sinks.insert(id.clone(), sink);
        }
        Ok(Outputs {
            sinks,
            dead_letter,
            failures: AtomicU64::new(0),
        })
    }

    /// Lines and objects that produced no event so far (dead-lettered or logged).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Sends the events of `batch` to the outputs named in `targets` (each event holds a clone
    /// of the batch's acknowledgement) and dead-letters its failures. Waits while an output is
    /// full (backpressure); fails only when an output has stopped.
    pub async fn deliver(&self, batch: ObjectBatch, targets: &[String]) -> anyhow::Result<()> {
        let ObjectBatch {
            object,
            mut events,
            origins,
            failures,
            failures_ack,
        } = batch;
        let bucket: Arc<str> = Arc::from(object.bucket.as_str());
        let key: Arc<str> = Arc::from(object.key.as_str());
        let version: Option<Arc<str>> = object
            .version_id
            .as_deref()
            .or(object.etag.as_deref())
            .map(Arc::from);
        let origin = |line: u64, offset: u64| EventOrigin {
            bucket: Arc::clone(&bucket),
            key: Arc::clone(&key),
            version: version.clone(),
            line,
            offset,
        };

        if !failures.is_empty() {
            self.failures
                .fetch_add(failures.len() as u64, Ordering::Relaxed);
            let mut status = AckStatus::Delivered;
            for failure in &failures {
                let at = origin(failure.origin.line, failure.origin.offset);
                let error = failure.error.to_string();
                match &self.dead_letter {
                    Some(dl) => {
                        let raw = failure.raw.as_deref().unwrap_or("");
                        if let Err(e) = dl.write_parse_failure(&at, raw.as_bytes(), &error) {
                            tracing::error!(path = %dl.path().display(), error = %e, "Cannot write to the dead-letter file; the message will be read again.");
                            status = AckStatus::Errored;
                        }
                    }
                    None => tracing::warn!(
                        bucket = %at.bucket,
                        key = %at.key,
                        line = at.line,
                        %error,
                        "A line produced no event (no [dead_letter] configured)."
                    ),
                }
            }
            if let Some(ack) = failures_ack {
                ack.finish(status);
            }
        }

        let ack = events.ack.take();
        let mut documents = std::mem::take(&mut events.events);
        for (i, target) in targets.iter().enumerate() {
            let Some(sink) = self.sinks.get(target) else {
                continue;
            };
            let last = i + 1 == targets.len();
            let owned = if last {
                std::mem::take(&mut documents)
            } else {
                documents.clone()
            };
            let batch: Vec<EsEvent> = owned
                .into_iter()
                .zip(&origins)
                .map(|(event, o)| EsEvent {
                    timestamp: event.timestamp(),
                    json: event.into_text(),
                    origin: origin(o.line, o.offset),
                    ack: ack.clone(),
                })
                .collect();
            if batch.is_empty() {
                continue;
            }
            if let Err(closed) = sink.send(batch).await {
                // The events were not taken: the message must not be deleted. Every clone of
                // the batch's token shares one outcome, so marking one marks them all.
                if let Some(ack) = &ack {
                    ack.update(AckStatus::Errored);
                }
                return Err(anyhow::anyhow!("output {target} stopped: {closed}"));
            }
        }
        Ok(())
    }

    /// Asks every output to send its partly filled batch now.
    pub async fn flush(&self) -> anyhow::Result<()> {
        for (id, sink) in &self.sinks {
            if let Err(closed) = sink.flush().await {
                return Err(anyhow::anyhow!("output {id} stopped: {closed}"));
            }
        }
        Ok(())
    }

    /// Flushes every output within `timeout`; returns their counters.
    pub async fn shutdown(self, timeout: Duration) -> BTreeMap<String, SinkStats> {
        let mut out = BTreeMap::new();
        for (id, sink) in self.sinks {
            out.insert(id, sink.shutdown(timeout).await);
        }
        out
    }
}

/// Delivers every batch received on `rx` to `targets` until the channel closes.
pub(crate) async fn forward(
    outputs: Arc<Outputs>,
    mut rx: mpsc::Receiver<ObjectBatch>,
    targets: Vec<String>,
) -> anyhow::Result<()> {
    while let Some(batch) = rx.recv().await {
        outputs.deliver(batch, &targets).await?;
    }
    // The input has ended: what the outputs hold in partly filled batches goes now, not at
    // their batch_timeout (a backfill waits for these acknowledgements before it ends).
    outputs.flush().await
}
