//! Uploading one chunk: render its key, encode its lines, put the object.

use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tempfile::{NamedTempFile, TempPath};

use crate::SinkError;
use crate::encoding::{EncodeStats, Encoding};
use crate::identity::ChunkIdentity;
use crate::store::{Body, ObjectStore, PutOptions};
use crate::template::KeyTemplate;

/// Encoded objects up to this size stay in memory; larger ones spill to a temporary file.
pub const DEFAULT_MEMORY_LIMIT: usize = 2 * 1024 * 1024;

/// What one [`Uploader::upload`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadReport {
    /// The object key written.
    pub key: String,
    /// Bytes of JSON lines read from the chunk.
    pub bytes_in: u64,
    /// Bytes of the object written.
    pub bytes_out: u64,
}

/// Uploads chunks: renders the key from the chunk's identity, encodes its lines (in memory up
/// to a limit, else into a temporary file, so memory stays bounded for any chunk size) and puts
/// the object. Uploading the same chunk again writes the same key with the same bytes.
///
/// ```
/// use std::sync::Arc;
/// use logferry_core::Timestamp;
/// use logferry_sink_s3::{ChunkIdentity, Encoding, KeyTemplate, LocalStore, StoreAs, Uploader};
///
/// # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let uploader = Uploader::new(
///     Arc::new(LocalStore::new(dir.path())),
///     KeyTemplate::builder("${tag}/%{time_slice}_%{index}.%{file_extension}").utc(true).build().unwrap(),
///     Encoding::new(StoreAs::Gzip, None).unwrap(),
/// );
/// let chunk = ChunkIdentity {
///     tag: "app".into(),
///     timekey: Timestamp::parse_rfc3339("2024-05-01T10:00:00Z").unwrap(),
///     seq: 0,
///     id: [1; 16],
///     sealed_at: Timestamp::parse_rfc3339("2024-05-01T11:00:00Z").unwrap(),
/// };
/// let report = uploader.upload(&chunk, &b"{\"msg\":\"hi\"}\n"[..]).await.unwrap();
/// assert_eq!(report.key, "app/2024050110_0.gz");
/// assert!(dir.path().join("app/2024050110_0.gz").is_file());
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct Uploader {
    store: Arc<dyn ObjectStore>,
    template: KeyTemplate,
    encoding: Encoding,
    put_options: PutOptions,
    temp_dir: Option<PathBuf>,
    memory_limit: usize,
}

impl Uploader {
    /// An uploader writing to `store`, with content type from `encoding`, no content encoding,
    /// temporary files in the system's temporary directory, and a 2 MiB memory limit.
    pub fn new(store: Arc<dyn ObjectStore>, template: KeyTemplate, encoding: Encoding) -> Uploader {
        Uploader {
            store,
            template,
            put_options: PutOptions::with_content_type(encoding.store_as().content_type()),
            encoding,
            temp_dir: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
        }
    }

    /// Sets the per-object options (content type, content encoding).
    pub fn with_put_options(mut self, options: PutOptions) -> Uploader {
        self.put_options = options;
        self
    }

    /// Spills large encoded objects into `dir` (e.g. beside the buffer) instead of the system's
    /// temporary directory.
    pub fn with_temp_dir(mut self, dir: impl Into<PathBuf>) -> Uploader {
        self.temp_dir = Some(dir.into());
        self
    }

    /// Keeps encoded objects up to `bytes` in memory. Default: [`DEFAULT_MEMORY_LIMIT`].
    pub fn with_memory_limit(mut self, bytes: usize) -> Uploader {
        self.memory_limit = bytes;
        self
    }

    /// The store objects go to.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The key a chunk is uploaded under.
    pub fn key_for(&self, chunk: &ChunkIdentity) -> String {
        self.template.render(chunk)
    }

