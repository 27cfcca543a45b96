//! Crash safety of the real `logferry-shipper` binary: `kill -9` at random moments loses no line
//! and duplicates none.
//!
//! A writer thread appends JSON lines with unique sequence numbers to two log files and rotates
//! them now and then, by rename-and-create (deleting old rotated files once they are stored, so
//! inodes get reused) and by copytruncate. Meanwhile the shipper is started in follow mode,
//! killed with SIGKILL after a random short time (so kills land during reads, buffer appends,
//! seals, checkpoint writes and uploads), and started again, many times. After the writer
//! stops, a last run ships everything and is stopped with SIGTERM (exit 0). Then every object
//! is read back: each sequence number must appear exactly once, byte for byte.
//!
//! The random choices come from a seed printed at the start; `LOGFERRY_CRASH_SEED=N` replays
//! them (the timing of the kills relative to the shipper's work differs from run to run).
//! `LOGFERRY_CRASH_KILLS=N` sets the number of kills of each variant (for longer soak runs).
//!
//! Two variants: against `moto_server` (S3 over HTTP, the real SDK path), and against two
//! `file://` outputs that both take every line (fluentd's `copy`; faster, so more kills). They
//! run one after the other. Two deterministic tests set up on disk what a crash between the
//! appends of one batch to two outputs leaves, and check that a `--once` run repairs it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use logferry_testkit::{
    MotoServer, TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY, wait_until,
};

/// The two variants share the machine's cores: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const BUCKET: &str = "crash";
const SOURCE_ID: &str = "app";
/// The log files the writer appends to (under `logs/`).
const LOG_FILES: [&str; 2] = ["a", "b"];

#[test]
fn kill_9_loses_and_duplicates_nothing_moto() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let moto = MotoServer::start().expect(
        "moto_server is needed for this test (run scripts/install-test-deps to install it)",
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(moto.create_bucket(BUCKET)).unwrap();
    let store = Store::Moto(Box::new(MotoStore {
        moto,
        runtime,
        fetched: Mutex::default(),
    }));
    run_scenario("crash_moto", &store, 12);
}

#[test]
fn kill_9_loses_and_duplicates_nothing_local() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    run_scenario("crash_local", &Store::Local, 25);
}

// ---------------------------------------------------------------------------------------------
// Where the objects go.

enum Store {
    /// One output, `s3`, to a bucket of moto.
    Moto(Box<MotoStore>),
    /// Two outputs matching every tag (fluentd's `copy`), `s3` and `copy`, to `file://` buckets
    /// (`bucket-<output>` in the test directory): each must get every line exactly once.
    Local,
}

struct MotoStore {
    moto: MotoServer,
    runtime: tokio::runtime::Runtime,
    /// Objects already read while waiting for the last run (the final check reads all of
    /// them again).
    fetched: Mutex<HashMap<String, Vec<u8>>>,
}

