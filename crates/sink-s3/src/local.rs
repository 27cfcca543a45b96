//! `file://DIR`: the local-directory object store (same keys and bytes as S3).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;

use crate::store::{Body, ObjectStore, PutOptions};
use crate::{StoreError, StoreErrorKind};

/// An object store in a local directory: the object `a/b.gz` is the file `DIR/a/b.gz`.
///
/// Each put writes a hidden temporary file (`.logferry-tmp-*`) beside the target, syncs it,
/// renames it over the target and syncs the directory: a reader sees the old object or the new
/// one, never a part, and a crash leaves at most a stray temporary file. Leading `/` of keys
/// are dropped; keys with `.` or `..` segments or a trailing `/` are refused.
///
/// ```
/// use logferry_sink_s3::{Body, LocalStore, ObjectStore, PutOptions};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let store = LocalStore::new(dir.path());
/// store.put("logs/a.txt", Body::from(b"hi\n".to_vec()), &PutOptions::default()).await.unwrap();
/// assert_eq!(std::fs::read(dir.path().join("logs/a.txt")).unwrap(), b"hi\n");
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at `root` (created on the first put; relative to the working directory).
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore { root: root.into() }
    }

    /// The directory objects are written under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of the object `key`, or `None` when the key cannot be a relative path.
    pub fn path_of(&self, key: &str) -> Option<PathBuf> {
        let relative = Path::new(key.trim_start_matches('/'));
        let valid = !key.ends_with('/')
            && !relative.as_os_str().is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
            && !key.split('/').any(|s| s == "." || s == "..");
        valid.then(|| self.root.join(relative))
    }

    fn write(root: &Path, target: &Path, body: &Body) -> io::Result<()> {
        let dir = target.parent().unwrap_or(root);
        fs::create_dir_all(dir)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".logferry-tmp-")
            .tempfile_in(dir)?;
        match body {
            Body::Bytes(bytes) => tmp.write_all(bytes)?,
            Body::File { path, len } => {
                let mut source = io::Read::take(File::open(path)?, *len);
                let copied = io::copy(&mut source, &mut tmp)?;
                if copied != *len {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{} has {copied} bytes, not {len}", path.display()),
                    ));
                }
            }
        }
        tmp.as_file().sync_all()?;
        tmp.persist(target).map_err(|e| e.error)?;
        File::open(dir)?.sync_all()
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put(&self, key: &str, body: Body, _options: &PutOptions) -> Result<(), StoreError> {
        let location = self.location();
        let Some(target) = self.path_of(key) else {
            return Err(StoreError::new(
                StoreErrorKind::InvalidRequest,
                "write",
                &location,
                key,
                "the key is not a relative file path".to_string(),
            ));
        };
        let root = self.root.clone();
        let written = tokio::task::spawn_blocking(move || Self::write(&root, &target, &body)).await;
        let result = written.unwrap_or_else(|join| Err(io::Error::other(join.to_string())));
        result.map_err(|err| {
            let kind = match err.kind() {
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                    StoreErrorKind::AccessDenied
                }
                _ => StoreErrorKind::Io,
            };
            StoreError::new(kind, "write", &location, key, err.to_string()).with_source(err)
        })?;
        tracing::debug!(key, location = %location, "Wrote object to local store.");
        Ok(())
    }

    fn location(&self) -> String {
        format!("file://{}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_paths_under_the_root() {
        let store = LocalStore::new("/data");
        assert_eq!(store.path_of("a/b.gz"), Some(PathBuf::from("/data/a/b.gz")));
        assert_eq!(
            store.path_of("/a/b.gz"),
            Some(PathBuf::from("/data/a/b.gz"))
        );
        for bad in ["", "/", "a/", "../x", "a/../../x", "a/./b", "."] {
            assert_eq!(store.path_of(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn puts_replace_objects_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("bucket"));
        store
            .put(
                "x/y.txt",
                Body::from(b"one".to_vec()),
                &PutOptions::default(),
            )
            .await
            .unwrap();
        let src = dir.path().join("body");
        fs::write(&src, b"two and more").unwrap();
        store
            .put("x/y.txt", Body::file(&src, 3), &PutOptions::default())
            .await
            .unwrap();
        assert_eq!(fs::read(dir.path().join("bucket/x/y.txt")).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path().join("bucket/x"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["y.txt"]);
        let err = store
            .put("../evil", Body::from(Vec::new()), &PutOptions::default())
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        let err = store
            .put("short", Body::file(&src, 100), &PutOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Io);
    }
}