    /// Encodes `lines` (the chunk's JSON lines, read to the end on a blocking thread) and puts
    /// the object under the chunk's key. Needs a Tokio runtime.
    pub async fn upload<R>(
        &self,
        chunk: &ChunkIdentity,
        lines: R,
    ) -> Result<UploadReport, SinkError>
    where
        R: Read + Send + 'static,
    {
        let key = self.key_for(chunk);
        let encoding = self.encoding;
        let temp_dir = self.temp_dir.clone();
        let limit = self.memory_limit;
        let encoded = tokio::task::spawn_blocking(move || encode(encoding, lines, temp_dir, limit))
            .await
            .unwrap_or_else(|join| Err(io::Error::other(join.to_string())));
        let (spilled, stats) = encoded.map_err(|source| SinkError::Encode {
            key: key.clone(),
            source,
        })?;
        // The temporary file (if any) lives until the put is done.
        let (body, _temp) = match spilled {
            Spilled::Memory(bytes) => (Body::Bytes(bytes), None),
            Spilled::File(path, len) => (Body::file(path.to_path_buf(), len), Some(path)),
        };
        self.store.put(&key, body, &self.put_options).await?;
        tracing::info!(
            key = %key,
            location = %self.store.location(),
            tag = %chunk.tag,
            seq = chunk.seq,
            bytes_in = stats.bytes_in,
            bytes_out = stats.bytes_out,
            "Uploaded chunk."
        );
        Ok(UploadReport {
            key,
            bytes_in: stats.bytes_in,
            bytes_out: stats.bytes_out,
        })
    }
}

/// An encoded object: in memory, or in a temporary file deleted when dropped.
enum Spilled {
    Memory(Bytes),
    File(TempPath, u64),
}

fn encode<R: Read>(
    encoding: Encoding,
    lines: R,
    temp_dir: Option<PathBuf>,
    limit: usize,
) -> io::Result<(Spilled, EncodeStats)> {
    let mut writer = SpillWriter {
        state: State::Memory(Vec::new()),
        limit,
        temp_dir,
    };
    let stats = encoding.encode(lines, &mut writer)?;
    let spilled = match writer.state {
        State::Memory(bytes) => Spilled::Memory(bytes.into()),
        State::File(file) => {
            let file = file.into_inner().map_err(|e| e.into_error())?;
            Spilled::File(file.into_temp_path(), stats.bytes_out)
        }
    };
    Ok((spilled, stats))
}

enum State {
    Memory(Vec<u8>),
    File(BufWriter<NamedTempFile>),
}

/// A writer that keeps up to `limit` bytes in memory, then moves everything to a temporary file.
struct SpillWriter {
    state: State,
    limit: usize,
    temp_dir: Option<PathBuf>,
}

impl Write for SpillWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let State::Memory(memory) = &mut self.state {
            if memory.len() + buf.len() <= self.limit {
                memory.extend_from_slice(buf);
                return Ok(buf.len());
            }
            let builder = {
                let mut b = tempfile::Builder::new();
                b.prefix(".logferry-upload-");
                b
            };
            let file = match &self.temp_dir {
                Some(dir) => {
                    // Created on first use: most objects never spill.
                    std::fs::create_dir_all(dir)?;
                    builder.tempfile_in(dir)?
                }
                None => builder.tempfile()?,
            };
            let mut file = BufWriter::with_capacity(256 * 1024, file);
            file.write_all(memory)?;
            self.state = State::File(file);
        }
        match &mut self.state {
            State::File(file) => file.write(buf),
            State::Memory(_) => Err(io::Error::other("spill state")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.state {
            State::File(file) => file.flush(),
            State::Memory(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreAs;

    #[test]
    fn spills_past_the_limit_and_keeps_bytes() {
        let input: Vec<u8> = (0..100_000u32)
            .flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes())
            .collect();
        let root = tempfile::tempdir().unwrap();
        // The spill directory need not exist yet.
        let dir = root.path().join("tmp");
        let dir = dir.as_path();
        let encoding = Encoding::new(StoreAs::Text, None).unwrap();
        let (small, stats) = encode(encoding, &input[..], Some(dir.into()), input.len()).unwrap();
        assert!(matches!(&small, Spilled::Memory(b) if b[..] == input[..]));
        assert_eq!(stats.bytes_out, input.len() as u64);
        let (big, _) = encode(encoding, &input[..], Some(dir.into()), 1000).unwrap();
        let Spilled::File(path, len) = big else {
            panic!("not spilled")
        };
        assert!(path.starts_with(dir));
        assert_eq!(len, input.len() as u64);
        assert_eq!(std::fs::read(&path).unwrap(), input);
        let kept = path.to_path_buf();
        drop(path);
        assert!(!kept.exists());
    }
}
