//! A chunk's persisted identity, its file names, and the file-system helpers that write them.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use logferry_core::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{BufferError, FsyncMode};

/// The identity of a chunk, from which the object key is derived.
///
/// Written when the chunk is created and rewritten once, when it is sealed (with `sealed_at`,
/// `records` and `bytes`); after that it never changes, across retries and restarts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChunkMeta {
    /// A random unique id (UUID v4 bytes); [`ChunkMeta::id_hex`] formats it.
    pub id: [u8; 16],
    /// The tag of every record in the chunk.
    pub tag: String,
    /// Start of the chunk's time slice.
    pub timekey: Timestamp,
    /// 0, 1, 2, ... for every chunk of this buffer, whatever its tag and `timekey`; never
    /// repeats, even across restarts.
    pub seq: u64,
    /// When the chunk was created (the time of its first append).
    pub created_at: Timestamp,
    /// When the chunk was sealed; `None` while it is open.
    pub sealed_at: Option<Timestamp>,
    /// Number of records (lines).
    pub records: u64,
    /// Number of bytes, newlines included.
    pub bytes: u64,
}

impl ChunkMeta {
    /// The id as 32 lowercase hex digits.
    pub fn id_hex(&self) -> String {
        hex(&self.id)
    }
}

pub(crate) fn hex(id: &[u8; 16]) -> String {
    let mut s = String::with_capacity(32);
    for b in id {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub(crate) fn unhex(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut id = [0u8; 16];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(id)
}

/// The on-disk form of a [`ChunkMeta`] (`chunk.<id>.meta`, JSON).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaFile {
    version: u32,
    id: String,
    tag: String,
    timekey: (i64, u32),
    seq: u64,
    created_at: (i64, u32),
    sealed_at: Option<(i64, u32)>,
    records: u64,
    bytes: u64,
}

const META_VERSION: u32 = 1;

fn to_pair(t: Timestamp) -> (i64, u32) {
    (t.unix_seconds(), t.subsec_nanos())
}

fn from_pair((secs, nanos): (i64, u32)) -> Option<Timestamp> {
    Timestamp::from_unix(secs, nanos)
}

pub(crate) fn encode_meta(meta: &ChunkMeta) -> Vec<u8> {
    let file = MetaFile {
        version: META_VERSION,
        id: meta.id_hex(),
        tag: meta.tag.clone(),
        timekey: to_pair(meta.timekey),
        seq: meta.seq,
        created_at: to_pair(meta.created_at),
        sealed_at: meta.sealed_at.map(to_pair),
        records: meta.records,
        bytes: meta.bytes,
    };
    let mut out = serde_json::to_vec(&file).unwrap_or_default();
    out.push(b'\n');
    out
}

pub(crate) fn decode_meta(bytes: &[u8]) -> Result<ChunkMeta, String> {
    let file: MetaFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if file.version != META_VERSION {
        return Err(format!("unknown version {}", file.version));
    }
    let bad_time = || "timestamp out of range".to_owned();
    Ok(ChunkMeta {
        id: unhex(&file.id).ok_or_else(|| format!("bad id {:?}", file.id))?,
        tag: file.tag,
        timekey: from_pair(file.timekey).ok_or_else(bad_time)?,
        seq: file.seq,
        created_at: from_pair(file.created_at).ok_or_else(bad_time)?,
        sealed_at: match file.sealed_at {
            Some(pair) => Some(from_pair(pair).ok_or_else(bad_time)?),
            None => None,
        },
        records: file.records,
        bytes: file.bytes,
    })
}

/// The kinds of files in a buffer directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Meta,
    OpenData,
    SealedData,
    Positions,
}

/// Names of a chunk's files: `chunk.<id>.meta`, `chunk.b<id>.log` (open), `chunk.q<id>.log`
/// (sealed, "queued" in fluentd) and `chunk.<id>.pos`.
pub(crate) fn file_name(kind: FileKind, id: &[u8; 16]) -> String {
    let id = hex(id);
    match kind {
        FileKind::Meta => format!("chunk.{id}.meta"),
        FileKind::OpenData => format!("chunk.b{id}.log"),
        FileKind::SealedData => format!("chunk.q{id}.log"),
        FileKind::Positions => format!("chunk.{id}.pos"),
    }
}

/// The inverse of [`file_name`].
pub(crate) fn parse_file_name(name: &str) -> Option<(FileKind, [u8; 16])> {
    let rest = name.strip_prefix("chunk.")?;
    if let Some(id) = rest.strip_suffix(".meta") {
        return Some((FileKind::Meta, unhex(id)?));
    }
    if let Some(id) = rest.strip_suffix(".pos") {
        return Some((FileKind::Positions, unhex(id)?));
    }
    let data = rest.strip_suffix(".log")?;
    if let Some(id) = data.strip_prefix('b') {
        return Some((FileKind::OpenData, unhex(id)?));
    }
    let id = data.strip_prefix('q')?;
    Some((FileKind::SealedData, unhex(id)?))
}

/// Suffix of temporary files, removed when a buffer is opened.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Replaces `path` with `bytes` atomically: temporary file, fsync, rename, directory fsync
/// (`always`).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], fsync: FsyncMode) -> Result<(), BufferError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp);
    let mut file = File::create(&tmp).map_err(|e| BufferError::io("create", &tmp, e))?;
    file.write_all(bytes)
        .map_err(|e| BufferError::io("write", &tmp, e))?;
    if fsync != FsyncMode::Never {
        file.sync_all()
            .map_err(|e| BufferError::io("fsync", &tmp, e))?;
    }
    drop(file);
    fs::rename(&tmp, path).map_err(|e| BufferError::io("rename", &tmp, e))?;
    sync_parent(path, fsync)
}

/// Fsyncs the directory holding `path` when `fsync = "always"`.
pub(crate) fn sync_parent(path: &Path, fsync: FsyncMode) -> Result<(), BufferError> {
    match path.parent() {
        Some(dir) if fsync == FsyncMode::Always => sync_dir(dir),
        _ => Ok(()),
    }
}

/// Fsyncs a directory, so that the names created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), BufferError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BufferError::io("fsync the directory", dir, e))
}

/// Opens a chunk data or positions file for appending, creating it.
pub(crate) fn open_append(path: &Path) -> Result<File, BufferError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(|e| BufferError::io("open", path, e))
}

/// Removes a file; one that is already gone is fine.
pub(crate) fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips() {
        let meta = ChunkMeta {
            id: *b"0123456789abcdef",
            tag: "s3.var.log\n\"x\"".into(),
            timekey: Timestamp::from_unix(3600, 0).unwrap(),
            seq: 7,
            created_at: Timestamp::from_unix(3601, 5).unwrap(),
            sealed_at: Some(Timestamp::from_unix(7300, 0).unwrap()),
            records: 3,
            bytes: 42,
        };
        assert_eq!(decode_meta(&encode_meta(&meta)).unwrap(), meta);
        assert!(decode_meta(b"{\"version\":1").is_err());
    }

    #[test]
    fn file_names_round_trip() {
        let id = [0xab; 16];
        for kind in [
            FileKind::Meta,
            FileKind::OpenData,
            FileKind::SealedData,
            FileKind::Positions,
        ] {
            assert_eq!(parse_file_name(&file_name(kind, &id)), Some((kind, id)));
        }
        assert_eq!(parse_file_name("chunk.zz.meta"), None);
        assert_eq!(parse_file_name("state.json"), None);
    }
}
