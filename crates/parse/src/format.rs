//! The format registry: one [`Format`] per log format, found by name, with options.

use std::collections::BTreeMap;
use std::io::BufRead;

use logferry_core::Timestamp;
use serde::{Serialize, Serializer};

use crate::error::{DecodeError, FormatError, LineError, ParseError, ParseErrorKind};
use crate::framing::{FrameError, Framer};
use crate::members::MemberList;
use crate::{
    alb, cloudfront, cloudtrail, cloudwatch, config, elb, json, jsonobj, s3access, syslog, vpcflow,
    waf,
};

/// Options of a format, as `key = value` strings (from `--option KEY=VALUE` or a config's
/// `format_options` table). Each format refuses keys it does not know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormatOptions {
    values: BTreeMap<String, String>,
}

impl FormatOptions {
    /// No options.
    pub fn new() -> FormatOptions {
        FormatOptions::default()
    }

    /// Sets `key` to `value`, returning `self` for chaining.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> FormatOptions {
        self.values.insert(key.into(), value.into());
        self
    }

    /// Sets `key` to `value`.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.values.insert(key.into(), value.into());
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// All options, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Fails on the first key not in `allowed` (a comma-separated list).
    pub(crate) fn check_known(
        &self,
        format: &'static str,
        allowed: &'static str,
    ) -> Result<(), FormatError> {
        for key in self.values.keys() {
            if !allowed.split(", ").any(|a| a == key) {
                return Err(FormatError::UnknownOption {
                    format,
                    option: key.clone(),
                    allowed: if allowed.is_empty() {
                        "no options"
                    } else {
                        allowed
                    },
                });
            }
        }
        Ok(())
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for FormatOptions {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        FormatOptions {
            values: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// Every format's name, in the order they are documented.
pub const FORMAT_NAMES: &[&str] = &[
    "alb",
    "elb",
    "cloudfront",
    "s3access",
    "vpcflow",
    "waf",
    "cloudtrail",
    "cloudwatch",
    "config",
    "syslog",
    "json",
    "raw",
];

#[derive(Debug, Clone)]
enum Kind {
    Alb,
    Elb,
    CloudFront,
    S3Access,
    VpcFlow(vpcflow::VpcFlowOptions),
    Waf,
    CloudTrail,
    CloudWatch,
    Config,
    Syslog,
    Json(json::JsonOptions),
    Raw,
}

/// A log format with its options: the one entry point of this crate.
///
/// Line formats are parsed a line at a time with a [`LineParser`] (it keeps the state that
/// header lines set, e.g. CloudFront's `#Fields`); every format, line or whole-document, decodes
/// a whole object or stream with [`Format::decode`].
///
/// ```
/// use logferry_parse::{Format, FormatOptions};
///
/// let format = Format::new("vpcflow", &FormatOptions::new()).unwrap();
/// let mut parser = format.line_parser();
/// let line = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK";
/// let record = parser.parse_line(line).unwrap().unwrap();
/// let json = serde_json::to_value(&record).unwrap();
/// assert_eq!(json["@timestamp"], "2014-12-14T04:06:50Z");
/// assert_eq!(json["dstport"], 22);
/// ```
#[derive(Debug, Clone)]
pub struct Format {
    name: &'static str,
    kind: Kind,
}

impl Format {
    /// Looks up a format by name (see [`FORMAT_NAMES`]) and checks its options.
    pub fn new(name: &str, options: &FormatOptions) -> Result<Format, FormatError> {
        let (name, kind, allowed) = match name {
            "alb" => ("alb", Kind::Alb, ""),
            "elb" => ("elb", Kind::Elb, ""),
            "cloudfront" => ("cloudfront", Kind::CloudFront, ""),
            "s3access" => ("s3access", Kind::S3Access, ""),
            "vpcflow" => (
                "vpcflow",
                Kind::VpcFlow(vpcflow::VpcFlowOptions::from_options(options)?),
                vpcflow::OPTIONS,
            ),
            "waf" => ("waf", Kind::Waf, ""),
            "cloudtrail" => ("cloudtrail", Kind::CloudTrail, ""),
            "cloudwatch" => ("cloudwatch", Kind::CloudWatch, ""),
            "config" => ("config", Kind::Config, ""),
            "syslog" => ("syslog", Kind::Syslog, ""),
            "json" => (
                "json",
                Kind::Json(json::JsonOptions::from_options(options)?),
                json::OPTIONS,
            ),
            "raw" => ("raw", Kind::Raw, ""),
            other => {
                return Err(FormatError::UnknownFormat {
                    name: other.to_owned(),
                    known: FORMAT_NAMES.join(", "),
                });
            }
        };
        options.check_known(name, allowed)?;
        Ok(Format { name, kind })
    }

    /// The format's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether the format is one document per object (CloudTrail, CloudWatch Logs via
    /// Firehose, Config) rather than one record per line.
    pub fn is_document(&self) -> bool {
        matches!(
            self.kind,
            Kind::CloudTrail | Kind::CloudWatch | Kind::Config
        )
    }

    /// A parser for the lines of one input (keep one per file or object: header lines
    /// change its state).
    pub fn line_parser(&self) -> LineParser<'_> {
        let state = match &self.kind {
            Kind::CloudFront => State::CloudFront(cloudfront::CloudFrontState::default()),
            Kind::VpcFlow(options) => State::VpcFlow(vpcflow::VpcFlowState::new(options)),
            _ => State::Stateless,
        };
        LineParser {
            format: self,
            state,
        }
    }

    /// Decodes a whole (already decompressed) input, calling `on_item` with each record or
    /// each error, in order. Line formats are framed by `\n` (a trailing `\r` is removed) with
    /// at most `options.max_line_bytes` per line; longer lines are reported and skipped.
    /// Invalid UTF-8 is replaced with U+FFFD.
    ///
    /// Returns counts on success; an I/O error, or a document that cannot be continued,
    /// ends decoding with an error (records already passed to `on_item` stay valid).
    pub fn decode<R: BufRead>(
        &self,
        reader: R,
        options: &DecodeOptions,
        mut on_item: impl FnMut(Result<Located<'_>, LineError>),
    ) -> Result<DecodeSummary, DecodeError> {
        match self.kind {
            Kind::CloudTrail => cloudtrail::decode(reader, options, &mut on_item),
            Kind::CloudWatch => cloudwatch::decode(reader, options, &mut on_item),
            Kind::Config => config::decode(reader, options, &mut on_item),
            _ => self.decode_lines(reader, options, &mut on_item),
        }
    }

    fn decode_lines<R: BufRead>(
        &self,
        reader: R,
        options: &DecodeOptions,
        on_item: &mut dyn FnMut(Result<Located<'_>, LineError>),
    ) -> Result<DecodeSummary, DecodeError> {
        let mut parser = self.line_parser();
        let mut framer = Framer::new(reader, options.max_line_bytes, options.max_input_bytes);
        let mut summary = DecodeSummary::default();
        while let Some(frame) = framer.next_line()? {
            summary.lines += 1;
            let (line, position) = (frame.number, frame.offset);
            match frame.text {
                Err(FrameError::TooLong) => {
                    summary.errors += 1;
                    on_item(Err(LineError {
                        line,
                        position,
                        error: ParseError::invalid("line", "a line within the maximum line length"),
                    }));
                }
                Ok(text) => match parser.parse_line(text) {
                    Ok(Some(record)) => {
                        summary.records += 1;
                        on_item(Ok(Located {
                            line,
                            position,
                            record,
                        }));
                    }
                    Ok(None) => {}
                    Err(error) => {
                        summary.errors += 1;
                        on_item(Err(LineError {
                            line,
                            position,
                            error,
                        }));
                    }
                },
            }
        }
        Ok(summary)
    }
}

/// Limits applied while decoding one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Longest line kept, in bytes (default 1 MiB). For document formats: the largest single
    /// record (CloudTrail event, Config item, CloudWatch Logs message batch).
    pub max_line_bytes: usize,
    /// Most decompressed bytes read from one input (default: unlimited).
    pub max_input_bytes: Option<u64>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_line_bytes: 1024 * 1024,
            max_input_bytes: None,
        }
    }
}

/// What [`Format::decode`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeSummary {
    /// Lines read (documents: lines of the document).
    pub lines: u64,
    /// Records passed on.
    pub records: u64,
    /// Lines or records that failed.
    pub errors: u64,
}

