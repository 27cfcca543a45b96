//! Behaviour of the buffer: sealing, limits, recovery, backpressure, retries, memory acks.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use logferry_buffer::{
    Buffer, BufferConfig, BufferError, BufferRecord, BufferType, Chunk, Clock, ManualClock,
    SourcePosition,
};
use logferry_core::{AckStatus, ByteSize, ConfigDuration, Timestamp};

/// 2023-11-14T22:13:00Z, the start of a 60s slice.
const T0: i64 = 1_699_999_980;
const DEADLINE: Duration = Duration::from_secs(10);

fn at(secs: i64) -> Timestamp {
    Timestamp::from_unix(T0 + secs, 0).unwrap()
}

fn config() -> BufferConfig {
    BufferConfig {
        timekey: ConfigDuration::from_secs(60),
        timekey_wait: ConfigDuration::from_secs(10),
        timekey_use_utc: true,
        retry_randomize: false,
        ..BufferConfig::default()
    }
}

fn open(config: &BufferConfig, dir: &Path, clock: &Arc<ManualClock>) -> Buffer {
    Buffer::open_with_clock(config, dir, clock.clone()).unwrap()
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(at(0)))
}

async fn append(buffer: &Buffer, tag: &str, secs: i64, lines: &[&str]) {
    let records: Vec<_> = lines
        .iter()
        .map(|l| BufferRecord {
            time: at(secs),
            line: l.as_bytes(),
        })
        .collect();
    let ack = buffer.append(tag, &records, None).await.unwrap();
    assert_eq!(ack.await, AckStatus::Delivered);
}

fn read(chunk: &Chunk) -> String {
    let mut text = String::new();
    chunk
        .open_reader()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn seals_after_timekey_wait_and_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = BufferConfig {
        flush_interval: Some(ConfigDuration::from_secs(30)),
        ..config()
    };
    let buffer = open(&config, dir.path(), &clock);
    append(&buffer, "a", 5, &["one"]).await;
    assert_eq!(buffer.stats().open_chunks, 1);
    clock.advance(Duration::from_secs(29));
    assert!(buffer.try_next_ready().is_none());
    clock.advance(Duration::from_secs(1));
    let chunk = buffer.try_next_ready().expect("sealed by flush_interval");
    assert_eq!(chunk.meta().sealed_at, Some(at(30)));
    buffer.complete(chunk).unwrap();

    // Without flush_interval: slice end (60) + timekey_wait (10).
    let buffer2_dir = tempfile::tempdir().unwrap();
    let clock = self::clock();
    let buffer = open(&self::config(), buffer2_dir.path(), &clock);
    append(&buffer, "a", 59, &["late in the slice"]).await;
    clock.set(at(69));
    assert!(buffer.try_next_ready().is_none());
    clock.set(at(70));
    let chunk = buffer
        .try_next_ready()
        .expect("sealed at slice end + timekey_wait");
    assert_eq!(chunk.meta().timekey, at(0));
    assert_eq!(read(&chunk), "late in the slice\n");
}

#[tokio::test]
async fn next_ready_wakes_on_seal_all() {
    let dir = tempfile::tempdir().unwrap();
    let buffer = Buffer::open(&BufferConfig::default(), dir.path()).unwrap();
    let waiter = tokio::spawn({
        let buffer = buffer.clone();
        async move { buffer.next_ready().await.meta().records }
    });
    let records = [BufferRecord {
        time: Timestamp::now(),
        line: b"x",
    }];
    buffer.append("t", &records, None).await.unwrap();
    buffer.seal_all().unwrap();
    let records = tokio::time::timeout(DEADLINE, waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(records, 1);
}

#[tokio::test]
async fn limits_start_new_chunks_with_next_seq() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = BufferConfig {
        chunk_limit_records: Some(2),
        chunk_limit_size: Some(ByteSize::new(10)),
        ..config()
    };
    let buffer = open(&config, dir.path(), &clock);
    append(&buffer, "a", 1, &["1", "2", "3", "4567890", "5"]).await;
    buffer.seal_all().unwrap();
    let mut chunks = Vec::new();
    while let Some(chunk) = buffer.try_next_ready() {
        chunks.push((chunk.meta().seq, read(&chunk)));
        buffer.complete(chunk).unwrap();
    }
    // "1\n2\n" (2 records), "3\n" + "4567890\n" would be 10 bytes: fits exactly, then full.
    assert_eq!(
        chunks,
        vec![
            (0, "1\n2\n".into()),
            (1, "3\n4567890\n".into()),
            (2, "5\n".into())
        ]
    );
}

