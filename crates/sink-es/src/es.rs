//! The Elasticsearch driver: batches events, keeps `concurrency` bulk requests in flight, and
//! retries whole requests or just their failed items.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use logferry_core::ErrorChain;
use logferry_core::text::Text;

use crate::EsError;
use crate::config::{Compression, EsConfig};
use crate::dead_letter::DeadLetterWriter;
use crate::encode::{Batch, Batcher, Encoding, Item, Limits, encode_batch};
use crate::event::EsEvent;
use crate::retry::{Backoff, ItemAction, classify_item, is_retryable_status};
use crate::sink::{Counters, Outcomes, Sink, cancelled};
use crate::template::IndexTemplate;
use crate::transport::Transport;

/// Everything a request task needs.
#[derive(Debug)]
struct Context {
    transport: Transport,
    outcomes: Outcomes,
    encoding: Encoding,
    backoff: Backoff,
    retry_max_times: Option<u32>,
}

impl EsConfig {
    /// Validates the configuration, builds the HTTP client (TLS roots, credentials for SigV4)
    /// and starts the output on the current Tokio runtime. Nothing is sent until events
    /// arrive. Rejected events go to `dead_letter` when given.
    pub async fn build(
        &self,
        name: &str,
        dead_letter: Option<DeadLetterWriter>,
    ) -> Result<Sink, EsError> {
        self.validate()?;
        let template = IndexTemplate::parse(&self.index)?;
        let transport = Transport::build(self).await?;
        let counters = Arc::new(Counters::default());
        let max_bytes = self.batch_max_bytes.bytes() as usize;
        let encoding = Encoding {
            op: self.op_type,
            compression: self.compression,
            level: self.compression_level,
        };
        let context = Arc::new(Context {
            transport,
            outcomes: Outcomes {
                name: name.to_string(),
                dead_letter,
                counters: Arc::clone(&counters),
            },
            encoding,
            backoff: Backoff {
                initial: self.retry_initial_backoff.as_duration(),
                max: self.retry_max_backoff.as_duration(),
            },
            retry_max_times: self.retry_max_times,
        });
        let batcher = Batcher::new(
            template,
            self.id,
            Limits {
                max_events: self.batch_max_events,
                max_bytes,
            },
            encoding,
        );
        // One batch of events waits here while the driver fills a request and `concurrency`
        // are in flight: more would only hold memory (the sender waits: backpressure).
        let (tx, rx) = mpsc::channel(1);
        let (cancel, cancel_rx) = watch::channel(false);
        let task = tokio::spawn(drive(
            context,
            rx,
            batcher,
            self.batch_timeout.as_duration(),
            self.concurrency,
            cancel_rx,
        ));
        Ok(Sink::new(name.to_string(), tx, task, cancel, counters))
    }
}

