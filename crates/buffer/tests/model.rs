//! Model-based test of the file buffer: random sequences of appends, clock moves, seals,
//! uploads (completed, failed, held) and crashes (the buffer dropped without cleanup, torn
//! writes added, the directory reopened), checked against a simple in-memory model.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use logferry_buffer::{
    Buffer, BufferConfig, BufferRecord, Chunk, ChunkMeta, Clock, FsyncMode, ManualClock,
    SourcePosition,
};
use logferry_core::{ByteSize, ConfigDuration, Timestamp};
use proptest::prelude::*;

const TAGS: [&str; 2] = ["app", "sys"];
const TIMEKEY: i64 = 60;

#[derive(Clone, Debug)]
enum Op {
    /// Appends `n` records of tag `tag` with times `base + k * spread` seconds after "now - 90s".
    Append {
        tag: usize,
        base: u64,
        spread: u64,
        n: usize,
        position: bool,
    },
    Advance {
        secs: u64,
    },
    SealAll,
    /// Takes a ready chunk and completes it.
    TakeComplete,
    /// Takes a ready chunk and reports a failed upload.
    TakeRetry,
    /// Takes a ready chunk and keeps it in flight.
    TakeHold,
    /// Completes the oldest held chunk.
    CompleteHeld,
    /// Drops the oldest held chunk without giving it back.
    DropHeld,
    /// Drops the buffer (and held chunks), optionally adds a torn write, reopens.
    Crash {
        torn: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..TAGS.len(), 0u64..150, 0u64..40, 1usize..6, any::<bool>())
            .prop_map(|(tag, base, spread, n, position)| Op::Append { tag, base, spread, n, position }),
        3 => (0u64..90).prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::SealAll),
        3 => Just(Op::TakeComplete),
        1 => Just(Op::TakeRetry),
        1 => Just(Op::TakeHold),
        1 => Just(Op::CompleteHeld),
        1 => Just(Op::DropHeld),
        1 => any::<bool>().prop_map(|torn| Op::Crash { torn }),
    ]
}

fn config(fsync: FsyncMode, records_limit: Option<u64>) -> BufferConfig {
    BufferConfig {
        timekey: ConfigDuration::from_secs(TIMEKEY as u64),
        timekey_wait: ConfigDuration::from_secs(10),
        timekey_use_utc: true,
        chunk_limit_size: Some(ByteSize::new(160)),
        chunk_limit_records: records_limit,
        total_limit_size: Some(ByteSize::new(1 << 30)),
        flush_interval: Some(ConfigDuration::from_secs(100)),
        retry_randomize: false,
        retry_max_interval: Some(ConfigDuration::from_secs(30)),
        fsync,
        ..BufferConfig::default()
    }
}

/// What the test knows: every acknowledged record, what was delivered, what each chunk id
/// looked like when it was handed out.
#[derive(Default)]
struct Model {
    next_record: u64,
    /// Record number -> (tag, time secs).
    appended: BTreeMap<u64, (String, i64)>,
    delivered: HashMap<u64, usize>,
    keys: HashSet<(i64, u64)>,
    ids: HashSet<[u8; 16]>,
    seen: HashMap<[u8; 16], ChunkMeta>,
    acked_positions: HashMap<String, u64>,
    last_positions: HashMap<String, u64>,
    next_offset: HashMap<String, u64>,
}

fn line(n: u64, tag: &str, secs: i64) -> String {
    format!("{{\"n\":{n},\"tag\":\"{tag}\",\"t\":{secs}}}")
}

fn parse_line(text: &str) -> (u64, String, i64) {
    let v: serde_json::Value = serde_json::from_str(text).expect("delivered lines are records");
    (
        v["n"].as_u64().expect("n"),
        v["tag"].as_str().expect("tag").to_owned(),
        v["t"].as_i64().expect("t"),
    )
}

