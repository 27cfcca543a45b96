//! The error type of the syslog source.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a syslog source could not be built or stopped with an error.
///
/// Problems with individual messages or connections (malformed, oversized, a client that
/// disconnects mid-frame) are not errors: they are counted and, where useful, logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyslogError {
    /// A configuration key has an invalid value.
    #[error("invalid `{key}`: {message}")]
    Config {
        /// The key, relative to the source's table (`bind`, `tag`, ...).
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A TLS certificate, key or CA file could not be read or used.
    #[error("`tls.{key}` ({}): {message}", path.display())]
    Tls {
        /// The key naming the file (`cert_path`, `private_key_path`, `ca_path`).
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen for syslog on {protocol} {addr}: {source}")]
    Bind {
        /// `udp` or `tcp`.
        protocol: &'static str,
        /// The address and port.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Receiving on the UDP socket or accepting on the TCP listener failed for good.
    #[error("the syslog socket on {addr} failed: {source}")]
    Socket {
        /// The bound address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The receiver of the batches was dropped while the source was running.
    #[error("the receiver of the syslog source's batches is gone")]
    OutputClosed,
}
