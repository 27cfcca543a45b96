//! Glob patterns and the directory walk that expands them.

use std::io;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

use crate::TailError;

/// Deepest directory level a `**` pattern descends to below its literal base.
const MAX_RECURSIVE_DEPTH: usize = 32;

/// Compiles one pattern the way `paths` and `exclude_path` are read: `*` and `?` do not match
/// `/`, `**` matches any number of directories.
pub(crate) fn compile_glob(key: &str, pattern: &str) -> Result<Glob, TailError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|source| TailError::InvalidGlob {
            key: key.to_owned(),
            pattern: pattern.to_owned(),
            source,
        })
}

/// One `paths` entry: where its walk starts, how deep it goes, and what it matches.
#[derive(Debug)]
struct Pattern {
    base: PathBuf,
    /// How many levels below `base` a match can be; 0 for a literal path.
    depth: usize,
    /// Whether directories that are symbolic links are followed (only for bounded depths).
    follow_dir_links: bool,
    matcher: GlobMatcher,
}

/// The compiled `paths` and `exclude_path` of a source.
#[derive(Debug)]
pub(crate) struct PathMatcher {
    patterns: Vec<Pattern>,
    exclude: GlobSet,
}

/// What a scan saw.
#[derive(Debug)]
pub(crate) enum ScanItem {
    /// A regular file that the globs match and `exclude_path` does not.
    File(PathBuf),
    /// A path that could not be examined (an unreadable directory or file).
    Failed(PathBuf, io::Error),
}

impl PathMatcher {
    /// Compiles the globs; errors name `paths[i]` or `exclude_path[i]`.
    pub(crate) fn new(paths: &[String], exclude: &[String]) -> Result<PathMatcher, TailError> {
        let mut patterns = Vec::with_capacity(paths.len());
        for (i, pattern) in paths.iter().enumerate() {
            let glob = compile_glob(&format!("paths[{i}]"), pattern)?;
            let (base, depth) = literal_base(pattern);
            patterns.push(Pattern {
                base,
                depth,
                follow_dir_links: depth < MAX_RECURSIVE_DEPTH,
                matcher: glob.compile_matcher(),
            });
        }
        let mut set = GlobSetBuilder::new();
        for (i, pattern) in exclude.iter().enumerate() {
            set.add(compile_glob(&format!("exclude_path[{i}]"), pattern)?);
        }
        let exclude = set.build().map_err(|source| TailError::InvalidGlob {
            key: "exclude_path".to_owned(),
            pattern: exclude.join(", "),
            source,
        })?;
        Ok(PathMatcher { patterns, exclude })
    }

    /// Walks the file system and returns every matching regular file once (in the order the
    /// patterns list them), plus the paths that could not be examined.
    pub(crate) fn scan(&self) -> Vec<ScanItem> {
        let mut items = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for pattern in &self.patterns {
            let mut found = Vec::new();
            walk(pattern, &pattern.base, 0, &mut found, &mut items);
            found.sort();
            for path in found {
                if !self.exclude.is_match(&path) && seen.insert(path.clone()) {
                    items.push(ScanItem::File(path));
                }
            }
        }
        items
    }
}

/// Splits a pattern into the directory made of its leading literal components and the number
/// of components after it (`MAX_RECURSIVE_DEPTH` when a `**` follows).
fn literal_base(pattern: &str) -> (PathBuf, usize) {
    let is_meta = |component: &str| component.contains(['*', '?', '[', '{', '\\']);
    let components: Vec<&str> = pattern.split('/').collect();
    let literal = components.iter().take_while(|c| !is_meta(c)).count();
    if literal == components.len() {
        return (PathBuf::from(pattern), 0);
    }
    let base = components[..literal].join("/");
    let base = if base.is_empty() && pattern.starts_with('/') {
        "/".to_owned()
    } else {
        base
    };
    let rest = &components[literal..];
    let depth = if rest.iter().any(|c| c.contains("**")) {
        MAX_RECURSIVE_DEPTH
    } else {
        rest.len()
    };
    (PathBuf::from(base), depth)
}

