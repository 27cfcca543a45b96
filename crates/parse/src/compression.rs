//! Detects and undoes gzip and zstd compression, streaming.

use std::io::{self, BufRead, BufReader, Read};

/// Size of the buffer put after a decompressor.
const DECODED_BUFFER: usize = 64 * 1024;

/// A compression scheme of a log object or file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain bytes.
    None,
    /// gzip (RFC 1952), possibly several members one after the other (as Firehose writes).
    Gzip,
    /// Zstandard frames.
    Zstd,
}

impl Compression {
    /// Recognizes a scheme by the first bytes of the data (at least 4 for zstd).
    ///
    /// ```
    /// use logferry_parse::Compression;
    /// assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
    /// assert_eq!(Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
    /// assert_eq!(Compression::detect(b"{\"Records\""), Compression::None);
    /// ```
    pub fn detect(prefix: &[u8]) -> Compression {
        match prefix {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// The scheme named by an HTTP `Content-Encoding` value, if it is one of these.
    pub fn from_content_encoding(value: &str) -> Option<Compression> {
        match value.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Compression::Gzip),
            "zstd" => Some(Compression::Zstd),
            "" | "identity" => Some(Compression::None),
            _ => None,
        }
    }
}

/// Wraps `reader` in the decompressor its first bytes call for (see [`Compression::detect`])
/// and returns it with the scheme found. Nothing is read beyond what the caller consumes:
/// decompression streams.
pub fn decompress<'r, R: BufRead + 'r>(
    reader: R,
) -> io::Result<(Compression, Box<dyn BufRead + 'r>)> {
    let (compression, source) = sniff(reader)?;
    Ok((
        compression,
        match compression {
            Compression::None => source,
            Compression::Gzip => Box::new(BufReader::with_capacity(
                DECODED_BUFFER,
                flate2::bufread::MultiGzDecoder::new(source),
            )),
            Compression::Zstd => Box::new(BufReader::with_capacity(
                DECODED_BUFFER,
                zstd::stream::read::Decoder::with_buffer(source)?,
            )),
        },
    ))
}

/// [`decompress`] without a buffer after the decompressor: for a reader that brings its own
/// ([`crate::Framer`]), so the decompressor writes straight into it.
pub fn decompress_read<'r, R: BufRead + 'r>(
    reader: R,
) -> io::Result<(Compression, Box<dyn Read + 'r>)> {
    let (compression, source) = sniff(reader)?;
    Ok((
        compression,
        match compression {
            Compression::None => Box::new(source),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(source)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(source)?),
        },
    ))
}

/// The compression `reader`'s first bytes show, and a reader that still yields them.
fn sniff<'r, R: BufRead + 'r>(mut reader: R) -> io::Result<(Compression, Box<dyn BufRead + 'r>)> {
    let prefix = reader.fill_buf()?;
    // A short first read (a pipe) could cut the magic: gather up to 4 bytes.
    if prefix.len() < 4 && !prefix.is_empty() {
        let mut head = prefix.to_vec();
        reader.consume(head.len());
        let mut rest = [0u8; 4];
        while head.len() < 4 {
            let n = reader.read(&mut rest[..4 - head.len()])?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&rest[..n]);
        }
        let compression = Compression::detect(&head);
        let chained = io::Cursor::new(head).chain(reader);
        return Ok((compression, Box::new(BufReader::new(chained))));
    }
    Ok((Compression::detect(prefix), Box::new(reader)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Both entry points, which must agree.
    fn read_all(data: &[u8]) -> (Compression, String) {
        let (c, mut r) = decompress(data).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        let (c2, mut r2) = decompress_read(data).unwrap();
        let mut s2 = String::new();
        r2.read_to_string(&mut s2).unwrap();
        assert_eq!((c, &s), (c2, &s2));
        (c, s)
    }

    #[test]
    fn round_trips_each_scheme() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"a\n").unwrap();
        let mut both = gz.finish().unwrap();
        let mut gz2 = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz2.write_all(b"b\n").unwrap();
        both.extend(gz2.finish().unwrap());
        assert_eq!(read_all(&both), (Compression::Gzip, "a\nb\n".into()));
        let zs = zstd::encode_all(&b"z\n"[..], 1).unwrap();
        assert_eq!(read_all(&zs), (Compression::Zstd, "z\n".into()));
        assert_eq!(read_all(b"pl"), (Compression::None, "pl".into()));
        assert_eq!(read_all(b""), (Compression::None, "".into()));
    }

    #[test]
    fn corrupt_gzip_is_an_error_not_a_panic() {
        let (_, mut r) = decompress(&[0x1f, 0x8b, 8, 0, 1, 2, 3][..]).unwrap();
        let mut s = Vec::new();
        assert!(r.read_to_end(&mut s).is_err());
    }
}
