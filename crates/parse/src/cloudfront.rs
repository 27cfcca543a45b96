//! PLACEHOLDER: replaced by the real parser.
use logferry_core::Timestamp;
use crate::error::ParseError;

/// PLACEHOLDER record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CloudFrontRecord<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: Timestamp,
    message: &'a str,
}
impl CloudFrontRecord<'_> {
    /// The event time.
    pub fn timestamp(&self) -> Timestamp { self.timestamp }
}

#[derive(Debug, Default)]
pub(crate) struct CloudFrontState;
pub(crate) fn parse_line<'a>(state: &mut CloudFrontState, line: &'a str) -> Result<Option<CloudFrontRecord<'a>>, ParseError> {
    let _ = (state, line);
    Err(ParseError::missing("unimplemented"))
}