async fn drive(
    context: Arc<Context>,
    mut rx: mpsc::Receiver<Vec<EsEvent>>,
    mut batcher: Batcher,
    batch_timeout: Duration,
    concurrency: usize,
    mut cancel: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = JoinSet::new();
    let mut ready = Vec::new();
    // A request slot is taken before more events are: while every slot is busy, events wait
    // in the channel (backpressure), not in a full batch here.
    let mut slot: Option<OwnedSemaphorePermit> = None;
    loop {
        if slot.is_none() {
            slot = tokio::select! {
                permit = Arc::clone(&permits).acquire_owned() => permit.ok(),
                _ = cancelled(&mut cancel) => break,
            };
        }
        let deadline = batcher
            .opened
            .map(|opened| tokio::time::Instant::from_std(opened + batch_timeout));
        let received = tokio::select! {
            received = rx.recv() => received,
            _ = async { tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if deadline.is_some() => {
                ready.push(batcher.take());
                for batch in ready.drain(..) {
                    dispatch(&context, batch, &mut slot, &permits, &mut tasks, &cancel).await;
                }
                continue;
            }
            _ = cancelled(&mut cancel) => break,
        };
        let Some(events) = received else { break };
        if events.is_empty() {
            // `Sink::flush`: the partly filled batch goes now.
            ready.push(batcher.take());
        }
        let mut unroutable = Vec::new();
        for event in events {
            if let Err(failed) = batcher.push(event, &mut ready) {
                let (event, reason) = *failed;
                unroutable.push((event, None, reason.to_string()));
            }
        }
        context.outcomes.rejected(unroutable);
        for batch in ready.drain(..) {
            dispatch(&context, batch, &mut slot, &permits, &mut tasks, &cancel).await;
        }
        while tasks.try_join_next().is_some() {}
    }
    if *cancel.borrow() {
        context
            .outcomes
            .errored(batcher.take().items.into_iter().map(|i| i.event));
        rx.close();
        while let Some(events) = rx.recv().await {
            context.outcomes.errored(events);
        }
    } else if !batcher.is_empty() {
        dispatch(
            &context,
            batcher.take(),
            &mut slot,
            &permits,
            &mut tasks,
            &cancel,
        )
        .await;
    }
    drop(slot);
    while tasks.join_next().await.is_some() {}
}

/// Starts the delivery of `batch` in the request slot `slot` holds, else in the next free one.
async fn dispatch(
    context: &Arc<Context>,
    batch: Batch,
    slot: &mut Option<OwnedSemaphorePermit>,
    permits: &Arc<Semaphore>,
    tasks: &mut JoinSet<()>,
    cancel: &watch::Receiver<bool>,
) {
    if batch.is_empty() {
        return;
    }
    let permit = match slot.take() {
        Some(permit) => permit,
        // Waiting for a permit is the backpressure: the channel fills and `send` waits.
        None => match Arc::clone(permits).acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => return,
        },
    };
    tasks.spawn(deliver(Arc::clone(context), batch, permit, cancel.clone()));
}

/// The fields of a bulk answer the sink reads (it asks for no others with `filter_path`).
/// The items are read only when `errors` is true: otherwise every item succeeded.
#[derive(Debug, Deserialize)]
struct BulkAnswer<'a> {
    #[serde(default)]
    errors: bool,
    #[serde(default, borrow)]
    items: Option<&'a RawValue>,
}

/// Reads a bulk answer: `None` when every item succeeded, else the items.
fn read_answer(body: &[u8]) -> serde_json::Result<Option<Vec<BulkItem>>> {
    let answer: BulkAnswer = serde_json::from_slice(body)?;
    if !answer.errors {
        return Ok(None);
    }
    match answer.items {
        Some(raw) => serde_json::from_str(raw.get()).map(Some),
        None => Ok(Some(Vec::new())),
    }
}

#[derive(Debug, Deserialize)]
struct BulkItem {
    #[serde(alias = "index", alias = "update", alias = "delete")]
    create: ItemResult,
}

