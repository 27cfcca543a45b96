//! Helpers for configuration files as text: `${NAME}` substitution inside TOML string values
//! ([`interpolate_env`]) and finding the line of a key ([`find_line`]) so that errors can name
//! it.

use std::fmt;

/// A `${NAME}` that could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolateError {
    /// The variable's name.
    pub name: String,
    /// 1-based line of the configuration where it appears.
    pub line: usize,
    /// Why it could not be substituted.
    pub reason: &'static str,
}

impl fmt::Display for InterpolateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ${{{}}}: {}", self.line, self.name, self.reason)
    }
}

impl std::error::Error for InterpolateError {}

/// Placeholders of S3 key templates (fluent-plugin-s3) that look like variables but are not.
const RESERVED: &[&str] = &["tag", "chunk_id"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Code,
    Comment,
    Basic,
    Literal,
    MultiBasic,
    MultiLiteral,
}

/// Replaces every `${NAME}` inside TOML string values with `lookup(NAME)`, escaping the value
/// for the kind of string it lands in. `$${NAME}` is a literal `${NAME}`. Comments and keys are
/// left alone. An unset variable is an error naming it and its line.
pub fn interpolate_env(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(text.len());
    let mut mode = Mode::Code;
    let mut line = 1;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let rest = &text[i..];
        let c = bytes[i];
        if c == b'\n' {
            line += 1;
            if mode == Mode::Comment {
                mode = Mode::Code;
            }
        }
        match mode {
            Mode::Code => {
                let (next, len) = if rest.starts_with("\"\"\"") {
                    (Mode::MultiBasic, 3)
                } else if rest.starts_with("'''") {
                    (Mode::MultiLiteral, 3)
                } else if c == b'"' {
                    (Mode::Basic, 1)
                } else if c == b'\'' {
                    (Mode::Literal, 1)
                } else if c == b'#' {
                    (Mode::Comment, 1)
                } else {
                    (Mode::Code, 0)
                };
                if len > 0 {
                    mode = next;
                    out.push_str(&rest[..len]);
                    i += len;
                    continue;
                }
            }
            Mode::Comment => {}
            Mode::Basic | Mode::MultiBasic => {
                if c == b'\\' {
                    let len = rest.chars().take(2).map(char::len_utf8).sum::<usize>();
                    out.push_str(&rest[..len]);
                    i += len;
                    continue;
                }
                let close = if mode == Mode::Basic { "\"" } else { "\"\"\"" };
                if rest.starts_with(close) {
                    out.push_str(close);
                    i += close.len();
                    mode = Mode::Code;
                    continue;
                }
            }
            Mode::Literal | Mode::MultiLiteral => {
                let close = if mode == Mode::Literal { "'" } else { "'''" };
                if rest.starts_with(close) {
                    out.push_str(close);
                    i += close.len();
                    mode = Mode::Code;
                    continue;
                }
            }
        }
        let in_string = matches!(
            mode,
            Mode::Basic | Mode::MultiBasic | Mode::Literal | Mode::MultiLiteral
        );
        if in_string && rest.starts_with("$${") {
            out.push_str("${");
            i += 3;
            continue;
        }
        if in_string
            && rest.starts_with("${")
            && let Some(end) = rest.find('}')
        {
            {
                let name = &rest[2..end];
                if !name.is_empty()
                    && !RESERVED.contains(&name)
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    let err = |reason| InterpolateError {
                        name: name.to_owned(),
                        line,
                        reason,
                    };
                    let value =
                        lookup(name).ok_or_else(|| err("environment variable is not set"))?;
                    match mode {
                        Mode::Basic | Mode::MultiBasic => {
                            for ch in value.chars() {
                                match ch {
                                    '"' => out.push_str("\\\""),
                                    '\\' => out.push_str("\\\\"),
                                    '\n' => out.push_str("\\n"),
                                    '\r' => out.push_str("\\r"),
                                    '\t' => out.push_str("\\t"),
                                    c if c.is_control() => {
                                        out.push_str(&format!("\\u{:04X}", c as u32))
                                    }
                                    c => out.push(c),
                                }
                            }
                        }
                        _ => {
                            if value.contains('\'') || value.contains('\n') {
                                return Err(err(
                                    "value contains a quote or newline, which a 'literal' TOML string cannot hold; use a \"basic\" string",
                                ));
                            }
                            out.push_str(&value);
                        }
                    }
                    i += end + 1;
                    continue;
                }
            }
        }
        let len = rest.chars().next().map_or(1, char::len_utf8);
        out.push_str(&rest[..len]);
        i += len;
    }
    Ok(out)
}

