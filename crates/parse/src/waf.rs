//! PLACEHOLDER
use crate::error::ParseError;
use crate::jsonobj::JsonRecord;
pub(crate) fn parse(line: &str) -> Result<JsonRecord<'_>, ParseError> {
    let _ = line;
    Err(ParseError::missing("unimplemented"))
}
