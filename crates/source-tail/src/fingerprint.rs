//! File identity: device, inode and a fingerprint of the first bytes.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

/// How many leading bytes the fingerprint covers once a file has that many.
pub(crate) const FINGERPRINT_BYTES: u64 = 1024;

/// A hash of a file's first `len` bytes (`len` is at most [`FINGERPRINT_BYTES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub(crate) len: u64,
    pub(crate) hash: u64,
}

impl Fingerprint {
    /// The fingerprint of an empty file.
    pub(crate) fn empty() -> Fingerprint {
        Fingerprint {
            len: 0,
            hash: fnv1a(&[]),
        }
    }

    /// Whether it covers all the bytes a fingerprint can cover.
    pub(crate) fn is_complete(&self) -> bool {
        self.len >= FINGERPRINT_BYTES
    }

    /// Hashes the first `min(size, FINGERPRINT_BYTES)` bytes of `file`.
    pub(crate) fn of_file(file: &File, size: u64) -> io::Result<Fingerprint> {
        Self::of_prefix(file, size.min(FINGERPRINT_BYTES))
    }

    /// Hashes exactly the first `len` bytes of `file`; an error if it has fewer.
    pub(crate) fn of_prefix(file: &File, len: u64) -> io::Result<Fingerprint> {
        let mut buf = [0u8; FINGERPRINT_BYTES as usize];
        let want = len.min(FINGERPRINT_BYTES) as usize;
        file.read_exact_at(&mut buf[..want], 0)?;
        Ok(Fingerprint {
            len: want as u64,
            hash: fnv1a(&buf[..want]),
        })
    }

    /// The fingerprint of the first `min(len, FINGERPRINT_BYTES)` bytes of `file`, whose first
    /// `self.len` bytes this fingerprint was taken of: only the bytes after those are read.
    pub(crate) fn extended(&self, file: &File, len: u64) -> io::Result<Fingerprint> {
        let len = len.min(FINGERPRINT_BYTES);
        if len <= self.len {
            return Ok(*self);
        }
        let mut buf = [0u8; FINGERPRINT_BYTES as usize];
        let more = &mut buf[..(len - self.len) as usize];
        file.read_exact_at(more, self.len)?;
        Ok(Fingerprint {
            len,
            hash: fnv1a_continue(self.hash, more),
        })
    }

    /// Whether `file` (now `size` bytes long) still starts with the bytes this fingerprint
    /// was taken of.
    pub(crate) fn matches(&self, file: &File, size: u64) -> io::Result<bool> {
        if size < self.len {
            return Ok(false);
        }
        match Self::of_prefix(file, self.len) {
            Ok(now) => Ok(now == *self),
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Lower-case hex of the hash, as written in stream ids and the checkpoint file.
    pub(crate) fn hex(&self) -> String {
        format!("{:016x}", self.hash)
    }
}

/// FNV-1a, 64 bits: stable across versions and platforms, unlike std's hashers.
fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_continue(0xcbf2_9ce4_8422_2325, bytes)
}

/// FNV-1a of `prefix + bytes`, given `hash`, the FNV-1a of `prefix`.
fn fnv1a_continue(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Device and inode of an open file or a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct DevIno {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl DevIno {
    pub(crate) fn of(meta: &std::fs::Metadata) -> DevIno {
        DevIno {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn fnv_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn prefixes_and_growth() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"hello").unwrap();
        let short = Fingerprint::of_file(&f, 5).unwrap();
        assert_eq!(short.len, 5);
        assert!(!short.is_complete());
        f.write_all(&[b'x'; 2000]).unwrap();
        assert!(short.matches(&f, 2005).unwrap());
        let full = Fingerprint::of_file(&f, 2005).unwrap();
        assert!(full.is_complete());
        assert!(full.matches(&f, 2005).unwrap());
        assert_eq!(short.extended(&f, 2005).unwrap(), full);
        assert_eq!(short.extended(&f, 3).unwrap(), short, "never shrinks");
        assert_eq!(
            Fingerprint::empty().extended(&f, 700).unwrap(),
            Fingerprint::of_prefix(&f, 700).unwrap()
        );
        f.set_len(3).unwrap();
        assert!(!short.matches(&f, 3).unwrap());
        f.set_len(0).unwrap();
        f.write_all_at(b"jello", 0).unwrap();
        assert!(!short.matches(&f, 5).unwrap());
    }
}
