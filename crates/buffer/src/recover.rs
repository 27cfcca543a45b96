//! Opening a file buffer: loading the chunks a previous run left, repairing what a crash cut
//! short.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use logferry_core::Timestamp;

use crate::buffer::Settings;
use crate::inner::{Entry, FAILED_DIR, Id, Inner, State, Store, move_to_failed};
use crate::meta::{
    FileKind, TMP_SUFFIX, decode_meta, encode_meta, file_name, parse_file_name, remove_if_exists,
    sync_parent, write_atomic,
};
use crate::state::{Positions, Sidecar, decode_position_lines};
use crate::{BufferError, FsyncMode};

/// Loads every chunk in the buffer directory into `inner`. Open chunks are sealed; a partly
/// written last record is cut away; files left by an interrupted operation are cleaned up.
pub(crate) fn recover(s: &Settings, inner: &mut Inner, now: Timestamp) -> Result<(), BufferError> {
    let dir = &s.dir;
    let mut metas = BTreeSet::new();
    let mut data: HashMap<Id, (FileKind, PathBuf)> = HashMap::new();
    let mut pos: HashMap<Id, PathBuf> = HashMap::new();
    let entries = fs::read_dir(dir).map_err(|e| BufferError::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BufferError::io("list", dir, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.ends_with(TMP_SUFFIX) {
            remove_if_exists(&path).map_err(|e| BufferError::io("remove", &path, e))?;
            continue;
        }
        match parse_file_name(&name) {
            Some((FileKind::Meta, id)) => {
                metas.insert(id);
            }
            Some((kind @ (FileKind::OpenData | FileKind::SealedData), id)) => {
                if let Some((_, other)) = data.insert(id, (kind, path.clone())) {
                    // Both names exist only if a rename was interrupted on an odd file
                    // system; the sealed one is complete.
                    let (keep, drop) = if kind == FileKind::SealedData {
                        (path, other)
                    } else {
                        (other, path)
                    };
                    remove_if_exists(&drop).map_err(|e| BufferError::io("remove", &drop, e))?;
                    data.insert(id, (FileKind::SealedData, keep));
                }
            }
            Some((FileKind::Positions, id)) => {
                pos.insert(id, path);
            }
            None => {}
        }
    }

    // Every sidecar first: an append's commit line may be in another chunk's sidecar.
    let mut sidecars: HashMap<Id, Sidecar> = HashMap::new();
    let mut committed: HashMap<Id, u64> = HashMap::new();
    let lengths: HashMap<Id, u64> = data
        .iter()
        .filter_map(|(id, (_, path))| Some((*id, fs::metadata(path).ok()?.len())))
        .collect();
    for (id, path) in &pos {
        let sidecar = read_positions(path, &lengths)?;
        inner.positions.merge_all(&sidecar.positions);
        for (chunk, len) in &sidecar.committed {
            let entry = committed.entry(*chunk).or_default();
            *entry = (*entry).max(*len);
        }
        sidecars.insert(*id, sidecar);
    }

    let mut recovered = Vec::new();
    for id in metas {
        pos.remove(&id);
        let positions = sidecars.remove(&id).unwrap_or_default().positions;
        let commit = committed.get(&id).copied();
        if let Some(entry) = recover_chunk(s, id, data.remove(&id), positions, commit, now)? {
            inner.seqs.observe(entry.meta.seq);
            recovered.push(entry);
        }
    }
    for (id, (_, path)) in data {
        // Data without metadata: its identity (tag, slice) is unknown, so it cannot be
        // uploaded; it is kept for an operator (with its sidecar, already read).
        pos.remove(&id);
        let failed = dir.join(FAILED_DIR);
        let result = move_to_failed(s, &failed, id, &path);
        inner.failed += 1;
        tracing::error!(
            path = %path.display(),
            failed = %failed.display(),
            move_error = result.err().map(tracing::field::display),
            "A chunk file has no metadata file; moved it to the failed directory."
        );
    }
    for (_, path) in pos {
        remove_if_exists(&path).map_err(|e| BufferError::io("remove", &path, e))?;
    }
    recovered.sort_by_key(|e| (e.meta.sealed_at, e.meta.created_at, e.meta.seq));
    if !recovered.is_empty() {
        tracing::info!(
            chunks = recovered.len(),
            path = %dir.display(),
            "Found chunks of a previous run; they will be uploaded."
        );
    }
    for entry in recovered {
        inner.insert_recovered(entry, now);
    }
    Ok(())
}

fn read_positions(path: &Path, lengths: &HashMap<Id, u64>) -> Result<Sidecar, BufferError> {
    let bytes = fs::read(path).map_err(|e| BufferError::io("read", path, e))?;
    let mut sidecar = Sidecar::default();
    decode_position_lines(&bytes, &|id| lengths.get(id).copied(), &mut sidecar);
    if sidecar.beyond_data > 0 {
        tracing::warn!(
            path = %path.display(),
            lines = sidecar.beyond_data,
            "Ignored commit lines whose records did not reach the disk (power loss?); the source sends those records again."
        );
    }
    if sidecar.skipped > 0 {
        tracing::warn!(
            path = %path.display(),
            skipped = sidecar.skipped,
            "Skipped unreadable position lines."
        );
    }
    Ok(sidecar)
}

/// Loads one chunk; `None` when nothing of it is left to upload. `committed` is the longest
/// length commit lines give it (`None` for a chunk written before commit lines existed).
fn recover_chunk(
    s: &Settings,
    id: Id,
    data: Option<(FileKind, PathBuf)>,
    positions: Positions,
    committed: Option<u64>,
    now: Timestamp,
) -> Result<Option<Entry>, BufferError> {
    let meta_path = s.dir.join(file_name(FileKind::Meta, &id));
    let pos_path = s.dir.join(file_name(FileKind::Positions, &id));
    let bytes = fs::read(&meta_path).map_err(|e| BufferError::io("read", &meta_path, e))?;
    let mut meta = match decode_meta(&bytes) {
        Ok(meta) if meta.id == id => meta,
        result => {
            let message = result
                .err()
                .unwrap_or_else(|| "id differs from file name".into());
            let failed = s.dir.join(FAILED_DIR);
            let data_path = data.map_or_else(|| meta_path.clone(), |(_, p)| p);
            let moved = move_to_failed(s, &failed, id, &data_path);
            tracing::error!(
                path = %meta_path.display(),
                message,
                move_error = moved.err().map(tracing::field::display),
                "A chunk metadata file is damaged; moved the chunk to the failed directory."
            );
            return Ok(None);
        }
    };
    let Some((kind, mut data_path)) = data else {
        // Metadata without data: the chunk was being created or deleted when the process
        // stopped (its records, if any, were uploaded).
        for path in [&pos_path, &meta_path] {
            remove_if_exists(path).map_err(|e| BufferError::io("remove", path, e))?;
        }
        if meta.sealed_at.is_some() && s.fsync == FsyncMode::Never {
            tracing::warn!(
                chunk = %meta.id_hex(),
                "A sealed chunk's data file is missing (lost with fsync = \"never\"?)."
            );
        }
        return Ok(None);
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&data_path)
        .map_err(|e| BufferError::io("open", &data_path, e))?;
    let len = file
        .metadata()
        .map_err(|e| BufferError::io("stat", &data_path, e))?
        .len();
    if meta.sealed_at.is_some() {
        if len > meta.bytes {
            file.set_len(meta.bytes)
                .map_err(|e| BufferError::io("truncate", &data_path, e))?;
        } else if len < meta.bytes {
            tracing::error!(
                chunk = %meta.id_hex(),
                path = %data_path.display(),
                expected = meta.bytes,
                found = len,
                "A sealed chunk is shorter than its metadata says; uploading what is left."
            );
        }
    } else {
        if let Some(committed) = committed
            && committed < len
        {
            // Records of an append that died before its commit line: not acknowledged, and
            // its source position was not recorded, so the source sends them again.
            file.set_len(committed)
                .map_err(|e| BufferError::io("truncate", &data_path, e))?;
            tracing::warn!(
                chunk = %meta.id_hex(),
                path = %data_path.display(),
                bytes = len - committed,
                "Cut away records of an unfinished append (they were never acknowledged)."
            );
        }
        let len = committed.map_or(len, |c| c.min(len));
        let (valid, records) = count_records(&file, &data_path)?;
        if valid < len {
            file.set_len(valid)
                .map_err(|e| BufferError::io("truncate", &data_path, e))?;
            tracing::warn!(
                chunk = %meta.id_hex(),
                path = %data_path.display(),
                bytes = len - valid,
                "Cut away a partly written last record (it was never acknowledged)."
            );
        }
        if records == 0 {
            for path in [&data_path, &pos_path, &meta_path] {
                remove_if_exists(path).map_err(|e| BufferError::io("remove", path, e))?;
            }
            return Ok(None);
        }
        if s.fsync != FsyncMode::Never {
            file.sync_data()
                .map_err(|e| BufferError::io("fsync", &data_path, e))?;
        }
        meta.records = records;
        meta.bytes = valid;
        meta.sealed_at = Some(now);
        write_atomic(&meta_path, &encode_meta(&meta), s.fsync)?;
    }
    drop(file);
    if kind == FileKind::OpenData {
        let sealed = s.dir.join(file_name(FileKind::SealedData, &id));
        fs::rename(&data_path, &sealed).map_err(|e| BufferError::io("rename", &data_path, e))?;
        sync_parent(&sealed, s.fsync)?;
        data_path = sealed;
    }
    Ok(Some(Entry {
        meta,
        state: State::InFlight,
        attempt: 0,
        positions,
        store: Store::Disk {
            data_path,
            data: None,
            pos: None,
        },
    }))
}

/// Length of the complete lines of a chunk file, and their number.
fn count_records(mut file: &File, path: &Path) -> Result<(u64, u64), BufferError> {
    let mut buf = vec![0u8; 1 << 16];
    let (mut offset, mut valid, mut records) = (0u64, 0u64, 0u64);
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| BufferError::io("read", path, e))?;
        if n == 0 {
            return Ok((valid, records));
        }
        let block = &buf[..n];
        records += memchr::memchr_iter(b'\n', block).count() as u64;
        if let Some(last) = memchr::memrchr(b'\n', block) {
            valid = offset + last as u64 + 1;
        }
        offset += n as u64;
    }
}