impl Store {
    fn outputs(&self) -> &'static [&'static str] {
        match self {
            Store::Moto(_) => &["s3"],
            Store::Local => &["s3", "copy"],
        }
    }

    fn output_toml(&self, output: &str) -> String {
        let common = format!(
            r#"type = "s3"
match = "s3.**"
path = "crash/"
s3_object_key_format = "%{{path}}${{tag}}/%{{time_slice}}_%{{index}}.%{{file_extension}}"
time_slice_format = "%Y%m%d-%H%M%S"
utc = true
region = "{TEST_REGION}"
"#
        );
        match self {
            Store::Moto(m) => format!(
                r#"{common}bucket = "{BUCKET}"
endpoint = "{}"
force_path_style = true

[outputs.{output}.credentials]
aws_key_id = "{TEST_ACCESS_KEY_ID}"
aws_sec_key = "{TEST_SECRET_ACCESS_KEY}"
"#,
                m.moto.endpoint()
            ),
            Store::Local => format!("{common}bucket = \"file://bucket-{output}\"\n"),
        }
    }

    fn list(&self, dir: &Path, output: &str) -> Vec<String> {
        match self {
            Store::Moto(m) => m.runtime.block_on(m.moto.list_keys(BUCKET, "")).unwrap(),
            Store::Local => {
                let root = dir.join(format!("bucket-{output}"));
                let mut keys = Vec::new();
                let mut stack = vec![root.clone()];
                while let Some(d) = stack.pop() {
                    for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
                        let path = entry.path();
                        if path.is_dir() {
                            stack.push(path);
                        } else if !entry
                            .file_name()
                            .to_string_lossy()
                            .starts_with(".logferry-tmp-")
                        {
                            let key = path.strip_prefix(&root).unwrap();
                            keys.push(key.to_string_lossy().into_owned());
                        }
                    }
                }
                keys.sort();
                keys
            }
        }
    }

    fn get(&self, dir: &Path, output: &str, key: &str) -> Vec<u8> {
        match self {
            Store::Moto(m) => m
                .runtime
                .block_on(m.moto.get_object_bytes(BUCKET, key))
                .unwrap(),
            Store::Local => fs::read(dir.join(format!("bucket-{output}")).join(key)).unwrap(),
        }
    }

    /// The sequence numbers in the store now (reading only objects not read before while
    /// waiting; objects are immutable unless a chunk is uploaded again, with the same bytes).
    fn seqs_so_far(&self, dir: &Path, output: &str) -> BTreeSet<u64> {
        let keys = self.list(dir, output);
        let mut seqs = BTreeSet::new();
        match self {
            Store::Moto(m) => {
                let mut fetched = m.fetched.lock().unwrap();
                for key in keys {
                    let bytes = match fetched.get(&key) {
                        Some(bytes) => bytes.clone(),
                        None => {
                            let bytes = self.get(dir, output, &key);
                            fetched.insert(key.clone(), bytes.clone());
                            bytes
                        }
                    };
                    seqs.extend(decode(&bytes).0.into_iter().filter_map(|(s, _)| s));
                }
            }
            Store::Local => {
                for key in keys {
                    seqs.extend(
                        decode(&self.get(dir, output, &key))
                            .0
                            .into_iter()
                            .filter_map(|(s, _)| s),
                    );
                }
            }
        }
        seqs
    }
}

/// The lines of a gzip object, each with its `seq` (None when the line is not one of ours),
/// and an error if the object is not valid gzip.
fn decode(bytes: &[u8]) -> (Vec<(Option<u64>, String)>, Option<String>) {
    let mut text = String::new();
    let error = flate2::read::MultiGzDecoder::new(bytes)
        .read_to_string(&mut text)
        .err()
        .map(|e| e.to_string());
    let lines = text
        .lines()
        .map(|line| {
            let seq = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("seq").and_then(serde_json::Value::as_u64));
            (seq, line.to_owned())
        })
        .collect();
    (lines, error)
}

// ---------------------------------------------------------------------------------------------
// The scenario.

fn seed() -> u64 {
    match std::env::var("LOGFERRY_CRASH_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .expect("LOGFERRY_CRASH_SEED must be an integer"),
        Err(_) => fastrand::u64(..),
    }
}

fn config_toml(store: &Store) -> String {
    let mut config = format!(
        r#"data_dir = "data"
shutdown_timeout = "10s"

[sources.{SOURCE_ID}]
type = "tail"
# Rotated files (a.log.1, ...) stay in the glob, so that a file renamed while the shipper is
# down is still found (by identity) and read to its end after the restart.
paths = ["logs/*.log*"]
read_from_head = true
parse = "json"
tag = "s3.*"
refresh_interval = "200ms"
poll_interval = "50ms"
rotate_wait = "1s"
batch_size = 200
"#
    );
    for output in store.outputs() {
        config.push_str(&format!(
            r#"
[outputs.{output}]
{}
[outputs.{output}.buffer]
type = "file"
timekey = "1s"
timekey_wait = "0s"
timekey_use_utc = true
flush_interval = "300ms"
chunk_limit_size = "32KiB"
retry_wait = "100ms"
retry_max_interval = "1s"
flush_thread_count = 2
"#,
            store.output_toml(output)
        ));
    }
    config
}

