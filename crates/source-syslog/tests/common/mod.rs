//! A source running on a free loopback port with a consumer that collects its records, and
//! waiting on conditions with deadlines.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logferry_core::{AckStatus, ShutdownTrigger, shutdown_pair};
use logferry_source_syslog::{
    Protocol, SyslogBatch, SyslogConfig, SyslogError, SyslogSource, SyslogStats, SyslogSummary,
};
use tokio::sync::mpsc;

pub const DEADLINE: Duration = Duration::from_secs(20);

/// `(tag, json)` of every record received, in order.
pub type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A running source.
pub struct Running {
    pub runtime: tokio::runtime::Runtime,
    pub addr: SocketAddr,
    pub stats: SyslogStats,
    pub received: Received,
    stop: ShutdownTrigger,
    task: tokio::task::JoinHandle<Result<SyslogSummary, SyslogError>>,
    /// Set by [`start_unconsumed`]: the receiver, not read until [`Running::consume`].
    rx: Option<mpsc::Receiver<SyslogBatch>>,
}

pub fn config(protocol: Protocol) -> SyslogConfig {
    let mut config = SyslogConfig::new(protocol);
    config.port = 0;
    config
}

/// Starts a source with `config` and a consumer that collects every record.
pub fn start(config: SyslogConfig) -> Running {
    let mut running = start_unconsumed(config, 64);
    running.consume();
    running
}

/// Starts a source whose channel of `capacity` batches nobody reads yet.
pub fn start_unconsumed(config: SyslogConfig, capacity: usize) -> Running {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let source = runtime
        .block_on(SyslogSource::bind("test", config))
        .unwrap();
    let addr = source.local_addr();
    let stats = source.stats();
    let (tx, rx) = mpsc::channel(capacity);
    let (stop, shutdown) = shutdown_pair();
    let task = runtime.spawn(source.run(tx, shutdown));
    Running {
        runtime,
        addr,
        stats,
        received: Received::default(),
        stop,
        task,
        rx: Some(rx),
    }
}

impl Running {
    /// Starts reading the channel, collecting every record.
    pub fn consume(&mut self) {
        let mut rx = self.rx.take().expect("consumed once");
        let received = Arc::clone(&self.received);
        self.runtime.spawn(async move {
            while let Some(batch) = rx.recv().await {
                let mut all = received.lock().unwrap();
                for r in &batch.records {
                    all.push((batch.tag.to_string(), r.json.clone()));
                }
                batch.ack.finish(AckStatus::Delivered);
            }
        });
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Waits until `n` records were received; panics at the deadline.
    pub fn wait_for_records(&self, n: usize) -> Vec<(String, String)> {
        let ok = logferry_testkit::wait_until(Instant::now() + DEADLINE, || self.count() >= n);
        assert!(
            ok,
            "{} records of {n} after {DEADLINE:?}: {:?}",
            self.count(),
            self.stats.summary()
        );
        self.received.lock().unwrap().clone()
    }

    /// Waits until `cond` holds for the stats; panics at the deadline.
    pub fn wait_for(&self, what: &str, cond: impl Fn(&SyslogStats) -> bool) {
        let ok = logferry_testkit::wait_until(Instant::now() + DEADLINE, || cond(&self.stats));
        assert!(
            ok,
            "not {what} after {DEADLINE:?}: {:?}",
            self.stats.summary()
        );
    }

    /// The runtime, the address and the source's task, with the channel's receiver dropped
    /// (shutdown is never triggered).
    pub fn into_parts(
        self,
    ) -> (
        tokio::runtime::Runtime,
        SocketAddr,
        tokio::task::JoinHandle<Result<SyslogSummary, SyslogError>>,
    ) {
        (self.runtime, self.addr, self.task)
    }

    /// Triggers shutdown and returns what the source's `run` returned.
    pub fn stop(self) -> Result<SyslogSummary, SyslogError> {
        self.stop.trigger();
        let result = self.runtime.block_on(self.task).unwrap();
        drop(self.rx);
        result
    }
}

pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}
