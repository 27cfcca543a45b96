//! Receiving over UDP: one datagram is one message.

use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::{Duration, Instant};

use logferry_core::ShutdownSignal;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::batcher::Batcher;
use crate::source::Context;
use crate::stats::Counters;
use crate::{SyslogBatch, SyslogError};

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;
/// Least time between two warnings about dropped messages.
const DROP_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Receives datagrams until shutdown. Never waits for the output: batches that do not fit in
/// the channel are dropped and counted.
pub(crate) async fn run(
    socket: UdpSocket,
    addr: SocketAddr,
    context: &Context,
    out: mpsc::Sender<SyslogBatch>,
    shutdown: ShutdownSignal,
) -> Result<(), SyslogError> {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut batcher = Batcher::new(context.batch_size);
    let mut drops = DropWarning::default();
    let mut shutdown = pin!(shutdown.wait());
    loop {
        let first = tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            r = socket.recv_from(&mut buf) => r,
        };
        let mut received = first;
        // Drain what is already queued on the socket (up to a batch) before handing it over.
        let mut taken = 0;
        loop {
            match received {
                Ok((n, peer)) => {
                    Counters::add(&context.counters.bytes, n as u64);
                    let keep = n.min(context.max_message);
                    context.accept_message(&mut batcher, peer, &buf[..keep], n > keep);
                }
                Err(e) if transient(&e) => {
                    tracing::debug!(source = %context.id, error = %e, "A UDP receive failed.");
                }
                Err(source) => return Err(SyslogError::Socket { addr, source }),
            }
            taken += 1;
            if taken >= context.batch_size {
                break;
            }
            received = match socket.try_recv_from(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                r => r,
            };
        }
        for batch in batcher.take() {
            match out.try_send(batch) {
                Ok(()) => Counters::add(&context.counters.batches, 1),
                Err(TrySendError::Full(batch)) => {
                    let n = batch.records.len() as u64;
                    Counters::add(&context.counters.dropped, n);
                    drops.dropped(&context.id, n);
                }
                Err(TrySendError::Closed(_)) => return Err(SyslogError::OutputClosed),
            }
        }
    }
}

/// Errors of one receive that say nothing about the socket (ICMP reports of earlier sends,
/// signals).
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// A warning about dropped messages at most every [`DROP_WARN_INTERVAL`].
#[derive(Debug, Default)]
struct DropWarning {
    last: Option<Instant>,
    since_last: u64,
}

impl DropWarning {
    fn dropped(&mut self, source: &str, n: u64) {
        self.since_last += n;
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < DROP_WARN_INTERVAL)
        {
            return;
        }
        tracing::warn!(
            source,
            dropped = self.since_last,
            "The output is full; syslog messages received over UDP were dropped."
        );
        self.last = Some(now);
        self.since_last = 0;
    }
}
