//! Counters of a running source, and the summary it returns.

use std::sync::Arc;

logferry_core::counters! {
    /// What a syslog source did; returned by `SyslogSource::run` and by
    /// [`SyslogStats::summary`].
    summary SyslogSummary for SyslogStats;
    /// Messages emitted as records (truncated and unparsable ones included).
    messages,
    /// Bytes received (datagrams, or bytes read from connections).
    bytes,
    /// Messages that did not parse, kept whole as `message` and tagged `<tag>.unmatched`.
    parse_errors,
    /// Messages longer than `message_length_limit`, truncated to it.
    truncated,
    /// UDP messages dropped because the output channel was full.
    dropped,
    /// Batches sent to the output.
    batches,
    /// TCP connections accepted (those closed at once for `max_connections` included).
    connections,
    /// TCP connections open right now (a gauge).
    open_connections,
    /// TCP connections closed at once because `max_connections` were open.
    rejected_connections,
    /// TCP connections closed after `idle_timeout` without data.
    idle_timeouts,
    /// TCP connections that ended in the middle of an octet-counted frame (the partial frame
    /// is discarded).
    incomplete_frames,
    /// TCP connections that ended with a read error.
    connection_errors,
    /// TLS connections closed because the handshake failed or took longer than
    /// `tls.handshake_timeout` (a plain-TCP client, an untrusted client certificate...).
    tls_handshake_failures,
}

/// A cheap, clonable handle on the counters of a [`crate::SyslogSource`]; it stays valid after
/// the source stopped.
#[derive(Clone, Debug, Default)]
pub struct SyslogStats {
    pub(crate) counters: Arc<Counters>,
}
