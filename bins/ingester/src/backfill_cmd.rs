//! `logferry-ingester backfill`: imports objects that already exist in a bucket (or a local
//! `file://` store), resumably; or, with `--enqueue`, hands them to the running ingesters
//! through their SQS queue.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use logferry_core::ShutdownSignal;
use logferry_source_sqs::{
    AwsClients, Backfill, BackfillConfig, BackfillReport, FILE_BUCKET_PREFIX, Lister, SqsStats,
    enqueue,
};
use tokio::sync::mpsc;

use crate::config::IngesterConfig;
use crate::pipeline::{Outputs, forward};

/// The command line of `backfill` (flags override the `[backfill]` table).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BackfillArgs {
    /// Bucket name, or file://DIR for a local directory store (the shipper's `file://` output).
    #[arg(long)]
    pub bucket: Option<String>,
    /// Only keys that start with this prefix.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only objects modified at or after this RFC 3339 time (e.g. 2024-05-01T00:00:00Z).
    #[arg(long)]
    pub since: Option<String>,
    /// Only objects modified before this RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
    /// Checkpoint file (default: under data_dir, named after bucket and prefix).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Instead of importing, send one S3-notification-shaped message per object to this SQS
    /// queue URL, so that every running ingester shares the work.
    #[arg(long, value_name = "QUEUE_URL")]
    pub enqueue: Option<String>,
    /// Never draw the progress bar, even on a terminal (plain progress lines every 10 s).
    #[arg(long)]
    pub no_progress: bool,
}

/// What `backfill` did.
#[derive(Debug)]
#[non_exhaustive]
pub enum BackfillOutcome {
    /// Objects were imported.
    Imported {
        /// The source's report.
        report: BackfillReport,
        /// Lines and objects that produced no event (dead-lettered or logged).
        failures: u64,
    },
    /// Stopped by a signal with work still in flight after `shutdown_timeout`: the
    /// checkpoint holds what was delivered; run again to resume.
    Abandoned {
        /// Lines and objects that produced no event (dead-lettered or logged).
        failures: u64,
    },
    /// Messages were sent to a queue.
    Enqueued {
        /// How many.
        messages: usize,
    },
}

impl BackfillOutcome {
    /// Whether everything listed was handled: the listing ended and no object failed.
    pub fn is_complete(&self) -> bool {
        match self {
            BackfillOutcome::Imported { report, .. } => {
                report.complete && report.failed_objects == 0
            }
            BackfillOutcome::Abandoned { .. } => false,
            BackfillOutcome::Enqueued { .. } => true,
        }
    }
}

/// The `[backfill]` table with the flags applied, and the default checkpoint path.
pub fn backfill_config(
    config: &IngesterConfig,
    args: &BackfillArgs,
) -> anyhow::Result<BackfillConfig> {
    let mut table = config.backfill.clone().unwrap_or_default();
    let mut set = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            table.insert(key.to_owned(), toml::Value::String(v));
        }
    };
    set("bucket", args.bucket.clone());
    set("prefix", args.prefix.clone());
    set("since", args.since.clone());
    set("until", args.until.clone());
    set(
        "checkpoint",
        args.checkpoint.as_ref().map(|p| p.display().to_string()),
    );
    anyhow::ensure!(
        table.contains_key("bucket"),
        "no bucket: pass --bucket or set `bucket` in [backfill]"
    );
    let mut backfill: BackfillConfig =
        toml::Value::Table(table).try_into().context("[backfill]")?;
    if backfill.checkpoint.is_none() {
        backfill.checkpoint = Some(config.data_dir.join(format!(
            "backfill-{}.checkpoint",
            file_name_part(&format!("{}/{}", backfill.bucket, backfill.prefix))
        )));
    }
    backfill.validate().context("[backfill]")?;
    Ok(backfill)
}

/// `text` with everything but ASCII letters, digits, `-` and `.` replaced by `_`.
fn file_name_part(text: &str) -> String {
    let text = text.strip_prefix(FILE_BUCKET_PREFIX).unwrap_or(text);
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect()
}

