//! The dead-letter output: one NDJSON line per event that could not be parsed or was rejected
//! for good, with where it came from and why.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use logferry_core::Timestamp;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::EsError;
use crate::config::DeadLetterConfig;
use crate::event::{EsEvent, EventOrigin};

/// Appends dead letters to a file; clones share the file.
///
/// Each line is a JSON object: `@timestamp` (when it was written), `bucket`, `key`, `version`
/// (when known), `line`, `offset`, then `raw` (the input line, for parse failures) or
/// `document` (the JSON document, for rejected events), `error` (the reason), and for events
/// an output rejected, `output` (its name) and `status` (the HTTP status of the item).
///
/// ```
/// use logferry_sink_es::{DeadLetterConfig, DeadLetterWriter, EventOrigin};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("dead.ndjson");
/// let writer = DeadLetterWriter::open(&DeadLetterConfig { path: path.clone() }).unwrap();
/// let origin = EventOrigin::new("logs", "alb/x.log.gz", 7, 1234);
/// writer.write_parse_failure(&origin, b"garbage line", "expected 29 fields").unwrap();
/// let text = std::fs::read_to_string(&path).unwrap();
/// let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
/// assert_eq!(line["key"], "alb/x.log.gz");
/// assert_eq!(line["line"], 7);
/// assert_eq!(line["raw"], "garbage line");
/// assert_eq!(line["error"], "expected 29 fields");
/// ```
#[derive(Clone, Debug)]
pub struct DeadLetterWriter {
    path: PathBuf,
    file: Arc<Mutex<BufWriter<File>>>,
}

#[derive(Serialize)]
struct Record<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: Timestamp,
    bucket: &'a str,
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    line: u64,
    offset: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    document_text: Option<&'a str>,
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
}

impl<'a> Record<'a> {
    fn new(origin: &'a EventOrigin, error: &'a str) -> Record<'a> {
        Record {
            timestamp: Timestamp::now(),
            bucket: &origin.bucket,
            key: &origin.key,
            version: origin.version.as_deref(),
            line: origin.line,
            offset: origin.offset,
            raw: None,
            document: None,
            document_text: None,
            error,
            output: None,
            status: None,
        }
    }
}

impl DeadLetterWriter {
    /// Opens (creating it and its directory if needed) the file for appending.
    pub fn open(config: &DeadLetterConfig) -> Result<DeadLetterWriter, EsError> {
        config.validate()?;
        let file_error = |source| EsError::File {
            key: "dead_letter.path",
            path: config.path.clone(),
            source,
        };
        if let Some(parent) = config.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(file_error)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.path)
            .map_err(file_error)?;
        Ok(DeadLetterWriter {
            path: config.path.clone(),
            file: Arc::new(Mutex::new(BufWriter::new(file))),
        })
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, records: &mut dyn Iterator<Item = Record<'_>>) -> std::io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        for record in records {
            serde_json::to_writer(&mut *file, &record)?;
            file.write_all(b"\n")?;
        }
        file.flush()
    }

    /// Records a line that could not be parsed (written and flushed before returning).
    pub fn write_parse_failure(
        &self,
        origin: &EventOrigin,
        raw: &[u8],
        error: &str,
    ) -> std::io::Result<()> {
        let raw = String::from_utf8_lossy(raw);
        let mut record = Record::new(origin, error);
        record.raw = Some(&raw);
        self.write(&mut std::iter::once(record))
    }

    /// Records events that output `output` rejected for good, with the item's HTTP status and
    /// the reason (written and flushed before returning).
    pub fn write_rejected<'a>(
        &self,
        output: &str,
        rejected: impl IntoIterator<Item = (&'a EsEvent, Option<u16>, &'a str)>,
    ) -> std::io::Result<()> {
        let mut records = rejected.into_iter().map(|(event, status, reason)| {
            let mut record = Record::new(&event.origin, reason);
            match serde_json::from_str::<&RawValue>(&event.json) {
                Ok(document) => record.document = Some(document),
                Err(_) => record.document_text = Some(&event.json),
            }
            record.output = Some(output);
            record.status = status;
            record
        });
        self.write(&mut records)
    }
}
