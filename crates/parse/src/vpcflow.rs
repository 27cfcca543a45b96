//! PLACEHOLDER: replaced by the real parser.
use logferry_core::Timestamp;
use crate::error::ParseError;

/// PLACEHOLDER record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VpcFlowRecord<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: Timestamp,
    message: &'a str,
}
impl VpcFlowRecord<'_> {
    /// The event time.
    pub fn timestamp(&self) -> Timestamp { self.timestamp }
}

use crate::error::FormatError;
use crate::format::FormatOptions;
pub(crate) const OPTIONS: &str = "fields";
#[derive(Debug, Clone)]
pub(crate) struct VpcFlowOptions;
impl VpcFlowOptions {
    pub(crate) fn from_options(options: &FormatOptions) -> Result<VpcFlowOptions, FormatError> { let _ = options; Ok(VpcFlowOptions) }
}
#[derive(Debug)]
pub(crate) struct VpcFlowState;
impl VpcFlowState { pub(crate) fn new(options: &VpcFlowOptions) -> VpcFlowState { let _ = options; VpcFlowState } }
pub(crate) fn parse_line<'a>(state: &mut VpcFlowState, line: &'a str) -> Result<Option<VpcFlowRecord<'a>>, ParseError> {
    let _ = (state, line);
    Err(ParseError::missing("unimplemented"))
}