/// 1-based line of `key = ...` inside `[table]` (or of the table header when `key` is empty
/// or not found); 0 when neither is found. `table` is the dotted name as written in the
/// header (`sources.app`, `outputs.es.tls`).
///
/// ```
/// let text = "[sources.app]\ntype = \"tail\"\nbatch_size = 0\n";
/// assert_eq!(logferry_core::find_line(text, "sources.app", "batch_size"), 3);
/// assert_eq!(logferry_core::find_line(text, "sources.app", "missing"), 1);
/// // A table written inline: the line of its key in the parent table.
/// let text = "[outputs.es]\nhosts = []\ntls = { ca_file = \"ca.pem\" }\n";
/// assert_eq!(logferry_core::find_line(text, "outputs.es.tls", "ca_file"), 3);
/// ```
pub fn find_line(text: &str, table: &str, key: &str) -> usize {
    match find_in_table(text, table, key) {
        0 => match table.rsplit_once('.') {
            // No `[table]` header: an inline table or dotted keys in its parent.
            Some((parent, name)) => find_line(text, parent, name),
            None => 0,
        },
        line => line,
    }
}

fn find_in_table(text: &str, table: &str, key: &str) -> usize {
    let mut in_table = false;
    let mut header_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            let name = line.trim_matches(|c| c == '[' || c == ']').trim();
            in_table = name == table;
            if in_table {
                header_line = i + 1;
            }
            continue;
        }
        if in_table && !key.is_empty() {
            let name = line
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"');
            if name == key {
                return i + 1;
            }
        }
    }
    header_line
}

/// A configuration file that could not be loaded; names the file, and the key and line when
/// known. Shared by logferry's binaries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A `${NAME}` could not be substituted.
    #[error("{path}: {source}")]
    Interpolate {
        /// The file.
        path: std::path::PathBuf,
        /// Which variable, where.
        source: InterpolateError,
    },
    /// TOML syntax or shape error (the parser's message carries the line and column).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key's value is not valid.
    #[error("{path}:{line}: `{key}`: {message}")]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// 1-based line of the key or its table (0 when unknown).
        line: usize,
        /// Dotted key path, e.g. `outputs.audit.bucket`.
        key: String,
        /// Why.
        message: String,
    },
}

impl ConfigError {
    /// A TOML error of `path`.
    pub fn parse(path: &std::path::Path, message: impl Into<String>) -> ConfigError {
        ConfigError::Parse {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// `key` of `[table]` (the table itself when `key` is empty) in `path`, whose text is
    /// `text`, is invalid: the error carries the line ([`find_line`]) and the dotted key.
    pub fn invalid(
        path: &std::path::Path,
        text: &str,
        table: &str,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: path.to_owned(),
            line: find_line(text, table, key),
            key: if key.is_empty() {
                table.to_owned()
            } else {
                format!("{table}.{key}")
            },
            message: message.into(),
        }
    }
}

/// Reads the configuration file `path` ([`ConfigError::Read`] naming it when it cannot).
pub fn read_config(path: &std::path::Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Substitutes `${NAME}` in `text`, the contents of `path`.
pub fn interpolate_config(
    path: &std::path::Path,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    interpolate_env(text, lookup).map_err(|source| ConfigError::Interpolate {
        path: path.to_owned(),
        source,
    })
}

/// The key named by serde's "unknown field `x`" message (to find its line).
pub fn unknown_field(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    Some(rest.split('`').next()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("AKIA\"x\\y".into()),
            "REGION" => Some("eu-west-1".into()),
            "QUOTE" => Some("it's".into()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_in_strings_only() {
        let text = "# ${NOPE} in a comment\nkey_format = \"${tag}/%Y\"\nregion = \"${REGION}\"\nkey = \"${KEY}\"\nlit = '${REGION}-x'\nkeep = \"$${REGION}\"\n";
        let out = interpolate_env(text, &env).unwrap();
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(parsed["region"].as_str(), Some("eu-west-1"));
        assert_eq!(parsed["key"].as_str(), Some("AKIA\"x\\y"));
        assert_eq!(parsed["lit"].as_str(), Some("eu-west-1-x"));
        assert_eq!(parsed["keep"].as_str(), Some("${REGION}"));
        assert_eq!(parsed["key_format"].as_str(), Some("${tag}/%Y"));
        assert!(out.starts_with("# ${NOPE}"));
    }

    #[test]
    fn unset_variable_names_itself_and_line() {
        let err = interpolate_env("a = 1\nb = \"${MISSING}\"\n", &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: ${MISSING}: environment variable is not set"
        );
        let err = interpolate_env("b = '${QUOTE}'\n", &env).unwrap_err();
        assert!(err.to_string().contains("literal"));
    }
}
