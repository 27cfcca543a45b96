//! What the ingester's end-to-end tests share: moto_server (S3 + SQS with real bucket
//! notifications), the testkit bulk server, configuration files in a fresh directory, and the
//! real `logferry-ingester` binary as a child process.
#![allow(dead_code)] // each test binary uses a part

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use logferry_testkit::{
    BulkServer, MotoServer, TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY, wait_until,
};
use serde_json::Value;

/// The ALB line of AWS's documentation; `alb_line(n)` varies its request URL.
pub(crate) const ALB: &str = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90"#;

/// An ALB line (2018-07-02) whose request URL is `http://www.example.com:80/<tag>/<n>`.
pub(crate) fn alb_line(tag: &str, n: u64) -> String {
    ALB.replace(
        "http://www.example.com:80/ ",
        &format!("http://www.example.com:80/{tag}/{n} "),
    )
}

/// `lines` ALB lines `alb_line(tag, first..first+lines)`, newline-terminated.
pub(crate) fn alb_object(tag: &str, first: u64, lines: u64) -> String {
    let mut text = String::with_capacity(lines as usize * (ALB.len() + 16));
    for n in first..first + lines {
        text.push_str(&alb_line(tag, n));
        text.push('\n');
    }
    text
}

/// gzip of `data`.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A file of the workspace (fixtures, samples).
pub(crate) fn workspace_file(path: &str) -> Vec<u8> {
    let root = logferry_testkit::workspace_root().unwrap();
    std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Calls `cond` until it holds or `secs` pass; on timeout panics with `what` and `diag()`.
pub(crate) fn wait_for(
    what: &str,
    secs: u64,
    cond: impl FnMut() -> bool,
    diag: impl FnOnce() -> String,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    if !wait_until(deadline, cond) {
        panic!("timed out after {secs}s waiting for {what}\n{}", diag());
    }
}

/// moto_server, a bulk server, a runtime for the AWS calls of the test, and a fresh directory.
pub(crate) struct Harness {
    pub(crate) moto: MotoServer,
    pub(crate) bulk: BulkServer,
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) dir: PathBuf,
}

impl Harness {
    /// Starts moto and a bulk server; `dir` is `CARGO_TARGET_TMPDIR/ingester-<name>`, emptied.
    pub(crate) fn new(name: &str) -> Harness {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ingester-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let moto = MotoServer::start().expect(
            "moto_server is needed for this test (run scripts/install-test-deps to install it)",
        );
        let bulk = BulkServer::start().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Harness {
            moto,
            bulk,
            runtime,
            dir,
        }
    }

    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Creates `bucket` and `queue`, and has the bucket notify the queue of every created
    /// object (moto then sends an `s3:TestEvent`). Returns the queue URL.
    pub(crate) fn notifying_bucket(&self, bucket: &str, queue: &str) -> String {
        self.block_on(async {
            self.moto.create_bucket(bucket).await.unwrap();
            let url = self.moto.create_queue(queue).await.unwrap();
            self.moto
                .notify_queue_on_create(bucket, &url)
                .await
                .unwrap();
            url
        })
    }

    /// Creates a bucket (no notifications).
    pub(crate) fn bucket(&self, bucket: &str) {
        self.block_on(self.moto.create_bucket(bucket)).unwrap();
    }

    /// Creates a queue; returns its URL.
    pub(crate) fn queue(&self, queue: &str) -> String {
        self.block_on(self.moto.create_queue(queue)).unwrap()
    }