#[derive(Debug, Deserialize)]
struct ItemResult {
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

fn item_reason(status: u16, error: Option<&serde_json::Value>) -> String {
    match error {
        Some(serde_json::Value::Object(e)) => {
            let kind = e.get("type").and_then(|v| v.as_str()).unwrap_or("error");
            let reason = e.get("reason").and_then(|v| v.as_str()).unwrap_or("");
            format!("{kind}: {reason} (HTTP {status})")
        }
        Some(other) => format!("{other} (HTTP {status})"),
        None => format!("HTTP {status}"),
    }
}

/// Sends one batch until every item is delivered, rejected or given up.
///
/// Once a batch is encoded, its documents live only in the request body (gzip: about an
/// eighth of their size): the events keep their metadata, and the documents are read back
/// from the body only when some items must be sent again, split or dead-lettered. A whole
/// request that failed is sent again as the same body.
async fn deliver(
    context: Arc<Context>,
    batch: Batch,
    permit: OwnedSemaphorePermit,
    mut cancel: watch::Receiver<bool>,
) {
    let outcomes = &context.outcomes;
    let counters = &outcomes.counters;
    let mut queue = VecDeque::from([batch]);
    while let Some(mut batch) = queue.pop_front() {
        let mut round = 0u32;
        // The body of `batch.items` as they are now, when it was encoded.
        let mut encoded: Option<Bytes> = batch.body.take();
        loop {
            if *cancel.borrow() {
                outcomes.errored(batch.items.into_iter().map(|i| i.event));
                break;
            }
            let bytes = match &encoded {
                Some(bytes) => bytes.clone(),
                None => {
                    let bytes = Bytes::from(encode_batch(&batch, context.encoding));
                    for item in &mut batch.items {
                        item.event.json = Text::default();
                    }
                    encoded = Some(bytes.clone());
                    bytes
                }
            };
            Counters::add(&counters.requests, 1);
            Counters::add(&counters.bytes_sent, bytes.len() as u64);
            let result = tokio::select! {
                result = context.transport.post_bulk(bytes) => result,
                _ = cancelled(&mut cancel) => {
                    outcomes.errored(batch.items.into_iter().map(|i| i.event));
                    break;
                }
            };
            // Every branch that hands documents on (to a retry of some items, a split or the
            // dead-letter output) reads them back first.
            let restore = |items: &mut [Item], encoded: &mut Option<Bytes>| {
                if let Some(body) = encoded.take() {
                    restore_documents(&body, context.encoding.compression, items);
                }
            };
            let mut items = std::mem::take(&mut batch.items);
            let retry = match result {
                Ok(answer) if (200..300).contains(&answer.status) => {
                    match read_answer(&answer.body) {
                        Ok(None) => {
                            outcomes.delivered(items.into_iter().map(|i| i.event));
                            break;
                        }
                        Ok(Some(answered)) if answered.len() == items.len() => {
                            restore(&mut items, &mut encoded);
                            settle_items(&context, items, answered)
                        }
                        Ok(Some(answered)) => {
                            tracing::warn!(output = %outcomes.name, host = %answer.host, sent = items.len(), answered = answered.len(), "Bulk answer has the wrong number of items; retrying the request.");
                            Counters::add(&counters.failed_requests, 1);
                            items
                        }
                        Err(err) => {
                            tracing::warn!(output = %outcomes.name, host = %answer.host, error = %err, "Unreadable bulk answer; retrying the request.");
                            Counters::add(&counters.failed_requests, 1);
                            items
                        }
                    }
                }
                Ok(answer) if answer.status == 413 && items.len() > 1 => {
                    // Too large for the cluster's http.max_content_length: send it in halves.
                    restore(&mut items, &mut encoded);
                    let second = items.split_off(items.len() / 2);
                    let first = Batch {
                        items,
                        indices: batch.indices.clone(),
                        bytes: 0,
                        body: None,
                    };
                    let second = first.with_items(second);
                    let first = second.with_items(first.items);
                    queue.push_front(second);
                    queue.push_front(first);
                    break;
                }
                Ok(answer) if is_retryable_status(answer.status) => {
                    let text = String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)])
                        .into_owned();
                    tracing::warn!(output = %outcomes.name, host = %answer.host, status = answer.status, body = %text, "Bulk request failed; retrying.");
                    Counters::add(&counters.failed_requests, 1);
                    items
                }
                Ok(answer) => {
                    restore(&mut items, &mut encoded);
                    let text = String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)])
                        .into_owned();
                    let reason =
                        format!("bulk request rejected with HTTP {}: {text}", answer.status);
                    outcomes.rejected(
                        items
                            .into_iter()
                            .map(|i| (i.event, Some(answer.status), reason.clone()))
                            .collect(),
                    );
                    break;
                }
                Err(err) if err.is_retryable() => {
                    tracing::warn!(output = %outcomes.name, error = %ErrorChain(&err), "Bulk request failed; retrying.");
                    Counters::add(&counters.failed_requests, 1);
                    if matches!(err, EsError::Connection { .. } | EsError::Timeout { .. }) {
                        context.transport.rotate();
                    }
                    items
                }
                Err(err) => {
                    tracing::error!(output = %outcomes.name, error = %err, "Bulk request cannot be sent.");
                    outcomes.errored(items.into_iter().map(|i| i.event));
                    break;
                }
            };
            let mut retry = retry;
            for item in &mut retry {
                item.attempts += 1;
            }
            let over = |item: &Item| {
                context
                    .retry_max_times
                    .is_some_and(|max| item.attempts > max)
            };
            if retry.iter().any(over)
                && !retry.iter().all(over)
                && let Some(body) = encoded.take()
            {
                // Only some of the encoded items are given up (items of one request share
                // their attempts, so this does not happen today): the rest are encoded anew.
                restore_documents(&body, context.encoding.compression, &mut retry);
            }
            let (again, exhausted): (Vec<Item>, Vec<Item>) =
                retry.into_iter().partition(|item| !over(item));
            outcomes.errored(exhausted.into_iter().map(|i| i.event));
            if again.is_empty() {
                break;
            }
            Counters::add(&counters.retried_items, again.len() as u64);
            batch = batch.with_items(again);
            round += 1;
            let delay = context.backoff.delay(round);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancelled(&mut cancel) => {}
            }
        }
    }
    drop(permit);
}