fn run_scenario(name: &str, store: &Store, kills: usize) {
    let started = Instant::now();
    let seed = seed();
    let kills = match std::env::var("LOGFERRY_CRASH_KILLS") {
        Ok(s) => s
            .trim()
            .parse()
            .expect("LOGFERRY_CRASH_KILLS must be an integer"),
        Err(_) => kills,
    };
    println!("{name}: seed {seed} (set LOGFERRY_CRASH_SEED={seed} to replay it)");
    let dir = test_dir(name);
    fs::create_dir_all(dir.join("logs")).unwrap();
    fs::create_dir_all(dir.join("copies")).unwrap();
    fs::create_dir_all(dir.join("runs")).unwrap();
    fs::write(dir.join("shipper.toml"), config_toml(store)).unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);

    let shared = Arc::new(WriterShared::default());
    let writer = Writer::new(&dir, rng.u64(..), Arc::clone(&shared));
    let writer_thread = std::thread::spawn(move || writer.run());
    let _stop_writer = StopOnDrop(Arc::clone(&shared));

    let mut runs = Runs::new(&dir);
    for i in 0..kills {
        let mut shipper = runs.start();
        // Mostly short runs (kills during startup, recovery, the first reads and appends),
        // some long enough for seals, uploads and checkpoint writes.
        let run_for = if rng.u8(0..10) < 7 {
            Duration::from_millis(rng.u64(20..400))
        } else {
            Duration::from_millis(rng.u64(400..2000))
        };
        std::thread::sleep(run_for);
        // While the writer copytruncates a file it waits for the shipper's checkpoint (see
        // `Writer::copytruncate`); the shipper must run for that.
        assert!(
            wait_until(Instant::now() + Duration::from_secs(30), || !shared
                .hold_kills
                .load(Ordering::SeqCst)),
            "{name}: the writer waited 30 s for the shipper's checkpoint during a copytruncate\n{}",
            runs.diagnostics()
        );
        shipper.assert_running(&runs);
        shipper.kill9();
        println!("{name}: kill {} after {run_for:?}", i + 1);
        std::thread::sleep(Duration::from_millis(rng.u64(0..60)));
    }
    shared.stop.store(true, Ordering::SeqCst);
    let written = writer_thread.join().expect("writer thread panicked");
    println!(
        "{name}: {} lines written, {} rotations and deletions, {kills} kills, {:?} so far",
        written.lines.len(),
        written.events.len(),
        started.elapsed()
    );

    // The last run: until every line is in the store and the buffer is empty, then SIGTERM.
    let mut shipper = runs.start();
    let total = written.lines.len() as u64;
    let mut counts = Vec::new();
    let drained = wait_until(Instant::now() + Duration::from_secs(45), || {
        if shipper.exited() {
            return true; // reported below
        }
        counts = store
            .outputs()
            .iter()
            .map(|output| store.seqs_so_far(&dir, output).len() as u64)
            .collect();
        counts.iter().all(|&n| n >= total) && chunk_files(store, &dir).is_empty()
    });
    shipper.assert_running(&runs);
    let status = shipper.terminate();
    let report: String = store
        .outputs()
        .iter()
        .map(|output| verify(store, &dir, output, &written))
        .collect();
    assert!(
        drained,
        "{name}: after 45 s the outputs hold {counts:?} of {total} lines, buffer files: {:?}\n{report}\n{}",
        chunk_files(store, &dir),
        runs.diagnostics()
    );
    assert_eq!(
        status.code(),
        Some(0),
        "{name}: SIGTERM should stop the shipper with exit code 0 ({status})\n{}",
        runs.diagnostics()
    );
    assert!(
        report.is_empty(),
        "{name} (seed {seed}): {report}\nwriter events:\n{}\n{}",
        written.events.join("\n"),
        runs.diagnostics()
    );
    assert!(
        chunk_files(store, &dir).is_empty(),
        "{name}: the buffer still holds {:?}",
        chunk_files(store, &dir)
    );
    let objects: Vec<usize> = store
        .outputs()
        .iter()
        .map(|output| store.list(&dir, output).len())
        .collect();
    println!(
        "{name}: {total} lines, each exactly once in every output ({objects:?} objects), {} runs, {:?}",
        runs.count,
        started.elapsed()
    );
    let _ = fs::remove_dir_all(&dir);
}

