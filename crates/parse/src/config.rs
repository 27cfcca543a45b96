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