#[tokio::test]
async fn oversized_record_gets_its_own_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = BufferConfig {
        chunk_limit_size: Some(ByteSize::new(4)),
        ..config()
    };
    let buffer = open(&config, dir.path(), &clock);
    append(&buffer, "a", 1, &["a", "much too long", "b"]).await;
    buffer.seal_all().unwrap();
    let mut texts = Vec::new();
    while let Some(chunk) = buffer.try_next_ready() {
        texts.push(read(&chunk));
        buffer.complete(chunk).unwrap();
    }
    assert_eq!(texts, ["a\n", "much too long\n", "b\n"]);
}

#[tokio::test]
async fn crash_recovery_seals_open_chunks_and_keeps_seq() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let buffer = open(&config(), dir.path(), &clock);
    append(&buffer, "a", 1, &["one", "two"]).await;
    drop(buffer); // kill -9: no cleanup

    clock.set(at(5));
    let buffer = open(&config(), dir.path(), &clock);
    assert_eq!(buffer.stats().sealed_chunks, 1);
    let chunk = buffer.try_next_ready().expect("recovered chunk is offered");
    let meta = chunk.meta().clone();
    assert_eq!(
        (meta.seq, meta.records, meta.sealed_at),
        (0, 2, Some(at(5)))
    );
    assert_eq!(read(&chunk), "one\ntwo\n");
    drop(chunk);
    drop(buffer);

    // Reopened again: the same identity, sealed_at included.
    clock.set(at(9));
    let buffer = open(&config(), dir.path(), &clock);
    let chunk = buffer.try_next_ready().unwrap();
    assert_eq!(chunk.meta(), &meta);
    buffer.complete(chunk).unwrap();
    drop(buffer);

    // After the chunk was uploaded and deleted, the same key gets the next seq.
    let buffer = open(&config(), dir.path(), &clock);
    append(&buffer, "a", 2, &["three"]).await;
    buffer.seal_all().unwrap();
    let chunk = buffer.try_next_ready().unwrap();
    assert_eq!((chunk.meta().timekey, chunk.meta().seq), (at(0), 1));
    assert_ne!(chunk.meta().id, meta.id);
}

#[tokio::test]
async fn torn_last_line_is_cut_away() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let buffer = open(&config(), dir.path(), &clock);
    append(&buffer, "a", 1, &["complete"]).await;
    drop(buffer);
    let data = files(dir.path())
        .into_iter()
        .find(|n| n.ends_with(".log"))
        .unwrap();
    assert!(data.starts_with("chunk.b"), "{data}");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join(&data))
        .unwrap();
    f.write_all(b"{\"half\":").unwrap();
    drop(f);

    let buffer = open(&config(), dir.path(), &clock);
    let chunk = buffer.try_next_ready().unwrap();
    assert_eq!(read(&chunk), "complete\n");
    assert_eq!((chunk.meta().records, chunk.byte_len()), (1, 9));
    let names = files(dir.path());
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("chunk.q") && n.ends_with(".log")),
        "{names:?}"
    );
}

#[tokio::test]
async fn chunk_with_only_a_torn_line_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let buffer = open(&config(), dir.path(), &clock);
    append(&buffer, "a", 1, &["x"]).await;
    drop(buffer);
    let data = files(dir.path())
        .into_iter()
        .find(|n| n.ends_with(".log"))
        .unwrap();
    std::fs::write(dir.path().join(&data), b"partial").unwrap();
    let buffer = open(&config(), dir.path(), &clock);
    assert!(buffer.is_empty());
}

