//! PLACEHOLDER: replaced by the real parser.
use logferry_core::Timestamp;
use crate::error::ParseError;

/// PLACEHOLDER record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyslogRecord<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: Timestamp,
    message: &'a str,
}
impl SyslogRecord<'_> {
    /// The event time.
    pub fn timestamp(&self) -> Timestamp { self.timestamp }
}

pub(crate) fn parse(line: &str) -> Result<SyslogRecord<'_>, ParseError> {
    let _ = line;
    Err(ParseError::missing("unimplemented"))
}
