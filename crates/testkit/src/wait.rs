//! Free ports, workspace paths and waiting on conditions with deadlines.

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::TestkitError;

/// How often [`wait_until`] and [`wait_until_async`] test their condition.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it for an ephemeral bind).
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Calls `cond` until it returns true or `deadline` passes; returns whether it became true.
/// The condition is always tested at least once, and once more at the deadline.
pub fn wait_until(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    loop {
        if cond() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

/// Async form of [`wait_until`] for conditions that await (an S3 listing, say).
pub async fn wait_until_async<F, Fut>(deadline: Instant, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    loop {
        if cond().await {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
    }
}

/// The workspace root: the nearest directory holding `Cargo.lock` above the running test's
/// `CARGO_MANIFEST_DIR` (or above this crate's, when the variable is not set).
pub fn workspace_root() -> Result<PathBuf, TestkitError> {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    find_root(&start).ok_or(TestkitError::WorkspaceRoot { start })
}

fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_workspace_root() {
        let root = workspace_root().unwrap();
        assert!(root.join("Cargo.lock").is_file());
        assert!(root.join("crates/testkit").is_dir());
    }

    #[test]
    fn wait_until_times_out_and_succeeds() {
        let start = Instant::now();
        assert!(!wait_until(start + Duration::from_millis(60), || false));
        assert!(start.elapsed() >= Duration::from_millis(60));
        let mut calls = 0;
        assert!(wait_until(Instant::now() + Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        }));
    }

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}
