//! The S3 object store: PutObject, or a multipart upload for large objects, and nothing else.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ServerSideEncryption, StorageClass,
};

use crate::classify::classify;
use crate::store::{Body, ObjectStore, PutOptions};
use crate::{StoreError, StoreErrorKind};

/// S3's smallest part of a multipart upload (except the last).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// S3's largest part, and largest single PutObject.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// S3's largest number of parts.
const MAX_PARTS: u64 = 10_000;

/// Upload settings of an [`S3Store`]: encryption, storage class and when to go multipart.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct S3StoreOptions {
    /// Server-side encryption (`x-amz-server-side-encryption`): `AES256`, `aws:kms` or
    /// `aws:kms:dsse`. Default: none (the bucket's default encryption applies).
    pub sse: Option<String>,
    /// KMS key for `aws:kms`. Default: none (the AWS managed key).
    pub ssekms_key_id: Option<String>,
    /// Storage class (`STANDARD_IA`, ...). Default: none (`STANDARD`).
    pub storage_class: Option<String>,
    /// Objects larger than this go up in a multipart upload. Default: 64 MiB.
    pub multipart_threshold: u64,
    /// Size of each part of a multipart upload (raised when an object would need more than
    /// 10,000 parts). Default: 16 MiB.
    pub multipart_chunk_size: u64,
}

impl Default for S3StoreOptions {
    fn default() -> S3StoreOptions {
        S3StoreOptions {
            sse: None,
            ssekms_key_id: None,
            storage_class: None,
            multipart_threshold: 64 * 1024 * 1024,
            multipart_chunk_size: 16 * 1024 * 1024,
        }
    }
}

/// Objects in one S3 bucket, written with the least privilege: `s3:PutObject` on the keys
/// written is all it needs.
///
/// A put is one `PutObject`, or for objects above `multipart_threshold`
/// `CreateMultipartUpload` + `UploadPart`s + `CompleteMultipartUpload` (all authorized by
/// `s3:PutObject`), with an `AbortMultipartUpload` when a part fails (which needs
/// `s3:AbortMultipartUpload`; without it the parts stay until a lifecycle rule removes them).
/// It never calls HeadBucket, ListObjects, GetBucketLocation, HeadObject or anything else.
#[derive(Clone, Debug)]
pub struct S3Store {
    client: Client,
    bucket: String,
    options: S3StoreOptions,
}

impl S3Store {
    /// A store writing to `bucket` through `client`.
    pub fn new(client: Client, bucket: impl Into<String>, options: S3StoreOptions) -> S3Store {
        S3Store {
            client,
            bucket: bucket.into(),
            options,
        }
    }

    /// The bucket written to.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The part size used for an object of `len` bytes.
    fn part_size(&self, len: u64) -> u64 {
        let wanted = self
            .options
            .multipart_chunk_size
            .clamp(MIN_PART_SIZE, MAX_PART_SIZE);
        wanted.max(len.div_ceil(MAX_PARTS))
    }

    fn sse(&self) -> Option<ServerSideEncryption> {
        self.options.sse.as_deref().map(ServerSideEncryption::from)
    }

    fn storage_class(&self) -> Option<StorageClass> {
        self.options
            .storage_class
            .as_deref()
            .map(StorageClass::from)
    }

    async fn stream(
        &self,
        key: &str,
        body: &Body,
        offset: u64,
        len: u64,
    ) -> Result<ByteStream, StoreError> {
        match body {
            Body::Bytes(bytes) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = usize::try_from(offset + len)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                Ok(ByteStream::from(bytes.slice(start..end)))
            }
            Body::File { path, .. } => ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(len))
                .build()
                .await
                .map_err(|err| {
                    StoreError::new(
                        StoreErrorKind::Io,
                        "read body",
                        &self.location(),
                        key,
                        format!("{}: {err}", path.display()),
                    )
                    .with_source(err)
                }),
        }
    }

    async fn put_object(
        &self,
        key: &str,
        body: &Body,
        options: &PutOptions,
    ) -> Result<(), StoreError> {
        let len = body.len();
        let stream = self.stream(key, body, 0, len).await?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(stream)
            .content_length(len as i64)
            .set_content_type(options.content_type.clone())
            .set_content_encoding(options.content_encoding.clone())
            .set_server_side_encryption(self.sse())
            .set_ssekms_key_id(self.options.ssekms_key_id.clone())
            .set_storage_class(self.storage_class())
            .send()
            .await
            .map_err(|err| classify(err, "PutObject", &self.location(), key))?;
        Ok(())
    }

    async fn put_multipart(
        &self,
        key: &str,
        body: &Body,
        options: &PutOptions,
    ) -> Result<(), StoreError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_content_type(options.content_type.clone())
            .set_content_encoding(options.content_encoding.clone())
            .set_server_side_encryption(self.sse())
            .set_ssekms_key_id(self.options.ssekms_key_id.clone())
            .set_storage_class(self.storage_class())
            .send()
            .await
            .map_err(|err| classify(err, "CreateMultipartUpload", &self.location(), key))?;
        let Some(upload_id) = created.upload_id().map(str::to_string) else {
            return Err(StoreError::new(
                StoreErrorKind::Server,
                "CreateMultipartUpload",
                &self.location(),
                key,
                "the answer has no UploadId".to_string(),
            ));
        };
        match self.upload_parts(key, body, &upload_id).await {
            Ok(()) => Ok(()),
            Err(err) => {
                self.abort(key, &upload_id).await;
                Err(err)
            }
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        body: &Body,
        upload_id: &str,
    ) -> Result<(), StoreError> {
        let len = body.len();
        let part_size = self.part_size(len);
        let mut parts = Vec::new();
        let mut offset = 0;
        let mut number = 1i32;
        while offset < len || number == 1 {
            let size = part_size.min(len - offset);
            let stream = self.stream(key, body, offset, size).await?;
            let uploaded = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(size as i64)
                .body(stream)
                .send()
                .await
                .map_err(|err| classify(err, "UploadPart", &self.location(), key))?;
            tracing::debug!(key, part = number, bytes = size, "Uploaded part.");
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(uploaded.e_tag().map(str::to_string))
                    .build(),
            );
            offset += size;
            number += 1;
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|err| classify(err, "CompleteMultipartUpload", &self.location(), key))?;
        Ok(())
    }

    async fn abort(&self, key: &str, upload_id: &str) {
        let aborted = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
        if let Err(err) = aborted {
            let err = classify(err, "AbortMultipartUpload", &self.location(), key);
            tracing::warn!(
                key,
                upload_id,
                error = %err,
                "Could not abort the failed multipart upload: its parts stay until a lifecycle rule removes them."
            );
        }
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, body: Body, options: &PutOptions) -> Result<(), StoreError> {
        let len = body.len();
        if len > self.options.multipart_threshold {
            self.put_multipart(key, &body, options).await?;
        } else {
            self.put_object(key, &body, options).await?;
        }
        tracing::debug!(key, bucket = %self.bucket, bytes = len, "Put object.");
        Ok(())
    }

    fn location(&self) -> String {
        format!("s3://{}", self.bucket)
    }
}
