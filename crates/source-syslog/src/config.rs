//! The `[sources.X]` table of a `type = "syslog"` source.

use std::path::PathBuf;

use logferry_core::{ByteSize, ConfigDuration};
use serde::Deserialize;

use crate::SyslogError;

/// The transport a syslog source listens on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// One datagram is one message (RFC 5426); fluentd's default transport.
    #[default]
    Udp,
    /// A stream of messages framed per RFC 6587: octet-counting (`LEN SP MSG`) or
    /// newline-delimited, detected per message.
    Tcp,
}

/// Configuration of a syslog source: the `[sources.X]` table with `type = "syslog"`, without
/// the `type` key (the caller consumes it). Option names follow fluentd's `in_syslog`.
///
/// ```
/// use logferry_source_syslog::{Protocol, SyslogConfig};
///
/// let config: SyslogConfig = serde_json::from_str(r#"{
///     "protocol": "tcp",
///     "port": 5514,
///     "tag": "system"
/// }"#).unwrap();
/// assert!(config.validate().is_ok());
/// assert_eq!(config.protocol, Protocol::Tcp);
/// assert_eq!(config.bind, "127.0.0.1");
/// assert_eq!(config.message_length_limit().bytes(), 8192);
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `udp` (the default) or `tcp`.
    #[serde(default)]
    pub protocol: Protocol,
    /// The address to listen on (default `127.0.0.1`; `0.0.0.0` or `::` for every interface).
    #[serde(default = "default_bind")]
    pub bind: String,
    /// The port to listen on (default `5140`, fluentd's).
    #[serde(default = "default_port")]
    pub port: u16,
    /// The tag prefix: records are tagged `<tag>.<facility>.<severity>` (`system.auth.info`), and
    /// messages that do not parse `<tag>.unmatched` (default `system`).
    #[serde(default = "default_tag")]
    pub tag: String,
    /// Longest message kept, in bytes; a longer one is truncated to this size and counted.
    /// Default: `2048` for UDP (fluentd's `message_length_limit`), `8192` for TCP (rsyslog's
    /// default `maxMessageSize`, RFC 5425's recommended minimum).
    #[serde(default)]
    pub message_length_limit: Option<ByteSize>,
    /// TCP only: most connections open at once (default `1024`); connections beyond it are
    /// closed as soon as they are accepted, and counted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// TCP only: a connection that sends nothing for this long is closed (default `5m`).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: ConfigDuration,
    /// Most records per emitted batch (default `1000`).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// TCP only: accept TLS connections (RFC 5425) instead of plain TCP. The framing inside
    /// the TLS stream is the same (octet-counting or newline-delimited).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// The `[sources.X.tls]` table: syslog over TLS (RFC 5425). Names follow fluentd's
/// `<transport tls>` section.
///
/// ```
/// use logferry_source_syslog::SyslogConfig;
///
/// let config: SyslogConfig = serde_json::from_str(r#"{
///     "protocol": "tcp",
///     "port": 6514,
///     "tls": {
///         "cert_path": "/etc/logferry/syslog.crt",
///         "private_key_path": "/etc/logferry/syslog.key",
///         "ca_path": "/etc/logferry/clients-ca.crt",
///         "client_cert_auth": true
///     }
/// }"#).unwrap();
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the server's certificate, followed by any intermediate certificates.
    pub cert_path: PathBuf,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key_path: PathBuf,
    /// PEM file with the certificate authorities that sign client certificates; required by
    /// `client_cert_auth`.
    #[serde(default)]
    pub ca_path: Option<PathBuf>,
    /// Require every client to present a certificate signed by `ca_path` (mutual TLS;
    /// default `false`: any client may connect, as with plain TCP).
    #[serde(default)]
    pub client_cert_auth: bool,
    /// Longest a client may take to complete the TLS handshake (default `10s`); slower ones
    /// are disconnected and counted in `tls_handshake_failures`.
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout: ConfigDuration,
}

/// `10s`.
pub fn default_handshake_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(10)
}

/// `127.0.0.1`.
pub fn default_bind() -> String {
    "127.0.0.1".to_owned()
}

/// `5140`.
pub fn default_port() -> u16 {
    5140
}

/// `system`.
pub fn default_tag() -> String {
    "system".to_owned()
}

/// `2048` bytes: fluentd's `message_length_limit`, used for UDP.
pub fn default_udp_message_length_limit() -> ByteSize {
    ByteSize::new(2048)
}

/// `8192` bytes, used for TCP.
pub fn default_tcp_message_length_limit() -> ByteSize {
    ByteSize::new(8192)
}

/// `1024`.
pub fn default_max_connections() -> usize {
    1024
}

/// `5m`.
pub fn default_idle_timeout() -> ConfigDuration {
    ConfigDuration::from_secs(300)
}

/// `1000`.
pub fn default_batch_size() -> usize {
    1000
}

/// Largest `message_length_limit` accepted (16 MiB): it bounds memory per connection.
const MAX_MESSAGE_LENGTH_LIMIT: u64 = 16 << 20;

