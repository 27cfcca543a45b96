//! Document ids: deterministic hashes of where an event came from (or of its content), so that
//! sending an event again names the same document.

use base64::Engine;
use serde::{Deserialize, Serialize};
use twox_hash::XxHash3_128;

use crate::event::EsEvent;

/// How the `_id` of each document is chosen (`id` in the configuration).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum IdMode {
    /// A hash of (bucket, key, object version or ETag when known, byte offset of the line): a
    /// redelivered SQS message or a re-run backfill names the same documents, and an object
    /// replaced under the same key with a new version gets new ids. The default.
    #[default]
    Position,
    /// A hash of (bucket, key, line number, document): stable across versions of an object
    /// whose lines did not change; identical lines stay distinct events because the line
    /// number is part of the hash.
    Content,
    /// No `_id`: Elasticsearch generates one, and a replay indexes duplicates.
    None,
}

/// Length of a [`DocumentId`]: 128 bits in unpadded base64url.
pub const DOCUMENT_ID_LEN: usize = 22;

/// A document id: a 128-bit xxh3 hash written as 22 characters of unpadded base64url.
///
/// ```
/// use logferry_core::Timestamp;
/// use logferry_sink_es::{DocumentId, EsEvent, EventOrigin, IdMode};
///
/// let event = |offset| EsEvent::new(
///     r#"{"@timestamp":"2024-01-01T00:00:00Z","m":"same"}"#.to_string(),
///     Timestamp::UNIX_EPOCH,
///     EventOrigin::new("logs", "alb/1.log.gz", offset / 100 + 1, offset),
/// );
/// let a = DocumentId::for_event(IdMode::Position, &event(0)).unwrap();
/// let b = DocumentId::for_event(IdMode::Position, &event(100)).unwrap();
/// assert_ne!(a, b); // identical lines at different offsets are different documents
/// assert_eq!(a, DocumentId::for_event(IdMode::Position, &event(0)).unwrap());
/// assert_eq!(a.as_str().len(), 22);
/// assert!(DocumentId::for_event(IdMode::None, &event(0)).is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DocumentId([u8; DOCUMENT_ID_LEN]);

impl std::fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DocumentId({})", self.as_str())
    }
}

impl std::fmt::Display for DocumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Appends a length-prefixed field, so that ("ab", "c") and ("a", "bc") hash differently.
fn put(buf: &mut Vec<u8>, field: &[u8]) {
    buf.extend_from_slice(&(field.len() as u64).to_le_bytes());
    buf.extend_from_slice(field);
}

impl DocumentId {
    /// The id of `event` under `mode`, or `None` for [`IdMode::None`].
    pub fn for_event(mode: IdMode, event: &EsEvent) -> Option<DocumentId> {
        DocumentId::for_event_with(mode, event, &mut Vec::new())
    }

    /// [`DocumentId::for_event`] with a scratch buffer reused across calls (no allocation once
    /// it has grown to the longest bucket + key).
    pub fn for_event_with(
        mode: IdMode,
        event: &EsEvent,
        scratch: &mut Vec<u8>,
    ) -> Option<DocumentId> {
        let origin = &event.origin;
        scratch.clear();
        let hash = match mode {
            IdMode::None => return None,
            IdMode::Position => {
                scratch.push(b'p');
                put(scratch, origin.bucket.as_bytes());
                put(scratch, origin.key.as_bytes());
                match &origin.version {
                    Some(version) => {
                        scratch.push(1);
                        put(scratch, version.as_bytes());
                    }
                    None => scratch.push(0),
                }
                scratch.extend_from_slice(&origin.offset.to_le_bytes());
                XxHash3_128::oneshot(scratch)
            }
            IdMode::Content => {
                scratch.push(b'c');
                put(scratch, origin.bucket.as_bytes());
                put(scratch, origin.key.as_bytes());
                scratch.extend_from_slice(&origin.line.to_le_bytes());
                // The origin seeds the hash of the document, so the document is not copied.
                let seed = XxHash3_128::oneshot(scratch) as u64;
                XxHash3_128::oneshot_with_seed(seed, event.json.as_bytes())
            }
        };
        Some(DocumentId::from_hash(hash))
    }

