//! Object keys from fluent-plugin-s3's `s3_object_key_format` and `time_slice_format`.

use crate::SinkError;
use crate::identity::ChunkIdentity;
use crate::strftime::{self, Civil, TimeItem, Zone};

/// fluent-plugin-s3's default `s3_object_key_format`.
pub const DEFAULT_KEY_FORMAT: &str = "%{path}%{time_slice}_%{index}.%{file_extension}";

/// The default `time_slice_format` (fluentd's for hourly time slices).
pub const DEFAULT_TIME_SLICE_FORMAT: &str = "%Y%m%d%H";

/// The longest `%{hex_random}` (fluent-plugin-s3's limit).
pub const MAX_HEX_RANDOM_LENGTH: usize = 16;

const KEY_FORMAT: &str = "s3_object_key_format";

/// One piece of a parsed key template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(String),
    Time(TimeItem),
    TimeSlice,
    Index,
    UuidFlush,
    HexRandom,
    HmsSlice,
    Tag,
    TagPart(i64),
    ChunkId,
}

/// `index_format`: `%d`, `%x` or `%X` with an optional zero-padded width (`%04d`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IndexFormat {
    width: usize,
    radix: u8,
}

impl IndexFormat {
    fn parse(format: &str) -> Result<IndexFormat, SinkError> {
        let invalid = || SinkError::Config {
            key: "index_format",
            reason: format!(
                "`{format}` is not `%d`, `%x` or `%X` with an optional zero-padded width \
                 such as `%04d`"
            ),
        };
        let body = format.strip_prefix('%').ok_or_else(invalid)?;
        let (width, conv) = body.split_at(body.len().saturating_sub(1));
        let radix = match conv {
            "d" => 10,
            "x" => 16,
            "X" => 17,
            _ => return Err(invalid()),
        };
        let width = match width {
            "" => 0,
            w if w.starts_with('0') && w.bytes().all(|b| b.is_ascii_digit()) => {
                let width: usize = w.parse().map_err(|_| invalid())?;
                if width > 20 {
                    return Err(invalid());
                }
                width
            }
            _ => return Err(invalid()),
        };
        Ok(IndexFormat { width, radix })
    }

    fn render(self, value: u64, out: &mut String) {
        let text = match self.radix {
            16 => format!("{value:x}"),
            17 => format!("{value:X}"),
            _ => value.to_string(),
        };
        out.extend(std::iter::repeat_n(
            '0',
            self.width.saturating_sub(text.len()),
        ));
        out.push_str(&text);
    }
}

/// An object-key template, parsed once and rendered for each chunk.
///
/// Placeholders, as in fluent-plugin-s3 (see `docs/s3-output.md` for the differences):
///
/// | placeholder | value |
/// | --- | --- |
/// | `%{path}` | the `path` option, verbatim |
/// | `%{time_slice}` (`%{date_slice}`) | the chunk's timekey formatted with `time_slice_format` |
/// | `%{index}` | the chunk's sequence number, formatted with `index_format` |
/// | `%{file_extension}` | `gz`, `zst`, `json` or `txt` from `store_as` |
/// | `%{hostname}` | the host name |
/// | `%{uuid_flush}` | the chunk id as a UUID |
/// | `%{hex_random}` | the first `hex_random_length` hex digits of the chunk id |
/// | `%{hms_slice}` | when the chunk was sealed, `%H%M%S` |
/// | `${tag}`, `${tag[N]}` | the tag, or its N-th dot-separated part (negative N counts from the end) |
/// | `${chunk_id}` | the chunk id as 32 hex digits |
/// | `%Y`, `%m`, `%d`, `%H`, ... | `strftime` fields of the chunk's timekey |
///
/// Times are in UTC with `utc = true`, else in the local zone. A template renders the same key
/// for the same [`ChunkIdentity`], always: a re-upload overwrites its object.
///
/// ```
/// use logferry_core::Timestamp;
/// use logferry_sink_s3::{ChunkIdentity, KeyTemplate};
///
/// let template = KeyTemplate::builder("%{path}/%Y/%m/%d/${tag[1]}/%{time_slice}_%{index}.%{file_extension}")
///     .path("logs")
///     .time_slice_format("%Y%m%d-%H")
///     .utc(true)
///     .build()
///     .unwrap();
/// let chunk = ChunkIdentity {
///     tag: "app.web".to_string(),
///     timekey: Timestamp::parse_rfc3339("2013-01-11T22:00:00Z").unwrap(),
///     seq: 3,
///     id: [7; 16],
///     sealed_at: Timestamp::parse_rfc3339("2013-01-11T23:10:00Z").unwrap(),
/// };
/// assert_eq!(template.render(&chunk), "logs/2013/01/11/web/20130111-22_3.gz");
/// ```
#[derive(Clone, Debug)]
pub struct KeyTemplate {
    source: String,
    tokens: Vec<Token>,
    time_slice: Vec<TimeItem>,
    hms: Vec<TimeItem>,
    index: IndexFormat,
    hex_random_length: usize,
    zone: Zone,
}

