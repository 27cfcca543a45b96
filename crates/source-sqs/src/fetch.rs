//! Reading objects from S3 (GetObject, streamed) or from a local directory (`file://DIR`).

use std::io::{self, BufRead, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use aws_sdk_s3::error::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use bytes::Bytes;
use logferry_core::AckToken;
use tokio::sync::mpsc;

use crate::SourceError;
use crate::error::{ObjectError, ObjectErrorKind};
use crate::notification::ObjectRef;
use crate::reader::{FetchError, ObjectBatch, ObjectReader, ObjectSummary};
use crate::stats::Counters;

/// The bucket prefix that selects the local-directory store.
pub const FILE_BUCKET_PREFIX: &str = "file://";

/// Downloaded chunks queued between the download and the parser: bounds the memory of one
/// object to a few chunks whatever its size.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Objects up to this size (by Content-Length) are downloaded whole and then parsed in one
/// go: one hand-off to the parsing thread instead of one per chunk, which is most of the
/// per-object cost of a backfill of many small objects (CloudTrail, Config). Larger ones
/// stream, a few chunks at a time.
const WHOLE_OBJECT_MAX: i64 = 256 * 1024;

/// Opens objects for an [`ObjectReader`]: S3 buckets through GetObject (streamed, never held
/// whole), `file://DIR` buckets as files of the local-directory store written by
/// logferry-sink-s3's `LocalStore` (object `a/b.gz` is the file `DIR/a/b.gz`).
#[derive(Clone, Debug, Default)]
pub struct ObjectFetcher {
    s3: Option<aws_sdk_s3::Client>,
}

impl ObjectFetcher {
    /// A fetcher for S3 (with a client) and local buckets, or local buckets only (`None`).
    pub fn new(s3: Option<aws_sdk_s3::Client>) -> ObjectFetcher {
        ObjectFetcher { s3 }
    }

    /// Reads `object` with `reader`, sending its batches (each with a clone of `ack`) to `out`
    /// in order. The returned error names the object; [`ObjectError::is_retryable`] says
    /// whether another attempt may succeed.
    pub async fn read_object(
        &self,
        reader: &Arc<ObjectReader>,
        object: ObjectRef,
        ack: Option<&AckToken>,
        out: &mpsc::Sender<ObjectBatch>,
    ) -> Result<ObjectSummary, ObjectError> {
        if let Some(dir) = object.bucket.strip_prefix(FILE_BUCKET_PREFIX) {
            let Some(path) = local_path(Path::new(dir), &object.key) else {
                return Err(ObjectError::new(
                    &object.bucket,
                    &object.key,
                    ObjectErrorKind::NotFound,
                ));
            };
            return read_blocking(reader, object, None, ack, out, move |object| {
                std::fs::File::open(&path).map_err(|e| {
                    let kind = if e.kind() == io::ErrorKind::NotFound {
                        ObjectErrorKind::NotFound
                    } else {
                        ObjectErrorKind::Download {
                            retryable: true,
                            source: Box::new(e),
                        }
                    };
                    ObjectError::new(&object.bucket, &object.key, kind)
                })
            })
            .await;
        }
        let Some(s3) = &self.s3 else {
            return Err(ObjectError::new(
                &object.bucket,
                &object.key,
                ObjectErrorKind::Download {
                    retryable: false,
                    source: "no S3 client: only file:// buckets can be read".into(),
                },
            ));
        };
        let response = s3
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .send()
            .await
            .map_err(|e| {
                let kind = match &e {
                    SdkError::ServiceError(se)
                        if se.err().is_no_such_key()
                            || se.err().code() == Some("NoSuchKey")
                            || se.raw().status().as_u16() == 404 =>
                    {
                        ObjectErrorKind::NotFound
                    }
                    SdkError::ServiceError(se) if se.err().code() == Some("AccessDenied") => {
                        ObjectErrorKind::Download {
                            retryable: true,
                            source: Box::new(e),
                        }
                    }
                    _ => ObjectErrorKind::Download {
                        retryable: sdk_retryable(&e),
                        source: Box::new(e),
                    },
                };
                ObjectError::new(&object.bucket, &object.key, kind)
            })?;
        let mut object = object;
        if let Some(etag) = response.e_tag() {
            object.etag = Some(etag.trim_matches('"').to_string());
        }
        if let Some(version) = response.version_id() {
            object.version_id = Some(version.to_string());
        }
        let content_encoding = response.content_encoding().map(str::to_string);
        if response
            .content_length()
            .is_some_and(|n| (0..=WHOLE_OBJECT_MAX).contains(&n))
        {
            let body = match response.body.collect().await {
                Ok(body) => body.into_bytes(),
                Err(e) => {
                    return Err(ObjectError::new(
                        &object.bucket,
                        &object.key,
                        ObjectErrorKind::Download {
                            retryable: true,
                            source: Box::new(e),
                        },
                    ));
                }
            };
            return read_blocking(reader, object, content_encoding, ack, out, move |_| {
                Ok(io::Cursor::new(body))
            })
            .await;
        }
        let mut body = response.body;
        let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
        let parse = read_blocking(reader, object, content_encoding, ack, out, move |_| {
            Ok(ChannelReader {
                rx,
                current: Bytes::new(),
                ended: false,
            })
        });
        // The parse runs on its own thread already; the download feeds it meanwhile.
        loop {
            let chunk = match body.try_next().await {
                Ok(Some(bytes)) => Chunk::Data(bytes),
                Ok(None) => Chunk::End,
                Err(e) => Chunk::Failed(io::Error::other(FetchError {
                    retryable: true,
                    source: Box::new(e),
                })),
            };
            let last = !matches!(chunk, Chunk::Data(_));
            // The parser stopped early (an error or a closed output): it reports why.
            if tx.send(chunk).await.is_err() || last {
                break;
            }
        }
        drop(tx);
        parse.await
    }

    /// Reads an object like [`ObjectFetcher::read_object`] and applies the source's policy to
    /// a failure: a retryable one is returned (the unit of work is not acknowledged), a
    /// permanent one (corrupt, missing, too large, no format) is sent to `out` as an
    /// object-level [`crate::Failure`] to be dead-lettered, and counts as done.
    pub(crate) async fn process_object(
        &self,
        reader: &Arc<ObjectReader>,
        object: ObjectRef,
        ack: Option<&AckToken>,
        out: &mpsc::Sender<ObjectBatch>,
    ) -> Result<(), SourceError> {
        let counters = &reader.stats().counters;
        let original = Arc::new(object.clone());
        match self.read_object(reader, object, ack, out).await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.kind, ObjectErrorKind::OutputClosed) => {
                Err(SourceError::OutputClosed)
            }
            Err(e) => {
                Counters::add(&counters.object_errors, 1);
                if e.is_retryable() {
                    tracing::warn!(error = %e, "Object could not be read; it will be retried.");
                    return Err(SourceError::Object(e));
                }
                tracing::error!(error = %e, "Object could not be read to its end; dead-lettered.");
                out.send(ObjectBatch::object_failure(original, e, ack))
                    .await
                    .map_err(|_| SourceError::OutputClosed)
            }
        }
    }
}

