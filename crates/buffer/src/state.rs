//! Buffer-wide state that outlives chunks: source positions and chunk sequence numbers
//! (`state.json`), and the per-chunk position sidecars (`chunk.<id>.pos`).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::meta::{hex, unhex, write_atomic};
use crate::{BufferError, FsyncMode};

/// Streams whose position was not updated for this long are forgotten (30 days).
pub(crate) const POSITION_RETENTION_SECS: i64 = 30 * 86_400;

/// The highest offset stored per source stream, and when it last moved.
#[derive(Clone, Debug, Default)]
pub(crate) struct Positions {
    map: HashMap<String, Position>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Position {
    pub(crate) offset: u64,
    /// Unix seconds of the last update.
    pub(crate) updated: i64,
}

impl Positions {
    pub(crate) fn merge(&mut self, stream: &str, pos: Position) {
        match self.map.get_mut(stream) {
            Some(old) => {
                old.offset = old.offset.max(pos.offset);
                old.updated = old.updated.max(pos.updated);
            }
            None => {
                self.map.insert(stream.to_owned(), pos);
            }
        }
    }

    pub(crate) fn merge_all(&mut self, other: &Positions) {
        for (stream, pos) in &other.map {
            self.merge(stream, *pos);
        }
    }

    /// Forgets streams not updated since `cutoff` (unix seconds).
    pub(crate) fn prune(&mut self, cutoff: i64) {
        self.map.retain(|_, p| p.updated >= cutoff);
    }

    pub(crate) fn offsets(&self) -> HashMap<String, u64> {
        self.map
            .iter()
            .map(|(s, p)| (s.clone(), p.offset))
            .collect()
    }
}

/// One line of a `chunk.<id>.pos` sidecar.
///
/// Every append writes one line, after all of its records, to the sidecar of each chunk it
/// wrote records to: the source position it stores (if any) and, in `commit`, the length of
/// each of those chunks once its records are in. A chunk also gets a line with its length 0
/// when it is created. At recovery an open chunk is cut back to the longest length any line
/// commits for it: records written by an append that died before its lines are not stored
/// (their position was not recorded either, so the source sends them again).
///
/// Lines written before `commit` existed have no `commit` (their chunks are not cut back).
#[derive(Serialize, Deserialize)]
struct PositionLine<'a> {
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    stream: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    time: i64,
    /// `(chunk id as hex, its length in bytes)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    commit: Vec<(Cow<'a, str>, u64)>,
}

/// The sidecar line of one append: the position it stores (if any) and the length of every
/// chunk it wrote to.
pub(crate) fn encode_commit_line(
    position: Option<(&str, Position)>,
    chunks: &[([u8; 16], u64)],
    time: i64,
) -> Vec<u8> {
    let line = PositionLine {
        stream: position.map(|(stream, _)| Cow::Borrowed(stream)),
        offset: position.map(|(_, pos)| pos.offset),
        time: position.map_or(time, |(_, pos)| pos.updated),
        commit: chunks
            .iter()
            .map(|(id, len)| (Cow::Owned(hex(id)), *len))
            .collect(),
    };
    let mut out = serde_json::to_vec(&line).unwrap_or_default();
    out.push(b'\n');
    out
}

/// What the sidecars of a buffer say.
#[derive(Debug, Default)]
pub(crate) struct Sidecar {
    pub(crate) positions: Positions,
    /// The longest committed length of each chunk named in a `commit`.
    pub(crate) committed: HashMap<[u8; 16], u64>,
    /// Lines that did not parse (a torn last line).
    pub(crate) skipped: usize,
    /// Commit lines that claim more of a chunk than its file holds, ignored with their
    /// position: after power loss a commit line can reach the disk before the records it
    /// commits, and trusting its position would skip those records at the source.
    pub(crate) beyond_data: usize,
}