/// Options of a [`KeyTemplate`]; each setter states its default.
#[derive(Clone, Debug)]
pub struct KeyTemplateBuilder {
    format: String,
    path: String,
    time_slice_format: String,
    index_format: String,
    hex_random_length: usize,
    utc: bool,
    file_extension: String,
    hostname: Option<String>,
}

impl KeyTemplateBuilder {
    /// `%{path}`, used verbatim. Default: empty.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The format of `%{time_slice}`. Default: [`DEFAULT_TIME_SLICE_FORMAT`].
    pub fn time_slice_format(mut self, format: impl Into<String>) -> Self {
        self.time_slice_format = format.into();
        self
    }

    /// The format of `%{index}`: `%d`, `%x`, `%X`, zero-padded as `%04d`. Default: `%d`.
    pub fn index_format(mut self, format: impl Into<String>) -> Self {
        self.index_format = format.into();
        self
    }

    /// Number of hex digits of `%{hex_random}`, 1 to 16. Default: 4.
    pub fn hex_random_length(mut self, length: usize) -> Self {
        self.hex_random_length = length;
        self
    }

    /// Render times in UTC (true) or in the local time zone (false). Default: false, as fluentd.
    pub fn utc(mut self, utc: bool) -> Self {
        self.utc = utc;
        self
    }

    /// `%{file_extension}`. Default: `gz`.
    pub fn file_extension(mut self, extension: impl Into<String>) -> Self {
        self.file_extension = extension.into();
        self
    }

    /// `%{hostname}`. Default: the host's name.
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// Parses the template; unknown placeholders and `%` conversions are errors.
    pub fn build(self) -> Result<KeyTemplate, SinkError> {
        if !(1..=MAX_HEX_RANDOM_LENGTH).contains(&self.hex_random_length) {
            return Err(SinkError::Config {
                key: "hex_random_length",
                reason: format!(
                    "{} is not between 1 and {MAX_HEX_RANDOM_LENGTH}",
                    self.hex_random_length
                ),
            });
        }
        let index = IndexFormat::parse(&self.index_format)?;
        let time_slice = strftime::parse_time_format(&self.time_slice_format).map_err(|e| {
            SinkError::Template {
                key: "time_slice_format",
                template: self.time_slice_format.clone(),
                position: e.position,
                reason: e.reason,
            }
        })?;
        let tokens = parse_key_format(&self.format, &self)?;
        let hms = strftime::parse_time_format("%H%M%S").unwrap_or_default();
        Ok(KeyTemplate {
            source: self.format,
            tokens,
            time_slice,
            hms,
            index,
            hex_random_length: self.hex_random_length,
            zone: if self.utc { Zone::Utc } else { Zone::Local },
        })
    }
}

fn template_error(format: &str, position: usize, reason: impl Into<String>) -> SinkError {
    SinkError::Template {
        key: KEY_FORMAT,
        template: format.to_string(),
        position,
        reason: reason.into(),
    }
}

fn push_literal(tokens: &mut Vec<Token>, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(Token::Literal(last)) = tokens.last_mut() {
        last.push_str(text);
    } else {
        tokens.push(Token::Literal(text.to_string()));
    }
}

