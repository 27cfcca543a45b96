//! `logferry-ingester run`: every SQS input polled until shutdown, its events delivered to its
//! outputs; messages deleted only once every event is acknowledged.

use std::sync::Arc;

use anyhow::Context as _;
use logferry_core::ShutdownSignal;
use logferry_sink_es::SinkStats;
use logferry_source_sqs::{AwsClients, SqsSource, SqsSummary};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::config::IngesterConfig;
use crate::pipeline::{Outputs, forward};

/// Object batches queued between an input and its outputs: a slow output soon stops polling.
const CHANNEL_BATCHES: usize = 4;

/// What `run` did, per input and per output.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct RunSummary {
    /// Counters of each input.
    pub inputs: Vec<(String, SqsSummary)>,
    /// Counters of each output.
    pub outputs: Vec<(String, SinkStats)>,
    /// Lines and objects that produced no event.
    pub failures: u64,
}

/// Runs every input until `shutdown` fires, then lets in-flight messages finish within the
/// configured `shutdown_timeout` and flushes the outputs. Unfinished messages are not deleted:
/// they reappear after their visibility timeout.
pub async fn run(config: &IngesterConfig, shutdown: ShutdownSignal) -> anyhow::Result<RunSummary> {
    anyhow::ensure!(
        !config.inputs.is_empty(),
        "`run` needs at least one [inputs.ID] table"
    );
    anyhow::ensure!(
        !config.outputs.is_empty(),
        "`run` needs at least one [outputs.ID] table"
    );
    let clients = AwsClients::new(&config.aws).await.context("[aws]")?;
    let outputs = Arc::new(Outputs::start(config).await?);
    let timeout = config.shutdown_timeout.as_duration();
    let mut sources = JoinSet::new();
    let mut routers = JoinSet::new();
    for (id, input) in &config.inputs {
        let source = SqsSource::new(id.clone(), input.sqs.clone(), &clients)
            .with_context(|| format!("input {id}"))?
            .shutdown_timeout(timeout);
        tracing::info!(input = %id, queue = %input.sqs.queue_url, outputs = ?input.outputs, "Polling SQS.");
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        let id = id.clone();
        let stop = shutdown.clone();
        sources.spawn(async move {
            let result = source.run(tx, stop).await;
            (id, result)
        });
        routers.spawn(forward(Arc::clone(&outputs), rx, input.outputs.clone()));
    }
    let mut summary = RunSummary::default();
    let mut first_error = None;
    while let Some(done) = sources.join_next().await {
        let (id, result) = done.context("input task panicked")?;
        match result {
            Ok(s) => {
                tracing::info!(input = %id, received = s.messages_received, deleted = s.messages_deleted, failed = s.messages_failed, objects = s.objects, events = s.events, parse_errors = s.parse_errors, "Input stopped.");
                summary.inputs.push((id, s));
            }
            Err(e) => {
                tracing::error!(input = %id, error = %e, "Input failed.");
                first_error.get_or_insert(anyhow::Error::new(e).context(format!("input {id}")));
            }
        }
    }
    while let Some(done) = routers.join_next().await {
        if let Err(e) = done.context("output task panicked")? {
            first_error.get_or_insert(e);
        }
    }
    let outputs = Arc::into_inner(outputs).expect("every router stopped");
    summary.failures = outputs.failures();
    summary.outputs = outputs.shutdown(timeout).await.into_iter().collect();
    for (id, s) in &summary.outputs {
        tracing::info!(output = %id, delivered = s.delivered, conflicts = s.conflicts, dead_lettered = s.dead_lettered, errored = s.errored, requests = s.requests, "Output stopped.");
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}