impl Model {
    fn check_meta(&mut self, chunk: &Chunk) {
        let meta = chunk.meta();
        assert!(meta.sealed_at.is_some(), "handed-out chunk is sealed");
        match self.seen.get(&meta.id) {
            Some(old) => assert_eq!(old, meta, "chunk meta is stable across retries/reopens"),
            None => {
                self.seen.insert(meta.id, meta.clone());
            }
        }
    }

    /// Reads and records a chunk that is being completed.
    fn deliver(&mut self, chunk: &Chunk) {
        let meta = chunk.meta();
        let mut text = String::new();
        chunk
            .open_reader()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text.len() as u64, meta.bytes);
        assert!(text.is_empty() || text.ends_with('\n'));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, meta.records);
        assert!(meta.records > 0, "no empty chunk is handed out");
        let mut previous = None;
        for l in lines {
            let (n, tag, secs) = parse_line(l);
            assert_eq!(tag, meta.tag, "record in the chunk of its tag");
            assert_eq!(secs - secs.rem_euclid(TIMEKEY), meta.timekey.unix_seconds());
            assert!(previous < Some(n), "records in append order within a chunk");
            previous = Some(n);
            *self.delivered.entry(n).or_default() += 1;
            assert_eq!(self.delivered[&n], 1, "record {n} delivered twice");
        }
        assert!(
            self.keys.insert((meta.timekey.unix_seconds(), meta.seq)),
            "key (timekey, seq) used twice, whatever the tag: {meta:?}"
        );
        assert!(self.ids.insert(meta.id), "id used twice");
    }

    fn check_positions(&mut self, buffer: &Buffer) {
        let now = buffer.positions();
        for (stream, offset) in &self.acked_positions {
            assert!(
                now.get(stream).copied().unwrap_or(0) >= *offset,
                "position of {stream} lost"
            );
        }
        for (stream, offset) in &self.last_positions {
            assert!(
                now.get(stream).copied().unwrap_or(0) >= *offset,
                "position went back"
            );
        }
        self.last_positions = now;
    }
}

fn reopen(config: &BufferConfig, dir: &Path, clock: &Arc<ManualClock>) -> Buffer {
    Buffer::open_with_clock(config, dir, clock.clone()).expect("reopen")
}

fn add_torn_write(dir: &Path) {
    let open = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("chunk.b") && n.ends_with(".log"))
        });
    if let Some(path) = open {
        let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(b"{\"n\":999999999,\"tag\":\"torn").unwrap();
    }
}

