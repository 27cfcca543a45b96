//! Polling an SQS queue: receive, read the objects, wait for acknowledgements, delete.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use logferry_core::{AckStatus, AckToken, ShutdownSignal};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::fetch::{ObjectFetcher, sdk_retryable};
use crate::notification::parse_notification;
use crate::reader::{ObjectBatch, ObjectReader};
use crate::stats::{Counters, SqsStats, SqsSummary};
use crate::{AwsClients, SourceError, SqsInputConfig};

/// Default of [`SqsSource::shutdown_timeout`].
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest pause between failed ReceiveMessage calls.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One `[inputs.X]` of `type = "sqs"`: polls its queue and turns the objects its
/// notifications name into [`ObjectBatch`]es.
///
/// Driving it: create a bounded channel, [`SqsSource::run`] the source with its sender, and
/// pass every batch received to the outputs; release each batch's acknowledgement
/// (`events.ack`, `failures_ack`) once the output has stored it (dropping it means
/// `Delivered`; `update(AckStatus::Errored)` or `Rejected` first means "do not delete"). A
/// message is deleted when every batch of every object it names is released as delivered;
/// otherwise it is left in the queue and reappears after the visibility timeout. A full
/// channel stops the readers, which stops polling.
///
/// Keep receiving from the channel until `run` returns: during shutdown in-flight messages
/// still produce batches and wait for their acknowledgements.
#[derive(Debug)]
pub struct SqsSource {
    id: String,
    config: SqsInputConfig,
    sqs: aws_sdk_sqs::Client,
    fetcher: ObjectFetcher,
    reader: Arc<ObjectReader>,
    stats: SqsStats,
    shutdown_timeout: Duration,
}

struct Context {
    id: String,
    queue_url: String,
    visibility: Duration,
    sqs: aws_sdk_sqs::Client,
    fetcher: ObjectFetcher,
    reader: Arc<ObjectReader>,
    workers: Semaphore,
    stats: SqsStats,
}

impl SqsSource {
    /// Builds the source (validates `config`; sends nothing).
    pub fn new(
        id: impl Into<String>,
        config: SqsInputConfig,
        clients: &AwsClients,
    ) -> Result<SqsSource, SourceError> {
        config.validate()?;
        let stats = SqsStats::default();
        let reader = ObjectReader::new(&config.reader_config())?.with_stats(stats.clone());
        Ok(SqsSource {
            id: id.into(),
            config,
            sqs: clients.sqs.clone(),
            fetcher: ObjectFetcher::new(Some(clients.s3.clone())),
            reader: Arc::new(reader),
            stats,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        })
    }