fn is_not_found(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Collects the regular files under `dir` (at `level` below the pattern's base) that the
/// pattern matches.
fn walk(
    pattern: &Pattern,
    dir: &Path,
    level: usize,
    found: &mut Vec<PathBuf>,
    items: &mut Vec<ScanItem>,
) {
    if pattern.depth == 0 {
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_file() => found.push(dir.to_path_buf()),
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => items.push(ScanItem::Failed(dir.to_path_buf(), err)),
        }
        return;
    }
    let read_dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let entries = match std::fs::read_dir(read_dir) {
        Ok(entries) => entries,
        Err(err) if is_not_found(&err) => return,
        Err(err) => {
            items.push(ScanItem::Failed(read_dir.to_path_buf(), err));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                items.push(ScanItem::Failed(read_dir.to_path_buf(), err));
                continue;
            }
        };
        // Relative patterns match relative paths: `*.log` sees `a.log`, not `./a.log`.
        let path = if dir.as_os_str().is_empty() {
            PathBuf::from(entry.file_name())
        } else {
            dir.join(entry.file_name())
        };
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let (is_file, is_dir) = if file_type.is_symlink() {
            match std::fs::metadata(&path) {
                Ok(meta) => (meta.is_file(), meta.is_dir() && pattern.follow_dir_links),
                // A dangling link matches nothing.
                Err(err) if is_not_found(&err) => (false, false),
                Err(err) => {
                    items.push(ScanItem::Failed(path, err));
                    continue;
                }
            }
        } else {
            (file_type.is_file(), file_type.is_dir())
        };
        if is_file && pattern.matcher.is_match(&path) {
            found.push(path);
        } else if is_dir && level + 1 < pattern.depth {
            walk(pattern, &path, level + 1, found, items);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_bases() {
        assert_eq!(
            literal_base("/var/log/*.log"),
            (PathBuf::from("/var/log"), 1)
        );
        assert_eq!(
            literal_base("/var/log/a.log"),
            (PathBuf::from("/var/log/a.log"), 0)
        );
        assert_eq!(literal_base("/var/*/x/*.log"), (PathBuf::from("/var"), 3));
        assert_eq!(literal_base("/*.log"), (PathBuf::from("/"), 1));
        assert_eq!(literal_base("*.log"), (PathBuf::from(""), 1));
        assert_eq!(literal_base("logs/**/*.log").1, MAX_RECURSIVE_DEPTH);
    }

    #[test]
    fn scans_and_excludes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in ["a.log", "b.log", "c.txt", "sub/d.log", "sub/deeper/e.log"] {
            let p = root.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "x\n").unwrap();
        }
        let r = root.to_str().unwrap();
        let files = |paths: &[String], exclude: &[String]| -> Vec<String> {
            PathMatcher::new(paths, exclude)
                .unwrap()
                .scan()
                .into_iter()
                .filter_map(|item| match item {
                    ScanItem::File(p) => {
                        Some(p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
                    }
                    ScanItem::Failed(..) => None,
                })
                .collect()
        };
        assert_eq!(files(&[format!("{r}/*.log")], &[]), ["a.log", "b.log"]);
        assert_eq!(
            files(&[format!("{r}/*.log")], &[format!("{r}/b*")]),
            ["a.log"]
        );
        assert_eq!(files(&[format!("{r}/*/*.log")], &[]), ["sub/d.log"]);
        assert_eq!(
            files(&[format!("{r}/**/*.log")], &[]),
            ["a.log", "b.log", "sub/d.log", "sub/deeper/e.log"]
        );
        assert_eq!(
            files(&[format!("{r}/{{a,c}}.*"), format!("{r}/a.log")], &[]),
            ["a.log", "c.txt"]
        );
        assert!(files(&[format!("{r}/missing/*.log")], &[]).is_empty());
    }
}
