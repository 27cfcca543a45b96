//! Errors of the parsers and of the format registry.

use std::fmt;

/// Why one line (or one record of a document) could not be parsed. Always names the field.
///
/// ```
/// use logferry_parse::{Format, FormatOptions};
///
/// let format = Format::new("alb", &FormatOptions::new()).unwrap();
/// let err = format.line_parser().parse_line("http 2018-07-02T22:23:00Z app/x").unwrap_err();
/// assert_eq!(err.field(), "client:port");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {kind}")]
pub struct ParseError {
    field: &'static str,
    kind: ParseErrorKind,
}

/// What went wrong with a field.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The line ended before the field.
    Missing,
    /// The field is present but is not what the format says it holds.
    Invalid {
        /// What was expected, e.g. "an integer" or "an RFC 3339 timestamp".
        expected: &'static str,
    },
    /// A JSON value could not be read (WAF, CloudTrail, JSON lines, ...).
    Json {
        /// serde_json's description, with its column.
        message: String,
    },
    /// The line continues after the last field the format allows.
    TrailingData,
    /// A document format was given a single line; use [`crate::Format::decode`].
    NotLineOriented,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::Missing => f.write_str("missing"),
            ParseErrorKind::Invalid { expected } => write!(f, "expected {expected}"),
            ParseErrorKind::Json { message } => write!(f, "invalid JSON: {message}"),
            ParseErrorKind::TrailingData => f.write_str("unexpected data after the last field"),
            ParseErrorKind::NotLineOriented => {
                f.write_str("this format is a whole document, not one record per line")
            }
        }
    }
}

impl ParseError {
    /// An error about `field`.
    pub fn new(field: &'static str, kind: ParseErrorKind) -> ParseError {
        ParseError { field, kind }
    }

    /// The field is missing.
    pub fn missing(field: &'static str) -> ParseError {
        ParseError::new(field, ParseErrorKind::Missing)
    }

    /// The field is not `expected`.
    pub fn invalid(field: &'static str, expected: &'static str) -> ParseError {
        ParseError::new(field, ParseErrorKind::Invalid { expected })
    }

    /// The field is not valid JSON.
    pub fn json(field: &'static str, err: &serde_json::Error) -> ParseError {
        ParseError::new(
            field,
            ParseErrorKind::Json {
                message: err.to_string(),
            },
        )
    }

    /// The field that failed (the format's own name for it, e.g. `elb_status_code`).
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// What went wrong.
    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }
}

/// A [`ParseError`] with its position in the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct LineError {
    /// 1-based line number (for documents: the line where the record ends).
    pub line: u64,
    /// Byte offset of the line (documents: index of the record) in the decompressed input.
    pub position: u64,
    /// What failed.
    #[source]
    pub error: ParseError,
}

/// A failure that stops decoding one input (an object or a file).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Reading the input failed (including corrupt compression).
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    /// A whole-document format found a document it cannot continue past.
    #[error("line {line}: malformed document: {message}")]
    Document {
        /// 1-based line where the problem was found.
        line: u64,
        /// serde_json's description.
        message: String,
    },
    /// The input exceeded a configured limit.
    #[error("input exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
}

/// A problem with a format name or its options.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// No format has that name.
    #[error("unknown log format `{name}` (known: {known})")]
    UnknownFormat {
        /// The name given.
        name: String,
        /// The names that exist, comma separated.
        known: String,
    },
    /// The format does not take that option.
    #[error("format `{format}` has no option `{option}` (it takes: {allowed})")]
    UnknownOption {
        /// The format.
        format: &'static str,
        /// The option given.
        option: String,
        /// The options the format takes.
        allowed: &'static str,
    },
    /// The option's value is not valid.
    #[error("format `{format}`, option `{option}`: {reason}")]
    InvalidOption {
        /// The format.
        format: &'static str,
        /// The option.
        option: &'static str,
        /// Why the value was refused.
        reason: String,
    },
}