/// A fresh directory of this test process (two test runs in one checkout must not share one);
/// removed when the test passes, kept for a look when it fails.
fn test_dir(name: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    println!("{name}: in {}", dir.display());
    dir
}

/// Files of the outputs' buffers that hold chunks (including `failed/`).
fn chunk_files(store: &Store, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for output in store.outputs() {
        let buffer = dir.join(format!("data/buffer/{output}"));
        for d in [buffer.clone(), buffer.join("failed")] {
            for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("chunk.") {
                    out.push(format!("{output}/{name}"));
                }
            }
        }
    }
    out.sort();
    out
}

/// Reads every object again; an empty string when each written line is there exactly once and
/// nothing else is, else a description of what is wrong.
fn verify(store: &Store, dir: &Path, output: &str, written: &Written) -> String {
    let mut found: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    let keys = store.list(dir, output);
    for key in &keys {
        let (lines, error) = decode(&store.get(dir, output, key));
        if let Some(error) = error {
            problems.push(format!("object {key} is not valid gzip: {error}"));
        }
        for (seq, line) in lines {
            match seq {
                Some(seq) if written.lines.get(seq as usize) == Some(&line) => {
                    found.entry(seq).or_default().push(key.clone());
                }
                Some(seq) => problems.push(format!(
                    "object {key}: line of seq {seq} differs from what was written:\n  got  {line}\n  want {}",
                    written.lines.get(seq as usize).map_or("(never written)", String::as_str)
                )),
                None => problems.push(format!("object {key}: a line that was never written: {line}")),
            }
        }
    }
    let missing: Vec<u64> = (0..written.lines.len() as u64)
        .filter(|s| !found.contains_key(s))
        .collect();
    let duplicated: Vec<(&u64, &Vec<String>)> = found.iter().filter(|(_, k)| k.len() > 1).collect();
    if problems.is_empty() && missing.is_empty() && duplicated.is_empty() {
        return String::new();
    }
    let mut report = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        report,
        "output {output}: {} lines written; {} missing, {} duplicated, {} other problems; {} objects",
        written.lines.len(),
        missing.len(),
        duplicated.len(),
        problems.len(),
        keys.len()
    );
    if !missing.is_empty() {
        let _ = writeln!(report, "missing seqs: {}", ranges(&missing));
        for &seq in missing.iter().take(10) {
            let (file, inode, offset) = &written.places[seq as usize];
            let _ = writeln!(
                report,
                "  seq {seq} was written to {file} (inode {inode}) at offset {offset}"
            );
        }
    }
    if !duplicated.is_empty() {
        let seqs: Vec<u64> = duplicated.iter().map(|(s, _)| **s).collect();
        let _ = writeln!(report, "duplicated seqs: {}", ranges(&seqs));
        for (seq, keys) in duplicated.iter().take(10) {
            let (file, inode, offset) = &written.places[**seq as usize];
            let _ = writeln!(
                report,
                "  seq {seq} (written to {file}, inode {inode}, offset {offset}) is in {keys:?}"
            );
        }
    }
    for p in problems.iter().take(10) {
        let _ = writeln!(report, "{p}");
    }
    let _ = writeln!(report, "objects ({}):", keys.len());
    for key in keys.iter().take(200) {
        let _ = writeln!(report, "  {key}");
    }
    report
}

/// `1-5, 9, 12-13`.
fn ranges(seqs: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < seqs.len() {
        let mut j = i;
        while j + 1 < seqs.len() && seqs[j + 1] == seqs[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            seqs[i].to_string()
        } else {
            format!("{}-{}", seqs[i], seqs[j])
        });
        i = j + 1;
    }
    out.join(", ")
}

// ---------------------------------------------------------------------------------------------
// Shipper processes.

struct Runs {
    dir: PathBuf,
    count: usize,
}

