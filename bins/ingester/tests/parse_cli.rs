//! End-to-end tests of `logferry-ingester parse`: the real binary on real files.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const ALB_LINE: &str = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90"#;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_logferry-ingester"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("parse_cli");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn events(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn parses_plain_gzip_and_zstd_files_alike() {
    let text = format!("{ALB_LINE}\n{ALB_LINE}\n");
    let plain = scratch("alb.log");
    std::fs::write(&plain, &text).unwrap();
    let gz = scratch("alb.log.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let zst = scratch("alb.log.zst");
    std::fs::write(&zst, zstd::encode_all(text.as_bytes(), 3).unwrap()).unwrap();

    for path in [&plain, &gz, &zst] {
        let out = bin()
            .args(["parse", "--format", "alb"])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let events = events(&out);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["@timestamp"], "2018-07-02T22:23:00.186641Z");
        assert_eq!(events[0]["client_ip"], "192.168.131.39");
        assert_eq!(events[0]["client_port"], 2817);
        assert_eq!(events[0]["request_url"], "http://www.example.com:80/");
    }
}

#[test]
fn bad_lines_go_to_stderr_with_location_and_exit_1() {
    let path = scratch("mixed.log");
    std::fs::write(
        &path,
        "{\"time\":1510109208,\"a\":1}\nnot json\n{\"time\":1510109209}\n",
    )
    .unwrap();
    let out = bin()
        .args(["parse", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(events(&out).len(), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:2: field `line`: invalid JSON", path.display());
    assert!(stderr.contains(&expected), "stderr: {stderr}");
    assert!(stderr.contains("1 line(s) failed"), "stderr: {stderr}");
}

#[test]
fn reads_stdin_and_takes_options() {
    let out = run_with_stdin(
        &[
            "parse",
            "-f",
            "json",
            "-o",
            "timestamp_field=ts",
            "-o",
            "timestamp_format=unix_ms",
            "-",
        ],
        b"{\"ts\":1510109208016,\"msg\":\"hi\"}\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = events(&out);
    assert_eq!(events[0]["@timestamp"], "2017-11-08T02:46:48.016Z");
    assert_eq!(events[0]["msg"], "hi");
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &["parse", "--format", "nope", "-"],
        &["parse", "--format", "alb", "--option", "x=1", "-"],
        &["parse", "--format", "json", "--option", "novalue", "-"],
        &["parse"],
        &["parse", "--format", "alb", "/nonexistent/file.log"],
        &["frobnicate"],
    ];
    for args in cases {
        let out = run_with_stdin(args, b"");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stderr.is_empty(), "{args:?} explains itself");
    }
}

#[test]
fn corrupt_gzip_is_reported_not_a_crash() {
    let text = format!("{ALB_LINE}\n").repeat(2000);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    let mut gz = enc.finish().unwrap();
    let cut = gz.len() / 2;
    gz.truncate(cut);
    let out = run_with_stdin(&["parse", "--format", "alb"], &gz);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("<stdin>: read failed"), "stderr: {stderr}");
    assert!(
        !events(&out).is_empty(),
        "events before the corruption are kept"
    );
}

#[test]
fn arbitrary_bytes_never_crash_any_format() {
    let mut junk = Vec::new();
    for i in 0..4096u32 {
        junk.push((i.wrapping_mul(2_654_435_761) >> 13) as u8);
    }
    junk.extend_from_slice(b"\n<13>\n{\"Records\":[{\n#Fields: a b\n\"\"\"\n");
    for format in logferry_parse::FORMAT_NAMES {
        let out = run_with_stdin(&["parse", "--format", format], &junk);
        let code = out.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "{format}: exit {code:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
