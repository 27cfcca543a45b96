//! Syslog over UDP and TCP: the job of fluentd's `in_syslog` and rsyslog's `imudp`/`imtcp`.
//!
//! A [`SyslogSource`] is built from a [`SyslogConfig`] (the `[sources.X]` table with
//! `type = "syslog"`). It listens on one UDP or TCP port, parses each message with
//! `logferry-parse`'s syslog parser (RFC 5424 and RFC 3164, told apart per message) and sends
//! them as [`SyslogBatch`]es of [`SyslogRecord`]s on a bounded channel.
//!
//! - **Framing.** Over UDP one datagram is one message. Over TCP, messages are framed per
//!   RFC 6587, octet-counting (`LEN SP MSG`, rsyslog's `TCP_Framing="octet-counted"`) or
//!   newline-delimited, detected per message: a frame that starts with a non-zero digit, up to
//!   nine digits and a space is octet-counted. A message longer than `message_length_limit`
//!   is truncated to it and counted, the rest skipped, never buffered. A connection that ends
//!   inside an octet-counted frame loses that frame (counted); an unterminated last
//!   newline-delimited message is kept.
//! - **Records** are JSON objects shaped like fluentd's `in_syslog` events: `host`, `ident`,
//!   `pid`, `message`, `facility`, `severity`, `time` (RFC 3339), and for RFC 5424 `msgid` and
//!   `structured_data` (an object of SD-IDs); absent values are left out. They are tagged
//!   `<tag>.<facility>.<severity>` (`system.auth.info`). A message that does not parse is kept
//!   whole as `{"message":"..."}`, tagged `<tag>.unmatched`, timed when it was received and
//!   counted in [`SyslogStats::parse_errors`].
//! - **TLS.** A TCP source with a `tls` table ([`TlsConfig`]) accepts only TLS connections
//!   (RFC 5425; TLS 1.2 and 1.3 with rustls), optionally requiring client certificates signed
//!   by a given CA. Failed handshakes are counted ([`SyslogStats::tls_handshake_failures`]).
//! - **Backpressure.** Over TCP, a full channel stops reading from the connection. Over UDP the
//!   socket is always read; batches the channel has no room for are dropped and counted
//!   ([`SyslogStats::dropped`]) with a warning at most every 10 seconds.
//!
//! ```
//! use std::net::UdpSocket;
//! use logferry_core::{AckStatus, shutdown_pair};
//! use logferry_source_syslog::{Protocol, SyslogBatch, SyslogConfig, SyslogSource};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let mut config = SyslogConfig::new(Protocol::Udp);
//! config.port = 0; // any free port
//! let source = SyslogSource::bind("syslog", config).await.unwrap();
//! let addr = source.local_addr();
//! let (tx, mut rx) = tokio::sync::mpsc::channel::<SyslogBatch>(16);
//! let (stop, shutdown) = shutdown_pair();
//! let running = tokio::spawn(source.run(tx, shutdown));
//!
//! let client = UdpSocket::bind("127.0.0.1:0").unwrap();
//! client.send_to(b"<38>Feb  5 17:32:18 myhost sshd[1234]: Accepted publickey", addr).unwrap();
//!
//! let batch = rx.recv().await.unwrap();
//! assert_eq!(&*batch.tag, "system.auth.info");
//! let record: serde_json::Value = serde_json::from_str(&batch.records[0].json).unwrap();
//! assert_eq!(record["host"], "myhost");
//! assert_eq!(record["ident"], "sshd");
//! assert_eq!(record["pid"], "1234");
//! assert_eq!(record["message"], "Accepted publickey");
//! batch.ack.finish(AckStatus::Delivered);
//!
//! stop.trigger();
//! let summary = running.await.unwrap().unwrap();
//! assert_eq!(summary.messages, 1);
//! # });
//! ```
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod batch;
mod batcher;
mod config;
mod error;
mod framing;
mod record;
mod source;
mod stats;
mod tcp;
mod tls;
mod udp;

pub use batch::{SyslogBatch, SyslogRecord};
pub use config::{
    Protocol, SyslogConfig, TlsConfig, default_batch_size, default_bind, default_handshake_timeout,
    default_idle_timeout, default_max_connections, default_port, default_tag,
    default_tcp_message_length_limit, default_udp_message_length_limit,
};
pub use error::SyslogError;
pub use framing::{Frame, FrameDecoder};
pub use source::SyslogSource;
pub use stats::{SyslogStats, SyslogSummary};
