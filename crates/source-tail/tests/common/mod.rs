//! Helpers shared by the integration tests: fast configurations, a consumer that acknowledges,
//! and waiting on conditions with deadlines.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logferry_core::{AckStatus, ShutdownTrigger, shutdown_pair};
use logferry_source_tail::{
    RunMode, TailBatch, TailConfig, TailError, TailSource, TailStats, TailSummary,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub const DEADLINE: Duration = Duration::from_secs(20);

pub fn ms(n: u64) -> logferry_core::ConfigDuration {
    logferry_core::ConfigDuration::new(Duration::from_millis(n))
}

/// A configuration that reacts quickly: polls every 20ms, re-scans every 100ms.
pub fn fast_config(pattern: impl Into<String>) -> TailConfig {
    let mut config = TailConfig::new(vec![pattern.into()], "test.*");
    config.read_from_head = true;
    config.poll_interval = ms(20);
    config.refresh_interval = ms(100);
    config.rotate_wait = ms(1000);
    config.partial_line_timeout = ms(60_000);
    config
}

pub fn glob(dir: &Path, pattern: &str) -> String {
    format!("{}/{pattern}", dir.display())
}

pub fn append(path: &Path, text: impl AsRef<[u8]>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_ref()).unwrap();
}

pub fn numbered(prefix: &str, range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("{prefix}{i}\n")).collect()
}

pub fn expected(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

/// Polls `cond` every 5ms until it holds; panics naming `what` after [`DEADLINE`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One received record.
#[derive(Clone, Debug)]
pub struct Rec {
    pub path: PathBuf,
    pub tag: String,
    pub json: String,
    pub stream: String,
    pub end_offset: u64,
}

impl Rec {
    /// The `message` member, or the whole JSON when there is none.
    pub fn message(&self) -> String {
        let v: serde_json::Value = serde_json::from_str(&self.json).unwrap();
        match v.get("message") {
            Some(m) => m.as_str().unwrap().to_owned(),
            None => self.json.clone(),
        }
    }
}

pub type Received = Arc<Mutex<Vec<Rec>>>;

pub fn messages(received: &Received) -> Vec<String> {
    received.lock().unwrap().iter().map(Rec::message).collect()
}

pub fn count(received: &Received) -> usize {
    received.lock().unwrap().len()
}

/// Collects every batch and acknowledges it `Delivered`, waiting `delay` per batch first.
pub fn consume(mut rx: mpsc::Receiver<TailBatch>, delay: Duration) -> (Received, JoinHandle<()>) {
    let received: Received = Arc::default();
    let sink = Arc::clone(&received);
    let task = tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut out = sink.lock().unwrap();
            for r in &batch.records {
                out.push(Rec {
                    path: batch.path.to_path_buf(),
                    tag: batch.tag.to_string(),
                    json: r.json.clone(),
                    stream: batch.position.stream.clone(),
                    end_offset: batch.position.end_offset,
                });
            }
            batch.ack.finish(AckStatus::Delivered);
        }
    });
    (received, task)
}

/// A source running in a task.
pub struct Running {
    pub trigger: ShutdownTrigger,
    pub handle: JoinHandle<Result<TailSummary, TailError>>,
    pub stats: TailStats,
}

impl Running {
    pub async fn stop(self) -> TailSummary {
        self.trigger.trigger();
        self.handle.await.unwrap().unwrap()
    }
}

pub fn start(
    config: TailConfig,
    pos: &Path,
    resume: HashMap<String, u64>,
    mode: RunMode,
    out: mpsc::Sender<TailBatch>,
) -> Running {
    let source = TailSource::new("test", config, pos.to_path_buf(), resume).unwrap();
    let stats = source.stats();
    let (trigger, signal) = shutdown_pair();
    let handle = tokio::spawn(source.run(out, signal, mode, Duration::from_secs(5)));
    Running {
        trigger,
        handle,
        stats,
    }
}

/// Starts a source in `Follow` mode with an acknowledging consumer.
pub fn follow(config: TailConfig, pos: &Path) -> (Running, Received) {
    let (tx, rx) = mpsc::channel(16);
    let running = start(config, pos, HashMap::new(), RunMode::Follow, tx);
    let (received, _task) = consume(rx, Duration::ZERO);
    (running, received)
}

/// Runs a source in `Once` mode with an acknowledging consumer.
pub async fn once(
    config: TailConfig,
    pos: &Path,
    resume: HashMap<String, u64>,
) -> (Result<TailSummary, TailError>, Vec<Rec>) {
    let (tx, rx) = mpsc::channel(16);
    let source = TailSource::new("test", config, pos.to_path_buf(), resume).unwrap();
    let (received, task) = consume(rx, Duration::ZERO);
    let result = source
        .run(
            tx,
            logferry_core::ShutdownSignal::never(),
            RunMode::Once,
            Duration::from_secs(5),
        )
        .await;
    task.await.unwrap();
    let records = received.lock().unwrap().clone();
    (result, records)
}

/// The `(path, offset)` of every entry of a checkpoint file.
pub fn pos_offsets(pos: &Path) -> Vec<(String, u64)> {
    let Ok(text) = std::fs::read_to_string(pos) else {
        return Vec::new();
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_owned(),
                e["offset"].as_u64().unwrap(),
            )
        })
        .collect()
}

pub fn pos_offset_of(pos: &Path, file: &Path) -> Option<u64> {
    let file = file.to_string_lossy();
    pos_offsets(pos)
        .into_iter()
        .find(|(p, _)| *p == file)
        .map(|(_, o)| o)
}

pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}