impl Default for SyslogConfig {
    fn default() -> SyslogConfig {
        SyslogConfig {
            protocol: Protocol::default(),
            bind: default_bind(),
            port: default_port(),
            tag: default_tag(),
            message_length_limit: None,
            max_connections: default_max_connections(),
            idle_timeout: default_idle_timeout(),
            batch_size: default_batch_size(),
            tls: None,
        }
    }
}

impl SyslogConfig {
    /// A configuration for `protocol` with every other key at its default.
    pub fn new(protocol: Protocol) -> SyslogConfig {
        SyslogConfig {
            protocol,
            ..SyslogConfig::default()
        }
    }

    /// The effective `message_length_limit`: the configured one or the protocol's default.
    pub fn message_length_limit(&self) -> ByteSize {
        self.message_length_limit.unwrap_or(match self.protocol {
            Protocol::Udp => default_udp_message_length_limit(),
            Protocol::Tcp => default_tcp_message_length_limit(),
        })
    }

    /// Checks the configuration without touching the network. Errors name the key relative to
    /// the source's table.
    pub fn validate(&self) -> Result<(), SyslogError> {
        let invalid = |key: &str, message: &str| SyslogError::Config {
            key: key.to_owned(),
            message: message.to_owned(),
        };
        if self.bind.parse::<std::net::IpAddr>().is_err() {
            return Err(invalid("bind", "must be an IP address"));
        }
        if self.tag.trim().is_empty() {
            return Err(invalid("tag", "must not be empty"));
        }
        if self.tag.chars().any(char::is_whitespace) {
            return Err(invalid("tag", "must not contain whitespace"));
        }
        let limit = self.message_length_limit().bytes();
        if limit == 0 {
            return Err(invalid("message_length_limit", "must be greater than zero"));
        }
        if limit > MAX_MESSAGE_LENGTH_LIMIT {
            return Err(invalid("message_length_limit", "must be at most 16MiB"));
        }
        if self.max_connections == 0 {
            return Err(invalid("max_connections", "must be greater than zero"));
        }
        if self.idle_timeout.as_duration().is_zero() {
            return Err(invalid("idle_timeout", "must be greater than zero"));
        }
        if self.batch_size == 0 {
            return Err(invalid("batch_size", "must be greater than zero"));
        }
        if let Some(tls) = &self.tls {
            if self.protocol != Protocol::Tcp {
                return Err(invalid("tls", "needs `protocol = \"tcp\"`"));
            }
            if tls.client_cert_auth && tls.ca_path.is_none() {
                return Err(invalid(
                    "tls.ca_path",
                    "is required by `client_cert_auth = true`",
                ));
            }
            if tls.handshake_timeout.as_duration().is_zero() {
                return Err(invalid(
                    "tls.handshake_timeout",
                    "must be greater than zero",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<SyslogConfig, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn defaults() {
        let c = config("{}").unwrap();
        assert_eq!(c.protocol, Protocol::Udp);
        assert_eq!(
            (c.bind.as_str(), c.port, c.tag.as_str()),
            ("127.0.0.1", 5140, "system")
        );
        assert_eq!(c.message_length_limit().bytes(), 2048);
        assert_eq!(c.max_connections, 1024);
        assert_eq!(c.idle_timeout.as_duration().as_secs(), 300);
        c.validate().unwrap();
        let c = config(r#"{"protocol":"tcp","message_length_limit":"64KiB"}"#).unwrap();
        assert_eq!(c.message_length_limit().bytes(), 64 << 10);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        assert!(config(r#"{"type":"syslog"}"#).is_err());
        assert!(config(r#"{"protocol":"sctp"}"#).is_err());
        assert!(config(r#"{"port":70000}"#).is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let key = |json: &str| match config(json).unwrap().validate() {
            Err(SyslogError::Config { key, .. }) => key,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(key(r#"{"bind":"localhost"}"#), "bind");
        assert_eq!(key(r#"{"tag":"a b"}"#), "tag");
        assert_eq!(key(r#"{"message_length_limit":0}"#), "message_length_limit");
        assert_eq!(
            key(r#"{"message_length_limit":"1GiB"}"#),
            "message_length_limit"
        );
        assert_eq!(key(r#"{"max_connections":0}"#), "max_connections");
        assert_eq!(key(r#"{"idle_timeout":"0s"}"#), "idle_timeout");
        assert_eq!(key(r#"{"batch_size":0}"#), "batch_size");
        let tls = r#""tls":{"cert_path":"c","private_key_path":"k""#;
        assert_eq!(key(&format!("{{{tls}}}}}")), "tls", "UDP has no TLS");
        assert_eq!(
            key(&format!(
                r#"{{"protocol":"tcp",{tls},"client_cert_auth":true}}}}"#
            )),
            "tls.ca_path"
        );
        assert_eq!(
            key(&format!(
                r#"{{"protocol":"tcp",{tls},"handshake_timeout":"0s"}}}}"#
            )),
            "tls.handshake_timeout"
        );
        assert!(config(r#"{"protocol":"tcp","tls":{"cert_path":"c"}}"#).is_err());
    }
}