/// Reads the documents of `items` back from the body they were encoded into (the item at
/// position `i` is the body's line `2i + 1`).
fn restore_documents(body: &[u8], compression: Compression, items: &mut [Item]) {
    let plain;
    let text: &[u8] = match compression {
        Compression::None => body,
        Compression::Gzip => {
            let mut decoded = Vec::with_capacity(body.len() * 8);
            // The body was written by this process's encoder: it decodes.
            let _ =
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(body), &mut decoded);
            plain = decoded;
            &plain
        }
    };
    let mut lines = text.split(|&b| b == b'\n').skip(1).step_by(2);
    for item in items {
        let document = lines.next().unwrap_or_default();
        item.event.json = String::from_utf8_lossy(document).into_owned().into();
    }
}

/// Settles each item of a partly failed bulk; returns the items to send again.
fn settle_items(context: &Context, items: Vec<Item>, answers: Vec<BulkItem>) -> Vec<Item> {
    let outcomes = &context.outcomes;
    let mut retry = Vec::new();
    let mut rejected = Vec::new();
    let (mut delivered, mut conflicts) = (0u64, 0u64);
    for (item, answer) in items.into_iter().zip(answers) {
        let result = answer.create;
        match classify_item(result.status, context.encoding.op) {
            ItemAction::Delivered => delivered += 1,
            ItemAction::Conflict => {
                delivered += 1;
                conflicts += 1;
            }
            ItemAction::Retry => retry.push(item),
            ItemAction::Reject => {
                let reason = item_reason(result.status, result.error.as_ref());
                rejected.push((item.event, Some(result.status), reason));
            }
        }
    }
    Counters::add(&outcomes.counters.delivered, delivered);
    Counters::add(&outcomes.counters.conflicts, conflicts);
    outcomes.rejected(rejected);
    retry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_filtered_and_full_answers() {
        assert!(read_answer(br#"{"errors":false}"#).unwrap().is_none());
        // Items of an answer without errors are not read (a full answer, unfiltered).
        assert!(
            read_answer(br#"{"took":1,"errors":false,"items":[{"create":{"status":201}}]}"#)
                .unwrap()
                .is_none()
        );
        assert!(read_answer(br#"{"errors":false,"items":[{"create":"#).is_err());
        assert_eq!(
            read_answer(br#"{"errors":true}"#).unwrap().unwrap().len(),
            0
        );
        let items = read_answer(
            br#"{"took":3,"errors":true,"items":[{"create":{"_index":"a","_id":"1","status":201}},
            {"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"bad field"}}},
            {"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}}]}"#,
        )
        .unwrap()
        .unwrap();
        let statuses: Vec<u16> = items.iter().map(|i| i.create.status).collect();
        assert_eq!(statuses, [201, 400, 429]);
        assert_eq!(
            item_reason(400, items[1].create.error.as_ref()),
            "mapper_parsing_exception: bad field (HTTP 400)"
        );
        assert_eq!(item_reason(404, None), "HTTP 404");
    }
}
