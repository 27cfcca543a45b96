//! `store_as`: how a chunk's JSON lines are encoded into an object (gzip, zstd or as-is).

use std::io::{self, Read, Write};

use serde::Deserialize;

use crate::SinkError;

/// The object format (`store_as`), with fluent-plugin-s3's extensions and content types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreAs {
    /// gzip (`.gz`, `application/x-gzip`). The default.
    #[default]
    Gzip,
    /// Zstandard (`.zst`, `application/x-zst`).
    Zstd,
    /// The JSON lines as they are (`.json`, `application/json`).
    Json,
    /// The JSON lines as they are (`.txt`, `text/plain`).
    Text,
}

impl StoreAs {
    /// `%{file_extension}`: `gz`, `zst`, `json` or `txt`.
    pub fn file_extension(self) -> &'static str {
        match self {
            StoreAs::Gzip => "gz",
            StoreAs::Zstd => "zst",
            StoreAs::Json => "json",
            StoreAs::Text => "txt",
        }
    }

    /// The `Content-Type` of the objects, as fluent-plugin-s3 sends it.
    pub fn content_type(self) -> &'static str {
        match self {
            StoreAs::Gzip => "application/x-gzip",
            StoreAs::Zstd => "application/x-zst",
            StoreAs::Json => "application/json",
            StoreAs::Text => "text/plain",
        }
    }

    /// The compression levels accepted, and the default: gzip 1..=9 (6), zstd 1..=22 (3).
    pub fn compression_levels(self) -> Option<(std::ops::RangeInclusive<i32>, i32)> {
        match self {
            StoreAs::Gzip => Some((1..=9, 6)),
            StoreAs::Zstd => Some((1..=22, 3)),
            StoreAs::Json | StoreAs::Text => None,
        }
    }
}

/// Bytes read from the chunk and written to the object by one [`Encoding::encode`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodeStats {
    /// Bytes of JSON lines read.
    pub bytes_in: u64,
    /// Bytes of encoded object written.
    pub bytes_out: u64,
}

/// A [`StoreAs`] with its compression level: a streaming encoder of JSON lines.
///
/// ```
/// use logferry_sink_s3::{Encoding, StoreAs};
///
/// let encoding = Encoding::new(StoreAs::Gzip, None).unwrap();
/// let mut object = Vec::new();
/// let stats = encoding.encode(&b"{\"a\":1}\n"[..], &mut object).unwrap();
/// assert_eq!(stats.bytes_in, 8);
/// assert_eq!(stats.bytes_out, object.len() as u64);
/// assert_eq!(&object[..2], &[0x1f, 0x8b]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoding {
    store_as: StoreAs,
    level: i32,
    threads: usize,
}

/// Size of the read buffer of [`Encoding::encode`].
const READ_BUFFER: usize = 64 * 1024;

impl Encoding {
    /// `store_as` at `level` (`compression_level`; `None` = the format's default). A level is
    /// an error for `json`/`text` and outside the format's range.
    pub fn new(store_as: StoreAs, level: Option<i32>) -> Result<Encoding, SinkError> {
        let level = match (store_as.compression_levels(), level) {
            (None, None) => 0,
            (None, Some(_)) => {
                return Err(SinkError::Config {
                    key: "compression_level",
                    reason: format!("`store_as = \"{store_as:?}\"` is not compressed")
                        .to_lowercase(),
                });
            }
            (Some((_, default)), None) => default,
            (Some((range, _)), Some(level)) if range.contains(&level) => level,
            (Some((range, _)), Some(level)) => {
                return Err(SinkError::Config {
                    key: "compression_level",
                    reason: format!(
                        "{level} is outside {}..={} for {store_as:?}",
                        range.start(),
                        range.end()
                    ),
                });
            }
        };
        Ok(Encoding {
            store_as,
            level,
            threads: 1,
        })
    }

    /// Compresses on `threads` threads (default 1; 0 counts as 1). gzip cuts the input into
    /// 1 MiB blocks deflated in parallel into one ordinary gzip member; zstd uses its own
    /// worker threads. The bytes written do not depend on the number of threads.
    pub fn with_threads(mut self, threads: usize) -> Encoding {
        self.threads = threads.max(1);
        self
    }

    /// The number of compression threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The format.
    pub fn store_as(&self) -> StoreAs {
        self.store_as
    }

    /// The compression level in use (0 for `json`/`text`).
    pub fn level(&self) -> i32 {
        self.level
    }