/// Runs a backfill until the listing ends or `shutdown` fires.
pub async fn backfill(
    config: &IngesterConfig,
    args: &BackfillArgs,
    shutdown: ShutdownSignal,
) -> anyhow::Result<BackfillOutcome> {
    let backfill = backfill_config(config, args)?;
    let local = backfill.bucket.starts_with(FILE_BUCKET_PREFIX);
    let clients = if local && args.enqueue.is_none() {
        None
    } else {
        Some(AwsClients::new(&config.aws).await.context("[aws]")?)
    };
    if let Some(queue) = &args.enqueue {
        anyhow::ensure!(
            !local,
            "--enqueue needs an S3 bucket, not {}",
            backfill.bucket
        );
        let clients = clients.as_ref().expect("built above");
        return enqueue_all(clients, &backfill, queue).await;
    }
    anyhow::ensure!(
        !config.outputs.is_empty(),
        "`backfill` needs at least one [outputs.ID] table"
    );
    let outputs = Arc::new(Outputs::start(config).await?);
    let source = Backfill::new(backfill, clients.as_ref())?;
    let stats = source.stats();
    let (tx, rx) = mpsc::channel(4);
    let targets: Vec<String> = config.outputs.keys().cloned().collect();
    let router = tokio::spawn(forward(Arc::clone(&outputs), rx, targets));
    let bar = std::io::stderr().is_terminal() && !args.no_progress;
    let progress = tokio::spawn(report_progress(stats.clone(), bar));
    let timeout = config.shutdown_timeout.as_duration();
    // After a signal, objects already read keep being delivered for at most
    // `shutdown_timeout`; then the work is abandoned (the checkpoint only covers what was
    // delivered, so a later run sends the rest again).
    let run = source.run(tx, shutdown.clone());
    let give_up = async {
        shutdown.wait().await;
        tokio::time::sleep(timeout).await;
    };
    let result = tokio::select! {
        result = run => Some(result),
        () = give_up => None,
    };
    if result.is_none() {
        router.abort();
    }
    let routed = match router.await {
        Ok(routed) => routed,
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => return Err(anyhow::Error::new(e).context("output task panicked")),
    };
    progress.abort();
    if bar {
        eprintln!();
    }
    let outputs = Arc::into_inner(outputs).expect("the router stopped");
    let failures = outputs.failures();
    let stats_by_output = outputs.shutdown(timeout).await;
    for (id, s) in &stats_by_output {
        tracing::info!(output = %id, delivered = s.delivered, conflicts = s.conflicts, dead_lettered = s.dead_lettered, errored = s.errored, "Output stopped.");
    }
    routed?;
    eprintln!("{}", progress_line(&stats, None, false));
    let Some(result) = result else {
        tracing::warn!(shutdown_timeout = %config.shutdown_timeout, "Objects still in flight after shutdown_timeout: abandoned (run again to resume).");
        return Ok(BackfillOutcome::Abandoned { failures });
    };
    let report = result.context("backfill")?;
    Ok(BackfillOutcome::Imported { report, failures })
}

/// Lists the objects and sends a notification for each to `queue`.
async fn enqueue_all(
    clients: &AwsClients,
    backfill: &BackfillConfig,
    queue: &str,
) -> anyhow::Result<BackfillOutcome> {
    let mut lister = Lister::new(
        Some(clients.s3.clone()),
        backfill.bucket.clone(),
        backfill.prefix.clone(),
    )
    .modified_between(backfill.since()?, backfill.until()?);
    let mut messages = 0;
    while let Some(page) = lister.next_page().await? {
        let objects: Vec<_> = page.into_iter().map(|listed| listed.object).collect();
        messages += enqueue(&clients.sqs, queue, &objects).await?;
        eprintln!("logferry-ingester: {messages} object(s) enqueued to {queue}");
    }
    Ok(BackfillOutcome::Enqueued { messages })
}

/// Prints progress to stderr: a bar redrawn every 200 ms on a terminal, else a line every
/// 10 s. Runs until aborted.
async fn report_progress(stats: SqsStats, bar: bool) {
    let start = Instant::now();
    let every = if bar {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(10)
    };
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let line = progress_line(&stats, Some(start.elapsed()), bar);
        let mut err = std::io::stderr().lock();
        let _ = if bar {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}

/// `objects 120/300 [#####.....] 40%, 1.2 GiB, 3,400,000 events, 85,000 events/s, ETA 12s`.
fn progress_line(stats: &SqsStats, elapsed: Option<Duration>, bar: bool) -> String {
    let s = stats.summary();
    let done = s.objects + s.object_errors;
    let listed = s.objects_listed.max(done);
    let mut line = format!("backfill: objects {done}/{listed}");
    if bar && listed > 0 {
        let width = 20;
        let filled = (done * width / listed) as usize;
        line.push_str(&format!(
            " [{}{}] {:.0}%",
            "#".repeat(filled),
            ".".repeat(width as usize - filled),
            done as f64 * 100.0 / listed as f64
        ));
    }
    line.push_str(&format!(", {}, {} events", human_bytes(s.bytes), s.events));
    if s.object_errors + s.parse_errors > 0 {
        line.push_str(&format!(
            ", {} failed objects, {} bad lines",
            s.object_errors, s.parse_errors
        ));
    }
    if let Some(elapsed) = elapsed.filter(|e| !e.is_zero()) {
        let secs = elapsed.as_secs_f64();
        line.push_str(&format!(", {:.0} events/s", s.events as f64 / secs));
        if done > 0 && listed > done {
            let eta = (listed - done) as f64 * secs / done as f64;
            line.push_str(&format!(", ETA {:.0}s (of the objects listed so far)", eta));
        }
    }
    line
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_names_are_file_names() {
        assert_eq!(
            file_name_part("file://target/quickstart/bucket/logs/"),
            "target_quickstart_bucket_logs_"
        );
        assert_eq!(file_name_part("my-logs/AWSLogs/1/"), "my-logs_AWSLogs_1_");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