fn run(ops: Vec<Op>, fsync: FsyncMode, records_limit: Option<u64>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(fsync, records_limit);
    let clock = Arc::new(ManualClock::new(
        Timestamp::from_unix(1_700_000_000, 0).unwrap(),
    ));
    let mut buffer = reopen(&config, dir.path(), &clock);
    let mut model = Model::default();
    let mut held: Vec<Chunk> = Vec::new();
    let failure = std::io::Error::other("upload failed");

    for op in ops {
        match op {
            Op::Append {
                tag,
                base,
                spread,
                n,
                position,
            } => {
                let tag = TAGS[tag];
                let now = clock.now().unix_seconds();
                let mut lines = Vec::new();
                for k in 0..n {
                    let secs = now - 90 + (base + k as u64 * spread) as i64;
                    let number = model.next_record;
                    model.next_record += 1;
                    lines.push((number, secs, line(number, tag, secs)));
                }
                let records: Vec<_> = lines
                    .iter()
                    .map(|(_, secs, l)| BufferRecord {
                        time: Timestamp::from_unix(*secs, 0).unwrap(),
                        line: l.as_bytes(),
                    })
                    .collect();
                let stream = format!("/var/log/{tag}.log");
                let offset = model.next_offset.entry(stream.clone()).or_default();
                *offset += 100;
                let offset = *offset;
                let pos = position.then_some(SourcePosition {
                    stream: &stream,
                    offset,
                });
                let ack = rt
                    .block_on(buffer.append(tag, &records, pos))
                    .expect("append");
                assert_eq!(rt.block_on(ack), logferry_core::AckStatus::Delivered);
                for (number, secs, _) in &lines {
                    model.appended.insert(*number, (tag.to_owned(), *secs));
                }
                if position {
                    model.acked_positions.insert(stream, offset);
                }
            }
            Op::Advance { secs } => clock.advance(Duration::from_secs(secs)),
            Op::SealAll => buffer.seal_all().expect("seal_all"),
            Op::TakeComplete => {
                if let Some(chunk) = buffer.try_next_ready() {
                    model.check_meta(&chunk);
                    model.deliver(&chunk);
                    buffer.complete(chunk).expect("complete");
                }
            }
            Op::TakeRetry => {
                if let Some(chunk) = buffer.try_next_ready() {
                    model.check_meta(&chunk);
                    let attempt = chunk.attempt();
                    let id = chunk.meta().id;
                    buffer.retry_later(chunk, &failure);
                    // Not offered again before its delay.
                    let again = buffer.try_next_ready();
                    assert!(again.as_ref().is_none_or(|c| c.meta().id != id));
                    if let Some(c) = again {
                        held.push(c);
                    }
                    let _ = attempt;
                }
            }
            Op::TakeHold => {
                if let Some(chunk) = buffer.try_next_ready() {
                    model.check_meta(&chunk);
                    held.push(chunk);
                }
            }
            Op::CompleteHeld => {
                if !held.is_empty() {
                    let chunk = held.remove(0);
                    model.deliver(&chunk);
                    buffer.complete(chunk).expect("complete held");
                }
            }
            Op::DropHeld => {
                if !held.is_empty() {
                    held.remove(0);
                }
            }
            Op::Crash { torn } => {
                held.clear();
                drop(buffer);
                if torn {
                    add_torn_write(dir.path());
                }
                buffer = reopen(&config, dir.path(), &clock);
            }
        }
        model.check_positions(&buffer);
        for chunk in &held {
            assert!(
                !buffer.is_empty(),
                "held chunk {:?} is still buffered",
                chunk.meta().id
            );
        }
    }

    // Drain: everything appended is eventually delivered, exactly once.
    held.clear();
    buffer.seal_all().unwrap();
    for _ in 0..10_000 {
        match buffer.try_next_ready() {
            Some(chunk) => {
                model.check_meta(&chunk);
                model.deliver(&chunk);
                buffer.complete(chunk).unwrap();
            }
            None if buffer.is_empty() => break,
            None => clock.advance(Duration::from_secs(60)),
        }
    }
    assert!(buffer.is_empty(), "buffer drained: {:?}", buffer.stats());
    let stats = buffer.stats();
    assert_eq!((stats.records, stats.bytes), (0, 0));
    for n in model.appended.keys() {
        assert_eq!(
            model.delivered.get(n),
            Some(&1),
            "record {n} delivered once"
        );
    }
    assert_eq!(
        model.delivered.len(),
        model.appended.len(),
        "nothing delivered that was not appended"
    );
    model.check_positions(&buffer);

    // Positions survive the chunks: reopened empty, the buffer still knows them.
    drop(buffer);
    let buffer = reopen(&config, dir.path(), &clock);
    model.check_positions(&buffer);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn file_buffer_matches_model(
        ops in proptest::collection::vec(op(), 1..80),
        records_limit in proptest::option::of(1u64..4),
    ) {
        run(ops, FsyncMode::Never, records_limit);
    }
}

#[test]
fn model_with_fsync_batch_and_always() {
    let ops = vec![
        Op::Append {
            tag: 0,
            base: 10,
            spread: 30,
            n: 5,
            position: true,
        },
        Op::TakeHold,
        Op::Advance { secs: 80 },
        Op::Append {
            tag: 1,
            base: 100,
            spread: 1,
            n: 3,
            position: true,
        },
        Op::Crash { torn: true },
        Op::TakeRetry,
        Op::Advance { secs: 5 },
        Op::TakeComplete,
        Op::SealAll,
        Op::TakeComplete,
        Op::Crash { torn: false },
    ];
    run(ops.clone(), FsyncMode::Batch, None);
    run(ops, FsyncMode::Always, Some(2));
}
