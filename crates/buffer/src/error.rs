//! The error type of the buffer.

use std::io;
use std::path::PathBuf;

/// Why a buffer operation failed.
///
/// I/O errors keep the [`io::Error`] (and so its kind) and name the file and what was being done
/// with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BufferError {
    /// A configuration key has an invalid value.
    #[error("invalid buffer option `{key}`: {message}")]
    Config {
        /// The key, relative to the `[outputs.X.buffer]` table.
        key: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A file or directory of the buffer could not be read, written or synced.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done: "create", "write", "fsync", "rename", ...
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Another buffer (in this or another process) has the directory open.
    #[error("the buffer directory {path} is in use by another buffer (lock file held)")]
    Locked {
        /// The buffer directory.
        path: PathBuf,
    },
    /// A state or metadata file of the buffer is damaged or of another version.
    #[error("the buffer file {path} is damaged or of another version: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The chunk passed to `complete` was not handed out by this buffer, or was already
    /// completed.
    #[error("chunk {id} is not in flight in this buffer")]
    UnknownChunk {
        /// The chunk's id, in hex.
        id: String,
    },
}

impl BufferError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        BufferError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