    /// Reads `input` to its end and writes the encoded object to `output`, in constant memory.
    /// The output is deterministic: the same lines give the same bytes (the gzip header carries
    /// no time stamp).
    pub fn encode<R: Read, W: Write>(&self, mut input: R, output: W) -> io::Result<EncodeStats> {
        let mut output = CountingWriter {
            inner: output,
            count: 0,
        };
        let bytes_in = match self.store_as {
            StoreAs::Gzip => crate::pgzip::encode(
                self.level.unsigned_abs(),
                self.threads,
                &mut input,
                &mut output,
            )?,
            StoreAs::Zstd => {
                let mut encoder = zstd::stream::Encoder::new(&mut output, self.level)?;
                encoder.include_checksum(true)?;
                if self.threads > 1 {
                    // Any worker count >= 1 gives the same frames; 0 (no workers) would differ,
                    // so one thread stays on the single-threaded path the default always took.
                    encoder.multithread(self.threads as u32)?;
                }
                let n = pump(&mut input, &mut encoder)?;
                encoder.finish()?;
                n
            }
            StoreAs::Json | StoreAs::Text => pump(&mut input, &mut output)?,
        };
        output.flush()?;
        Ok(EncodeStats {
            bytes_in,
            bytes_out: output.count,
        })
    }
}

/// Copies `input` to `sink` to the end; returns the bytes copied.
fn pump<R: Read, W: Write + ?Sized>(input: &mut R, sink: &mut W) -> io::Result<u64> {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut bytes_in = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(bytes_in),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        bytes_in += n as u64;
        sink.write_all(&buf[..n])?;
    }
}

struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            out.extend_from_slice(
                format!("{{\"time\":\"2022-01-17T13:05:{:02}Z\",\"seq\":{i},\"msg\":\"GET /api/v1/items/{}\"}}\n", i % 60, i * 7)
                    .as_bytes(),
            );
        }
        out
    }

    #[test]
    fn round_trips_every_format() {
        let input = lines(5000);
        for store_as in [StoreAs::Gzip, StoreAs::Zstd, StoreAs::Json, StoreAs::Text] {
            let mut object = Vec::new();
            let stats = Encoding::new(store_as, None)
                .unwrap()
                .encode(&input[..], &mut object)
                .unwrap();
            assert_eq!(stats.bytes_in, input.len() as u64);
            assert_eq!(stats.bytes_out, object.len() as u64);
            let decoded = match store_as {
                StoreAs::Gzip => {
                    let mut out = Vec::new();
                    flate2::read::MultiGzDecoder::new(&object[..])
                        .read_to_end(&mut out)
                        .unwrap();
                    out
                }
                StoreAs::Zstd => zstd::stream::decode_all(&object[..]).unwrap(),
                StoreAs::Json | StoreAs::Text => object.clone(),
            };
            assert_eq!(decoded, input, "{store_as:?}");
        }
    }

    #[test]
    fn output_is_deterministic() {
        let input = lines(100);
        let encode = || {
            let mut object = Vec::new();
            Encoding::new(StoreAs::Gzip, Some(1))
                .unwrap()
                .encode(&input[..], &mut object)
                .unwrap();
            object
        };
        assert_eq!(encode(), encode());
    }

    #[test]
    fn levels_are_checked() {
        assert_eq!(Encoding::new(StoreAs::Gzip, None).unwrap().level(), 6);
        assert_eq!(Encoding::new(StoreAs::Zstd, None).unwrap().level(), 3);
        assert!(Encoding::new(StoreAs::Gzip, Some(0)).is_err());
        assert!(Encoding::new(StoreAs::Gzip, Some(10)).is_err());
        assert!(Encoding::new(StoreAs::Zstd, Some(23)).is_err());
        assert!(Encoding::new(StoreAs::Text, Some(1)).is_err());
        assert!(Encoding::new(StoreAs::Zstd, Some(19)).is_ok());
    }

    #[test]
    fn extensions_and_types_follow_fluent_plugin_s3() {
        assert_eq!(StoreAs::Gzip.file_extension(), "gz");
        assert_eq!(StoreAs::Gzip.content_type(), "application/x-gzip");
        assert_eq!(StoreAs::Zstd.file_extension(), "zst");
        assert_eq!(StoreAs::Text.content_type(), "text/plain");
        assert_eq!(StoreAs::Json.content_type(), "application/json");
    }
}