#[tokio::test]
async fn positions_survive_complete_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let buffer = open(&config(), dir.path(), &clock);
    let records = [BufferRecord {
        time: at(1),
        line: b"l",
    }];
    let pos = |offset| {
        Some(SourcePosition {
            stream: "/var/log/a.log",
            offset,
        })
    };
    buffer.append("a", &records, pos(10)).await.unwrap();
    buffer.append("a", &records, pos(20)).await.unwrap();
    buffer
        .append(
            "a",
            &[],
            Some(SourcePosition {
                stream: "/var/log/b.log",
                offset: 5,
            }),
        )
        .await
        .unwrap();
    assert_eq!(buffer.positions()["/var/log/a.log"], 20);
    drop(buffer);

    let buffer = open(&config(), dir.path(), &clock);
    assert_eq!(buffer.positions()["/var/log/a.log"], 20);
    assert_eq!(buffer.positions()["/var/log/b.log"], 5);
    let chunk = buffer.try_next_ready().unwrap();
    buffer.complete(chunk).unwrap();
    assert!(buffer.is_empty());
    drop(buffer);

    let buffer = open(&config(), dir.path(), &clock);
    assert_eq!(buffer.positions()["/var/log/a.log"], 20);

    // Streams not updated for 30 days are forgotten.
    clock.advance(Duration::from_secs(31 * 86_400));
    buffer
        .append(
            "a",
            &records,
            Some(SourcePosition {
                stream: "/new",
                offset: 1,
            }),
        )
        .await
        .unwrap();
    buffer.seal_all().unwrap();
    let chunk = buffer.try_next_ready().unwrap();
    buffer.complete(chunk).unwrap();
    let positions = buffer.positions();
    assert_eq!(positions.get("/var/log/a.log"), None);
    assert_eq!(positions["/new"], 1);
}

/// The sidecars (`chunk.<id>.pos`) of a buffer directory and their lengths.
fn sidecars(dir: &Path) -> Vec<(String, u64)> {
    files(dir)
        .into_iter()
        .filter(|n| n.ends_with(".pos"))
        .map(|n| {
            let len = std::fs::metadata(dir.join(&n)).unwrap().len();
            (n, len)
        })
        .collect()
}

/// Puts a sidecar back to its first `len` bytes: the lines written after were never written.
fn cut_sidecar(dir: &Path, name: &str, len: u64) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(name))
        .unwrap();
    file.set_len(len).unwrap();
}

/// The length of the first line of a file, newline included.
fn first_line_len(dir: &Path, name: &str) -> u64 {
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    text.find('\n').unwrap() as u64 + 1
}

/// Appends one record in slice 0 and one in the next slice (two chunks) at position 30, after
/// a first append ("one", position 10). Returns the sidecars before the second append.
async fn append_across_two_chunks(buffer: &Buffer, dir: &Path) -> Vec<(String, u64)> {
    let pos = |offset| {
        Some(SourcePosition {
            stream: "s",
            offset,
        })
    };
    let one = [BufferRecord {
        time: at(1),
        line: b"one",
    }];
    buffer.append("a", &one, pos(10)).await.unwrap();
    let before = sidecars(dir);
    let two = [
        BufferRecord {
            time: at(2),
            line: b"two",
        },
        BufferRecord {
            time: at(61),
            line: b"three",
        },
    ];
    buffer.append("a", &two, pos(30)).await.unwrap();
    assert_eq!(buffer.positions()["s"], 30);
    before
}

/// Every chunk a buffer offers, sealed and read, in order of their records' first lines.
fn drain(buffer: &Buffer, clock: &ManualClock) -> Vec<String> {
    buffer.seal_all().unwrap();
    clock.advance(Duration::from_secs(600));
    let mut texts = Vec::new();
    while let Some(chunk) = buffer.try_next_ready() {
        texts.push(read(&chunk));
        buffer.complete(chunk).unwrap();
    }
    texts.sort();
    texts
}

/// Regression: `kill -9` after an append wrote its records but before it recorded its source
/// position left the records in the buffer while the source, resuming from the older position,
/// sent them again: duplicates. (The window was widest when the append filled a chunk, which
/// was sealed, with fsyncs, before the position was written.) Records now count only once the
/// append's commit line is written; the next open cuts the rest away.
#[tokio::test]
async fn records_of_an_unfinished_append_are_cut_away_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let buffer = open(&config(), dir.path(), &clock);
    let before = append_across_two_chunks(&buffer, dir.path()).await;
    drop(buffer);
    // The process died after the records were written, before any commit line.
    for (name, _) in sidecars(dir.path()) {
        match before.iter().find(|(n, _)| *n == name) {
            Some((_, len)) => cut_sidecar(dir.path(), &name, *len),
            None => {
                let len = first_line_len(dir.path(), &name);
                cut_sidecar(dir.path(), &name, len);
            }
        }
    }

    let buffer = open(&config(), dir.path(), &clock);
    assert_eq!(
        buffer.positions()["s"],
        10,
        "the source sends two and three again"
    );
    assert_eq!(drain(&buffer, &clock), ["one\n"]);
}

