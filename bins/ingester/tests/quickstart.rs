//! The README's second command: `logferry-ingester backfill --config
//! examples/quickstart/ingester.toml` reads the shipper's quickstart objects back from the
//! local-directory store and prints every event as NDJSON; a second run prints nothing new.
//! Also: the example configurations pass `check`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use logferry_testkit::workspace_root;

fn ingester(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logferry-ingester"))
        .args(args)
        .current_dir(dir)
        .env("LOGFERRY_LOG", "warn")
        .env("ES_API_KEY", "not-a-real-key")
        .output()
        .unwrap()
}

fn gzip(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

/// Every NDJSON line of `stdout` as JSON.
fn events(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn backfill_prints_the_shipped_events_once() {
    let root = workspace_root().unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ingester_quickstart");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("examples/quickstart")).unwrap();
    std::fs::copy(
        root.join("examples/quickstart/ingester.toml"),
        dir.join("examples/quickstart/ingester.toml"),
    )
    .unwrap();
    // What the shipper's quickstart stores: one gzip object per tag, JSON lines.
    let bucket = dir.join("target/quickstart/bucket/logs");
    let objects = [
        (
            "s3.app/2024/05/01/2024050110_0_ab12.gz",
            "{\"level\":\"info\",\"msg\":\"user login\",\"user\":\"alice\"}\n\
             {\"level\":\"warn\",\"msg\":\"slow query\",\"ms\":812}\n",
        ),
        (
            "s3.system/2024/05/01/2024050110_1_cd34.gz",
            "{\"message\":\"plain line one\"}\n{\"message\":\"plain line one\"}\n",
        ),
    ];
    for (key, text) in objects {
        let path = bucket.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, gzip(text)).unwrap();
    }

    let args = [
        "backfill",
        "--config",
        "examples/quickstart/ingester.toml",
        "--no-progress",
    ];
    let first = ingester(&dir, &args);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    let got = events(&first.stdout);
    assert_eq!(got.len(), 4, "{got:#?}");
    // Each shipped record comes back with its fields, an @timestamp and where it came from.
    let app: Vec<_> = got
        .iter()
        .filter(|e| e["log_origin"]["key"].as_str().unwrap().contains("s3.app/"))
        .collect();
    assert_eq!(app.len(), 2);
    assert_eq!(app[0]["user"], "alice");
    assert_eq!(app[1]["ms"], 812);
    assert_eq!(app[1]["log_origin"]["line"], 2);
    assert_eq!(
        app[0]["log_origin"]["bucket"],
        "file://target/quickstart/bucket"
    );
    // Identical lines stay two events.
    let repeated = got
        .iter()
        .filter(|e| e["message"] == "plain line one")
        .count();
    assert_eq!(repeated, 2);
    assert!(got.iter().all(|e| e["@timestamp"].is_string()));
    assert!(stderr.contains("2 object(s), 4 event(s)"), "{stderr}");

    // Resumed from the checkpoint: nothing new.
    let second = ingester(&dir, &args);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(events(&second.stdout).is_empty());

    // A new object after the checkpoint is picked up alone.
    let path = bucket.join("s3.system/2024/05/01/2024050111_2_ef56.gz");
    std::fs::write(path, gzip("{\"message\":\"later\"}\n")).unwrap();
    let third = ingester(&dir, &args);
    let got = events(&third.stdout);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["message"], "later");
}

#[test]
fn example_configurations_check() {
    let root = workspace_root().unwrap();
    for example in [
        "examples/quickstart/ingester.toml",
        "examples/ingester/ingester.toml",
    ] {
        let out = ingester(&root, &["check", "--config", example]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("outputs = {"), "{stdout}");
        assert!(
            !stdout.contains("not-a-real-key"),
            "secrets are hidden: {stdout}"
        );
    }
}

#[test]
fn configuration_errors_name_file_line_and_key() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ingester_bad_config");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "[outputs.o]\ntype = \"ndjson\"\n\n[inputs.q]\ntype = \"sqs\"\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/q\"\nlog_format = \"alb\"\nworkerz = 4\n",
            "bad.toml:8: `inputs.q.workerz`: unknown field",
        ),
        (
            "[outputs.o]\ntype = \"ndjson\"\n\n[inputs.q]\ntype = \"sqs\"\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/q\"\nlog_format = \"alb\"\noutputs = [\"es\"]\n",
            "bad.toml:8: `inputs.q.outputs`: no output `es`",
        ),
        (
            "[outputs.o]\ntype = \"ndjson\"\n\n[inputs.q]\ntype = \"sqs\"\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/q\"\nlog_format = \"alb\"\noutputs = []\n",
            "bad.toml:8: `inputs.q.outputs`: must name at least one output",
        ),
        (
            "[outputs.o]\ntype = \"ndjson\"\n\n[inputs.q]\ntype = \"kafka\"\n",
            "bad.toml:5: `inputs.q.type`",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(dir.join("bad.toml"), text).unwrap();
        let out = ingester(&dir, &["check", "--config", "bad.toml"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(expected),
            "expected {expected:?} in {stderr}"
        );
    }
}
