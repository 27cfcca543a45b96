//! The public face of the syslog source.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use logferry_core::{ShutdownSignal, Timestamp};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;

use crate::batcher::Batcher;
use crate::record::Shaper;
use crate::stats::Counters;
use crate::{Protocol, SyslogBatch, SyslogConfig, SyslogError, SyslogStats, SyslogSummary};

/// What every receiving loop of a source shares.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) id: String,
    pub(crate) shaper: Shaper,
    /// `message_length_limit` in bytes.
    pub(crate) max_message: usize,
    pub(crate) batch_size: usize,
    pub(crate) max_connections: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) counters: Arc<Counters>,
    /// TCP over TLS: the acceptor, and how long a handshake may take.
    pub(crate) tls: Option<crate::tls::Tls>,
}

impl Context {
    /// Shapes one message (a datagram or a frame) into `batcher`, counting it.
    pub(crate) fn accept_message(
        &self,
        batcher: &mut Batcher,
        peer: SocketAddr,
        raw: &[u8],
        truncated: bool,
    ) {
        let shaped = self.shaper.shape(raw, Timestamp::now);
        Counters::add(&self.counters.messages, 1);
        if truncated {
            Counters::add(&self.counters.truncated, 1);
        }
        if let Some(error) = &shaped.unmatched {
            Counters::add(&self.counters.parse_errors, 1);
            tracing::debug!(
                source = %self.id,
                %peer,
                error = %error,
                "A syslog message did not parse; it is kept whole as `message`."
            );
        }
        batcher.push(&shaped.tag, shaped.record);
    }
}

/// The bound socket.
#[derive(Debug)]
enum Socket {
    Udp(UdpSocket),
    Tcp(TcpListener),
}

/// A syslog source listening on UDP or TCP: fluentd's `in_syslog`.
///
/// [`SyslogSource::bind`] validates the configuration and binds the socket (so a port in use
/// is reported at startup, and port `0` picks a free one: see [`SyslogSource::local_addr`]);
/// [`SyslogSource::run`] receives until shutdown.
#[derive(Debug)]
pub struct SyslogSource {
    socket: Socket,
    local_addr: SocketAddr,
    context: Arc<Context>,
    stats: SyslogStats,
}

impl SyslogSource {
    /// Validates `config` and binds the source `id` (the component's name in the
    /// configuration) to `bind`:`port`. Needs a tokio runtime with I/O enabled.
    pub async fn bind(id: &str, config: SyslogConfig) -> Result<SyslogSource, SyslogError> {
        config.validate()?;
        // Certificate problems are reported before the port is taken.
        let tls = config.tls.as_ref().map(crate::tls::Tls::new).transpose()?;
        let ip: IpAddr = config.bind.parse().map_err(|_| SyslogError::Config {
            key: "bind".to_owned(),
            message: "must be an IP address".to_owned(),
        })?;
        let addr = SocketAddr::new(ip, config.port);
        let (socket, protocol) = match config.protocol {
            Protocol::Udp => (UdpSocket::bind(addr).await.map(Socket::Udp), "udp"),
            Protocol::Tcp => (TcpListener::bind(addr).await.map(Socket::Tcp), "tcp"),
        };
        let bind_error = |source| SyslogError::Bind {
            protocol,
            addr,
            source,
        };
        let socket = socket.map_err(bind_error)?;
        let local_addr = match &socket {
            Socket::Udp(s) => s.local_addr(),
            Socket::Tcp(l) => l.local_addr(),
        }
        .map_err(bind_error)?;
        let stats = SyslogStats::default();
        let context = Context {
            id: id.to_owned(),
            shaper: Shaper::new(&config.tag),
            max_message: usize::try_from(config.message_length_limit().bytes())
                .unwrap_or(usize::MAX),
            batch_size: config.batch_size,
            max_connections: config.max_connections,
            idle_timeout: config.idle_timeout.as_duration(),
            counters: Arc::clone(&stats.counters),
            tls,
        };
        Ok(SyslogSource {
            socket,
            local_addr,
            context: Arc::new(context),
            stats,
        })
    }

    /// The address the source listens on (with the port picked when `port` was `0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle on the source's counters, valid before, during and after
    /// [`SyslogSource::run`].
    pub fn stats(&self) -> SyslogStats {
        self.stats.clone()
    }

    /// Receives messages until `shutdown` fires, sending them as batches on `out`.
    ///
    /// Backpressure: over TCP, a full channel stops reading from the connection (the sender's
    /// TCP window then fills up); over UDP the socket is never left unread, so batches that
    /// find the channel full are dropped, counted in [`SyslogStats::dropped`] and logged at
    /// most every 10 seconds.
    ///
    /// Returns [`SyslogError::OutputClosed`] if `out`'s receiver is dropped.
    pub async fn run(
        self,
        out: mpsc::Sender<SyslogBatch>,
        shutdown: ShutdownSignal,
    ) -> Result<SyslogSummary, SyslogError> {
        tracing::info!(
            source = %self.context.id,
            addr = %self.local_addr,
            "Listening for syslog."
        );
        match self.socket {
            Socket::Udp(socket) => {
                crate::udp::run(socket, self.local_addr, &self.context, out, shutdown).await?
            }
            Socket::Tcp(listener) => {
                crate::tcp::run(listener, self.local_addr, &self.context, out, shutdown).await?
            }
        }
        Ok(self.stats.summary())
    }
}
