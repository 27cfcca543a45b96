//! Receiving over TCP: RFC 6587 framing, one task per connection, reading paused while the
//! output is full.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use logferry_core::ShutdownSignal;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::batcher::Batcher;
use crate::framing::FrameDecoder;
use crate::source::Context;
use crate::stats::Counters;
use crate::{SyslogBatch, SyslogError};

/// Largest read from a connection.
const READ_SIZE: usize = 64 << 10;
/// Pause after a failed `accept` (out of file descriptors, say) before the next one.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Accepts connections until shutdown, then waits for them to stop.
pub(crate) async fn run(
    listener: TcpListener,
    addr: SocketAddr,
    context: &Arc<Context>,
    out: mpsc::Sender<SyslogBatch>,
    shutdown: ShutdownSignal,
) -> Result<(), SyslogError> {
    let permits = Arc::new(Semaphore::new(context.max_connections));
    let mut connections = JoinSet::new();
    let mut stop = pin!(shutdown.clone().wait());
    let result = loop {
        tokio::select! {
            biased;
            () = &mut stop => break Ok(()),
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Ok(Err(e)) = done {
                    break Err(e);
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    Counters::add(&context.counters.connections, 1);
                    let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                        Counters::add(&context.counters.rejected_connections, 1);
                        tracing::debug!(
                            source = %context.id,
                            %peer,
                            "Too many syslog connections; closing a new one."
                        );
                        continue;
                    };
                    let context = Arc::clone(context);
                    let out = out.clone();
                    let shutdown = shutdown.clone();
                    connections.spawn(async move {
                        let _permit = permit;
                        serve(stream, peer, &context, out, shutdown).await
                    });
                }
                Err(e) => {
                    tracing::warn!(source = %context.id, %addr, error = %e, "Accepting a syslog connection failed.");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    };
    if result.is_err() {
        connections.abort_all();
    }
    while connections.join_next().await.is_some() {}
    result
}

/// Decrements the open connections gauge when a connection ends, however it ends.
struct OpenGuard<'a>(&'a Counters);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        Counters::sub(&self.0.open_connections, 1);
    }
}

/// Serves one accepted connection: plain, or TLS after a handshake that must finish within
/// the handshake timeout (a failed one is counted and closes the connection).
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    context: &Context,
    out: mpsc::Sender<SyslogBatch>,
    shutdown: ShutdownSignal,
) -> Result<(), SyslogError> {
    let counters = &*context.counters;
    Counters::add(&counters.open_connections, 1);
    let _open = OpenGuard(counters);
    let Some(tls) = &context.tls else {
        return connection(stream, peer, context, out, shutdown).await;
    };
    let handshake = tokio::select! {
        biased;
        () = shutdown.clone().wait() => return Ok(()),
        r = tokio::time::timeout(tls.handshake_timeout, tls.acceptor.accept(stream)) => r,
    };
    match handshake {
        Ok(Ok(tls)) => connection(tls, peer, context, out, shutdown).await,
        Ok(Err(e)) => {
            Counters::add(&counters.tls_handshake_failures, 1);
            tracing::warn!(source = %context.id, %peer, error = %e, "A syslog TLS handshake failed; closing the connection.");
            Ok(())
        }
        Err(_elapsed) => {
            Counters::add(&counters.tls_handshake_failures, 1);
            tracing::warn!(source = %context.id, %peer, "A syslog TLS handshake timed out; closing the connection.");
            Ok(())
        }
    }
}

/// Reads one connection until it closes, stays idle for `idle_timeout`, fails, or shutdown.
async fn connection(
    mut stream: impl AsyncRead + Unpin,
    peer: SocketAddr,
    context: &Context,
    out: mpsc::Sender<SyslogBatch>,
    shutdown: ShutdownSignal,
) -> Result<(), SyslogError> {
    let counters = &*context.counters;
    let mut decoder = FrameDecoder::new(context.max_message);
    let mut batcher = Batcher::new(context.batch_size);
    let mut buf = vec![0u8; READ_SIZE.min(decoder.room())];
    let mut stop = pin!(shutdown.wait());
    loop {
        let room = decoder.room().min(buf.len());
        let read = tokio::select! {
            biased;
            () = &mut stop => return Ok(()),
            r = tokio::time::timeout(context.idle_timeout, stream.read(&mut buf[..room])) => r,
        };
        let ended = match read {
            Err(_elapsed) => {
                Counters::add(&counters.idle_timeouts, 1);
                tracing::debug!(source = %context.id, %peer, "Closing an idle syslog connection.");
                return Ok(());
            }
            Ok(Ok(0)) => true,
            Ok(Ok(n)) => {
                Counters::add(&counters.bytes, n as u64);
                decoder.extend(&buf[..n]);
                false
            }
            Ok(Err(e)) => {
                Counters::add(&counters.connection_errors, 1);
                tracing::debug!(source = %context.id, %peer, error = %e, "A syslog connection failed.");
                true
            }
        };
        while let Some(frame) = decoder.next_frame() {
            context.accept_message(&mut batcher, peer, &frame.data, frame.truncated);
        }
        if ended {
            match decoder.finish() {
                Ok(Some(frame)) => {
                    context.accept_message(&mut batcher, peer, &frame.data, frame.truncated)
                }
                Ok(None) => {}
                Err(bytes) => {
                    Counters::add(&counters.incomplete_frames, 1);
                    tracing::debug!(
                        source = %context.id,
                        %peer,
                        bytes,
                        "A syslog connection ended inside a frame; its start is discarded."
                    );
                }
            }
        }
        if !batcher.is_empty() {
            for batch in batcher.take() {
                tokio::select! {
                    biased;
                    () = &mut stop => return Ok(()),
                    sent = out.send(batch) => sent.map_err(|_| SyslogError::OutputClosed)?,
                }
                Counters::add(&counters.batches, 1);
            }
        }
        if ended {
            return Ok(());
        }
    }
}
