//! Importing objects that already exist: list, read, wait for acknowledgements, checkpoint.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logferry_core::{AckStatus, AckToken, ShutdownSignal};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::fetch::ObjectFetcher;
use crate::listing::{Checkpoint, Lister};
use crate::reader::{ObjectBatch, ObjectReader};
use crate::stats::{Counters, SqsStats, SqsSummary};
use crate::{AwsClients, BackfillConfig, SourceError};

/// How often the checkpoint is written while it advances (and once at the end).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Objects read but not yet acknowledged, at most (their events wait in the output, which
/// bounds their memory; this bounds the bookkeeping). An output fills a bulk request from many
/// small objects only if that many are in flight: with `workers` alone, a backfill of small
/// objects delivered a handful of events per batch timeout.
const MAX_UNACKED_OBJECTS: usize = 4096;

/// What a backfill did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackfillReport {
    /// The counters.
    pub summary: SqsSummary,
    /// Objects whose events were not all delivered, or that could not be read for a
    /// retryable reason: the checkpoint stops before the first of them.
    pub failed_objects: u64,
    /// Whether the listing was read to its end (false after a shutdown).
    pub complete: bool,
    /// The checkpoint's key at the end.
    pub checkpoint: Option<String>,
}

/// A backfill of one bucket and prefix: objects are read by `workers` tasks into
/// [`ObjectBatch`]es like the SQS source's, each object with its own acknowledgement; a worker
/// takes the next object as soon as it has read one (up to 4,096 objects wait for
/// their acknowledgements). The
/// checkpoint advances to the last key whose object, and every object before it, was
/// delivered; a later run resumes after it (objects after it that were done are read again:
/// at-least-once).
#[derive(Debug)]
pub struct Backfill {
    config: BackfillConfig,
    s3: Option<aws_sdk_s3::Client>,
    reader: Arc<ObjectReader>,
    stats: SqsStats,
}

impl Backfill {
    /// Builds a backfill; `clients` may be `None` for a `file://` bucket.
    pub fn new(
        config: BackfillConfig,
        clients: Option<&AwsClients>,
    ) -> Result<Backfill, SourceError> {
        config.validate()?;
        if !config.bucket.starts_with(crate::fetch::FILE_BUCKET_PREFIX) && clients.is_none() {
            return Err(SourceError::config(
                "backfill.bucket",
                "an S3 bucket needs the [aws] clients",
            ));
        }
        let stats = SqsStats::default();
        let reader = ObjectReader::new(&config.reader_config())?.with_stats(stats.clone());
        Ok(Backfill {
            config,
            s3: clients.map(|c| c.s3.clone()),
            reader: Arc::new(reader),
            stats,
        })
    }

    /// The counters (objects listed, objects read, bytes, events...), for progress display.
    pub fn stats(&self) -> SqsStats {
        self.stats.clone()
    }

    /// The lister this backfill uses (resuming after the checkpoint), for `--enqueue`.
    pub fn lister(&self) -> Result<Lister, SourceError> {
        let start = match self.checkpoint() {
            Some(cp) => cp.load()?,
            None => None,
        };
        Ok(
            Lister::new(self.s3.clone(), &self.config.bucket, &self.config.prefix)
                .modified_between(self.config.since()?, self.config.until()?)
                .start_after(start),
        )
    }

