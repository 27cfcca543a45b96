//! Errors displayed with their causes, for log lines.

use std::error::Error;
use std::fmt;

/// Displays an error with its sources: `outer: inner: root cause`.
///
/// An error that wraps its source transparently repeats the source's message; it is printed
/// once.
///
/// ```
/// use logferry_core::ErrorChain;
///
/// let io = std::io::Error::other("connection reset");
/// let outer = std::io::Error::new(std::io::ErrorKind::Other, io);
/// assert_eq!(ErrorChain(&outer).to_string(), "connection reset");
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("request to {0} failed")]
/// struct Request(&'static str, #[source] std::io::Error);
/// let e = Request("http://es:9200", std::io::Error::other("invalid peer certificate: UnknownIssuer"));
/// assert_eq!(
///     ErrorChain(&e).to_string(),
///     "request to http://es:9200 failed: invalid peer certificate: UnknownIssuer"
/// );
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a dyn Error);

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last = self.0.to_string();
        f.write_str(&last)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            let message = e.to_string();
            if !last.ends_with(&message) {
                write!(f, ": {message}")?;
            }
            last = message;
            source = e.source();
        }
        Ok(())
    }
}
