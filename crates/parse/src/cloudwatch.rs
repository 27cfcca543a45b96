//! PLACEHOLDER
use std::io::BufRead;
use crate::error::{DecodeError, LineError};
use crate::format::{DecodeOptions, DecodeSummary, Located};
pub(crate) fn decode<R: BufRead>(
    reader: R,
    options: &DecodeOptions,
    on_item: &mut dyn FnMut(Result<Located<'_>, LineError>),
) -> Result<DecodeSummary, DecodeError> {
    let _ = (reader, options, on_item);
    Ok(DecodeSummary::default())
}
use logferry_core::Timestamp;
use crate::error::ParseError;

/// PLACEHOLDER record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CloudWatchRecord<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: Timestamp,
    message: &'a str,
}
impl CloudWatchRecord<'_> {
    /// The event time.
    pub fn timestamp(&self) -> Timestamp { self.timestamp }
}
