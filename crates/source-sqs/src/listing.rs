//! Listing a bucket (S3 or `file://DIR`) for a backfill, with flat state and a checkpoint.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use logferry_core::Timestamp;

use crate::SourceError;
use crate::fetch::{FILE_BUCKET_PREFIX, sdk_retryable};
use crate::notification::{ObjectRef, encode_key};

/// Keys asked for per ListObjectsV2 call (S3's maximum).
pub const DEFAULT_PAGE_SIZE: usize = 1000;

/// Prefix of the temporary files of logferry-sink-s3's `LocalStore`, never listed.
const LOCAL_TMP_PREFIX: &str = ".logferry-tmp-";

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// Bucket, key, size and ETag.
    pub object: ObjectRef,
    /// Last modification time.
    pub last_modified: Option<Timestamp>,
}

/// Lists the keys of a bucket under a prefix in key order, a page at a time, by `start-after`
/// the last key seen (which is also where a resumed listing starts): memory stays flat
/// whatever the number of objects.
///
/// S3 may answer a truncated page with no keys at all (a prefix full of delete markers); there
/// is no new last key to start after, so the next page is asked for with the continuation
/// token that page returned.
///
/// Objects whose LastModified is before `since` or at/after `until` are skipped.
#[derive(Debug)]
pub struct Lister {
    s3: Option<aws_sdk_s3::Client>,
    bucket: String,
    prefix: String,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    start_after: Option<String>,
    /// S3's `NextContinuationToken` of the last page, when that page was empty.
    continuation: Option<String>,
    page_size: usize,
    done: bool,
}