    /// PutObject.
    pub(crate) fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        let body: Vec<u8> = body.into();
        self.block_on(
            self.moto
                .s3_client()
                .put_object()
                .bucket(bucket)
                .key(key)
                .body(body.into())
                .send(),
        )
        .unwrap_or_else(|e| panic!("PutObject {key}: {e:?}"));
    }

    /// SendMessage.
    pub(crate) fn send(&self, queue_url: &str, body: &str) {
        self.block_on(self.moto.send_message(queue_url, body))
            .unwrap();
    }

    /// Messages in the queue, visible or in flight.
    pub(crate) fn queue_total(&self, queue_url: &str) -> u64 {
        self.block_on(self.moto.queue_counts(queue_url))
            .unwrap()
            .total()
    }

    /// The `[aws]` table for moto.
    pub(crate) fn aws_toml(&self) -> String {
        format!(
            "[aws]\nregion = \"{TEST_REGION}\"\nendpoint = \"{}\"\nforce_path_style = true\n\
             aws_key_id = \"{TEST_ACCESS_KEY_ID}\"\naws_sec_key = \"{TEST_SECRET_ACCESS_KEY}\"\n",
            self.moto.endpoint()
        )
    }

    /// An `[outputs.<id>]` elasticsearch table for the bulk server, quick to flush and
    /// retry, with `extra` lines appended.
    pub(crate) fn es_toml(&self, id: &str, index: &str, extra: &str) -> String {
        format!(
            "[outputs.{id}]\ntype = \"elasticsearch\"\nhosts = [\"{}\"]\nindex = \"{index}\"\n\
             batch_timeout = \"100ms\"\nretry_initial_backoff = \"50ms\"\n\
             retry_max_backoff = \"500ms\"\n{extra}\n",
            self.bulk.url()
        )
    }

    /// An `[inputs.<id>]` sqs table polling quickly, with `extra` lines appended.
    pub(crate) fn sqs_toml(&self, id: &str, queue_url: &str, extra: &str) -> String {
        format!(
            "[inputs.{id}]\ntype = \"sqs\"\nqueue_url = \"{queue_url}\"\nwait_time = \"1s\"\n{extra}\n"
        )
    }

    /// Writes `dir/<name>` with `data_dir`, `shutdown_timeout`, the `[aws]` table and `body`;
    /// returns its path.
    pub(crate) fn config(&self, name: &str, body: &str) -> PathBuf {
        self.config_with_timeout(name, "20s", body)
    }

    /// As [`Harness::config`] with another `shutdown_timeout`.
    pub(crate) fn config_with_timeout(
        &self,
        name: &str,
        shutdown_timeout: &str,
        body: &str,
    ) -> PathBuf {
        let path = self.dir.join(name);
        let text = format!(
            "data_dir = \"{}\"\nshutdown_timeout = \"{shutdown_timeout}\"\n\n{}\n{body}",
            self.dir.join("data").display(),
            self.aws_toml()
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Every document of the bulk server: `(index, id) -> document`.
    pub(crate) fn all_documents(&self) -> BTreeMap<(String, String), Value> {
        let mut out = BTreeMap::new();
        for index in self.bulk.indices() {
            for (id, doc) in self.bulk.documents(&index) {
                out.insert((index.clone(), id), doc);
            }
        }
        out
    }

    /// A summary of the state for failure messages: queue counts, bulk counts, and `logs`.
    pub(crate) fn diag(&self, queue_url: &str, logs: &[&Ingester]) -> String {
        let counts = self.block_on(self.moto.queue_counts(queue_url));
        let mut out = format!(
            "queue: {counts:?}\nbulk: {} documents, {} items received, {} bulk requests, indices {:?}\n",
            self.bulk.total_count(),
            self.bulk.items_received(),
            self.bulk.bulk_request_count(),
            self.bulk.indices()
        );
        for ingester in logs {
            out.push_str(&format!(
                "--- {}:\n{}\n",
                ingester.log_path.display(),
                tail(&ingester.log(), 60)
            ));
        }
        out
    }
}

/// The last `n` lines of `text`.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A running `logferry-ingester` (stderr to a file in the test directory), killed on drop.
pub(crate) struct Ingester {
    child: Option<Child>,
    pub(crate) log_path: PathBuf,
}

impl Ingester {
    /// Starts `logferry-ingester <args>` in `dir`, stderr to `dir/<log>`.
    pub(crate) fn start(dir: &Path, args: &[&str], log: &str) -> Ingester {
        let log_path = dir.join(log);
        let child = Command::new(env!("CARGO_BIN_EXE_logferry-ingester"))
            .args(args)
            .current_dir(dir)
            .env("LOGFERRY_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        Ingester {
            child: Some(child),
            log_path,
        }
    }

    /// Starts `logferry-ingester run --config <config>` and waits until it polls SQS.
    pub(crate) fn run(config: &Path, log: &str) -> Ingester {
        let dir = config.parent().unwrap();
        let mut ingester =
            Ingester::start(dir, &["run", "--config", config.to_str().unwrap()], log);
        let deadline = Instant::now() + Duration::from_secs(30);
        let polling = wait_until(deadline, || {
            ingester.log().contains("Polling SQS.") || ingester.exited()
        });
        assert!(
            polling && !ingester.exited(),
            "ingester not polling:\n{}",
            ingester.log()
        );
        ingester
    }

    /// What it logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Whether it has exited.
    pub(crate) fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM.
    pub(crate) fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `secs` for the exit.
    pub(crate) fn wait(&mut self, secs: u64) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut status = None;
        let exited = wait_until(deadline, || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        assert!(exited, "no exit within {secs}s:\n{}", tail(&self.log(), 60));
        self.child = None;
        status.unwrap()
    }

    /// SIGTERM, then waits (up to 60 s) for the exit.
    pub(crate) fn terminate(mut self) -> (ExitStatus, String) {
        self.sigterm();
        let status = self.wait(60);
        (status, self.log())
    }

    /// SIGKILL, and reaps it.
    pub(crate) fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Ingester {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `logferry-ingester <args>` in `dir` to its end (at most `secs`); returns the status,
/// stdout and stderr.
pub(crate) fn run_to_end(dir: &Path, args: &[&str], secs: u64) -> (ExitStatus, String, String) {
    let stdout = dir.join("stdout.txt");
    let stderr = dir.join("stderr.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_logferry-ingester"))
        .args(args)
        .current_dir(dir)
        .env("LOGFERRY_LOG", "info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut status = None;
    let done = wait_until(deadline, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !done {
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = std::fs::read_to_string(&stdout).unwrap_or_default();
    let err = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(done, "{args:?} did not end within {secs}s:\n{err}");
    (status.unwrap(), out, err)
}

/// A pseudo-random generator (xorshift) for reproducible choices from a printed seed.
pub(crate) struct Rng(u64);

impl Rng {
    /// Seeded from `env_var` when set, else from the clock; prints the seed.
    pub(crate) fn from_env(env_var: &str) -> Rng {
        let seed = std::env::var(env_var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("seed: {seed} (replay with {env_var}={seed})");
        Rng(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `[lo, hi)`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}
