//! The object-store interface: one `put` of a whole object under a key.

use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;

use crate::StoreError;

/// The content of an object to put: bytes in memory, or a file of known length (an encoded
/// chunk spilled to disk), read as it is sent.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Body {
    /// The whole object in memory.
    Bytes(Bytes),
    /// The object is the first `len` bytes of the file at `path`.
    File {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },
}

impl Body {
    /// A body read from the first `len` bytes of a file.
    pub fn file(path: impl Into<PathBuf>, len: u64) -> Body {
        Body::File {
            path: path.into(),
            len,
        }
    }

    /// Length of the object in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    /// Whether the object is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        Body::Bytes(bytes)
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body::Bytes(bytes.into())
    }
}

/// Per-object settings of a put.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutOptions {
    /// `Content-Type` of the object.
    pub content_type: Option<String>,
    /// `Content-Encoding` of the object (unset by default: a `.gz` object is downloaded as the
    /// gzip file it is).
    pub content_encoding: Option<String>,
}

impl PutOptions {
    /// Options with a content type and no content encoding.
    pub fn with_content_type(content_type: impl Into<String>) -> PutOptions {
        PutOptions {
            content_type: Some(content_type.into()),
            content_encoding: None,
        }
    }
}

/// Where objects go: S3 ([`S3Store`](crate::S3Store)) or a local directory
/// ([`LocalStore`](crate::LocalStore)).
///
/// `put` writes the whole object under `key`, replacing any object already there; once it
/// returns `Ok` the object is durable. It never reads, lists or checks anything, so a store
/// needs no more than write permission.
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// Writes `body` as the object `key`.
    async fn put(&self, key: &str, body: Body, options: &PutOptions) -> Result<(), StoreError>;

    /// Where the objects go, for logs and errors: `s3://bucket` or `file://dir`.
    fn location(&self) -> String;
}