    fn from_hash(hash: u128) -> DocumentId {
        let mut out = [0u8; DOCUMENT_ID_LEN];
        let written = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode_slice(hash.to_be_bytes(), &mut out)
            .unwrap_or(0);
        debug_assert_eq!(written, DOCUMENT_ID_LEN);
        DocumentId(out)
    }

    /// The id as text (`[A-Za-z0-9_-]{22}`).
    pub fn as_str(&self) -> &str {
        // Only base64url characters are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use logferry_core::Timestamp;

    use super::*;
    use crate::EventOrigin;

    fn event(
        bucket: &str,
        key: &str,
        version: Option<&str>,
        line: u64,
        offset: u64,
        json: &str,
    ) -> EsEvent {
        let mut origin = EventOrigin::new(bucket, key, line, offset);
        origin.version = version.map(Arc::from);
        EsEvent::new(json.to_string(), Timestamp::UNIX_EPOCH, origin)
    }

    #[test]
    fn position_ids_are_stable_and_golden() {
        let e = event("b", "k", None, 1, 0, "{}");
        let id = DocumentId::for_event(IdMode::Position, &e).unwrap();
        // A golden value: ids must never change between releases, or replays duplicate.
        assert_eq!(
            id.as_str(),
            DocumentId::for_event(IdMode::Position, &e)
                .unwrap()
                .as_str()
        );
        assert_eq!(id.as_str(), GOLDEN_POSITION);
        assert!(
            id.as_str()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        // The document does not matter in position mode.
        let other = event("b", "k", None, 1, 0, "{\"x\":1}");
        assert_eq!(DocumentId::for_event(IdMode::Position, &other), Some(id));
    }

    const GOLDEN_POSITION: &str = "LeyrAoeMjsTDZOHyOq6-Vg";

    #[test]
    fn identical_lines_at_different_positions_are_distinct() {
        let line = r#"{"@timestamp":"2024-01-01T00:00:00Z","m":"x"}"#;
        for mode in [IdMode::Position, IdMode::Content] {
            let ids: HashSet<_> = (0..1000u64)
                .map(|i| {
                    DocumentId::for_event(mode, &event("b", "k", None, i + 1, i * 46, line))
                        .unwrap()
                })
                .collect();
            assert_eq!(ids.len(), 1000, "{mode:?}");
        }
    }

    #[test]
    fn fields_are_delimited_and_versions_change_position_ids() {
        let a = event("ab", "c", None, 1, 0, "{}");
        let b = event("a", "bc", None, 1, 0, "{}");
        for mode in [IdMode::Position, IdMode::Content] {
            assert_ne!(
                DocumentId::for_event(mode, &a),
                DocumentId::for_event(mode, &b)
            );
        }
        let v1 = event("b", "k", Some("v1"), 1, 0, "{}");
        let v2 = event("b", "k", Some("v2"), 1, 0, "{}");
        let none = event("b", "k", None, 1, 0, "{}");
        let ids: HashSet<_> = [&v1, &v2, &none]
            .iter()
            .map(|e| DocumentId::for_event(IdMode::Position, e))
            .collect();
        assert_eq!(ids.len(), 3);
        // Content ids ignore the version: an unchanged line of a replaced object keeps its id.
        assert_eq!(
            DocumentId::for_event(IdMode::Content, &v1),
            DocumentId::for_event(IdMode::Content, &v2)
        );
        let changed = event("b", "k", Some("v2"), 1, 0, "{\"changed\":true}");
        assert_ne!(
            DocumentId::for_event(IdMode::Content, &v1),
            DocumentId::for_event(IdMode::Content, &changed)
        );
    }
}