/// Reads a position sidecar into `into`. A line that does not parse (a torn last line) is
/// skipped and counted; so is a commit line naming a chunk whose data file is shorter than
/// it says (`data_len` gives a chunk's file length, `None` when the file is gone).
pub(crate) fn decode_position_lines(
    bytes: &[u8],
    data_len: &dyn Fn(&[u8; 16]) -> Option<u64>,
    into: &mut Sidecar,
) {
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(p) = serde_json::from_slice::<PositionLine<'_>>(line) else {
            into.skipped += 1;
            continue;
        };
        let commits: Vec<([u8; 16], u64)> = p
            .commit
            .iter()
            .filter_map(|(id, len)| Some((unhex(id)?, *len)))
            .collect();
        if commits
            .iter()
            .any(|(id, len)| data_len(id).is_some_and(|have| have < *len))
        {
            into.beyond_data += 1;
            continue;
        }
        if let (Some(stream), Some(offset)) = (&p.stream, p.offset) {
            let pos = Position {
                offset,
                updated: p.time,
            };
            into.positions.merge(stream, pos);
        }
        for (id, len) in commits {
            let committed = into.committed.entry(id).or_default();
            *committed = (*committed).max(len);
        }
    }
}

/// The buffer's chunk sequence numbers: 0, 1, 2, ... for every chunk the buffer ever made,
/// whatever its tag and time slice, never reused (across restarts too).
///
/// fluent-plugin-s3 restarts `%{index}` in every time slice, finding a free one by probing the
/// bucket. A write-only shipper cannot probe, and a slice of the key template can be coarser
/// than the buffer's `timekey` (hourly keys, one-minute chunks): numbers that restarted per
/// `timekey` would give two chunks of one hour the same key, and the second upload would
/// overwrite the first. One counter per buffer makes `%{time_slice}_%{index}` unique for any
/// template and `timekey`.
#[derive(Clone, Debug, Default)]
pub(crate) struct SeqCounters {
    next: u64,
}

impl SeqCounters {
    /// The next sequence number.
    pub(crate) fn allocate(&mut self) -> u64 {
        let seq = self.next;
        self.next = seq.saturating_add(1);
        seq
    }

    /// Notes that `seq` is in use (a chunk found on disk).
    pub(crate) fn observe(&mut self, seq: u64) {
        self.next = self.next.max(seq.saturating_add(1));
    }
}

/// The on-disk form of `state.json`.
#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    positions: BTreeMap<String, Position>,
    /// The next chunk sequence number of the buffer.
    #[serde(default)]
    next_seq: u64,
    /// Per slice start, as written before numbers were shared by every slice: read (the
    /// largest wins), never written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    slices: Vec<(i64, u64)>,
    /// Per `(tag, slice start)`, as written before numbers were shared by tags: read, never
    /// written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    seq: Vec<(String, i64, u64)>,
    /// Written before numbers were shared by every slice: read, never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq_floor: Option<(i64, u64)>,
}

const STATE_VERSION: u32 = 1;

/// Name of the state file in the buffer directory.
pub(crate) const STATE_FILE: &str = "state.json";

pub(crate) fn load_state(path: &Path) -> Result<(Positions, SeqCounters), BufferError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Positions::default(), SeqCounters::default()));
        }
        Err(e) => return Err(BufferError::io("read", path, e)),
    };
    let corrupt = |message: String| BufferError::Corrupt {
        path: path.to_owned(),
        message,
    };
    let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if file.version != STATE_VERSION {
        return Err(corrupt(format!("unknown version {}", file.version)));
    }
    let positions = Positions {
        map: file.positions.into_iter().collect(),
    };
    let mut seqs = SeqCounters {
        next: file.next_seq,
    };
    let legacy = file
        .slices
        .iter()
        .map(|(_, next)| *next)
        .chain(file.seq.iter().map(|(_, _, next)| *next))
        .chain(file.seq_floor.map(|(_, next)| next));
    for next in legacy {
        seqs.next = seqs.next.max(next);
    }
    Ok((positions, seqs))
}