impl Lister {
    /// A lister of `bucket` (a name, or `file://DIR`; S3 buckets need `s3`).
    pub fn new(
        s3: Option<aws_sdk_s3::Client>,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Lister {
        Lister {
            s3,
            bucket: bucket.into(),
            prefix: prefix.into(),
            since: None,
            until: None,
            start_after: None,
            continuation: None,
            page_size: DEFAULT_PAGE_SIZE,
            done: false,
        }
    }

    /// Only objects modified at or after `since` and before `until`. Default: all.
    pub fn modified_between(
        mut self,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> Lister {
        self.since = since;
        self.until = until;
        self
    }

    /// Starts after this key (a checkpoint's). Default: from the first key.
    pub fn start_after(mut self, key: Option<String>) -> Lister {
        self.start_after = key;
        self
    }

    /// Keys per page, 1 to 1000. Default: 1000.
    pub fn page_size(mut self, size: usize) -> Lister {
        self.page_size = size.clamp(1, 1000);
        self
    }

    /// The last key listed so far (filtered out or not): where a resumed listing starts.
    pub fn last_key(&self) -> Option<&str> {
        self.start_after.as_deref()
    }

    /// The next non-empty page of objects in key order, or `None` when the listing is done.
    pub async fn next_page(&mut self) -> Result<Option<Vec<ListedObject>>, SourceError> {
        while !self.done {
            let raw = match self.bucket.strip_prefix(FILE_BUCKET_PREFIX) {
                Some(dir) => {
                    let raw = self.local_page(Path::new(dir))?;
                    // A local page is short only at the end of the listing.
                    if raw.len() < self.page_size {
                        self.done = true;
                    }
                    raw
                }
                // S3 may answer fewer keys than asked for before the end: only IsTruncated
                // says it is over (`s3_page` reads it).
                None => self.s3_page().await?,
            };
            if let Some(last) = raw.last() {
                self.start_after = Some(last.object.key.clone());
            } else if self.continuation.is_none() {
                // An empty page and nothing to go on with: only S3 (with a token) can have
                // more after an empty page.
                self.done = true;
            }
            let page: Vec<ListedObject> = raw
                .into_iter()
                .filter(|o| match o.last_modified {
                    Some(t) => {
                        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
                    }
                    None => self.since.is_none() && self.until.is_none(),
                })
                .collect();
            if !page.is_empty() {
                return Ok(Some(page));
            }
        }
        Ok(None)
    }

    async fn s3_page(&mut self) -> Result<Vec<ListedObject>, SourceError> {
        let Some(s3) = &self.s3 else {
            return Err(SourceError::config(
                "bucket",
                "an S3 bucket needs AWS clients",
            ));
        };
        // After an empty truncated page only its token says where to go on.
        let (token, after) = match self.continuation.take() {
            Some(token) => (Some(token), None),
            None => (None, self.start_after.clone()),
        };
        let response = s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .set_start_after(after)
            .set_continuation_token(token)
            .max_keys(self.page_size as i32)
            .send()
            .await
            .map_err(|e| SourceError::S3 {
                operation: "ListObjectsV2",
                bucket: self.bucket.clone(),
                retryable: sdk_retryable(&e),
                source: Box::new(e),
            })?;
        let truncated = response.is_truncated() == Some(true);
        let page: Vec<ListedObject> = response
            .contents()
            .iter()
            .filter_map(|o| {
                Some(ListedObject {
                    object: ObjectRef {
                        bucket: self.bucket.clone(),
                        key: o.key()?.to_string(),
                        size: o.size().and_then(|s| u64::try_from(s).ok()),
                        version_id: None,
                        etag: o.e_tag().map(|e| e.trim_matches('"').to_string()),
                    },
                    last_modified: o
                        .last_modified()
                        .and_then(|t| Timestamp::from_unix(t.secs(), t.subsec_nanos())),
                })
            })
            .collect();
        if truncated && page.is_empty() {
            self.continuation = response.next_continuation_token().map(str::to_string);
            if self.continuation.is_none() {
                tracing::warn!(
                    bucket = %self.bucket,
                    prefix = %self.prefix,
                    after = ?self.start_after,
                    "S3 answered an empty truncated listing page without a continuation token; \
                     the listing ends here."
                );
            }
        } else if !truncated {
            self.done = true;
        }
        Ok(page)
    }

    fn local_page(&self, root: &Path) -> Result<Vec<ListedObject>, SourceError> {
        let mut out = Vec::new();
        let after = self.start_after.as_deref().unwrap_or("");
        local_walk(
            &self.bucket,
            root,
            "",
            after,
            &self.prefix,
            self.page_size,
            &mut out,
        )?;
        Ok(out)
    }
}

/// Appends to `out`, in S3 key order, the files under `dir` (keys starting with `key_prefix`)
/// whose keys are after `after` and start with `prefix`, up to `limit`.
fn local_walk(
    bucket: &str,
    dir: &Path,
    key_prefix: &str,
    after: &str,
    prefix: &str,
    limit: usize,
    out: &mut Vec<ListedObject>,
) -> Result<(), SourceError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SourceError::Io { path, source }
    };
    let reader = match fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && key_prefix.is_empty() => {
            return Ok(());
        }
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut entries = Vec::new();
    for entry in reader {
        let entry = entry.map_err(io_err(dir))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let file_type = entry.file_type().map_err(io_err(&entry.path()))?;
        if file_type.is_dir() {
            entries.push((format!("{key_prefix}{name}/"), true));
        } else if file_type.is_file() && !name.starts_with(LOCAL_TMP_PREFIX) {
            entries.push((format!("{key_prefix}{name}"), false));
        }
    }
    // A directory sorts as its name followed by `/`: the walk yields keys in byte order.
    entries.sort();
    for (key, is_dir) in entries {
        if out.len() >= limit {
            return Ok(());
        }
        if is_dir {
            let related = key.starts_with(prefix) || prefix.starts_with(key.as_str());
            let all_before = key.as_str() < after && !after.starts_with(key.as_str());
            if related && !all_before {
                let name = &key[key_prefix.len()..key.len() - 1];
                local_walk(bucket, &dir.join(name), &key, after, prefix, limit, out)?;
            }
            continue;
        }
        if key.as_str() <= after || !key.starts_with(prefix) {
            continue;
        }
        let path = dir.join(&key[key_prefix.len()..]);
        let meta = fs::metadata(&path).map_err(io_err(&path))?;
        let last_modified = meta.modified().ok().and_then(|t| {
            let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
            Timestamp::from_unix(i64::try_from(d.as_secs()).ok()?, d.subsec_nanos())
        });
        out.push(ListedObject {
            object: ObjectRef {
                bucket: bucket.to_string(),
                key,
                size: Some(meta.len()),
                version_id: None,
                etag: None,
            },
            last_modified,
        });
    }
    Ok(())
}