/// A record with where it came from.
#[derive(Debug, Clone)]
pub struct Located<'a> {
    /// 1-based line number (documents: the line where the record ends).
    pub line: u64,
    /// Byte offset of the line in the decompressed input; for documents, the record's index.
    /// Stable across re-reads of the same input: use it to derive document ids.
    pub position: u64,
    /// The record.
    pub record: Record<'a>,
}

/// A parser for the lines of one input; see [`Format::line_parser`].
#[derive(Debug)]
pub struct LineParser<'f> {
    format: &'f Format,
    state: State,
}

#[derive(Debug)]
enum State {
    Stateless,
    CloudFront(cloudfront::CloudFrontState),
    VpcFlow(vpcflow::VpcFlowState),
}

impl LineParser<'_> {
    /// Parses one line (without its line terminator). Returns `Ok(None)` for lines that
    /// carry no record: blank lines, header and comment lines (CloudFront `#Version`,
    /// `#Fields`; the VPC flow log header).
    pub fn parse_line<'a>(&mut self, line: &'a str) -> Result<Option<Record<'a>>, ParseError> {
        if line.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(match (&self.format.kind, &mut self.state) {
            (Kind::Alb, _) => Record::Alb(alb::parse(line)?),
            (Kind::Elb, _) => Record::Elb(elb::parse(line)?),
            (Kind::CloudFront, State::CloudFront(state)) => {
                match cloudfront::parse_line(state, line)? {
                    Some(r) => Record::CloudFront(r),
                    None => return Ok(None),
                }
            }
            (Kind::S3Access, _) => Record::S3Access(s3access::parse(line)?),
            (Kind::VpcFlow(_), State::VpcFlow(state)) => match vpcflow::parse_line(state, line)? {
                Some(r) => Record::VpcFlow(r),
                None => return Ok(None),
            },
            (Kind::Waf, _) => Record::Json(waf::parse(line)?),
            (Kind::Syslog, _) => Record::Syslog(syslog::parse(line)?),
            (Kind::Json(options), _) => Record::Json(json::parse(line, options)?),
            (Kind::Raw, _) => Record::Raw(json::RawRecord::new(line)),
            (Kind::CloudTrail | Kind::CloudWatch | Kind::Config, _) => {
                return Err(ParseError::new("document", ParseErrorKind::NotLineOriented));
            }
            (Kind::CloudFront | Kind::VpcFlow(_), _) => {
                unreachable!("line_parser() sets the state for stateful formats")
            }
        }))
    }
}

