//! End to end: the real `logferry-shipper` binary against a real `moto_server` (S3, IAM, STS).
//!
//! Every test starts its own moto_server on a free port (a missing moto_server fails the test:
//! run `scripts/install-test-deps`), writes log files and a configuration into a fresh directory
//! under `CARGO_TARGET_TMPDIR`, and runs the binary there with its stderr captured to a file.
//! Waits are on conditions with generous deadlines, never on fixed sleeps.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use logferry_core::Timestamp;
use logferry_testkit::{
    MOTO_ACCOUNT_ID, MotoServer, TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY,
    wait_until,
};

/// How long any one wait may take before the test fails (a loaded 2-core machine is slow; a
/// normal run needs a few seconds).
const DEADLINE: Duration = Duration::from_secs(60);

fn deadline() -> Instant {
    Instant::now() + DEADLINE
}

fn moto() -> MotoServer {
    MotoServer::start().expect("moto_server must run (scripts/install-test-deps installs it)")
}

/// A fresh, empty directory for one test (unique per test and process), with `logs/` in it.
fn test_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("shipper-moto")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    dir
}

/// Environment variables that could give the child credentials, a region or an endpoint other
/// than the configuration's.
const AWS_ENV: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

/// A running `logferry-shipper`, its stdout and stderr going to files in the test directory.
/// Killed on drop if it still runs.
struct Shipper {
    child: Child,
    name: String,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// What a finished run printed.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Shipper {
    /// Starts the binary in `dir` with `--config shipper.toml` and `args`, with `env` added to a
    /// environment cleared of AWS settings.
    fn spawn(dir: &Path, name: &str, args: &[&str], env: &[(&str, String)]) -> Shipper {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_logferry-shipper"));
        command
            .args(["--config", "shipper.toml"])
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap());
        for name in AWS_ENV {
            command.env_remove(name);
        }
        command
            .env("LOGFERRY_LOG", "info")
            .env("NO_COLOR", "1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .envs(env.iter().map(|(k, v)| (k, v)));
        let child = command.spawn().expect("start logferry-shipper");
        Shipper {
            child,
            name: name.to_owned(),
            stdout,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits (with the deadline) for the process to exit; fails the test, with its stderr, if
    /// it does not.
    fn wait(mut self) -> Finished {
        let mut status = None;
        let exited = wait_until(deadline(), || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        assert!(
            exited,
            "shipper {} did not exit within {DEADLINE:?}; stderr:\n{}",
            self.name,
            self.stderr()
        );
        Finished {
            status: status.unwrap(),
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: self.stderr(),
        }
    }

    /// Sends SIGTERM (the way a service manager stops it).
    fn terminate(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success(), "kill -TERM {pid} failed");
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The top of a configuration: `data_dir`, `top` (more top-level keys) and a tail source
/// `app` reading `logs/*.log` from the head as JSON, tagged `tag`.
fn app_source(top: &str, tag: &str) -> String {
    format!(
        r#"
data_dir = "data"
{top}
[sources.app]
type = "tail"
paths = ["logs/*.log"]
read_from_head = true
parse = "json"
tag = "{tag}"
"#
    )
}

/// Runs `--once` to the end.
fn run_once(dir: &Path, name: &str, env: &[(&str, String)]) -> Finished {
    Shipper::spawn(dir, name, &["--once"], env).wait()
}

/// Asserts a run exited 0, printing what it said otherwise.
fn assert_success(run: &Finished) {
    assert!(
        run.status.success(),
        "shipper failed ({}):\nstdout:\n{}\nstderr:\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
}

/// The environment of the child: the endpoint and the keys the configuration interpolates.
fn child_env(moto: &MotoServer, key_id: &str, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LF_TEST_S3_ENDPOINT", moto.endpoint()),
        ("LF_TEST_KEY_ID", key_id.to_owned()),
        ("LF_TEST_SECRET", secret.to_owned()),
    ]
}

/// An `[outputs.ID]` table of type s3 writing to moto, with static keys interpolated from the
/// child's environment, `extra` keys, then `credentials` extra keys and a `[buffer]` table.
fn s3_output(id: &str, pattern: &str, bucket: &str, extra: &str, credentials: &str) -> String {
    format!(
        r#"
[outputs.{id}]
type = "s3"
match = "{pattern}"
bucket = "{bucket}"
region = "{TEST_REGION}"
endpoint = "${{LF_TEST_S3_ENDPOINT}}"
force_path_style = true
utc = true
{extra}

[outputs.{id}.credentials]
aws_key_id = "${{LF_TEST_KEY_ID}}"
aws_sec_key = "${{LF_TEST_SECRET}}"
{credentials}
"#
    )
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Every object of `bucket` under `prefix`, gunzipped, by key.
async fn objects(moto: &MotoServer, bucket: &str, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for key in moto.list_keys(bucket, prefix).await.unwrap() {
        let bytes = moto.get_object_bytes(bucket, &key).await.unwrap();
        out.insert(key, gunzip(&bytes));
    }
    out
}

/// Lines of `text` (each ended by `\n`) with how often each occurs.
fn count_lines<'a>(texts: impl IntoIterator<Item = &'a [u8]>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for text in texts {
        let text = std::str::from_utf8(text).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "object does not end with a newline"
        );
        for line in text.lines() {
            *counts.entry(line.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

/// The start (unix seconds) of every UTC hour from `from` to `to`.
fn hours_between(from: Timestamp, to: Timestamp) -> Vec<i64> {
    let first = from.unix_seconds().div_euclid(3600);
    let last = to.unix_seconds().div_euclid(3600);
    (first..=last).map(|h| h * 3600).collect()
}

/// The key `%{path}${tag}/%Y/%m/%d/%{time_slice}_%{index}.%{file_extension}` gives for a
/// chunk of the hour starting at `hour`, with the default `time_slice_format` `%Y%m%d%H`.
fn expected_key(path: &str, tag: &str, hour: i64, index: u64) -> String {
    let (y, m, d, h, _, _) = Timestamp::from_unix(hour, 0).unwrap().civil();
    format!("{path}{tag}/{y:04}/{m:02}/{d:02}/{y:04}{m:02}{d:02}{h:02}_{index}.gz")
}

const KEY_FORMAT: &str = "%{path}${tag}/%Y/%m/%d/%{time_slice}_%{index}.%{file_extension}";

/// The `%{index}` of a key rendered from [`KEY_FORMAT`].
fn index_of(key: &str) -> u64 {
    let stem = key.strip_suffix(".gz").unwrap_or(key);
    stem.rsplit_once('_')
        .and_then(|(_, index)| index.parse().ok())
        .unwrap_or_else(|| panic!("no index in {key}"))
}

/// Asserts that the objects of one output (under `path`) are keyed by the template, for hours
/// in `hours` (the run's), with `(hour, index)` never repeated between tags (sequence numbers
/// are per time slice, shared by every tag) and indexes below the number of objects (a fresh
/// buffer starts at 0).
fn check_keys(objects: &BTreeMap<String, Vec<u8>>, path: &str, tags: &[&str], hours: &[i64]) {
    let mine: Vec<&String> = objects.keys().filter(|k| k.starts_with(path)).collect();
    let mut slices = BTreeSet::new();
    for key in &mine {
        let index = index_of(key);
        assert!(
            index < mine.len() as u64,
            "{key}: index too high for {mine:?}"
        );
        let found = tags.iter().find_map(|tag| {
            hours
                .iter()
                .find(|&&h| expected_key(path, tag, h, index) == **key)
                .copied()
        });
        let hour = found.unwrap_or_else(|| {
            panic!("{key} is not a key of the template for tags {tags:?} and hours {hours:?}")
        });
        assert!(
            slices.insert((hour, index)),
            "{key}: index used twice in {mine:?}"
        );
    }
}

/// The contents of one tag's objects in key (= time) order, concatenated.
fn contents_of_tag(objects: &BTreeMap<String, Vec<u8>>, path: &str, tag: &str) -> Vec<u8> {
    let prefix = format!("{path}{tag}/");
    let mut mine: Vec<(&String, &Vec<u8>)> = objects
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .collect();
    assert!(!mine.is_empty(), "no object under {prefix}: {objects:?}");
    // Keys of one tag differ by hour, then index: sort numerically by both.
    mine.sort_by_key(|(k, _)| (k.rsplit_once('_').map(|(s, _)| s.to_owned()), index_of(k)));
    mine.into_iter()
        .flat_map(|(_, c)| c.iter().copied())
        .collect()
}

/// Test 1: tail sources with `read_from_head` -> disk buffer -> gzip objects in moto, JSON lines
/// and plain lines (`single_value`) byte for byte, keys from the template, fluent-plugin-s3's
/// Content-Type and no Content-Encoding; a second run ships nothing.
#[tokio::test]
async fn ships_to_moto_once_with_templated_keys_and_exact_bytes() {
    let moto = moto();
    moto.create_bucket("e2e-logs").await.unwrap();
    let dir = test_dir("once");
    std::fs::create_dir_all(dir.join("logs/json")).unwrap();
    std::fs::create_dir_all(dir.join("logs/plain")).unwrap();

    // JSON objects are kept byte for byte (inner spacing, escapes, key order, non-ASCII).
    let app: String = (0..3000)
        .map(|i| {
            format!(
                "{{\"n\":{i}, \"msg\" : \"GET /items/{i} \\\"quoted\\\" caf\u{e9} \\u00e9\",\"nested\":{{\"a\":[1, 2.50, null]}}}}\n"
            )
        })
        .collect();
    let audit =
        "{\"type\":\"SYSCALL\",\"uid\":0}\n{\"type\":\"EXECVE\",\"argv\":[\"ls\",\"-l\"]}\n";
    std::fs::write(dir.join("logs/json/app.log"), &app).unwrap();
    std::fs::write(dir.join("logs/json/audit.log"), audit).unwrap();
    // Plain lines with single_value come back exactly as written.
    let plain = "one\ntwo \"quoted\" \\ backslash\n  spaces around  \ntab\there\nunicode \u{2713} caf\u{e9}\n{\"looks\":\"like json\"}\nlast\n";
    std::fs::write(dir.join("logs/plain/messages.log"), plain).unwrap();

    let mut config = String::from(
        r#"
data_dir = "data"

[sources.json]
type = "tail"
paths = ["logs/json/*.log"]
read_from_head = true
parse = "json"
tag = "json.*"

[sources.plain]
type = "tail"
paths = ["logs/plain/*.log"]
read_from_head = true
tag = "plain.*"
"#,
    );
    let keys = format!("path = \"json/\"\ns3_object_key_format = \"{KEY_FORMAT}\"");
    config += &s3_output("json_out", "json.**", "e2e-logs", &keys, "");
    config += "\n[outputs.json_out.buffer]\ntimekey_use_utc = true\n";
    let keys = format!(
        "path = \"plain/\"\nformat = \"single_value\"\ns3_object_key_format = \"{KEY_FORMAT}\""
    );
    config += &s3_output("plain_out", "plain.**", "e2e-logs", &keys, "");
    config += "\n[outputs.plain_out.buffer]\ntimekey_use_utc = true\n";
    std::fs::write(dir.join("shipper.toml"), &config).unwrap();

    // A secret with the characters real AWS secrets have, passed through `${...}`.
    let env = child_env(&moto, "AKIDLOGFERRYTEST", "s3cr3t/with+slash=");
    let started = Timestamp::now();
    let first = run_once(&dir, "first", &env);
    let ended = Timestamp::now();
    assert_success(&first);
    let hours = hours_between(started, ended);

    let stored = objects(&moto, "e2e-logs", "").await;
    let lines = 3000 + 2 + 7;
    assert!(
        first.stdout.contains(&format!(
            "Shipped {lines} line(s) from 3 file(s) in {} object(s)",
            stored.len()
        )),
        "{}\n{:?}",
        first.stdout,
        stored.keys()
    );
    for key in stored.keys() {
        assert!(
            first.stdout.contains(&format!("  {key}\n")),
            "{key} not in the summary:\n{}",
            first.stdout
        );
    }
    check_keys(
        &stored,
        "json/",
        &["json.logs.json.app.log", "json.logs.json.audit.log"],
        &hours,
    );
    check_keys(
        &stored,
        "plain/",
        &["plain.logs.plain.messages.log"],
        &hours,
    );
    assert_eq!(
        stored.len(),
        stored
            .keys()
            .filter(|k| k.starts_with("json/") || k.starts_with("plain/"))
            .count(),
        "{:?}",
        stored.keys()
    );
    assert_eq!(
        contents_of_tag(&stored, "json/", "json.logs.json.app.log"),
        app.as_bytes(),
        "JSON lines ship byte for byte"
    );
    assert_eq!(
        contents_of_tag(&stored, "json/", "json.logs.json.audit.log"),
        audit.as_bytes()
    );
    assert_eq!(
        contents_of_tag(&stored, "plain/", "plain.logs.plain.messages.log"),
        plain.as_bytes(),
        "single_value ships plain lines byte for byte"
    );

    // fluent-plugin-s3's content type for gzip; no Content-Encoding unless configured.
    let client = moto.s3_client();
    for key in stored.keys() {
        let head = client
            .head_object()
            .bucket("e2e-logs")
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_type(), Some("application/x-gzip"), "{key}");
        assert_eq!(head.content_encoding(), None, "{key}");
    }

    // A second run finds everything checkpointed: nothing new is shipped.
    let second = run_once(&dir, "second", &env);
    assert_success(&second);
    assert!(
        second.stdout.contains("Shipped 0 line(s)") && second.stdout.contains("in 0 object(s)"),
        "{}",
        second.stdout
    );
    assert_eq!(objects(&moto, "e2e-logs", "").await, stored);
    let _ = std::fs::remove_dir_all(&dir);
}

/// One request line of moto's (werkzeug's) log: `... "PUT /b/k HTTP/1.1" 200 -`.
#[derive(Debug)]
struct LoggedRequest {
    method: String,
    target: String,
    status: u16,
}

/// `text` without ANSI escape sequences (werkzeug colours the request lines of errors).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn logged_requests(log: &str) -> Vec<LoggedRequest> {
    strip_ansi(log)
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once("] \"")?;
            let (request, rest) = rest.split_once("\" ")?;
            let mut parts = request.split(' ');
            let method = parts.next()?.to_owned();
            let target = parts.next()?.to_owned();
            parts.next()?.starts_with("HTTP/").then_some(())?;
            let status = rest.split(' ').next()?.parse().ok()?;
            Some(LoggedRequest {
                method,
                target,
                status,
            })
        })
        .collect()
}

/// Our ListObjects request that closes the shipper's part of moto's log.
fn is_fence(request: &LoggedRequest) -> bool {
    request.method == "GET"
        && request.target.starts_with("/locked")
        && request.target.contains("list-type=2")
}

fn read_from(path: &Path, offset: u64) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(bytes.get(offset as usize..).unwrap_or_default()).into_owned()
}

/// Test 2: a user allowed nothing but `s3:PutObject` on `BUCKET/PREFIX/*` is enough, with IAM
/// enforced.
#[tokio::test]
async fn a_put_only_user_is_enough_for_the_binary() {
    let moto = moto();
    moto.create_bucket("locked").await.unwrap();
    let user = moto
        .create_user_with_policy(
            "shipper-writer",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::locked/app-logs/*"}]}"#,
        )
        .unwrap();
    moto.enforce_iam(true).unwrap();

    let dir = test_dir("put_only");
    let a: String = (0..500).map(|i| format!("{{\"a\":{i}}}\n")).collect();
    let b: String = (0..20).map(|i| format!("{{\"b\":{i}}}\n")).collect();
    std::fs::write(dir.join("logs/a.log"), &a).unwrap();
    std::fs::write(dir.join("logs/b.log"), &b).unwrap();
    let mut config = app_source("", "app.*");
    let keys = format!("path = \"app-logs/\"\ns3_object_key_format = \"{KEY_FORMAT}\"");
    config += &s3_output("s3", "app.**", "locked", &keys, "");
    std::fs::write(dir.join("shipper.toml"), &config).unwrap();

    // How we know the shipper calls nothing but PutObject: moto's log has one line per request
    // ("METHOD /path?query HTTP/1.1" STATUS). Only the shipper talks to moto between the moment
    // we note the log's length and the end of its run. After it exits we wait until the log
    // shows one PUT per object it reported, then send our own (denied) ListObjects as a fence:
    // everything logged before the fence is the shipper's, and it must all be successful PUTs
    // under the prefix. IAM being enforced, any other call (HeadBucket, ListObjects,
    // GetBucketLocation, HeadObject...) would also show up there with a 403.
    let log_start = std::fs::metadata(moto.log_path()).map_or(0, |m| m.len());
    let env = child_env(&moto, &user.access_key_id, &user.secret_access_key);
    let run = run_once(&dir, "run", &env);
    assert_success(&run);
    assert!(
        run.stdout
            .contains("Shipped 520 line(s) from 2 file(s) in 2 object(s)"),
        "{}",
        run.stdout
    );
    let puts = |log: &str| {
        logged_requests(log)
            .iter()
            .filter(|r| r.method == "PUT")
            .count()
    };
    assert!(
        wait_until(deadline(), || puts(&read_from(moto.log_path(), log_start))
            >= 2),
        "moto's log does not show the shipper's PUTs:\n{}",
        read_from(moto.log_path(), log_start)
    );

    // The fence, and the proof that this user may do nothing else.
    let client = moto.s3_client_with_keys(&user.access_key_id, &user.secret_access_key);
    let denied = client
        .list_objects_v2()
        .bucket("locked")
        .prefix("app-logs/")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        denied.raw_response().map(|r| r.status().as_u16()),
        Some(403)
    );
    let denied = client
        .head_bucket()
        .bucket("locked")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        denied.raw_response().map(|r| r.status().as_u16()),
        Some(403)
    );

    let fence_seen = |log: &str| logged_requests(log).iter().any(is_fence);
    assert!(
        wait_until(deadline(), || fence_seen(&read_from(
            moto.log_path(),
            log_start
        ))),
        "our ListObjects is not in moto's log:\n{}",
        read_from(moto.log_path(), log_start)
    );
    let log = read_from(moto.log_path(), log_start);
    let requests = logged_requests(&log);
    let shippers: Vec<&LoggedRequest> = requests.iter().take_while(|r| !is_fence(r)).collect();
    assert_eq!(shippers.len(), 2, "one request per object:\n{log}");
    for request in &shippers {
        assert!(
            request.method == "PUT"
                && request.target.starts_with("/locked/app-logs/")
                && request.status == 200,
            "the shipper sent {request:?}; moto's log:\n{log}"
        );
    }

    moto.enforce_iam(false).unwrap();
    let stored = objects(&moto, "locked", "").await;
    assert_eq!(stored.len(), 2, "{:?}", stored.keys());
    let all = count_lines(stored.values().map(Vec::as_slice));
    let expected = count_lines([a.as_bytes(), b.as_bytes()]);
    assert_eq!(all, expected);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Test 3: credentials of an assumed role from moto's STS (role_arn, role_session_name,
/// external_id, sts_endpoint_url), with the base keys from the environment.
#[tokio::test]
async fn ships_with_an_assumed_role() {
    let moto = moto();
    moto.create_bucket("by-role").await.unwrap();
    let role_arn = format!("arn:aws:iam::{MOTO_ACCOUNT_ID}:role/LogferryWriter");
    let user = moto
        .create_user_with_policy(
            "base-host",
            &format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{role_arn}"}}]}}"#
            ),
        )
        .unwrap();
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"sts:ExternalId":"ext-7"}}}}}}]}}"#,
        user.arn
    );
    let created = moto
        .create_role(
            "LogferryWriter",
            &trust,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::by-role/*"}]}"#,
        )
        .unwrap();
    assert_eq!(created, role_arn);
    moto.enforce_iam(true).unwrap();

    // The base user's own keys may not put objects: whatever lands came through the role.
    let own = moto.s3_client_with_keys(&user.access_key_id, &user.secret_access_key);
    let denied = own
        .put_object()
        .bucket("by-role")
        .key("roles/direct.txt")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        denied.raw_response().map(|r| r.status().as_u16()),
        Some(403)
    );

    let dir = test_dir("assume_role");
    let lines: String = (0..100)
        .map(|i| format!("{{\"role\":true,\"n\":{i}}}\n"))
        .collect();
    std::fs::write(dir.join("logs/app.log"), &lines).unwrap();
    let mut config = app_source("", "app.*");
    let keys = format!("path = \"roles/\"\ns3_object_key_format = \"{KEY_FORMAT}\"");
    let credentials = format!(
        "role_arn = \"{role_arn}\"\nrole_session_name = \"logferry-e2e\"\nexternal_id = \"ext-7\"\nduration_seconds = 900\nsts_endpoint_url = \"${{LF_TEST_S3_ENDPOINT}}\""
    );
    config += &s3_output("s3", "app.**", "by-role", &keys, &credentials);
    std::fs::write(dir.join("shipper.toml"), &config).unwrap();

    let env = child_env(&moto, &user.access_key_id, &user.secret_access_key);
    let run = run_once(&dir, "run", &env);
    assert_success(&run);
    assert!(
        run.stdout
            .contains("Shipped 100 line(s) from 1 file(s) in 1 object(s)"),
        "{}",
        run.stdout
    );

    moto.enforce_iam(false).unwrap();
    let stored = objects(&moto, "by-role", "").await;
    assert_eq!(stored.len(), 1, "{:?}", stored.keys());
    let (key, content) = stored.iter().next().unwrap();
    assert!(key.starts_with("roles/app.logs.app.log/"), "{key}");
    assert_eq!(content, lines.as_bytes());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The keys named by the shipper's "Upload failed; will retry." warnings (the error names the
/// key between backticks).
fn failed_keys(stderr: &str) -> BTreeSet<String> {
    stderr
        .lines()
        .filter(|l| l.contains("Upload failed"))
        .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
        .collect()
}

/// Objects seen so far, by key; a key seen again is fetched again (a re-upload of a chunk
/// writes the same key).
#[derive(Default)]
struct Seen {
    objects: BTreeMap<String, Vec<u8>>,
}

impl Seen {
    /// Lists and fetches the bucket's objects; false if moto could not answer.
    async fn refresh(&mut self, moto: &MotoServer, bucket: &str) -> bool {
        let Ok(keys) = moto.list_keys(bucket, "").await else {
            return false;
        };
        for key in keys {
            if self.objects.contains_key(&key) {
                continue;
            }
            match moto.get_object_bytes(bucket, &key).await {
                Ok(bytes) => {
                    self.objects.insert(key, gunzip(&bytes));
                }
                Err(_) => return false,
            }
        }
        true
    }

    fn lines(&self) -> BTreeMap<String, usize> {
        count_lines(self.objects.values().map(Vec::as_slice))
    }

    fn has_all(&self, expected: &[String]) -> bool {
        let lines = self.lines();
        expected.iter().all(|l| lines.contains_key(l))
    }

    /// Polls the bucket until every expected line was seen or the deadline passes.
    async fn wait_for(&mut self, moto: &MotoServer, bucket: &str, expected: &[String]) -> bool {
        let deadline = deadline();
        loop {
            if self.refresh(moto, bucket).await && self.has_all(expected) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn append(path: &Path, lines: &[String]) {
    let mut file = File::options()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
    file.sync_all().unwrap();
}

/// Test 4: follow mode while S3 is down for a while: uploads fail and are retried, nothing is
/// lost or duplicated once S3 is back, and SIGTERM stops the shipper with status 0.
#[tokio::test]
async fn follows_through_an_s3_outage_and_stops_on_sigterm() {
    let mut moto = moto();
    moto.create_bucket("outage").await.unwrap();
    let dir = test_dir("outage");
    let log_file = dir.join("logs/app.log");
    let before: Vec<String> = (0..200)
        .map(|i| format!("{{\"phase\":\"before\",\"n\":{i}}}"))
        .collect();
    let during: Vec<String> = (0..300)
        .map(|i| format!("{{\"phase\":\"during\",\"n\":{i}}}"))
        .collect();
    append(&log_file, &before);

    // One-second slices sealed after a second, fast retries; the key has the slice to the
    // second so that chunks of different slices never share a key.
    let mut config = app_source("shutdown_timeout = \"20s\"", "app.*");
    config += &s3_output(
        "s3",
        "app.**",
        "outage",
        "path = \"follow/\"\ntime_slice_format = \"%Y%m%d%H%M%S\"\ns3_object_key_format = \"%{path}${tag}/%{time_slice}_%{index}.%{file_extension}\"",
        "",
    );
    config += r#"
[outputs.s3.buffer]
timekey = "1s"
timekey_wait = "0s"
timekey_use_utc = true
flush_interval = "1s"
retry_wait = "200ms"
retry_max_interval = "1s"
"#;
    std::fs::write(dir.join("shipper.toml"), &config).unwrap();

    let env = child_env(&moto, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY);
    let shipper = Shipper::spawn(&dir, "follow", &[], &env);

    // Phase 1: S3 is up; the first lines arrive.
    let mut seen = Seen::default();
    let arrived = seen.wait_for(&moto, "outage", &before).await;
    assert!(
        arrived,
        "the first lines did not arrive; stderr:\n{}",
        shipper.stderr()
    );
    // `seen` keeps them: moto loses its state when it stops.

    // Phase 2: S3 goes away while lines keep coming; uploads fail (the SDK's own retries
    // included) and the shipper says it will retry.
    moto.stop().unwrap();
    append(&log_file, &during[..150]);
    append(&log_file, &during[150..]);
    let failed = wait_until(deadline(), || !failed_keys(&shipper.stderr()).is_empty());
    assert!(
        failed,
        "no failed upload while S3 was down; stderr:\n{}",
        shipper.stderr()
    );

    // Phase 3: S3 is back (empty: moto keeps its state in memory), the bucket is created again
    // (an upload in between fails with NoSuchBucket and is retried too) and everything arrives.
    moto.restart().unwrap();
    moto.create_bucket("outage").await.unwrap();
    let arrived = seen.wait_for(&moto, "outage", &during).await;
    assert!(
        arrived,
        "the lines written during the outage did not arrive; stderr:\n{}",
        shipper.stderr()
    );

    shipper.terminate();
    let finished = shipper.wait();
    assert!(
        finished.status.success(),
        "SIGTERM should stop the shipper with status 0 ({}); stderr:\n{}",
        finished.status,
        finished.stderr
    );

    // Every line exactly once across the objects (a chunk uploaded again after a lost answer
    // overwrites its own key, so objects are counted once per key).
    seen.refresh(&moto, "outage").await;
    let lines = seen.lines();
    let expected: BTreeMap<String, usize> = before
        .iter()
        .chain(&during)
        .map(|l| (l.clone(), 1))
        .collect();
    assert_eq!(
        lines,
        expected,
        "lines not exactly once; objects: {:?}",
        seen.objects.keys()
    );
    // The chunks that failed were retried until they landed, under the same keys.
    let failed = failed_keys(&finished.stderr);
    assert!(!failed.is_empty(), "{}", finished.stderr);
    for key in &failed {
        assert!(seen.objects.contains_key(key), "{key} never landed");
        assert!(
            finished
                .stderr
                .lines()
                .any(|l| l.contains("Uploaded.") && l.contains(key.as_str())),
            "{key} failed and was not uploaded later; stderr:\n{}",
            finished.stderr
        );
    }
    for key in seen.objects.keys() {
        assert!(key.starts_with("follow/app.logs.app.log/"), "{key}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--once` while S3 is down, stopped by SIGTERM: the lines stay in the buffer (the summary
/// says how many chunks), and the next `--once` with S3 back ships them under the same key.
#[tokio::test]
async fn once_interrupted_while_s3_is_down_ships_the_chunk_at_the_next_run() {
    let mut moto = moto();
    moto.stop().unwrap();
    let dir = test_dir("once_outage");
    let lines: Vec<String> = (0..50).map(|i| format!("{{\"kept\":{i}}}")).collect();
    append(&dir.join("logs/app.log"), &lines);
    let mut config = app_source("shutdown_timeout = \"10s\"", "app.*");
    let keys = format!("path = \"kept/\"\ns3_object_key_format = \"{KEY_FORMAT}\"");
    config += &s3_output("s3", "app.**", "kept", &keys, "");
    config += "\n[outputs.s3.buffer]\nretry_wait = \"200ms\"\nretry_max_interval = \"1s\"\n";
    std::fs::write(dir.join("shipper.toml"), &config).unwrap();
    let env = child_env(&moto, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY);

    let shipper = Shipper::spawn(&dir, "down", &["--once"], &env);
    let failed = wait_until(deadline(), || !failed_keys(&shipper.stderr()).is_empty());
    assert!(failed, "no failed upload; stderr:\n{}", shipper.stderr());
    shipper.terminate();
    let down = shipper.wait();
    assert!(
        down.stdout
            .contains("Shipped 50 line(s) from 1 file(s) in 0 object(s)")
            && down
                .stdout
                .contains("1 chunk(s) could not be uploaded and stay buffered for the next run."),
        "stdout:\n{}\nstderr:\n{}",
        down.stdout,
        down.stderr
    );
    assert_eq!(
        down.status.code(),
        Some(1),
        "a --once that left chunks behind exits 1"
    );
    let failed = failed_keys(&down.stderr);
    assert_eq!(failed.len(), 1, "{failed:?}");

    moto.restart().unwrap();
    moto.create_bucket("kept").await.unwrap();
    let up = run_once(&dir, "up", &env);
    assert_success(&up);
    assert!(
        up.stdout
            .contains("Shipped 0 line(s) from 1 file(s) in 1 object(s)"),
        "{}",
        up.stdout
    );
    let stored = objects(&moto, "kept", "").await;
    assert_eq!(
        stored.keys().collect::<BTreeSet<_>>(),
        failed.iter().collect(),
        "the buffered chunk keeps its key across runs"
    );
    let expected: String = lines.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(stored.values().next().unwrap(), expected.as_bytes());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--once` against a bucket that does not exist stops with status 1 and the reason, instead
/// of retrying an error that retrying cannot fix; the chunk stays buffered.
#[tokio::test]
async fn once_stops_on_an_error_retrying_cannot_fix() {
    let moto = moto();
    let dir = test_dir("once_no_bucket");
    append(&dir.join("logs/app.log"), &["{\"n\":1}".to_string()]);
    let mut config = app_source("", "app");
    config += &s3_output("s3", "app", "missing-bucket", "", "");
    std::fs::write(dir.join("shipper.toml"), &config).unwrap();
    let env = child_env(&moto, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY);
    let run = run_once(&dir, "no_bucket", &env);
    assert_eq!(run.status.code(), Some(1), "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains("missing-bucket") && run.stderr.contains("retrying cannot fix"),
        "stderr:\n{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("1 chunk(s) stay in the buffer for the next run"),
        "stderr:\n{}",
        run.stderr
    );
}