    /// How long in-flight messages may take to finish after shutdown is signalled before
    /// they are abandoned (not deleted). Default: 30 seconds.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> SqsSource {
        self.shutdown_timeout = timeout;
        self
    }

    /// The source's counters.
    pub fn stats(&self) -> SqsStats {
        self.stats.clone()
    }

    /// Checks that the queue exists and can be read (GetQueueAttributes); returns the
    /// approximate number of visible messages.
    pub async fn check(&self) -> Result<u64, SourceError> {
        let attrs = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.config.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| SourceError::Sqs {
                operation: "GetQueueAttributes",
                queue_url: self.config.queue_url.clone(),
                retryable: sdk_retryable(&e),
                source: Box::new(e),
            })?;
        Ok(attrs
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Polls until `shutdown`, then lets in-flight messages finish for up to the shutdown
    /// timeout. Returns the counters, or [`SourceError::OutputClosed`] if `out`'s receiver
    /// was dropped.
    pub async fn run(
        self,
        out: mpsc::Sender<ObjectBatch>,
        shutdown: ShutdownSignal,
    ) -> Result<SqsSummary, SourceError> {
        let config = &self.config;
        let ctx = Arc::new(Context {
            id: self.id.clone(),
            queue_url: config.queue_url.clone(),
            visibility: config.visibility_timeout.as_duration(),
            sqs: self.sqs.clone(),
            fetcher: self.fetcher.clone(),
            reader: Arc::clone(&self.reader),
            workers: Semaphore::new(config.workers),
            stats: self.stats.clone(),
        });
        let in_flight = Arc::new(Semaphore::new(config.max_in_flight));
        let mut tasks: JoinSet<Result<(), SourceError>> = JoinSet::new();
        let mut stop = std::pin::pin!(shutdown.wait());
        let mut backoff = Duration::from_millis(500);
        let mut output_closed = false;
        tracing::info!(input = %self.id, queue_url = %config.queue_url, "SQS source started.");
        loop {
            while let Some(done) = tasks.try_join_next() {
                if matches!(done, Ok(Err(SourceError::OutputClosed))) {
                    output_closed = true;
                }
            }
            if output_closed || out.is_closed() {
                output_closed = true;
                break;
            }
            let first = tokio::select! {
                _ = &mut stop => break,
                permit = Arc::clone(&in_flight).acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let mut permits = vec![first];
            while permits.len() < config.max_number_of_messages {
                match Arc::clone(&in_flight).try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let receive = self
                .sqs
                .receive_message()
                .queue_url(&config.queue_url)
                .max_number_of_messages(permits.len() as i32)
                .wait_time_seconds(config.wait_time.as_duration().as_secs() as i32)
                .visibility_timeout(ctx.visibility.as_secs() as i32)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send();
            let received = tokio::select! {
                _ = &mut stop => break,
                r = receive => r,
            };
            let messages = match received {
                Ok(output) => {
                    backoff = Duration::from_millis(500);
                    output.messages.unwrap_or_default()
                }
                Err(e) => {
                    Counters::add(&self.stats.counters.sqs_errors, 1);
                    let err = SourceError::Sqs {
                        operation: "ReceiveMessage",
                        queue_url: config.queue_url.clone(),
                        retryable: sdk_retryable(&e),
                        source: Box::new(e),
                    };
                    tracing::error!(input = %self.id, error = %err, retry_in = ?backoff, "Receiving from SQS failed.");
                    drop(permits);
                    tokio::select! {
                        _ = &mut stop => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            for message in messages {
                let Some(permit) = permits.pop() else { break };
                Counters::add(&self.stats.counters.messages_received, 1);
                let ctx = Arc::clone(&ctx);
                let out = out.clone();
                tasks.spawn(async move {
                    let result = handle_message(&ctx, message, &out).await;
                    drop(permit);
                    result
                });
            }
        }
        tracing::info!(input = %self.id, in_flight = tasks.len(), "SQS source stopping: polling stopped.");
        let deadline = tokio::time::sleep(self.shutdown_timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => {
                    tracing::warn!(input = %self.id, abandoned = tasks.len(),
                        "Shutdown timeout: unfinished messages are left in the queue.");
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    break;
                }
                next = tasks.join_next() => match next {
                    None => break,
                    Some(Ok(Err(SourceError::OutputClosed))) => output_closed = true,
                    Some(_) => {}
                },
            }
        }
        let summary = self.stats.summary();
        tracing::info!(input = %self.id, ?summary, "SQS source stopped.");
        if output_closed {
            return Err(SourceError::OutputClosed);
        }
        Ok(summary)
    }
}

async fn handle_message(
    ctx: &Context,
    message: aws_sdk_sqs::types::Message,
    out: &mpsc::Sender<ObjectBatch>,
) -> Result<(), SourceError> {
    let counters = &ctx.stats.counters;
    let id = message.message_id().unwrap_or("(no id)").to_string();
    let Some(receipt) = message.receipt_handle().map(str::to_string) else {
        return Ok(());
    };
    let body = message.body().unwrap_or_default();
    let notification = match parse_notification(&id, body) {
        Ok(n) => n,
        Err(e) => {
            Counters::add(&counters.malformed_messages, 1);
            tracing::error!(input = %ctx.id, error = %e,
                "Malformed SQS message left in the queue (its redrive policy moves it to a dead-letter queue).");
            return Ok(());
        }
    };
    Counters::add(&counters.test_events, notification.test_events);
    Counters::add(&counters.non_create_events, notification.non_create_events);
    let (token, receiver) = AckToken::new();
    let work = async {
        let token = token;
        let result = {
            let _worker = ctx.workers.acquire().await;
            let mut result = Ok(());
            for object in notification.objects {
                result = ctx
                    .fetcher
                    .process_object(&ctx.reader, object, Some(&token), out)
                    .await;
                if result.is_err() {
                    break;
                }
            }
            result
        };
        if result.is_err() {
            token.update(AckStatus::Errored);
        }
        drop(token);
        match result {
            Ok(()) => Ok(receiver.await),
            Err(e) => Err(e),
        }
    };
    let outcome = {
        let mut work = std::pin::pin!(work);
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + ctx.visibility / 2,
            ctx.visibility / 2,
        );
        loop {
            tokio::select! {
                outcome = &mut work => break outcome,
                _ = ticker.tick() => extend_visibility(ctx, &id, &receipt).await,
            }
        }
    };
    match outcome {
        Ok(AckStatus::Delivered) => delete(ctx, &id, &receipt).await,
        Ok(status) => {
            Counters::add(&counters.messages_failed, 1);
            tracing::warn!(input = %ctx.id, message_id = %id, ?status,
                "Events were not delivered: the message is left to reappear.");
            Ok(())
        }
        Err(SourceError::OutputClosed) => Err(SourceError::OutputClosed),
        Err(e) => {
            Counters::add(&counters.messages_failed, 1);
            tracing::warn!(input = %ctx.id, message_id = %id, error = %e,
                "Message processing failed: it is left to reappear.");
            Ok(())
        }
    }
}

async fn extend_visibility(ctx: &Context, id: &str, receipt: &str) {
    let result = ctx
        .sqs
        .change_message_visibility()
        .queue_url(&ctx.queue_url)
        .receipt_handle(receipt)
        .visibility_timeout(ctx.visibility.as_secs() as i32)
        .send()
        .await;
    match result {
        Ok(_) => Counters::add(&ctx.stats.counters.visibility_extensions, 1),
        Err(e) => {
            Counters::add(&ctx.stats.counters.sqs_errors, 1);
            tracing::warn!(input = %ctx.id, message_id = %id, error = %e,
                "Extending the visibility timeout failed.");
        }
    }
}

async fn delete(ctx: &Context, id: &str, receipt: &str) -> Result<(), SourceError> {
    let result = ctx
        .sqs
        .delete_message()
        .queue_url(&ctx.queue_url)
        .receipt_handle(receipt)
        .send()
        .await;
    match result {
        Ok(_) => Counters::add(&ctx.stats.counters.messages_deleted, 1),
        Err(e) => {
            Counters::add(&ctx.stats.counters.sqs_errors, 1);
            tracing::warn!(input = %ctx.id, message_id = %id, error = %e,
                "Deleting the message failed: it will be processed again.");
        }
    }
    Ok(())
}