/// A backfill checkpoint: the last key of a listing whose objects, and all before it, were
/// fully processed. A small JSON file replaced atomically (write, fsync, rename).
#[derive(Debug, Clone)]
pub struct Checkpoint {
    path: PathBuf,
    bucket: String,
    prefix: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CheckpointFile {
    bucket: String,
    prefix: String,
    last_key: String,
}

impl Checkpoint {
    /// The checkpoint of listing `bucket`/`prefix` kept in `path`.
    pub fn new(
        path: impl Into<PathBuf>,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Checkpoint {
        Checkpoint {
            path: path.into(),
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    /// The key to resume after; `None` when there is no checkpoint yet. A checkpoint of
    /// another bucket or prefix is an error (delete the file to start over).
    pub fn load(&self) -> Result<Option<String>, SourceError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(SourceError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let file: CheckpointFile =
            serde_json::from_str(&text).map_err(|e| SourceError::Checkpoint {
                path: self.path.clone(),
                message: format!("not a checkpoint: {e}"),
            })?;
        if file.bucket != self.bucket || file.prefix != self.prefix {
            return Err(SourceError::Checkpoint {
                path: self.path.clone(),
                message: format!(
                    "it belongs to bucket `{}` prefix `{}`, not `{}` `{}`; delete it to start over",
                    file.bucket, file.prefix, self.bucket, self.prefix
                ),
            });
        }
        Ok(Some(file.last_key))
    }

    /// Records `last_key` atomically.
    pub fn store(&self, last_key: &str) -> Result<(), SourceError> {
        let io = |source| SourceError::Io {
            path: self.path.clone(),
            source,
        };
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(io)?;
        let body = serde_json::to_vec(&CheckpointFile {
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            last_key: last_key.to_string(),
        })
        .map_err(|e| io(std::io::Error::other(e)))?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut file = fs::File::create(&tmp).map_err(io)?;
        file.write_all(&body).map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&tmp, &self.path).map_err(io)?;
        fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io)
    }
}

/// Sends one notification-shaped message (an S3 `ObjectCreated:Put` event, key URL-encoded)
/// per object to `queue_url`, ten per SendMessageBatch, so that every ingester polling the
/// queue shares the work. Returns the number of messages sent.
pub async fn enqueue(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    objects: &[ObjectRef],
) -> Result<usize, SourceError> {
    use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
    let mut sent = 0;
    for chunk in objects.chunks(10) {
        let mut request = sqs.send_message_batch().queue_url(queue_url);
        for (i, object) in chunk.iter().enumerate() {
            let entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(notification_body(object))
                .build()
                .map_err(|e| SourceError::Sqs {
                    operation: "SendMessageBatch",
                    queue_url: queue_url.to_string(),
                    retryable: false,
                    source: Box::new(e),
                })?;
            request = request.entries(entry);
        }
        let response = request.send().await.map_err(|e| SourceError::Sqs {
            operation: "SendMessageBatch",
            queue_url: queue_url.to_string(),
            retryable: sdk_retryable(&e),
            source: Box::new(e),
        })?;
        if let Some(failed) = response.failed().first() {
            return Err(SourceError::Sqs {
                operation: "SendMessageBatch",
                queue_url: queue_url.to_string(),
                retryable: !failed.sender_fault(),
                source: format!(
                    "entry {} failed: {} {}",
                    failed.id(),
                    failed.code(),
                    failed.message().unwrap_or_default()
                )
                .into(),
            });
        }
        sent += response.successful().len();
    }
    Ok(sent)
}

/// The body of an S3 event notification for `object`.
pub fn notification_body(object: &ObjectRef) -> String {
    let mut s3_object = serde_json::json!({ "key": encode_key(&object.key) });
    if let Some(size) = object.size {
        s3_object["size"] = size.into();
    }
    if let Some(etag) = &object.etag {
        s3_object["eTag"] = etag.clone().into();
    }
    if let Some(version) = &object.version_id {
        s3_object["versionId"] = version.clone().into();
    }
    serde_json::json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "eventTime": Timestamp::now().to_string(),
            "userIdentity": { "principalId": "logferry-backfill" },
            "s3": {
                "s3SchemaVersion": "1.0",
                "bucket": { "name": object.bucket, "arn": format!("arn:aws:s3:::{}", object.bucket) },
                "object": s3_object,
            }
        }]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::parse_notification;

