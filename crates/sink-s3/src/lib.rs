//! S3 output: fluent-plugin-s3 key templates, gzip/zstd encoding, uploads with least privilege, and a local-directory object store.
