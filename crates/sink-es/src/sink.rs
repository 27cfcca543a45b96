//! The output handle: a bounded channel into a task that batches, sends and acknowledges.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use logferry_core::AckStatus;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::dead_letter::DeadLetterWriter;
use crate::event::EsEvent;

/// Counters of an output since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkStats {
    /// Events stored (2xx items, NDJSON lines written).
    pub delivered: u64,
    /// `create` items answered 409 (already stored): counted as delivered too.
    pub conflicts: u64,
    /// Events rejected for good and written to the dead-letter output.
    pub dead_lettered: u64,
    /// Events rejected for good with no dead-letter output (acknowledged `Rejected`).
    pub rejected: u64,
    /// Events given up (shutdown, `retry_max_times`): acknowledged `Errored`.
    pub errored: u64,
    /// Item retries (one per item per retry).
    pub retried_items: u64,
    /// HTTP requests sent.
    pub requests: u64,
    /// Requests that failed whole (connection, timeout, 429/5xx).
    pub failed_requests: u64,
    /// Bytes of request bodies sent (after compression).
    pub bytes_sent: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) delivered: AtomicU64,
    pub(crate) conflicts: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) errored: AtomicU64,
    pub(crate) retried_items: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) failed_requests: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> SinkStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SinkStats {
            delivered: get(&self.delivered),
            conflicts: get(&self.conflicts),
            dead_lettered: get(&self.dead_lettered),
            rejected: get(&self.rejected),
            errored: get(&self.errored),
            retried_items: get(&self.retried_items),
            requests: get(&self.requests),
            failed_requests: get(&self.failed_requests),
            bytes_sent: get(&self.bytes_sent),
        }
    }
}

/// What an output does with events it cannot deliver: shared by the ES and NDJSON drivers.
#[derive(Debug)]
pub(crate) struct Outcomes {
    pub(crate) name: String,
    pub(crate) dead_letter: Option<DeadLetterWriter>,
    pub(crate) counters: Arc<Counters>,
}

impl Outcomes {
    /// Stored: the acknowledgement is released as delivered.
    pub(crate) fn delivered(&self, events: impl IntoIterator<Item = EsEvent>) {
        let n = events.into_iter().count() as u64;
        Counters::add(&self.counters.delivered, n);
    }

    /// Given up for now: the unit of work must be retried later.
    pub(crate) fn errored(&self, events: impl IntoIterator<Item = EsEvent>) {
        let mut n = 0;
        for event in events {
            if let Some(ack) = event.ack {
                ack.finish(AckStatus::Errored);
            }
            n += 1;
        }
        if n > 0 {
            tracing::warn!(output = %self.name, events = n, "Events given up, not acknowledged.");
        }
        Counters::add(&self.counters.errored, n);
    }

    /// Rejected for good: dead-lettered (then delivered), else acknowledged `Rejected`.
    pub(crate) fn rejected(&self, rejected: Vec<(EsEvent, Option<u16>, String)>) {
        if rejected.is_empty() {
            return;
        }
        let n = rejected.len() as u64;
        tracing::warn!(output = %self.name, events = n, reason = %rejected[0].2, "Events rejected.");
        let written = match &self.dead_letter {
            Some(writer) => match writer.write_rejected(
                &self.name,
                rejected.iter().map(|(e, s, r)| (e, *s, r.as_str())),
            ) {
                Ok(()) => true,
                Err(err) => {
                    tracing::error!(output = %self.name, path = %writer.path().display(), error = %err, "Dead letters could not be written.");
                    self.errored(rejected.into_iter().map(|(e, _, _)| e));
                    return;
                }
            },
            None => false,
        };
        for (event, _, _) in rejected {
            if let (false, Some(ack)) = (written, event.ack) {
                ack.finish(AckStatus::Rejected);
            }
        }
        let counter = if written {
            &self.counters.dead_lettered
        } else {
            &self.counters.rejected
        };
        Counters::add(counter, n);
    }
}

/// The output was shut down; the events are handed back.
#[derive(Debug, thiserror::Error)]
#[error("output `{name}` is shut down")]
pub struct SinkClosed {
    /// The output's name.
    pub name: String,
    /// The events that were not taken.
    pub events: Vec<EsEvent>,
}

/// A running output (Elasticsearch or NDJSON): events go in with [`Sink::send`], which waits
/// while the output is saturated (backpressure), and each event's [`logferry_core::AckToken`]
/// reports its outcome.
#[derive(Debug)]
pub struct Sink {
    name: String,
    tx: mpsc::Sender<Vec<EsEvent>>,
    task: JoinHandle<()>,
    cancel: watch::Sender<bool>,
    counters: Arc<Counters>,
}

impl Sink {
    pub(crate) fn new(
        name: String,
        tx: mpsc::Sender<Vec<EsEvent>>,
        task: JoinHandle<()>,
        cancel: watch::Sender<bool>,
        counters: Arc<Counters>,
    ) -> Sink {
        Sink {
            name,
            tx,
            task,
            cancel,
            counters,
        }
    }

    /// The output's name (its `[outputs.NAME]`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands events to the output, waiting while its queue is full.
    pub async fn send(&self, events: Vec<EsEvent>) -> Result<(), SinkClosed> {
        if events.is_empty() {
            return Ok(());
        }
        self.tx.send(events).await.map_err(|e| SinkClosed {
            name: self.name.clone(),
            events: e.0,
        })
    }

    /// Sends the events of a partly filled batch now rather than at `batch_timeout`: for a
    /// producer that knows nothing more is coming for a while (the end of a backfill).
    pub async fn flush(&self) -> Result<(), SinkClosed> {
        self.tx.send(Vec::new()).await.map_err(|_| SinkClosed {
            name: self.name.clone(),
            events: Vec::new(),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> SinkStats {
        self.counters.snapshot()
    }

    /// Stops taking events, sends what is queued and waits for it for at most `timeout`; then
    /// gives up what is still pending (acknowledged `Errored`, so the SQS messages reappear)
    /// and returns the final counters.
    pub async fn shutdown(self, timeout: Duration) -> SinkStats {
        let Sink {
            name,
            tx,
            mut task,
            cancel,
            counters,
        } = self;
        drop(tx);
        if tokio::time::timeout(timeout, &mut task).await.is_err() {
            tracing::warn!(output = %name, ?timeout, "Output did not finish in time; giving up pending events.");
            cancel.send_replace(true);
            let _ = task.await;
        }
        counters.snapshot()
    }
}

/// Resolves when `cancel` turns true (never if its sender is dropped without that).
pub(crate) async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}