    fn keys(page: &[ListedObject]) -> Vec<&str> {
        page.iter().map(|o| o.object.key.as_str()).collect()
    }

    #[tokio::test]
    async fn local_listing_in_key_order_with_pages_and_prefix() {
        let dir = tempfile::tempdir().unwrap();
        for key in [
            "a/b.gz",
            "a-c.gz",
            "a/a/z.gz",
            "b.gz",
            "a/.logferry-tmp-x",
            "c/d/e.gz",
            "ab",
        ] {
            let path = dir.path().join(key);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, key).unwrap();
        }
        let bucket = format!("file://{}", dir.path().display());
        let mut lister = Lister::new(None, &bucket, "").page_size(2);
        let mut all = Vec::new();
        while let Some(page) = lister.next_page().await.unwrap() {
            assert!(page.len() <= 2);
            all.extend(keys(&page).into_iter().map(str::to_string));
        }
        // S3 order is byte order of whole keys: '-' < '/' < 'b'.
        assert_eq!(
            all,
            ["a-c.gz", "a/a/z.gz", "a/b.gz", "ab", "b.gz", "c/d/e.gz"]
        );
        let mut resumed = Lister::new(None, &bucket, "a").start_after(Some("a/a/z.gz".into()));
        assert_eq!(
            keys(&resumed.next_page().await.unwrap().unwrap()),
            ["a/b.gz", "ab"]
        );
        assert!(resumed.next_page().await.unwrap().is_none());
        let mut future = Lister::new(None, &bucket, "")
            .modified_between(Timestamp::now().offset_seconds(3600), None);
        assert!(future.next_page().await.unwrap().is_none());
        assert_eq!(future.last_key(), Some("c/d/e.gz"));
        let mut missing = Lister::new(None, "file:///nonexistent/logferry", "");
        assert!(missing.next_page().await.unwrap().is_none());
    }

    #[test]
    fn checkpoint_roundtrip_and_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/backfill.checkpoint");
        let cp = Checkpoint::new(&path, "b", "p/");
        assert_eq!(cp.load().unwrap(), None);
        cp.store("p/1").unwrap();
        cp.store("p/2").unwrap();
        assert_eq!(cp.load().unwrap().as_deref(), Some("p/2"));
        let other = Checkpoint::new(&path, "b", "q/");
        assert!(
            other
                .load()
                .unwrap_err()
                .to_string()
                .contains("belongs to bucket `b` prefix `p/`")
        );
        fs::write(&path, "garbage").unwrap();
        assert!(cp.load().is_err());
    }

    #[test]
    fn notification_bodies_round_trip() {
        let object = ObjectRef {
            bucket: "logs".into(),
            key: "dir/a b+c%=é.gz".into(),
            size: Some(12),
            version_id: None,
            etag: Some("abc".into()),
        };
        let n = parse_notification("m", &notification_body(&object)).unwrap();
        assert_eq!(n.objects, [object]);
    }
}