pub(crate) fn save_state(
    path: &Path,
    positions: &Positions,
    seqs: &SeqCounters,
    fsync: FsyncMode,
) -> Result<(), BufferError> {
    let file = StateFile {
        version: STATE_VERSION,
        positions: positions.map.iter().map(|(s, p)| (s.clone(), *p)).collect(),
        next_seq: seqs.next,
        slices: Vec::new(),
        seq: Vec::new(),
        seq_floor: None,
    };
    let mut bytes = serde_json::to_vec(&file).unwrap_or_default();
    bytes.push(b'\n');
    write_atomic(path, &bytes, fsync)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_never_repeats() {
        let mut s = SeqCounters::default();
        assert_eq!(s.allocate(), 0);
        assert_eq!(s.allocate(), 1);
        assert_eq!(s.allocate(), 2);
        s.observe(5);
        assert_eq!(s.allocate(), 6);
        s.observe(2);
        assert_eq!(s.allocate(), 7);
    }

    #[test]
    fn state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let mut positions = Positions::default();
        positions.merge(
            "/var/log/a.log",
            Position {
                offset: 10,
                updated: 5,
            },
        );
        positions.merge(
            "/var/log/a.log",
            Position {
                offset: 7,
                updated: 9,
            },
        );
        let mut seqs = SeqCounters::default();
        seqs.allocate();
        seqs.allocate();
        save_state(&path, &positions, &seqs, FsyncMode::Batch).unwrap();
        let (p, mut s) = load_state(&path).unwrap();
        assert_eq!(p.offsets()["/var/log/a.log"], 10);
        assert_eq!(p.map["/var/log/a.log"].updated, 9);
        assert_eq!(s.allocate(), 2);
        std::fs::write(&path, b"{").unwrap();
        assert!(matches!(
            load_state(&path),
            Err(BufferError::Corrupt { .. })
        ));
    }

    #[test]
    fn reads_counters_written_per_slice_and_per_tag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        std::fs::write(
            &path,
            br#"{"version":1,"positions":{},"seq":[["a",0,3],["b",0,5],["a",60,1]],"seq_floor":[-60,9]}"#,
        )
        .unwrap();
        let (_, mut s) = load_state(&path).unwrap();
        assert_eq!(s.allocate(), 9);
        std::fs::write(
            &path,
            br#"{"version":1,"positions":{},"slices":[[0,4],[60,12]]}"#,
        )
        .unwrap();
        let (_, mut s) = load_state(&path).unwrap();
        assert_eq!(s.allocate(), 12);
    }

    #[test]
    fn torn_position_lines_are_skipped() {
        let (a, b) = ([1u8; 16], [2u8; 16]);
        // Written before commits existed.
        let mut bytes = br#"{"stream":"s","offset":4,"time":1}"#.to_vec();
        bytes.push(b'\n');
        bytes.extend(encode_commit_line(None, &[(b, 0)], 2));
        bytes.extend(encode_commit_line(
            Some((
                "s",
                Position {
                    offset: 9,
                    updated: 2,
                },
            )),
            &[(a, 30), (b, 12)],
            2,
        ));
        bytes.extend(encode_commit_line(None, &[(a, 20)], 3));
        bytes.extend_from_slice(b"{\"stream\":\"s\",\"off");
        let mut sidecar = Sidecar::default();
        decode_position_lines(&bytes, &|_| None, &mut sidecar);
        assert_eq!(sidecar.positions.offsets()["s"], 9);
        assert_eq!(sidecar.positions.map["s"].updated, 2);
        assert_eq!(sidecar.committed, HashMap::from([(a, 30), (b, 12)]));
        assert_eq!(sidecar.skipped, 1);

        // After power loss chunk `a` holds only 25 bytes: the line committing 30 bytes of it,
        // and the position 9 it carries, never happened.
        let lengths = |id: &[u8; 16]| (*id == a).then_some(25);
        let mut sidecar = Sidecar::default();
        decode_position_lines(&bytes, &lengths, &mut sidecar);
        assert_eq!(sidecar.positions.offsets()["s"], 4);
        assert_eq!(sidecar.committed, HashMap::from([(a, 20), (b, 0)]));
        assert_eq!(sidecar.beyond_data, 1);
    }
}
