//! `logferry-ingester check`: a valid configuration is printed resolved (defaults filled in,
//! the secret key hidden) with exit 0; an invalid one exits 2 naming the file, line and key.

mod common;

use std::path::{Path, PathBuf};

use common::run_to_end;

fn dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ingester-check-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const VALID: &str = r#"data_dir = "state"

[aws]
region = "eu-west-1"
endpoint = "http://127.0.0.1:9"
force_path_style = true
aws_key_id = "AKIDCHECK"
aws_sec_key = "very-secret-value"

[inputs.alb]
type = "sqs"
queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/alb-logs"
log_format = "alb"
visibility_timeout = "2m"

[outputs.es]
type = "elasticsearch"
hosts = ["http://127.0.0.1:9200"]
index = "alb-%Y.%m.%d"

[dead_letter]
path = "dead.ndjson"
"#;

fn check(name: &str, text: &str) -> (Option<i32>, String, String, PathBuf) {
    let dir = dir(name);
    let path = dir.join("ingester.toml");
    std::fs::write(&path, text).unwrap();
    let (status, out, err) = run_to_end(&dir, &["check", "--config", "ingester.toml"], 30);
    (status.code(), out, err, path)
}

#[test]
fn check_prints_the_resolved_configuration() {
    let (code, out, err, _) = check("valid", VALID);
    assert_eq!(code, Some(0), "{err}");
    for expected in [
        "alb-logs",
        "AKIDCHECK",
        "(redacted)",
        "eu-west-1",
        "alb-%Y.%m.%d",
        "dead.ndjson",
        // Defaults filled in.
        "max_in_flight: 32",
        "batch_max_events: 2000",
    ] {
        assert!(out.contains(expected), "`{expected}` not in:\n{out}");
    }
    assert!(!out.contains("very-secret-value"), "{out}");
}

/// `text` with `line` (1-based) replaced.
fn with_line(line: usize, new: &str) -> String {
    let mut lines: Vec<&str> = VALID.lines().collect();
    lines[line - 1] = new;
    lines.join("\n") + "\n"
}

fn line_of(needle: &str) -> usize {
    VALID.lines().position(|l| l.starts_with(needle)).unwrap() + 1
}

#[test]
fn bad_configurations_exit_2_naming_file_line_and_key() {
    let cases = [
        (
            "unknown-key",
            line_of("visibility_timeout"),
            "visiblity_timeout = \"2m\"",
            "inputs.alb.visiblity_timeout",
        ),
        (
            "bad-format",
            line_of("log_format"),
            "log_format = \"nope\"",
            "inputs.alb.log_format",
        ),
        (
            "bad-duration",
            line_of("visibility_timeout"),
            "visibility_timeout = \"1s\"",
            "inputs.alb.visibility_timeout",
        ),
        (
            "bad-endpoint",
            line_of("endpoint"),
            "endpoint = \"127.0.0.1:9\"",
            "aws.endpoint",
        ),
        (
            "missing-ca",
            line_of("index ="),
            "tls = { ca_file = \"no-such-ca.pem\" }",
            "outputs.es.tls.ca_file",
        ),
        (
            "bad-batch",
            line_of("index ="),
            "batch_max_events = 0",
            "outputs.es.batch_max_events",
        ),
    ];
    for (name, line, replacement, key) in cases {
        let (code, out, err, path) = check(name, &with_line(line, replacement));
        assert_eq!(code, Some(2), "{name}: {out}\n{err}");
        let location = format!("{}:{line}", path.display());
        let location_short = format!("ingester.toml:{line}");
        assert!(
            err.contains(&location) || err.contains(&location_short),
            "{name}: `{location_short}` not in: {err}"
        );
        assert!(err.contains(key), "{name}: `{key}` not in: {err}");
    }
}