fn parse_key_format(format: &str, options: &KeyTemplateBuilder) -> Result<Vec<Token>, SinkError> {
    let mut tokens = Vec::new();
    let bytes = format.as_bytes();
    let mut literal_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'%', Some(b'{')) => {
                push_literal(&mut tokens, &format[literal_start..i]);
                let close = format[i..]
                    .find('}')
                    .ok_or_else(|| template_error(format, i, "`%{` without a closing `}`"))?;
                let name = &format[i + 2..i + close];
                match name {
                    "path" => push_literal(&mut tokens, &options.path),
                    "file_extension" => push_literal(&mut tokens, &options.file_extension),
                    "hostname" => {
                        let host = options.hostname.clone().unwrap_or_else(|| {
                            gethostname::gethostname().to_string_lossy().into_owned()
                        });
                        push_literal(&mut tokens, &host);
                    }
                    "time_slice" | "date_slice" => tokens.push(Token::TimeSlice),
                    "index" => tokens.push(Token::Index),
                    "uuid_flush" => tokens.push(Token::UuidFlush),
                    "hex_random" => tokens.push(Token::HexRandom),
                    "hms_slice" => tokens.push(Token::HmsSlice),
                    "uuid" | "uuid:random" | "uuid:hostname" | "uuid:timestamp" => {
                        return Err(template_error(
                            format,
                            i,
                            format!(
                                "`%{{{name}}}` was removed from fluent-plugin-s3: use `%{{uuid_flush}}`"
                            ),
                        ));
                    }
                    _ => {
                        return Err(template_error(
                            format,
                            i,
                            format!("unknown placeholder `%{{{name}}}`"),
                        ));
                    }
                }
                i += close + 1;
                literal_start = i;
            }
            (b'%', _) => {
                push_literal(&mut tokens, &format[literal_start..i]);
                let (items, next) = strftime::parse_conversion(format, i + 1)
                    .map_err(|e| template_error(format, e.position, e.reason))?;
                for item in items {
                    match item {
                        TimeItem::Literal(text) => push_literal(&mut tokens, &text),
                        field => tokens.push(Token::Time(field)),
                    }
                }
                i = next;
                literal_start = i;
            }
            (b'$', Some(b'{')) => {
                push_literal(&mut tokens, &format[literal_start..i]);
                let close = format[i..]
                    .find('}')
                    .ok_or_else(|| template_error(format, i, "`${` without a closing `}`"))?;
                let name = &format[i + 2..i + close];
                if name == "tag" {
                    tokens.push(Token::Tag);
                } else if name == "chunk_id" {
                    tokens.push(Token::ChunkId);
                } else if let Some(n) = name.strip_prefix("tag[").and_then(|r| r.strip_suffix(']'))
                {
                    let n: i64 = n.parse().map_err(|_| {
                        template_error(
                            format,
                            i,
                            format!("`${{{name}}}`: the index is not an integer"),
                        )
                    })?;
                    tokens.push(Token::TagPart(n));
                } else {
                    return Err(template_error(
                        format,
                        i,
                        format!(
                            "unknown placeholder `${{{name}}}` (only `${{tag}}`, `${{tag[N]}}` and \
                             `${{chunk_id}}`: chunks are keyed by tag and time only)"
                        ),
                    ));
                }
                i += close + 1;
                literal_start = i;
            }
            _ => i += 1,
        }
    }
    push_literal(&mut tokens, &format[literal_start..]);
    Ok(tokens)
}

impl KeyTemplate {
    /// A builder for the template `format` (`s3_object_key_format`).
    pub fn builder(format: impl Into<String>) -> KeyTemplateBuilder {
        KeyTemplateBuilder {
            format: format.into(),
            path: String::new(),
            time_slice_format: DEFAULT_TIME_SLICE_FORMAT.to_string(),
            index_format: "%d".to_string(),
            hex_random_length: 4,
            utc: false,
            file_extension: "gz".to_string(),
            hostname: None,
        }
    }

    /// Parses `format` with every option at its default.
    pub fn parse(format: &str) -> Result<KeyTemplate, SinkError> {
        KeyTemplate::builder(format).build()
    }