/// An append's commit line, in any one of the sidecars of the chunks it wrote to, commits
/// its records in all of them (the process may die between two sidecar writes).
#[tokio::test]
async fn one_commit_line_commits_every_chunk_of_its_append() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let buffer = open(&config(), dir.path(), &clock);
    let before = append_across_two_chunks(&buffer, dir.path()).await;
    drop(buffer);
    // The new chunk's sidecar lost its commit line; the first chunk's has it.
    let (name, _) = sidecars(dir.path())
        .into_iter()
        .find(|(n, _)| !before.iter().any(|(b, _)| b == n))
        .unwrap();
    let len = first_line_len(dir.path(), &name);
    cut_sidecar(dir.path(), &name, len);

    let buffer = open(&config(), dir.path(), &clock);
    assert_eq!(buffer.positions()["s"], 30);
    assert_eq!(drain(&buffer, &clock), ["one\ntwo\n", "three\n"]);
}

/// After power loss a commit line (and the position it carries) can be on disk while the
/// records it commits are not: the line is ignored, so the source sends them again.
#[tokio::test]
async fn a_commit_line_beyond_the_data_on_disk_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let buffer = open(&config(), dir.path(), &clock);
    append_across_two_chunks(&buffer, dir.path()).await;
    drop(buffer);
    // The data of the second append did not reach the disk; its commit line did.
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).unwrap();
            let keep = if text.starts_with("one\n") { 4 } else { 0 };
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(keep)
                .unwrap();
        }
    }

    let buffer = open(&config(), dir.path(), &clock);
    assert_eq!(
        buffer.positions()["s"],
        10,
        "the source sends two and three again"
    );
    assert_eq!(drain(&buffer, &clock), ["one\n"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_waits_while_full_and_resumes_after_complete() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = BufferConfig {
        chunk_limit_size: Some(ByteSize::new(100)),
        total_limit_size: Some(ByteSize::new(100)),
        ..config()
    };
    let buffer = open(&config, dir.path(), &clock);
    let line = [b'x'; 99];
    let records = [BufferRecord {
        time: at(1),
        line: &line,
    }];
    buffer.append("a", &records, None).await.unwrap();
    assert_eq!(buffer.stats().bytes, 100);

    let blocked = tokio::spawn({
        let buffer = buffer.clone();
        async move {
            let records = [BufferRecord {
                time: at(2),
                line: b"next",
            }];
            buffer.append("a", &records, None).await.unwrap().await
        }
    });
    // The full chunk was sealed so it can be uploaded; the append waits meanwhile.
    let chunk = tokio::time::timeout(DEADLINE, buffer.next_ready())
        .await
        .unwrap();
    assert!(!blocked.is_finished());
    assert_eq!(buffer.stats().records, 1);

    // A cancelled waiting append writes nothing.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(50),
        buffer.append("a", &records, None),
    )
    .await;
    assert!(cancelled.is_err());
    assert_eq!(buffer.stats().records, 1);

    buffer.complete(chunk).unwrap();
    let status = tokio::time::timeout(DEADLINE, blocked)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, AckStatus::Delivered);
    assert_eq!(buffer.stats().records, 1);
}

#[tokio::test]
async fn retries_back_off_then_move_to_failed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = BufferConfig {
        retry_forever: false,
        retry_max_times: Some(2),
        retry_wait: ConfigDuration::from_secs(10),
        ..config()
    };
    let buffer = open(&config, dir.path(), &clock);
    let records = [BufferRecord {
        time: at(1),
        line: b"doomed",
    }];
    let pos = SourcePosition {
        stream: "s",
        offset: 7,
    };
    buffer.append("a", &records, Some(pos)).await.unwrap();
    buffer.seal_all().unwrap();
    let err = std::io::Error::other("access denied");

    let chunk = buffer.try_next_ready().unwrap();
    let meta = chunk.meta().clone();
    assert_eq!(chunk.attempt(), 0);
    buffer.retry_later(chunk, &err);
    assert_eq!(buffer.stats().retrying_chunks, 1);
    clock.advance(Duration::from_secs(9));
    assert!(buffer.try_next_ready().is_none());
    clock.advance(Duration::from_secs(1));
    let chunk = buffer.try_next_ready().unwrap();
    assert_eq!((chunk.attempt(), chunk.meta()), (1, &meta));
    buffer.retry_later(chunk, &err);
    clock.advance(Duration::from_secs(19));
    assert!(buffer.try_next_ready().is_none());
    clock.advance(Duration::from_secs(1));
    let chunk = buffer.try_next_ready().unwrap();
    assert_eq!(chunk.attempt(), 2);
    buffer.retry_later(chunk, &err);

    assert!(buffer.is_empty());
    assert_eq!(buffer.stats().failed_chunks, 1);
    let failed = files(&dir.path().join("failed"));
    let id = meta.id_hex();
    assert_eq!(
        failed,
        [
            format!("chunk.{id}.meta"),
            format!("chunk.{id}.pos"),
            format!("chunk.q{id}.log")
        ]
    );
    assert_eq!(buffer.positions()["s"], 7);
    drop(buffer);
    let buffer = open(&config, dir.path(), &clock);
    assert!(buffer.is_empty(), "failed chunks are not offered again");
    assert_eq!(buffer.positions()["s"], 7);
}

