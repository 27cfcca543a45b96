//! The shipper's hot path: compressing chunks, and whole `--once` runs from an ALB log file to
//! gzip objects.
//!
//! - `ship/encode`: one 32 MiB chunk of JSON lines (ALB lines as `{"message":"..."}`) encoded
//!   into an object. The peer is `flate2 GzEncoder (serial)`: one zlib stream on one core, what
//!   fluent-plugin-s3 and fluent-bit's `out_s3` do. `logferry gzip xN` is the S3 output's
//!   block-parallel gzip on N threads (one ordinary gzip member, same bytes for any N).
//! - `ship/alb-file`: `logferry_shipper::run` in `--once` mode from a generated ALB file
//!   (`parse = "none"`, `format = "json"`, gzip) to a `file://` bucket, and, when `S3S_FS` names
//!   an `s3s-fs` binary (`cargo install s3s-fs@0.14.1 --features binary`), to that local S3
//!   server. Each iteration starts from an empty buffer, checkpoint and bucket.
//!
//! Compressed sizes are printed before the groups. Throughput is in bytes of input.

use std::hint::black_box;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use logferry_shipper::{Mode, ResolvedConfig, run};
use logferry_sink_s3::{Encoding, StoreAs};

/// ALB lines in the whole-run input (about 60 MB).
const FILE_LINES: usize = 100_000;

fn json_chunk(bytes: usize) -> Vec<u8> {
    let lines = logferry_benches::alb_lines(bytes / 560 + 1);
    let mut out = Vec::with_capacity(bytes + 4096);
    for line in lines.lines() {
        out.extend_from_slice(b"{\"message\":");
        out.extend_from_slice(serde_json::to_string(line).unwrap().as_bytes());
        out.extend_from_slice(b"}\n");
        if out.len() >= bytes {
            break;
        }
    }
    out
}

fn bench_encode(c: &mut Criterion) {
    let chunk = json_chunk(32 << 20);
    let serial = |input: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        encoder.write_all(input).unwrap();
        encoder.finish().unwrap()
    };
    let ours = |store_as: StoreAs, threads: usize, input: &[u8]| {
        let mut out = Vec::new();
        Encoding::new(store_as, None)
            .unwrap()
            .with_threads(threads)
            .encode(input, &mut out)
            .unwrap();
        out
    };
    println!(
        "ship/encode: {} bytes in; gzip-6 serial {} bytes; logferry gzip {} bytes; zstd-3 {} bytes",
        chunk.len(),
        serial(&chunk).len(),
        ours(StoreAs::Gzip, 2, &chunk).len(),
        ours(StoreAs::Zstd, 2, &chunk).len(),
    );
    let mut group = c.benchmark_group("ship/encode");
    group.throughput(Throughput::Bytes(chunk.len() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("flate2 GzEncoder (serial)", |b| {
        b.iter(|| black_box(serial(&chunk)))
    });
    for threads in [1, 2] {
        group.bench_function(format!("logferry gzip x{threads}"), |b| {
            b.iter(|| black_box(ours(StoreAs::Gzip, threads, &chunk)))
        });
    }
    group.bench_function("logferry zstd x2", |b| {
        b.iter(|| black_box(ours(StoreAs::Zstd, 2, &chunk)))
    });
    group.finish();
}

/// A running `s3s-fs` serving `root` on a free port; killed on drop.
struct S3sFs {
    child: Child,
    endpoint: String,
}

impl S3sFs {
    fn start(program: &Path, root: &Path) -> S3sFs {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new(program)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", "bench", "--secret-key", "bench-secret"])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        S3sFs {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(log: &Path, work: &Path, bucket: &str, s3: &str) -> ResolvedConfig {
    let text = format!(
        r#"
data_dir = "{work}/data"
[sources.alb]
type = "tail"
paths = ["{log}"]
read_from_head = true
parse = "none"
tag = "alb"
[outputs.out]
type = "s3"
match = "alb"
bucket = "{bucket}"
path = "alb/"
utc = true
{s3}
"#,
        work = work.display(),
        log = log.display(),
    );
    ResolvedConfig::from_text(Path::new("bench.toml"), &text, &|_| None).unwrap()
}

fn stored_bytes(root: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.to_string_lossy().contains(".s3s") {
                total += entry.metadata().map_or(0, |m| m.len());
            }
        }
    }
    total
}

fn bench_whole_run(c: &mut Criterion) {
    let root = tempfile::tempdir().unwrap();
    let log = root.path().join("alb.log");
    std::fs::write(&log, logferry_benches::alb_lines(FILE_LINES)).unwrap();
    let size = std::fs::metadata(&log).unwrap().len();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ship = |config: ResolvedConfig| {
        let summary = runtime
            .block_on(run(
                config,
                Mode::Once,
                logferry_core::ShutdownSignal::never(),
            ))
            .unwrap();
        assert_eq!(summary.lines, FILE_LINES as u64);
        summary
    };
    let fresh = |name: &str| -> PathBuf {
        let work = root.path().join(name);
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        work
    };

    let s3s = std::env::var_os("S3S_FS").map(|program| {
        let s3_root = root.path().join("s3s");
        std::fs::create_dir_all(s3_root.join("bench")).unwrap();
        (S3sFs::start(Path::new(&program), &s3_root), s3_root)
    });
    let s3s_settings = s3s.as_ref().map(|(server, _)| {
        format!(
            "endpoint = \"{}\"\nforce_path_style = true\nregion = \"us-east-1\"\n\
             [outputs.out.credentials]\naws_key_id = \"bench\"\naws_sec_key = \"bench-secret\"",
            server.endpoint
        )
    });

    // One run of each first, for the sizes.
    let work = fresh("local");
    let bucket = format!("file://{}/bucket", work.display());
    let summary = ship(config(&log, &work, &bucket, ""));
    println!(
        "ship/alb-file: {size} bytes, {FILE_LINES} lines in; {} object(s), {} bytes stored (gzip)",
        summary.uploads.len(),
        stored_bytes(&work.join("bucket"))
    );
    if s3s.is_none() {
        println!("ship/alb-file: S3S_FS is not set; the s3s-fs case is not measured.");
    }

    let mut group = c.benchmark_group("ship/alb-file");
    group.throughput(Throughput::Bytes(size));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.bench_function("logferry --once to file://", |b| {
        b.iter_batched(
            || {
                let work = fresh("local");
                let bucket = format!("file://{}/bucket", work.display());
                config(&log, &work, &bucket, "")
            },
            |config| black_box(ship(config)),
            BatchSize::PerIteration,
        )
    });
    if let Some(settings) = &s3s_settings {
        group.bench_function("logferry --once to s3s-fs", |b| {
            b.iter_batched(
                || config(&log, &fresh("s3"), "bench", settings),
                |config| black_box(ship(config)),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_encode, bench_whole_run);
criterion_main!(benches);