/// Starts reading `object` with `reader` on a blocking thread, from the body `open` gives
/// there (its error names the object), sending its batches to `out`; the future resolves to
/// the outcome.
fn read_blocking<R: Read>(
    reader: &Arc<ObjectReader>,
    object: ObjectRef,
    content_encoding: Option<String>,
    ack: Option<&AckToken>,
    out: &mpsc::Sender<ObjectBatch>,
    open: impl FnOnce(&ObjectRef) -> Result<R, ObjectError> + Send + 'static,
) -> impl Future<Output = Result<ObjectSummary, ObjectError>> + 'static {
    let reader = Arc::clone(reader);
    let ack = ack.cloned();
    let out = out.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let object = Arc::new(object);
        let body = open(&object)?;
        reader.read(
            &object,
            body,
            content_encoding.as_deref(),
            ack.as_ref(),
            &mut |b| out.blocking_send(b).is_ok(),
        )
    });
    async move { joined.await.unwrap_or_else(|e| Err(join_error(e))) }
}

/// The file of `key` under `dir`, or `None` when the key cannot be a relative path.
pub(crate) fn local_path(dir: &Path, key: &str) -> Option<PathBuf> {
    let relative = Path::new(key.trim_start_matches('/'));
    let valid = !key.ends_with('/')
        && !relative.as_os_str().is_empty()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        && !key.split('/').any(|s| s == "." || s == "..");
    valid.then(|| dir.join(relative))
}

fn join_error(e: tokio::task::JoinError) -> ObjectError {
    ObjectError::new(
        "?",
        "?",
        ObjectErrorKind::Download {
            retryable: true,
            source: Box::new(io::Error::other(e.to_string())),
        },
    )
}

/// Whether an SDK error may go away on its own: connection problems, timeouts, throttling,
/// 5xx.
pub(crate) fn sdk_retryable<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool
where
    R: std::fmt::Debug,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(se) => matches!(
            se.err().code(),
            Some(
                "Throttling"
                    | "ThrottlingException"
                    | "SlowDown"
                    | "RequestTimeout"
                    | "InternalError"
                    | "ServiceUnavailable"
                    | "RequestThrottled"
                    | "AWS.SimpleQueueService.ServiceUnavailable"
            )
        ),
        _ => false,
    }
}

enum Chunk {
    Data(Bytes),
    End,
    Failed(io::Error),
}

/// The blocking side of a download: chunks from the async task, in order.
struct ChannelReader {
    rx: mpsc::Receiver<Chunk>,
    current: Bytes,
    ended: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(&[]);
            }
            match self.rx.blocking_recv() {
                Some(Chunk::Data(bytes)) => self.current = bytes,
                Some(Chunk::End) => {
                    self.ended = true;
                    return Ok(&[]);
                }
                Some(Chunk::Failed(e)) => return Err(e),
                None if self.ended => return Ok(&[]),
                None => {
                    return Err(io::Error::other(FetchError {
                        retryable: true,
                        source: "the download stopped before the end of the object".into(),
                    }));
                }
            }
        }
        Ok(&self.current)
    }

    fn consume(&mut self, amt: usize) {
        let _ = self.current.split_to(amt);
    }
}