#[tokio::test]
async fn dropped_chunk_is_offered_again() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let buffer = open(&config(), dir.path(), &clock);
    append(&buffer, "a", 1, &["x"]).await;
    buffer.seal_all().unwrap();
    let chunk = buffer.try_next_ready().unwrap();
    let id = chunk.meta().id;
    assert!(
        buffer.try_next_ready().is_none(),
        "in flight: not handed out twice"
    );
    assert_eq!(buffer.stats().in_flight_chunks, 1);
    drop(chunk);
    let again = buffer.try_next_ready().unwrap();
    assert_eq!(again.meta().id, id);
    buffer.complete(again).unwrap();
}

#[tokio::test]
async fn complete_rejects_foreign_chunks() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let clock = clock();
    let one = open(&config(), d1.path(), &clock);
    let two = open(&config(), d2.path(), &clock);
    append(&one, "a", 1, &["x"]).await;
    one.seal_all().unwrap();
    let chunk = one.try_next_ready().unwrap();
    assert!(matches!(
        two.complete(chunk),
        Err(BufferError::UnknownChunk { .. })
    ));
    // The rejected chunk went back to its own buffer.
    assert!(one.try_next_ready().is_some());
}

#[tokio::test]
async fn directory_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _buffer = Buffer::open(&BufferConfig::default(), dir.path()).unwrap();
    let second = Buffer::open(&BufferConfig::default(), dir.path());
    assert!(
        matches!(second, Err(BufferError::Locked { .. })),
        "{second:?}"
    );
}

#[tokio::test]
async fn damaged_metadata_moves_the_chunk_to_failed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let buffer = open(&config(), dir.path(), &clock);
    append(&buffer, "a", 1, &["x"]).await;
    drop(buffer);
    let meta = files(dir.path())
        .into_iter()
        .find(|n| n.ends_with(".meta"))
        .unwrap();
    std::fs::write(dir.path().join(&meta), b"{not json").unwrap();
    let buffer = open(&config(), dir.path(), &clock);
    assert!(buffer.is_empty());
    let failed = files(&dir.path().join("failed"));
    assert_eq!(failed.len(), 3, "metadata, data and sidecar: {failed:?}");
}

#[tokio::test]
async fn memory_buffer_acks_only_after_complete() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = BufferConfig {
        buffer_type: BufferType::Memory,
        ..config()
    };
    let buffer = open(&config, dir.path(), &clock);
    let records = [
        BufferRecord {
            time: at(1),
            line: b"first slice",
        },
        BufferRecord {
            time: at(61),
            line: b"second slice",
        },
    ];
    let mut ack = buffer.append("m", &records, None).await.unwrap();
    assert_eq!(ack.try_status(), None);
    buffer.seal_all().unwrap();
    let first = buffer.try_next_ready().unwrap();
    let second = buffer.try_next_ready().unwrap();
    assert_eq!(read(&first), "first slice\n");
    buffer.complete(first).unwrap();
    assert_eq!(
        ack.try_status(),
        None,
        "one chunk still holds records of the append"
    );
    buffer.retry_later(second, &std::io::Error::other("503"));
    assert_eq!(ack.try_status(), None);
    clock.advance(Duration::from_secs(60));
    let second = buffer.try_next_ready().unwrap();
    buffer.complete(second).unwrap();
    assert_eq!(
        tokio::time::timeout(DEADLINE, ack).await.unwrap(),
        AckStatus::Delivered
    );
    assert!(buffer.positions().is_empty());

    // Records lost with the buffer are reported, never as delivered.
    let lost = buffer.append("m", &records[..1], None).await.unwrap();
    drop(buffer);
    assert_eq!(
        tokio::time::timeout(DEADLINE, lost).await.unwrap(),
        AckStatus::Errored
    );

    // The sequence numbers used (0 and 1 uploaded, 2 lost) are remembered by the next run.
    let buffer = open(&config, dir.path(), &clock);
    assert!(buffer.is_empty());
    buffer.append("m", &records[..1], None).await.unwrap();
    buffer.seal_all().unwrap();
    assert_eq!(buffer.try_next_ready().unwrap().meta().seq, 3);
}

