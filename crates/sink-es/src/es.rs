//! The Elasticsearch driver: batches events, keeps `concurrency` bulk requests in flight, and
//! retries whole requests or just their failed items.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::EsError;
use crate::config::{Compression, EsConfig, OpType};
use crate::dead_letter::DeadLetterWriter;
use crate::encode::{Batch, Batcher, Item, Limits, encode_batch};
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
    op_type: OpType,
    compression: Compression,
    level: u32,
    backoff: Backoff,
    retry_max_times: Option<u32>,
    max_bytes: usize,
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
        let context = Arc::new(Context {
            transport,
            outcomes: Outcomes {
                name: name.to_string(),
                dead_letter,
                counters: Arc::clone(&counters),
            },
            op_type: self.op_type,
            compression: self.compression,
            level: self.compression_level,
            backoff: Backoff {
                initial: self.retry_initial_backoff.as_duration(),
                max: self.retry_max_backoff.as_duration(),
            },
            retry_max_times: self.retry_max_times,
            max_bytes,
        });
        let batcher = Batcher::new(
            template,
            self.id,
            Limits {
                max_events: self.batch_max_events,
                max_bytes,
            },
        );
        let (tx, rx) = mpsc::channel(self.concurrency.max(2));
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
    loop {
        let deadline = batcher
            .opened
            .map(|opened| tokio::time::Instant::from_std(opened + batch_timeout));
        let received = tokio::select! {
            received = rx.recv() => received,
            _ = async { tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if deadline.is_some() => {
                ready.push(batcher.take());
                for batch in ready.drain(..) {
                    dispatch(&context, batch, &permits, &mut tasks, &cancel).await;
                }
                continue;
            }
            _ = cancelled(&mut cancel) => break,
        };
        let Some(events) = received else { break };
        let mut unroutable = Vec::new();
        for event in events {
            if let Err(failed) = batcher.push(event, &mut ready) {
                let (event, reason) = *failed;
                unroutable.push((event, None, reason.to_string()));
            }
        }
        context.outcomes.rejected(unroutable);
        for batch in ready.drain(..) {
            dispatch(&context, batch, &permits, &mut tasks, &cancel).await;
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
        dispatch(&context, batcher.take(), &permits, &mut tasks, &cancel).await;
    }
    while tasks.join_next().await.is_some() {}
}

async fn dispatch(
    context: &Arc<Context>,
    batch: Batch,
    permits: &Arc<Semaphore>,
    tasks: &mut JoinSet<()>,
    cancel: &watch::Receiver<bool>,
) {
    if batch.is_empty() {
        return;
    }
    // Waiting for a permit is the backpressure: the channel fills and `send` waits.
    let Ok(permit) = Arc::clone(permits).acquire_owned().await else {
        return;
    };
    tasks.spawn(deliver(Arc::clone(context), batch, permit, cancel.clone()));
}

/// The fields of a bulk answer the sink reads (it asks for no others with `filter_path`).
#[derive(Debug, Deserialize)]
struct BulkAnswer {
    #[serde(default)]
    errors: bool,
    #[serde(default)]
    items: Vec<BulkItem>,
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
async fn deliver(
    context: Arc<Context>,
    batch: Batch,
    permit: OwnedSemaphorePermit,
    mut cancel: watch::Receiver<bool>,
) {
    let outcomes = &context.outcomes;
    let counters = &outcomes.counters;
    let mut queue = VecDeque::from([batch]);
    let mut body = Vec::with_capacity(context.max_bytes / 4);
    while let Some(mut batch) = queue.pop_front() {
        let mut round = 0u32;
        loop {
            if *cancel.borrow() {
                outcomes.errored(batch.items.into_iter().map(|i| i.event));
                break;
            }
            encode_batch(
                &batch,
                context.op_type,
                context.compression,
                context.level,
                &mut body,
            );
            let bytes = Bytes::from(std::mem::take(&mut body));
            Counters::add(&counters.requests, 1);
            Counters::add(&counters.bytes_sent, bytes.len() as u64);
            let result = tokio::select! {
                result = context.transport.post_bulk(bytes.clone()) => result,
                _ = cancelled(&mut cancel) => {
                    outcomes.errored(batch.items.into_iter().map(|i| i.event));
                    break;
                }
            };
            if let Ok(reclaimed) = bytes.try_into_mut() {
                body = reclaimed.into();
            }
            let items = std::mem::take(&mut batch.items);
            let retry = match result {
                Ok(answer) if (200..300).contains(&answer.status) => {
                    match serde_json::from_slice::<BulkAnswer>(&answer.body) {
                        Ok(parsed) if !parsed.errors => {
                            outcomes.delivered(items.into_iter().map(|i| i.event));
                            break;
                        }
                        Ok(parsed) if parsed.items.len() == items.len() => {
                            settle_items(&context, items, parsed.items)
                        }
                        Ok(parsed) => {
                            tracing::warn!(output = %outcomes.name, host = %answer.host, sent = items.len(), answered = parsed.items.len(), "Bulk answer has the wrong number of items; retrying the request.");
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
                    let mut items = items;
                    let second = items.split_off(items.len() / 2);
                    let first = Batch {
                        items,
                        indices: batch.indices.clone(),
                        bytes: 0,
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
                    tracing::warn!(output = %outcomes.name, error = %err, source = ?std::error::Error::source(&err), "Bulk request failed; retrying.");
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
            let (mut again, mut exhausted) = (Vec::with_capacity(retry.len()), Vec::new());
            for mut item in retry {
                item.attempts += 1;
                if context
                    .retry_max_times
                    .is_some_and(|max| item.attempts > max)
                {
                    exhausted.push(item.event);
                } else {
                    again.push(item);
                }
            }
            outcomes.errored(exhausted);
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

/// Settles each item of a partly failed bulk; returns the items to send again.
fn settle_items(context: &Context, items: Vec<Item>, answers: Vec<BulkItem>) -> Vec<Item> {
    let outcomes = &context.outcomes;
    let mut retry = Vec::new();
    let mut rejected = Vec::new();
    let (mut delivered, mut conflicts) = (0u64, 0u64);
    for (item, answer) in items.into_iter().zip(answers) {
        let result = answer.create;
        match classify_item(result.status, context.op_type) {
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
        let answer: BulkAnswer = serde_json::from_str(r#"{"errors":false}"#).unwrap();
        assert!(!answer.errors && answer.items.is_empty());
        let answer: BulkAnswer = serde_json::from_str(
            r#"{"took":3,"errors":true,"items":[{"create":{"_index":"a","_id":"1","status":201}},
            {"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"bad field"}}},
            {"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}}]}"#,
        )
        .unwrap();
        let statuses: Vec<u16> = answer.items.iter().map(|i| i.create.status).collect();
        assert_eq!(statuses, [201, 400, 429]);
        assert_eq!(
            item_reason(400, answer.items[1].create.error.as_ref()),
            "mapper_parsing_exception: bad field (HTTP 400)"
        );
        assert_eq!(item_reason(404, None), "HTTP 404");
    }
}
