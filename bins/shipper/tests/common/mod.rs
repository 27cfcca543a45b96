//! What the shipper's end-to-end tests read back from a `file://` bucket.
#![allow(dead_code)] // each test binary uses a part

use std::io::Read;
use std::path::{Path, PathBuf};

/// Every file below `root`, sorted.
pub(crate) fn objects(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out.sort();
    out
}

/// The text of a gzip object; `None` if it cannot be read whole (yet).
pub(crate) fn try_gunzip(path: &Path) -> Option<String> {
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).ok()?)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// The text of a gzip object.
pub(crate) fn gunzip(path: &Path) -> String {
    try_gunzip(path).unwrap_or_else(|| panic!("{} is not a whole gzip file", path.display()))
}

/// Every record (one JSON object per line) in the `.gz` objects below `root`, with its
/// object's key; objects still being written are left out.
pub(crate) fn records(root: &Path) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for path in objects(root) {
        if path.extension().is_none_or(|e| e != "gz") {
            continue;
        }
        let Some(text) = try_gunzip(&path) else {
            continue;
        };
        let key = path.strip_prefix(root).unwrap().display().to_string();
        for line in text.lines() {
            out.push((key.clone(), serde_json::from_str(line).unwrap()));
        }
    }
    out
}

/// A `logferry-shipper --config shipper.toml` following in `dir` (its stderr in
/// `dir/shipper.log`), killed on drop unless [`Following::terminate`]d.
pub(crate) struct Following {
    child: std::process::Child,
    log: PathBuf,
}

impl Following {
    /// Starts the shipper and waits until it has logged `listeners` "Listening for syslog."
    /// lines.
    pub(crate) fn start_listening(dir: &Path, listeners: usize) -> Following {
        let log = dir.join("shipper.log");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_logferry-shipper"))
            .args(["--config", "shipper.toml"])
            .current_dir(dir)
            .env("LOGFERRY_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let shipper = Following { child, log };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let listening = logferry_testkit::wait_until(deadline, || {
            shipper.log().matches("Listening for syslog.").count() == listeners
        });
        assert!(listening, "shipper not listening:\n{}", shipper.log());
        shipper
    }

    /// What the shipper logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit.
    pub(crate) fn terminate(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