/// One parsed record of any format. Serializes to one JSON object whose first member is
/// `@timestamp`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Record<'a> {
    /// Application Load Balancer access log entry.
    Alb(alb::AlbRecord<'a>),
    /// Classic Load Balancer access log entry.
    Elb(elb::ElbRecord<'a>),
    /// CloudFront standard access log entry.
    CloudFront(cloudfront::CloudFrontRecord<'a>),
    /// S3 server access log entry.
    S3Access(s3access::S3AccessRecord<'a>),
    /// VPC flow log record.
    VpcFlow(vpcflow::VpcFlowRecord<'a>),
    /// Syslog message (RFC 3164 or RFC 5424).
    Syslog(syslog::SyslogRecord<'a>),
    /// A JSON object passed through (WAF, CloudTrail, Config, JSON lines).
    Json(jsonobj::JsonRecord<'a>),
    /// One CloudWatch Logs event delivered through Firehose.
    CloudWatch(cloudwatch::CloudWatchRecord<'a>),
    /// A line kept as `message`.
    Raw(json::RawRecord<'a>),
}

impl Record<'_> {
    /// The event's time (`@timestamp`).
    pub fn timestamp(&self) -> Timestamp {
        match self {
            Record::Alb(r) => r.timestamp(),
            Record::Elb(r) => r.timestamp(),
            Record::CloudFront(r) => r.timestamp(),
            Record::S3Access(r) => r.timestamp(),
            Record::VpcFlow(r) => r.timestamp(),
            Record::Syslog(r) => r.timestamp(),
            Record::Json(r) => r.timestamp(),
            Record::CloudWatch(r) => r.timestamp(),
            Record::Raw(r) => r.timestamp(),
        }
    }

    /// Appends the record's JSON object to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut text = String::new();
        self.write_json_str(&mut text);
        out.extend_from_slice(text.as_bytes());
    }

    /// Appends the record's JSON object to `out` (the text of [`Record::write_json`], without
    /// a byte buffer to check for UTF-8): written directly by the line formats whose records
    /// have a fast writer, encoded by [`logferry_core::json`] for the others. Either way, the
    /// text `serde_json` gives for the record.
    pub fn write_json_str(&self, out: &mut String) {
        match self {
            Record::Alb(r) => r.write_json_str(out),
            Record::Elb(r) => r.write_json_str(out),
            Record::S3Access(r) => r.write_json_str(out),
            Record::Syslog(r) => r.write_json_str(out),
            Record::VpcFlow(r) => r.write_json_str(out),
            Record::CloudFront(r) => r.write_json_str(out),
            Record::Json(_) | Record::CloudWatch(_) | Record::Raw(_) => {
                // Records serialize only strings, numbers, sequences, maps and raw JSON: this
                // cannot fail.
                let _ = logferry_core::json::to_string_into(self, out);
            }
        }
    }
}

impl Serialize for Record<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Record::Alb(r) => r.serialize(serializer),
            Record::Elb(r) => r.serialize(serializer),
            Record::CloudFront(r) => r.serialize(serializer),
            Record::S3Access(r) => r.serialize(serializer),
            Record::VpcFlow(r) => r.serialize(serializer),
            Record::Syslog(r) => r.serialize(serializer),
            Record::Json(r) => r.serialize(serializer),
            Record::CloudWatch(r) => r.serialize(serializer),
            Record::Raw(r) => r.serialize(serializer),
        }
    }
}
