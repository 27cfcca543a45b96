//! A sealed chunk handed out for upload, and the reader of its records.

use std::fs::File;
use std::io::{self, Cursor, Read, Take};
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use crate::ChunkMeta;
use crate::buffer::Shared;

/// Where a handed-out chunk's bytes are.
#[derive(Clone, Debug)]
pub(crate) enum ChunkBody {
    File(PathBuf),
    Memory(Arc<Vec<u8>>),
}

/// A sealed chunk, in flight: handed out by [`crate::Buffer::next_ready`] and not handed out
/// again until it is given back.
///
/// Give it back with [`crate::Buffer::complete`] once its upload is acknowledged, or with
/// [`crate::Buffer::retry_later`] when the upload failed. A chunk dropped without either is
/// offered again at once (with the same attempt count), so an uploader task may be cancelled
/// safely.
#[derive(Debug)]
pub struct Chunk {
    pub(crate) meta: ChunkMeta,
    pub(crate) attempt: u32,
    pub(crate) body: ChunkBody,
    pub(crate) owner: Weak<Shared>,
    pub(crate) armed: bool,
}

impl Chunk {
    /// The chunk's persisted identity; it never changes once the chunk is sealed.
    pub fn meta(&self) -> &ChunkMeta {
        &self.meta
    }

    /// How many uploads of this chunk have failed so far (0 on the first try; counted since
    /// the buffer was opened).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Size of the records in bytes, newlines included.
    pub fn byte_len(&self) -> u64 {
        self.meta.bytes
    }

    /// Reads the chunk's records: lines in append order, each ending with `\n`.
    ///
    /// Opens the chunk file again on each call, so a failed upload can re-read from the start.
    pub fn open_reader(&self) -> io::Result<ChunkReader> {
        Ok(ChunkReader {
            inner: match &self.body {
                ChunkBody::File(path) => Inner::File(File::open(path)?.take(self.meta.bytes)),
                ChunkBody::Memory(bytes) => Inner::Memory(Cursor::new(SharedBytes(bytes.clone()))),
            },
        })
    }

    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if self.armed
            && let Some(shared) = self.owner.upgrade()
        {
            shared.requeue(self.meta.id);
        }
    }
}

/// The records of a [`Chunk`], as returned by [`Chunk::open_reader`].
#[derive(Debug)]
pub struct ChunkReader {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    File(Take<File>),
    Memory(Cursor<SharedBytes>),
}

#[derive(Debug)]
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::File(f) => f.read(buf),
            Inner::Memory(c) => c.read(buf),
        }
    }
}
