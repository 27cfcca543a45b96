//! End to end: the real `logferry-shipper` binary in `--once` mode into a `file://` bucket.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{gunzip, objects};

fn run_once(dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_logferry-shipper"))
        .args(["--once", "--config", "shipper.toml"])
        .current_dir(dir)
        .env("LOGFERRY_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn ships_every_line_once_and_nothing_on_a_second_run() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("once_local");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let json_lines: String = (0..500)
        .map(|i| format!("{{\"n\":{i},\"msg\":\"event {i}\"}}\n"))
        .collect();
    std::fs::write(dir.join("logs/app.log"), &json_lines).unwrap();
    std::fs::write(dir.join("logs/plain.log"), "one\ntwo \"quoted\"\n").unwrap();
    std::fs::write(
        dir.join("shipper.toml"),
        r#"
data_dir = "data"
[sources.app]
type = "tail"
paths = ["logs/*.log"]
read_from_head = true
parse = "json"
tag = "s3.*"
[outputs.local]
type = "s3"
match = "s3.**"
bucket = "file://bucket"
path = "p/"
s3_object_key_format = "%{path}${tag}/%{time_slice}_%{index}_%{hex_random}.%{file_extension}"
utc = true
"#,
    )
    .unwrap();

    let out = run_once(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Shipped 502 line(s) from 2 file(s) in 2 object(s)"),
        "{stdout}"
    );
    let objects = objects(&dir.join("bucket"));
    assert_eq!(objects.len(), 2, "{objects:?}");
    let app = objects
        .iter()
        .find(|p| p.to_string_lossy().contains("app.log"))
        .unwrap();
    assert!(
        app.to_string_lossy().contains("p/s3.logs.app.log/"),
        "{}",
        app.display()
    );
    assert_eq!(gunzip(app), json_lines, "JSON lines ship byte for byte");
    let plain = objects
        .iter()
        .find(|p| p.to_string_lossy().contains("plain.log"))
        .unwrap();
    assert_eq!(
        gunzip(plain),
        "{\"message\":\"one\"}\n{\"message\":\"two \\\"quoted\\\"\"}\n",
        "a line that is not JSON is kept as message"
    );

    let again = run_once(&dir);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("Shipped 0 line(s)"));
    assert_eq!(
        common::objects(&dir.join("bucket")).len(),
        2,
        "nothing new on a second run"
    );
}

#[test]
fn configuration_errors_exit_2_naming_key_and_line() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bad_config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("shipper.toml"),
        "[sources.a]\ntype = \"tail\"\npaths = [\"x\"]\ntag = \"t\"\n[outputs.o]\ntype = \"s3\"\nmatch = \"**\"\nbucket = \"file://b\"\nbuckt = 1\n",
    )
    .unwrap();
    let out = run_once(&dir);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("shipper.toml:9: `outputs.o.buckt`"),
        "{stderr}"
    );
}

#[test]
fn default_key_template_keeps_two_tags_apart() {
    // fluent-plugin-s3's default key `%{path}%{time_slice}_%{index}.%{file_extension}` has no
    // tag: two tags in one time slice must still get two keys, or one object overwrites the
    // other.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("default_key");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    std::fs::write(dir.join("logs/a.log"), "a1\na2\n").unwrap();
    std::fs::write(dir.join("logs/b.log"), "b1\n").unwrap();
    std::fs::write(
        dir.join("shipper.toml"),
        r#"
data_dir = "data"
[sources.logs]
type = "tail"
paths = ["logs/*.log"]
read_from_head = true
tag = "s3.*"
[outputs.local]
type = "s3"
match = "s3.**"
format = "single_value"
bucket = "file://bucket"
utc = true
"#,
    )
    .unwrap();
    let out = run_once(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects = objects(&dir.join("bucket"));
    assert_eq!(objects.len(), 2, "{objects:?}");
    let mut lines: Vec<String> = objects
        .iter()
        .flat_map(|p| gunzip(p).lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    lines.sort();
    assert_eq!(lines, ["a1", "a2", "b1"]);
}

fn copy_into(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn quickstart_ships_its_logs_and_the_examples_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // The quickstart's paths are relative to the repository root: run it in a copy.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("quickstart");
    let _ = std::fs::remove_dir_all(&dir);
    copy_into(
        &root.join("examples/quickstart/logs"),
        &dir.join("examples/quickstart/logs"),
    );
    std::fs::copy(
        root.join("examples/quickstart/shipper.toml"),
        dir.join("shipper.toml"),
    )
    .unwrap();
    let out = run_once(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bucket = dir.join("target/quickstart/bucket");
    let shipped = objects(&bucket);
    assert!(!shipped.is_empty(), "{stdout}");
    assert!(
        stdout.contains(&bucket.display().to_string()),
        "prints where the objects are: {stdout}"
    );
    let expected: usize = ["app.log", "system.log"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(dir.join("examples/quickstart/logs").join(f))
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    let lines: usize = shipped.iter().map(|p| gunzip(p).lines().count()).sum();
    assert_eq!(lines, expected);
    let again = run_once(&dir);
    assert!(String::from_utf8_lossy(&again.stdout).contains("Shipped 0 line(s)"));

    for example in [
        "examples/quickstart/shipper.toml",
        "examples/go-audit/shipper.toml",
        "examples/syslog/shipper.toml",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_logferry-shipper"))
            .args(["--check", "--config"])
            .arg(root.join(example))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn runs_with_the_allocator_settings_and_keeps_its_pid() {
    // main() execs itself once with MIMALLOC_* settings that mimalloc reads at start-up.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("allocator_env");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    std::fs::write(
        dir.join("shipper.toml"),
        "data_dir = \"data\"\n[sources.a]\ntype = \"tail\"\npaths = [\"logs/*.log\"]\ntag = \"a\"\n\
         [outputs.o]\ntype = \"s3\"\nmatch = \"a\"\nbucket = \"file://bucket\"\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_logferry-shipper"))
        .args(["--config", "shipper.toml"])
        .current_dir(&dir)
        .env_remove("MIMALLOC_ARENA_EAGER_COMMIT")
        .env_remove("MIMALLOC_PURGE_DELAY")
        .env("LOGFERRY_LOG", "warn")
        .spawn()
        .unwrap();
    let environ = PathBuf::from(format!("/proc/{}/environ", child.id()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let applied = logferry_testkit::wait_until(deadline, || {
        std::fs::read(&environ).is_ok_and(|env| {
            env.split(|&b| b == 0)
                .any(|var| var == b"MIMALLOC_ARENA_EAGER_COMMIT=0")
        })
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        applied,
        "the running shipper (same pid) has the allocator settings"
    );
}