impl Runs {
    fn new(dir: &Path) -> Runs {
        Runs {
            dir: dir.to_owned(),
            count: 0,
        }
    }

    fn log_path(&self, n: usize) -> PathBuf {
        self.dir.join(format!("runs/run-{n:02}.log"))
    }

    fn start(&mut self) -> Shipper {
        self.count += 1;
        let log = File::create(self.log_path(self.count)).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_logferry-shipper"))
            .args(["--config", "shipper.toml"])
            .current_dir(&self.dir)
            .env(
                "LOGFERRY_LOG",
                "info,logferry_buffer=debug,aws_config=warn,aws_smithy_runtime=warn",
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start logferry-shipper");
        Shipper {
            child: Some(child),
            run: self.count,
        }
    }

    /// The last lines of the last runs' logs (and the warnings and errors of all runs).
    fn diagnostics(&self) -> String {
        let mut out = String::new();
        use std::fmt::Write as _;
        for n in 1..=self.count {
            let text = fs::read_to_string(self.log_path(n)).unwrap_or_default();
            let notable: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("panicked"))
                .collect();
            if !notable.is_empty() {
                let _ = writeln!(out, "--- run {n}: warnings and errors");
                for line in notable.iter().rev().take(15).rev() {
                    let _ = writeln!(out, "{line}");
                }
            }
        }
        for n in self.count.saturating_sub(2).max(1)..=self.count {
            let text = fs::read_to_string(self.log_path(n)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let _ = writeln!(
                out,
                "--- run {n}: last lines of {}",
                self.log_path(n).display()
            );
            for line in &lines[lines.len().saturating_sub(30)..] {
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }
}

/// A running shipper, killed if still running when dropped (a failing test leaves none).
struct Shipper {
    child: Option<Child>,
    run: usize,
}

impl Shipper {
    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_some())
    }

    fn assert_running(&mut self, runs: &Runs) {
        let status = self.child.as_mut().and_then(|c| c.try_wait().unwrap());
        assert!(
            status.is_none(),
            "run {} of the shipper exited on its own ({})\n{}",
            self.run,
            status.unwrap(),
            runs.diagnostics()
        );
    }

    /// SIGKILL (`Child::kill`), and reap it.
    fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, and wait (at most 20 s) for the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM failed");
        let mut status = None;
        let exited = wait_until(Instant::now() + Duration::from_secs(20), || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the shipper did not exit within 20 s of SIGTERM");
        }
        status.unwrap()
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The writer.

#[derive(Default)]
struct WriterShared {
    stop: AtomicBool,
    /// Set while a copytruncate waits for the shipper's checkpoint: do not kill it now.
    hold_kills: AtomicBool,
}

struct StopOnDrop(Arc<WriterShared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
    }
}

/// What the writer wrote.
struct Written {
    /// The line of each sequence number (index), without its newline.
    lines: Vec<String>,
    /// Where each line was written: path at the time, inode, offset.
    places: Vec<(String, u64, u64)>,
    /// Rotations, for people reading a failure.
    events: Vec<String>,
}

struct LogFile {
    label: &'static str,
    path: PathBuf,
    file: File,
    /// Its size (the writer is its only writer).
    len: u64,
    inode: u64,
}

impl LogFile {
    fn create(path: PathBuf, label: &'static str) -> LogFile {
        let file = File::options()
            .create_new(true)
            .append(true)
            .open(&path)
            .unwrap();
        let inode = file.metadata().unwrap().ino();
        LogFile {
            label,
            path,
            file,
            len: 0,
            inode,
        }
    }
}

struct Writer {
    dir: PathBuf,
    rng: fastrand::Rng,
    shared: Arc<WriterShared>,
    files: Vec<LogFile>,
    rotations: u32,
    /// Files renamed away by rotations and not deleted yet, oldest first.
    rotated: Vec<PathBuf>,
    written: Written,
    started: Instant,
}

impl Writer {
    fn new(dir: &Path, seed: u64, shared: Arc<WriterShared>) -> Writer {
        let files = LOG_FILES
            .iter()
            .map(|label| LogFile::create(dir.join(format!("logs/{label}.log")), label))
            .collect();
        Writer {
            dir: dir.to_owned(),
            rng: fastrand::Rng::with_seed(seed),
            shared,
            files,
            rotations: 0,
            rotated: Vec::new(),
            written: Written {
                lines: Vec::new(),
                places: Vec::new(),
                events: Vec::new(),
            },
            started: Instant::now(),
        }
    }

