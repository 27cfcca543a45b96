//! Scans: expanding the globs, opening new files and matching them with their checkpoints.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::path::PathBuf;

use crate::checkpoint::{PosEntry, parse_stream_id};
use crate::fingerprint::{DevIno, Fingerprint};
use crate::glob::{PathMatcher, ScanItem};

/// Offsets stored downstream, by file identity: `(fingerprint, offset, stream id)`.
pub(crate) type ResumeIndex = HashMap<DevIno, Vec<(Fingerprint, u64, String)>>;

/// Indexes the resume positions handed to the source; ids of other sources are ignored, and
/// so are ids with an empty fingerprint and a position past 0 (written before fingerprints
/// covered every byte read: an empty fingerprint matches any later content of the inode, so
/// trusting it would skip or repeat lines).
pub(crate) fn resume_index(source: &str, resume: &HashMap<String, u64>) -> ResumeIndex {
    let mut index = ResumeIndex::new();
    for (stream, &offset) in resume {
        if let Some((id, fp)) = parse_stream_id(source, stream)
            && (fp.len > 0 || offset == 0)
        {
            index
                .entry(id)
                .or_default()
                .push((fp, offset, stream.clone()));
        }
    }
    index
}

/// One path a scan found.
#[derive(Debug)]
pub(crate) enum Discovery {
    /// A file that is already being read.
    Seen { path: PathBuf, id: DevIno },
    /// A new file, opened.
    Opened(Opened),
    /// A path that could not be examined or opened.
    Failed {
        path: PathBuf,
        id: Option<DevIno>,
        error: io::Error,
    },
}

/// A newly opened file and what is known of its position.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    pub(crate) id: DevIno,
    pub(crate) size: u64,
    pub(crate) fingerprint: Fingerprint,
    /// The checkpoint entry of this very file (same identity and first bytes).
    pub(crate) checkpoint: Option<PosEntry>,
    /// The highest resume position of this very file, with its stream id.
    pub(crate) resume: Option<(u64, String)>,
}

/// Expands the globs and opens the files not in `tracked`; blocking. A file reached by
/// several paths (hard or symbolic links) is opened once.
pub(crate) fn discover(
    matcher: &PathMatcher,
    mut tracked: HashSet<DevIno>,
    known: &HashMap<DevIno, PosEntry>,
    resume: &ResumeIndex,
) -> Vec<Discovery> {
    let mut found = Vec::new();
    for item in matcher.scan() {
        let path = match item {
            ScanItem::File(path) => path,
            ScanItem::Failed(path, error) => {
                found.push(Discovery::Failed {
                    path,
                    id: None,
                    error,
                });
                continue;
            }
        };
        let id = match std::fs::metadata(&path) {
            Ok(meta) => DevIno::of(&meta),
            // Gone between the walk and now: not a failure.
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => {
                found.push(Discovery::Failed {
                    path,
                    id: None,
                    error,
                });
                continue;
            }
        };
        if tracked.contains(&id) {
            found.push(Discovery::Seen { path, id });
            continue;
        }
        match open(&path, known, resume) {
            Ok(Some(opened)) => {
                if tracked.contains(&opened.id) {
                    found.push(Discovery::Seen {
                        path,
                        id: opened.id,
                    });
                } else {
                    tracked.insert(id);
                    tracked.insert(opened.id);
                    found.push(Discovery::Opened(opened));
                }
            }
            Ok(None) => {}
            Err(error) => found.push(Discovery::Failed {
                path,
                id: Some(id),
                error,
            }),
        }
    }
    found
}

fn open(
    path: &std::path::Path,
    known: &HashMap<DevIno, PosEntry>,
    resume: &ResumeIndex,
) -> io::Result<Option<Opened>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    let id = DevIno::of(&meta);
    let size = meta.len();
    let fingerprint = Fingerprint::of_file(&file, size)?;
    let checkpoint = match known.get(&id) {
        Some(entry) if entry.fingerprint().matches(&file, size)? => Some(entry.clone()),
        _ => None,
    };
    let mut best: Option<(u64, String)> = None;
    for (fp, offset, stream) in resume.get(&id).into_iter().flatten() {
        if fp.matches(&file, size)? && best.as_ref().is_none_or(|(o, _)| offset > o) {
            best = Some((*offset, stream.clone()));
        }
    }
    Ok(Some(Opened {
        path: path.to_owned(),
        file,
        id,
        size,
        fingerprint,
        checkpoint,
        resume: best,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::stream_id;

    #[test]
    fn empty_fingerprints_resume_only_from_the_start() {
        let file = DevIno { dev: 1, ino: 2 };
        let empty = stream_id("s", file, Fingerprint::empty());
        let other = stream_id("s", DevIno { dev: 1, ino: 3 }, Fingerprint::empty());
        let some = stream_id(
            "s",
            DevIno { dev: 1, ino: 4 },
            Fingerprint { len: 10, hash: 7 },
        );
        let index = resume_index(
            "s",
            &HashMap::from([(empty, 500), (other, 0), (some, 9000)]),
        );
        assert!(!index.contains_key(&file), "an empty fingerprint past 0");
        assert_eq!(index[&DevIno { dev: 1, ino: 3 }][0].1, 0);
        assert_eq!(index[&DevIno { dev: 1, ino: 4 }][0].1, 9000);
    }
}