    /// The template text it was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The object key of a chunk. Never fails: a `${tag[N]}` beyond the tag's parts is left as
    /// written (as fluentd does) and logged.
    pub fn render(&self, chunk: &ChunkIdentity) -> String {
        let mut out = String::with_capacity(self.source.len() + 32);
        let mut civil: Option<Civil> = None;
        let mut parts: Option<Vec<&str>> = None;
        for token in &self.tokens {
            match token {
                Token::Literal(text) => out.push_str(text),
                Token::Time(item) => {
                    let civil = civil.get_or_insert_with(|| Civil::new(chunk.timekey, self.zone));
                    strftime::render(std::slice::from_ref(item), civil, &mut out);
                }
                Token::TimeSlice => {
                    let civil = civil.get_or_insert_with(|| Civil::new(chunk.timekey, self.zone));
                    strftime::render(&self.time_slice, civil, &mut out);
                }
                Token::HmsSlice => {
                    let sealed = Civil::new(chunk.sealed_at, self.zone);
                    strftime::render(&self.hms, &sealed, &mut out);
                }
                Token::Index => self.index.render(chunk.seq, &mut out),
                Token::UuidFlush => out.push_str(&chunk.id_uuid()),
                Token::HexRandom => out.push_str(&chunk.id_hex()[..self.hex_random_length]),
                Token::ChunkId => out.push_str(&chunk.id_hex()),
                Token::Tag => out.push_str(&chunk.tag),
                Token::TagPart(n) => {
                    let parts = parts.get_or_insert_with(|| chunk.tag.split('.').collect());
                    let index = if *n < 0 { parts.len() as i64 + n } else { *n };
                    match usize::try_from(index).ok().and_then(|i| parts.get(i)) {
                        Some(part) => out.push_str(part),
                        None => {
                            tracing::warn!(
                                tag = %chunk.tag,
                                placeholder = %format!("${{tag[{n}]}}"),
                                template = %self.source,
                                "Tag placeholder not replaced: the tag has too few parts."
                            );
                            out.push_str(&format!("${{tag[{n}]}}"));
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use logferry_core::Timestamp;

    use super::*;

    fn chunk() -> ChunkIdentity {
        ChunkIdentity {
            tag: "s3.var.log.app".to_string(),
            timekey: Timestamp::from_civil(2022, 1, 17, 13, 5, 0, 0).unwrap(),
            seq: 42,
            id: [
                0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0, 1, 2, 3, 4, 5, 6, 7,
            ],
            sealed_at: Timestamp::from_civil(2022, 1, 17, 13, 7, 30, 0).unwrap(),
        }
    }

    fn render(
        format: &str,
        builder: impl FnOnce(KeyTemplateBuilder) -> KeyTemplateBuilder,
    ) -> String {
        builder(KeyTemplate::builder(format).utc(true))
            .build()
            .unwrap()
            .render(&chunk())
    }

    #[test]
    fn default_format() {
        assert_eq!(
            render(DEFAULT_KEY_FORMAT, |b| b.path("logs/")),
            "logs/2022011713_42.gz"
        );
        assert_eq!(
            render(DEFAULT_KEY_FORMAT, |b| b
                .path("logs/")
                .index_format("%05d")
                .file_extension("zst")),
            "logs/2022011713_00042.zst"
        );
        assert_eq!(
            render("%{index}-%{index}", |b| b.index_format("%x")),
            "2a-2a"
        );
        assert_eq!(render("%{index}", |b| b.index_format("%04X")), "002A");
    }

    #[test]
    fn config_md_example() {
        let key = render(
            "%{path}/%Y/%m/%d/%H/%Y-%m-%d.%H/%{time_slice}_%{hms_slice}.%{file_extension}",
            |b| b.path("go-audit").time_slice_format("%Y-%m-%d.%H.%M.%S"),
        );
        assert_eq!(
            key,
            "go-audit/2022/01/17/13/2022-01-17.13/2022-01-17.13.05.00_130730.gz"
        );
    }

    #[test]
    fn ids_tags_and_hosts() {
        assert_eq!(
            render("%{uuid_flush}", |b| b),
            "abcdef01-2345-6789-0001-020304050607"
        );
        assert_eq!(render("%{hex_random}/x", |b| b), "abcd/x");
        assert_eq!(
            render("%{hex_random}", |b| b.hex_random_length(16)),
            "abcdef0123456789"
        );
        assert_eq!(
            render("${chunk_id}", |b| b),
            "abcdef01234567890001020304050607"
        );
        assert_eq!(
            render("${tag}/${tag[0]}/${tag[3]}/${tag[-1]}/${tag[-4]}", |b| b),
            "s3.var.log.app/s3/app/app/s3"
        );
        assert_eq!(
            render("${tag[4]}|${tag[-5]}", |b| b),
            "${tag[4]}|${tag[-5]}"
        );
        assert_eq!(
            render("%{hostname}-%{date_slice}", |b| b.hostname("h1")),
            "h1-2022011713"
        );
        assert_eq!(
            render("100%%/$x/%{path}", |b| b.path("%Y${tag}")),
            "100%/$x/%Y${tag}"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let err = |format: &str| match KeyTemplate::parse(format).unwrap_err() {
            SinkError::Template {
                position, reason, ..
            } => (position, reason),
            other => panic!("{other}"),
        };
        assert_eq!(err("a/%{nope}").0, 2);
        assert!(err("a/%{nope}").1.contains("%{nope}"));
        assert!(err("%{uuid}").1.contains("uuid_flush"));
        assert!(err("%{path").1.contains("closing"));
        assert!(err("${foo}").1.contains("${foo}"));
        assert!(err("${tag[x]}").1.contains("integer"));
        assert_eq!(err("%Y/%Q").0, 3);
        assert!(err("abc%").1.contains("end"));
        for bad in ["%5d", "d", "%", "%04", "%04s", "%021d", "%-4d"] {
            assert!(
                KeyTemplate::builder("x").index_format(bad).build().is_err(),
                "{bad}"
            );
        }
        assert!(
            KeyTemplate::builder("x")
                .hex_random_length(0)
                .build()
                .is_err()
        );
        assert!(
            KeyTemplate::builder("x")
                .hex_random_length(17)
                .build()
                .is_err()
        );
        assert!(
            KeyTemplate::builder("x")
                .time_slice_format("%Y%q")
                .build()
                .is_err()
        );
    }

    #[test]
    fn local_time_follows_the_zone() {
        let template = KeyTemplate::builder("%Y%m%d%H/%{time_slice}")
            .build()
            .unwrap();
        let expected = chrono::DateTime::from_timestamp(chunk().timekey.unix_seconds(), 0)
            .unwrap()
            .with_timezone(&chrono::Local)
            .format("%Y%m%d%H/%Y%m%d%H")
            .to_string();
        assert_eq!(template.render(&chunk()), expected);
    }
}
