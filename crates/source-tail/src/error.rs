//! The error type of the tail source.

use std::io;
use std::path::PathBuf;

use logferry_core::AckStatus;

/// Why a tail source could not be built or stopped with an error.
///
/// Problems with individual files (unreadable, vanished, bad lines) are not errors: they are
/// logged with the path, counted, and retried at the next scan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TailError {
    /// A configuration key has an invalid value.
    #[error("invalid `{key}`: {message}")]
    Config {
        /// The key, relative to the source's table (`paths`, `tag`, `batch_size`, ...).
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A glob in `paths` or `exclude_path` does not compile.
    #[error("invalid glob in `{key}` ({pattern:?}): {source}")]
    InvalidGlob {
        /// `paths[i]` or `exclude_path[i]`.
        key: String,
        /// The pattern as written.
        pattern: String,
        /// The glob compiler's error.
        #[source]
        source: globset::Error,
    },
    /// The checkpoint file exists but could not be read.
    #[error("cannot read the tail checkpoint file {path}: {source}")]
    PosFileRead {
        /// The `pos_file`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The checkpoint file is not a checkpoint file of this version.
    #[error("the tail checkpoint file {path} is damaged or of another version: {source}")]
    PosFileParse {
        /// The `pos_file`.
        path: PathBuf,
        /// The JSON error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The directory of the checkpoint file could not be created.
    #[error("cannot create the directory of the tail checkpoint file {path}: {source}")]
    PosFileDir {
        /// The `pos_file`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The receiver of the batches was dropped while the source was running.
    #[error("the receiver of the tail source's batches is gone")]
    OutputClosed,
    /// In `RunMode::Once`: a batch was not delivered, so the file's checkpoint stayed before it.
    #[error(
        "a batch of {path} ending at offset {end_offset} was not delivered ({status:?}); \
         its checkpoint stays at {committed_offset}"
    )]
    Undelivered {
        /// The file.
        path: PathBuf,
        /// The end offset of the batch that failed.
        end_offset: u64,
        /// The offset the checkpoint of the file stayed at.
        committed_offset: u64,
        /// `Errored` or `Rejected`.
        status: AckStatus,
    },
    /// A blocking file-system task of the source panicked or was cancelled by the runtime.
    #[error("a file-system task of the tail source failed: {source}")]
    Task {
        /// The join error.
        #[source]
        source: tokio::task::JoinError,
    },
}