#[tokio::test]
async fn memory_chunk_given_up_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = BufferConfig {
        buffer_type: BufferType::Memory,
        retry_forever: false,
        retry_max_times: Some(0),
        ..config()
    };
    let buffer = open(&config, dir.path(), &clock);
    let ack = buffer
        .append(
            "m",
            &[BufferRecord {
                time: at(1),
                line: b"x",
            }],
            None,
        )
        .await
        .unwrap();
    buffer.seal_all().unwrap();
    let chunk = buffer.try_next_ready().unwrap();
    buffer.retry_later(chunk, &std::io::Error::other("403"));
    assert_eq!(
        tokio::time::timeout(DEADLINE, ack).await.unwrap(),
        AckStatus::Rejected
    );
    assert!(buffer.is_empty());
}

#[tokio::test]
async fn newlines_inside_records_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let buffer = open(&config(), dir.path(), &clock);
    append(&buffer, "a", 1, &["two\nlines"]).await;
    buffer.seal_all().unwrap();
    let chunk = buffer.try_next_ready().unwrap();
    assert_eq!(read(&chunk), "two lines\n");
    assert_eq!(chunk.meta().records, 1);
}

#[tokio::test]
async fn system_clock_buffer_reports_stats() {
    let dir = tempfile::tempdir().unwrap();
    let buffer = Buffer::open(&config(), dir.path()).unwrap();
    assert!(buffer.is_empty());
    let now = logferry_buffer::SystemClock.now();
    buffer
        .append(
            "a",
            &[BufferRecord {
                time: now,
                line: b"abc",
            }],
            None,
        )
        .await
        .unwrap();
    let stats = buffer.stats();
    assert_eq!((stats.open_chunks, stats.records, stats.bytes), (1, 1, 4));
    assert_eq!(buffer.path(), dir.path());
}

#[tokio::test]
async fn interrupted_operations_are_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let buffer = open(&config(), dir.path(), &clock);
    append(&buffer, "a", 1, &["sealed"]).await;
    buffer.seal_all().unwrap();
    let meta = buffer.try_next_ready().unwrap().meta().clone();
    append(&buffer, "b", 1, &["orphan"]).await;
    drop(buffer);
    let id = meta.id_hex();
    let path = |name: String| dir.path().join(name);
    // Crash between writing the sealed metadata and renaming the data file.
    std::fs::rename(
        path(format!("chunk.q{id}.log")),
        path(format!("chunk.b{id}.log")),
    )
    .unwrap();
    // Data whose metadata was lost (power loss without a directory fsync).
    let orphan = files(dir.path())
        .into_iter()
        .find(|n| n.ends_with(".meta") && !n.contains(&id))
        .unwrap();
    std::fs::remove_file(path(orphan)).unwrap();
    // Metadata whose data was already deleted (crash while completing).
    let gone = [7u8; 16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let text = std::fs::read_to_string(path(format!("chunk.{id}.meta"))).unwrap();
    std::fs::write(path(format!("chunk.{gone}.meta")), text.replace(&id, &gone)).unwrap();
    // A temporary file of an interrupted atomic rewrite.
    std::fs::write(path("state.json.tmp".into()), b"{").unwrap();

    let buffer = open(&config(), dir.path(), &clock);
    let chunk = buffer.try_next_ready().unwrap();
    assert_eq!(chunk.meta(), &meta, "the sealed chunk kept its identity");
    assert_eq!(read(&chunk), "sealed\n");
    assert!(buffer.try_next_ready().is_none());
    let names = files(dir.path());
    assert!(names.contains(&format!("chunk.q{id}.log")), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.contains(&gone) || n.ends_with(".tmp")),
        "{names:?}"
    );
    let failed = files(&dir.path().join("failed"));
    assert_eq!(
        (
            failed.len(),
            failed.iter().filter(|n| n.ends_with(".log")).count()
        ),
        (2, 1),
        "the orphan data is kept, with its sidecar: {failed:?}"
    );
    assert_eq!(buffer.stats().failed_chunks, 1);
}