    /// The checkpoint, if configured.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        self.config
            .checkpoint
            .as_ref()
            .map(|path| Checkpoint::new(path, &self.config.bucket, &self.config.prefix))
    }

    /// Lists and reads every object, sending batches to `out`, until the listing ends or
    /// `shutdown` fires (then the objects being read finish, and the checkpoint is written).
    pub async fn run(
        self,
        out: mpsc::Sender<ObjectBatch>,
        shutdown: ShutdownSignal,
    ) -> Result<BackfillReport, SourceError> {
        let counters = &self.stats.counters;
        let checkpoint = self.checkpoint();
        let mut lister = self.lister()?;
        let mut last_done = lister.last_key().map(str::to_string);
        let fetcher = ObjectFetcher::new(self.s3.clone());
        let reading = Arc::new(Semaphore::new(self.config.workers));
        let mut tasks: JoinSet<(u64, bool)> = JoinSet::new();
        // seq -> (key, outcome); the checkpoint moves over the delivered prefix.
        let mut pending: BTreeMap<u64, (String, Option<bool>)> = BTreeMap::new();
        let mut next_seq = 0u64;
        let mut failed = 0u64;
        let mut blocked = false;
        let mut written_at = Instant::now();
        let mut written = last_done.clone();
        let mut complete = false;
        let mut result = Ok(());
        'listing: loop {
            if shutdown.is_triggered() {
                break;
            }
            let page = match lister.next_page().await {
                Ok(Some(page)) => page,
                Ok(None) => {
                    complete = true;
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            Counters::add(&counters.objects_listed, page.len() as u64);
            for listed in page {
                while tasks.len() >= MAX_UNACKED_OBJECTS.max(self.config.workers) {
                    if let Some(Ok((seq, ok))) = tasks.join_next().await {
                        finish(&mut pending, seq, ok, &mut failed);
                    }
                }
                let permit = tokio::select! {
                    permit = Arc::clone(&reading).acquire_owned() => permit,
                    () = shutdown.clone().wait() => break 'listing,
                };
                let Ok(permit) = permit else {
                    break 'listing;
                };
                while let Some(joined) = tasks.try_join_next() {
                    if let Ok((seq, ok)) = joined {
                        finish(&mut pending, seq, ok, &mut failed);
                    }
                }
                if shutdown.is_triggered() {
                    break 'listing;
                }
                let seq = next_seq;
                next_seq += 1;
                pending.insert(seq, (listed.object.key.clone(), None));
                let reader = Arc::clone(&self.reader);
                let fetcher = fetcher.clone();
                let out = out.clone();
                tasks.spawn(async move {
                    let (token, receiver) = AckToken::new();
                    let read = fetcher
                        .process_object(&reader, listed.object, Some(&token), &out)
                        .await;
                    // The receiver sees the end of the batches once every object is read,
                    // while the acknowledgements are still awaited.
                    drop(out);
                    drop(permit);
                    if read.is_err() {
                        token.update(AckStatus::Errored);
                    }
                    drop(token);
                    let ok = read.is_ok() && receiver.await == AckStatus::Delivered;
                    (seq, ok)
                });
                advance(&mut pending, &mut last_done, &mut blocked);
                if written != last_done && written_at.elapsed() >= CHECKPOINT_INTERVAL {
                    store(&checkpoint, &last_done)?;
                    written.clone_from(&last_done);
                    written_at = Instant::now();
                }
            }
            if out.is_closed() {
                result = Err(SourceError::OutputClosed);
                break;
            }
        }
        drop(out);
        while let Some(joined) = tasks.join_next().await {
            if let Ok((seq, ok)) = joined {
                finish(&mut pending, seq, ok, &mut failed);
            }
            // The checkpoint keeps moving while the last objects are delivered (an
            // interruption then does not start over).
            advance(&mut pending, &mut last_done, &mut blocked);
            if written != last_done && written_at.elapsed() >= CHECKPOINT_INTERVAL {
                store(&checkpoint, &last_done)?;
                written.clone_from(&last_done);
                written_at = Instant::now();
            }
        }
        advance(&mut pending, &mut last_done, &mut blocked);
        // A listing read to its end moves the checkpoint over filtered-out keys too.
        if complete && pending.is_empty() && failed == 0 {
            last_done = lister.last_key().map(str::to_string).or(last_done);
        }
        if written != last_done {
            store(&checkpoint, &last_done)?;
        }
        result?;
        Ok(BackfillReport {
            summary: self.stats.summary(),
            failed_objects: failed,
            complete,
            checkpoint: last_done,
        })
    }
}

fn finish(
    pending: &mut BTreeMap<u64, (String, Option<bool>)>,
    seq: u64,
    ok: bool,
    failed: &mut u64,
) {
    if let Some(entry) = pending.get_mut(&seq) {
        entry.1 = Some(ok);
    }
    if !ok {
        *failed += 1;
    }
}

/// Moves `last_done` over the leading delivered objects; a failed one blocks it for good.
fn advance(
    pending: &mut BTreeMap<u64, (String, Option<bool>)>,
    last_done: &mut Option<String>,
    blocked: &mut bool,
) {
    while !*blocked {
        let Some(mut entry) = pending.first_entry() else {
            break;
        };
        match entry.get_mut().1 {
            Some(true) => {
                let (key, _) = entry.remove();
                *last_done = Some(key);
            }
            Some(false) => *blocked = true,
            None => break,
        }
    }
}

fn store(checkpoint: &Option<Checkpoint>, key: &Option<String>) -> Result<(), SourceError> {
    match (checkpoint, key) {
        (Some(cp), Some(key)) => cp.store(key),
        _ => Ok(()),
    }
}
