//! The checkpoint file (`pos_file`): one entry per known file, written atomically.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::TailError;
use crate::fingerprint::{DevIno, Fingerprint};

/// Version written in, and required of, the checkpoint file.
const FORMAT_VERSION: u32 = 1;

/// The whole checkpoint file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PosFile {
    version: u32,
    source: String,
    files: Vec<PosEntry>,
}

/// The checkpoint of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PosEntry {
    /// Where the file was found (informative: identity is the fields below).
    pub(crate) path: String,
    pub(crate) dev: u64,
    pub(crate) inode: u64,
    /// FNV-1a hash of the first `fingerprint_len` bytes, 16 hex digits.
    #[serde(serialize_with = "hex_ser", deserialize_with = "hex_de")]
    pub(crate) fingerprint: u64,
    pub(crate) fingerprint_len: u64,
    /// Every byte before this offset is delivered.
    pub(crate) offset: u64,
    /// The stream id its batches carried, once one was emitted.
    pub(crate) stream: Option<String>,
}

impl PosEntry {
    pub(crate) fn dev_ino(&self) -> DevIno {
        DevIno {
            dev: self.dev,
            ino: self.inode,
        }
    }

    pub(crate) fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            len: self.fingerprint_len,
            hash: self.fingerprint,
        }
    }
}

fn hex_ser<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:016x}"))
}

fn hex_de<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = String::deserialize(d)?;
    u64::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
}

/// Reads the checkpoint file; a missing file is an empty checkpoint.
pub(crate) fn load(path: &Path) -> Result<Vec<PosEntry>, TailError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(TailError::PosFileRead {
                path: path.to_owned(),
                source,
            });
        }
    };
    let file: PosFile =
        serde_json::from_slice(&bytes).map_err(|source| TailError::PosFileParse {
            path: path.to_owned(),
            source,
        })?;
    if file.version != FORMAT_VERSION {
        return Err(TailError::PosFileParse {
            path: path.to_owned(),
            source: serde::de::Error::custom(format!(
                "version {} is not the supported version {FORMAT_VERSION}",
                file.version
            )),
        });
    }
    Ok(file.files)
}

/// Writes the checkpoint file atomically: a temporary file beside it is written and synced,
/// renamed over it, and the directory is synced, so a crash leaves either the old or the new
/// checkpoint.
pub(crate) fn save(path: &Path, source: &str, entries: Vec<PosEntry>) -> io::Result<()> {
    let file = PosFile {
        version: FORMAT_VERSION,
        source: source.to_owned(),
        files: entries,
    };
    let mut text = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
    text.push(b'\n');
    let tmp = temp_path(path);
    {
        let mut out = File::create(&tmp)?;
        out.write_all(&text)?;
        out.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// The stream id of a file: `<source id>:<dev>:<inode>:<fingerprint length>:<fingerprint hex>`.
pub(crate) fn stream_id(source: &str, id: DevIno, fp: Fingerprint) -> String {
    format!("{source}:{}:{}:{}:{}", id.dev, id.ino, fp.len, fp.hex())
}

/// Reads back a stream id of `source`; `None` for other sources' ids and foreign text.
pub(crate) fn parse_stream_id(source: &str, stream: &str) -> Option<(DevIno, Fingerprint)> {
    let rest = stream.strip_prefix(source)?.strip_prefix(':')?;
    let mut parts = rest.split(':');
    let dev = parts.next()?.parse().ok()?;
    let ino = parts.next()?.parse().ok()?;
    let len = parts.next()?.parse().ok()?;
    let hash = u64::from_str_radix(parts.next()?, 16).ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((DevIno { dev, ino }, Fingerprint { len, hash }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pos");
        assert!(load(&path).unwrap().is_empty());
        let entry = PosEntry {
            path: "/var/log/a.log".into(),
            dev: 2049,
            inode: 77,
            fingerprint: 0xdead_beef,
            fingerprint_len: 1024,
            offset: 4096,
            stream: Some("s:2049:77:1024:00000000deadbeef".into()),
        };
        save(&path, "s", vec![entry.clone()]).unwrap();
        assert_eq!(load(&path).unwrap(), vec![entry]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"fingerprint\": \"00000000deadbeef\""),
            "{text}"
        );
        assert!(!dir.path().join("x.pos.tmp").exists());
    }

    #[test]
    fn damaged_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pos");
        std::fs::write(&path, "{\"version\":1,").unwrap();
        assert!(matches!(load(&path), Err(TailError::PosFileParse { .. })));
        std::fs::write(&path, r#"{"version":9,"source":"s","files":[]}"#).unwrap();
        assert!(matches!(load(&path), Err(TailError::PosFileParse { .. })));
    }

    #[test]
    fn stream_ids() {
        let id = DevIno { dev: 1, ino: 2 };
        let fp = Fingerprint {
            len: 10,
            hash: 0xab,
        };
        let s = stream_id("my:src", id, fp);
        assert_eq!(s, "my:src:1:2:10:00000000000000ab");
        assert_eq!(parse_stream_id("my:src", &s), Some((id, fp)));
        assert_eq!(parse_stream_id("my", &s), None);
        assert_eq!(parse_stream_id("other", &s), None);
        assert_eq!(parse_stream_id("my:src", "my:src:1:2:x:ab"), None);
    }
}