    fn run(mut self) -> Written {
        let mut next_rotation = Instant::now() + self.rotation_gap();
        while !self.shared.stop.load(Ordering::SeqCst) {
            // A burst of lines to one file; sometimes a line goes out in two writes (the
            // shipper must hold the unfinished line, and never commit half of it).
            let f = self.rng.usize(..self.files.len());
            for _ in 0..self.rng.usize(1..=20) {
                self.write_line(f);
            }
            std::thread::sleep(Duration::from_millis(self.rng.u64(2..8)));
            if Instant::now() >= next_rotation {
                let f = self.rng.usize(..self.files.len());
                if self.rng.u8(0..10) < 7 {
                    self.rename_and_create(f);
                } else {
                    self.copytruncate(f);
                }
                next_rotation = Instant::now() + self.rotation_gap();
            }
        }
        self.written
    }

    fn rotation_gap(&mut self) -> Duration {
        Duration::from_millis(self.rng.u64(600..1600))
    }

    fn write_line(&mut self, f: usize) {
        let seq = self.written.lines.len() as u64;
        let file = &mut self.files[f];
        let pad = "x".repeat(self.rng.usize(0..120));
        let line = format!(r#"{{"seq":{seq},"file":"{}","pad":"{pad}"}}"#, file.label);
        let mut bytes = line.clone().into_bytes();
        bytes.push(b'\n');
        self.written
            .places
            .push((file.path.display().to_string(), file.inode, file.len));
        if self.rng.u8(0..10) == 0 {
            let cut = self.rng.usize(1..bytes.len());
            file.file.write_all(&bytes[..cut]).unwrap();
            std::thread::sleep(Duration::from_millis(self.rng.u64(0..3)));
            file.file.write_all(&bytes[cut..]).unwrap();
        } else {
            file.file.write_all(&bytes).unwrap();
        }
        file.len += bytes.len() as u64;
        self.written.lines.push(line);
    }

    fn event(&mut self, what: String) {
        let line = format!(
            "{:>8.3}s seq {:>6}: {what}",
            self.started.elapsed().as_secs_f64(),
            self.written.lines.len()
        );
        self.written.events.push(line);
    }

    /// logrotate's default: rename the file (to a name the glob still matches) and create a
    /// new one at its path.
    fn rename_and_create(&mut self, f: usize) {
        self.rotations += 1;
        let file = &self.files[f];
        let rotated = self
            .dir
            .join(format!("logs/{}.log.{}", file.label, self.rotations));
        fs::rename(&file.path, &rotated).unwrap();
        let what = format!(
            "rename {} (inode {}, {} bytes) -> {}",
            file.path.display(),
            file.inode,
            file.len,
            rotated.display()
        );
        let fresh = LogFile::create(file.path.clone(), file.label);
        self.files[f] = fresh;
        self.event(what);
        self.rotated.push(rotated);
        self.delete_stored_rotated();
    }

    /// logrotate's `rotate N`: deletes old rotated files, but only those the shipper's
    /// checkpoint says are stored to their end (deleting one before would lose its unread
    /// lines, with any tailer, if the shipper is down). Freed inodes are then reused by new
    /// files, which must not be taken for the old ones.
    fn delete_stored_rotated(&mut self) {
        let pos_file = self.dir.join(format!("data/{SOURCE_ID}.pos"));
        let keep_newest = self.rotated.len().saturating_sub(1);
        let mut deleted = Vec::new();
        self.rotated.retain(|path| {
            let done = deleted.len() < keep_newest
                && fs::metadata(path)
                    .is_ok_and(|m| checkpoint_of(&pos_file, path) == Some(m.len()));
            if done {
                fs::remove_file(path).unwrap();
                deleted.push(path.clone());
            }
            !done
        });
        for path in deleted {
            self.event(format!("delete {} (stored)", path.display()));
        }
    }

    /// logrotate's `copytruncate`: copy the file away and truncate it in place.
    ///
    /// Any tailer loses the lines it has not read when the truncation happens (the shipper may
    /// be down then), and would read the copy again if the glob matched it. So that the
    /// expectation stays "every line exactly once", the copy goes outside the glob (`copies/`)
    /// and is not counted, and the writer truncates only once the shipper's checkpoint file
    /// says the whole file is stored, and writes to it again only once the checkpoint shows the
    /// shipper noticed the truncation (otherwise new content could grow past the old offset
    /// unnoticed, the documented limit of truncation detection). Meanwhile the main thread
    /// does not kill the shipper, which has to run for the checkpoint to move.
    fn copytruncate(&mut self, f: usize) {
        self.rotations += 1;
        self.shared.hold_kills.store(true, Ordering::SeqCst);
        let pos_file = self.dir.join(format!("data/{SOURCE_ID}.pos"));
        let (path, inode, len) = {
            let file = &self.files[f];
            (file.path.clone(), file.inode, file.len)
        };
        // Once the writer is told to stop, the shipper is not started again until it has.
        let shared = Arc::clone(&self.shared);
        let stopping = || shared.stop.load(Ordering::SeqCst);
        let committed = wait_until(Instant::now() + Duration::from_secs(25), || {
            stopping() || checkpoint_of(&pos_file, &path) == Some(len)
        });
        if stopping() {
            self.shared.hold_kills.store(false, Ordering::SeqCst);
            return;
        }
        if !committed {
            self.shared.hold_kills.store(false, Ordering::SeqCst);
            panic!(
                "copytruncate: the checkpoint of {} never reached {len} (it says {:?})",
                path.display(),
                checkpoint_of(&pos_file, &path)
            );
        }
        let file = &mut self.files[f];
        let copy = self
            .dir
            .join(format!("copies/{}.log.{}", file.label, self.rotations));
        fs::copy(&file.path, &copy).unwrap();
        file.file.set_len(0).unwrap();
        file.len = 0;
        let noticed = wait_until(Instant::now() + Duration::from_secs(25), || {
            stopping() || checkpoint_of(&pos_file, &path) == Some(0)
        });
        self.shared.hold_kills.store(false, Ordering::SeqCst);
        assert!(
            noticed || stopping(),
            "copytruncate: the checkpoint of {} never showed the truncation",
            path.display()
        );
        self.event(format!(
            "copytruncate {} (inode {inode}, {len} bytes) -> {}",
            path.display(),
            copy.display()
        ));
    }
}

/// The offset the checkpoint file gives the file now at `path`, when its entry matches the
/// file's identity and first bytes (docs/tail.md, "The checkpoint file").
fn checkpoint_of(pos_file: &Path, path: &Path) -> Option<u64> {
    let text = fs::read_to_string(pos_file).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let mut file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    let mut content = Vec::new();
    file.read_to_end(&mut content).ok()?;
    json["files"].as_array()?.iter().find_map(|entry| {
        let len = usize::try_from(entry["fingerprint_len"].as_u64()?).ok()?;
        let same = entry["dev"].as_u64()? == meta.dev()
            && entry["inode"].as_u64()? == meta.ino()
            && content.len() >= len
            && entry["fingerprint"].as_str()? == format!("{:016x}", fnv1a(&content[..len]));
        same.then(|| entry["offset"].as_u64())?
    })
}

/// 64-bit FNV-1a, the hash of the checkpoint's fingerprints.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

// ---------------------------------------------------------------------------------------------
// A crash between the appends of one batch to two outputs, set up on disk.

/// Regression: the router appends a batch to each matching output's buffer in turn. `kill -9`
/// between two of those appends left the first output holding records (and their source
/// position) that the second lacked; the source resumes from the least position, so the first
/// output stored those records again. Each output now skips the records it already holds.
/// Here output `a` holds lines 0-1 and `b` line 0 (the state such a crash leaves, or an output
/// added later); a `--once` run must complete both, without a duplicate.
#[test]
fn an_output_ahead_of_another_skips_what_it_holds() {
    fanout_case("crash_fanout", 2, 1, 4);
}

/// The same when the crash hit the file's first batch: `b` holds nothing of the file, and `a`
/// holds it under the id the source gave it then, whose fingerprint covers only what the file
/// had (the checkpoint file did not name it yet). The source must take that id again (and not
/// make a new one of the longer file, which `a` would not recognize).
#[test]
fn an_output_ahead_of_another_skips_what_it_holds_on_a_first_batch() {
    fanout_case("crash_fanout_first", 2, 0, 2);
}

/// Output `a` holds the first `a_holds` lines of a 4-line file and `b` the first `b_holds`,
/// under a stream id whose fingerprint covers the first `id_lines` lines; a `--once` run must
/// leave every line exactly once in each output.
fn fanout_case(name: &str, a_holds: usize, b_holds: usize, id_lines: usize) {
    use logferry_buffer::{Buffer, BufferConfig, BufferRecord, SourcePosition};

    let dir = test_dir(name);
    fs::create_dir_all(dir.join("logs")).unwrap();
    let lines: Vec<String> = (0..4).map(|i| format!(r#"{{"seq":{i}}}"#)).collect();
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let log = dir.join("logs/app.log");
    fs::write(&log, &text).unwrap();
    let ends: Vec<u64> = lines
        .iter()
        .scan(0, |end, l| {
            *end += l.len() as u64 + 1;
            Some(*end)
        })
        .collect();
    // The tail source's stream id of the file when it had `id_lines` lines (docs/tail.md,
    // "The checkpoint file").
    let meta = fs::metadata(&log).unwrap();
    let id_len = ends[id_lines - 1] as usize;
    let fingerprint = fnv1a(&text.as_bytes()[..id_len]);
    let stream = format!(
        "{SOURCE_ID}:{}:{}:{id_len}:{fingerprint:016x}",
        meta.dev(),
        meta.ino(),
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config: BufferConfig = toml::from_str("timekey = \"1h\"").unwrap();
    let hold = |output: &str, n: usize| {
        let buffer = Buffer::open(&config, &dir.join(format!("data/buffer/{output}"))).unwrap();
        if n == 0 {
            return;
        }
        let records: Vec<BufferRecord<'_>> = lines[..n]
            .iter()
            .map(|l| BufferRecord {
                time: logferry_core::Timestamp::now(),
                line: l.as_bytes(),
            })
            .collect();
        let position = SourcePosition {
            stream: &stream,
            offset: ends[n - 1],
        };
        runtime
            .block_on(buffer.append("s3.logs.app.log", &records, Some(position)))
            .unwrap();
    };
    hold("a", a_holds);
    hold("b", b_holds);

    let mut config = format!(
        r#"data_dir = "data"
[sources.{SOURCE_ID}]
type = "tail"
paths = ["logs/*.log"]
read_from_head = true
parse = "json"
tag = "s3.*"
"#
    );
    for output in ["a", "b"] {
        config.push_str(&format!(
            r#"[outputs.{output}]
type = "s3"
match = "s3.**"
bucket = "file://bucket-{output}"
s3_object_key_format = "%{{time_slice}}_%{{index}}.%{{file_extension}}"
"#
        ));
    }
    fs::write(dir.join("shipper.toml"), config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_logferry-shipper"))
        .args(["--once", "--config", "shipper.toml"])
        .current_dir(&dir)
        .env("LOGFERRY_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for output in ["a", "b"] {
        let root = dir.join(format!("bucket-{output}"));
        let mut got: Vec<String> = Vec::new();
        for entry in fs::read_dir(&root).unwrap() {
            let (lines, error) = decode(&fs::read(entry.unwrap().path()).unwrap());
            assert_eq!(error, None);
            got.extend(lines.into_iter().map(|(_, line)| line));
        }
        got.sort();
        assert_eq!(got, lines, "output {output}: every line exactly once");
    }
    let _ = fs::remove_dir_all(&dir);
}
