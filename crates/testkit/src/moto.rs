//! Starting, stopping and restarting `moto_server` on a free loopback port.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TestkitError;
use crate::http;
use crate::wait::{free_port, workspace_root};

/// Environment variable naming the `moto_server` program to run instead of the workspace's
/// `.venv/bin/moto_server`.
pub const MOTO_SERVER_ENV: &str = "LOGFERRY_MOTO_SERVER";

/// How long [`MotoServer::start`] waits for the server to answer by default.
const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Per-request timeout of the readiness probe and the raw API calls.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The Python run in place of `moto_server`'s own entry point: it exits as soon as its standard
/// input closes, so a test process that dies without running `Drop` leaves no server behind.
const WATCHDOG: &str = "import os, runpy, sys, threading\n\
def _watch():\n    sys.stdin.buffer.read()\n    os._exit(0)\n\
threading.Thread(target=_watch, daemon=True).start()\n\
sys.argv = sys.argv[1:]\n\
runpy.run_path(sys.argv[0], run_name='__main__')\n";

/// A `moto_server` (S3, SQS, STS, IAM, ... on one port) running on `127.0.0.1`, killed on drop.
///
/// The server keeps its state in memory: [`MotoServer::restart`] brings it back on the same port
/// with no buckets, users or queues. IAM is not enforced unless asked for, either with
/// [`MotoServerBuilder::initial_no_auth_action_count`] or, at any time, with
/// [`MotoServer::enforce_iam`].
///
/// ```no_run
/// # async fn demo() -> Result<(), logferry_testkit::TestkitError> {
/// let moto = logferry_testkit::MotoServer::start()?;
/// moto.create_bucket("logs").await?;
/// assert!(moto.list_keys("logs", "").await?.is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MotoServer {
    child: Option<Child>,
    port: u16,
    program: PathBuf,
    env: Vec<(OsString, OsString)>,
    log: PathBuf,
    startup_timeout: Duration,
}

/// Options of a [`MotoServer`] before it starts.
#[derive(Debug, Default)]
pub struct MotoServerBuilder {
    program: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    startup_timeout: Option<Duration>,
}

impl MotoServerBuilder {
    /// Runs this `moto_server` program. Default: `$LOGFERRY_MOTO_SERVER`, else
    /// `<workspace root>/.venv/bin/moto_server` as `scripts/install-test-deps` installs it.
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// Enforces IAM after the first `count` authenticated actions (moto's
    /// `INITIAL_NO_AUTH_ACTION_COUNT`): setup calls made before run unauthenticated, every later
    /// call is checked against IAM policies. Default: never enforced.
    pub fn initial_no_auth_action_count(self, count: u64) -> Self {
        self.env("INITIAL_NO_AUTH_ACTION_COUNT", count.to_string())
    }

    /// Sets an environment variable of the server process (e.g. `S3_UPLOAD_PART_MIN_SIZE`).
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// How long to wait for the server to answer HTTP. Default: 60 seconds.
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = Some(timeout);
        self
    }

    /// Starts the server on a free loopback port and waits until it answers.
    pub fn start(self) -> Result<MotoServer, TestkitError> {
        let program = match self.program {
            Some(program) => program,
            None => default_program()?,
        };
        if !program.is_file() {
            return Err(TestkitError::MotoMissing { path: program });
        }
        let port = free_port().map_err(|source| TestkitError::Io {
            context: "no free loopback port".to_string(),
            source,
        })?;
        let log = std::env::temp_dir().join(format!("logferry-moto-{port}.log"));
        let mut server = MotoServer {
            child: None,
            port,
            program,
            env: self.env,
            log,
            startup_timeout: self.startup_timeout.unwrap_or(DEFAULT_STARTUP_TIMEOUT),
        };
        server.spawn_and_wait()?;
        Ok(server)
    }
}

fn default_program() -> Result<PathBuf, TestkitError> {
    if let Some(path) = std::env::var_os(MOTO_SERVER_ENV) {
        return Ok(PathBuf::from(path));
    }
    Ok(workspace_root()?.join(".venv/bin/moto_server"))
}

/// The interpreter named by a script's `#!` line, when that is a plain path that exists.
fn shebang_interpreter(script: &Path) -> Option<PathBuf> {
    let mut first = String::new();
    BufReader::new(File::open(script).ok()?)
        .read_line(&mut first)
        .ok()?;
    let interpreter = first.strip_prefix("#!")?.trim();
    if interpreter.contains(char::is_whitespace) {
        return None;
    }
    let path = PathBuf::from(interpreter);
    path.is_file().then_some(path)
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

impl MotoServer {
    /// Starts a server with default options: see [`MotoServer::builder`].
    pub fn start() -> Result<MotoServer, TestkitError> {
        MotoServer::builder().start()
    }

    /// Options for a server to start.
    pub fn builder() -> MotoServerBuilder {
        MotoServerBuilder::default()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The loopback port the server listens on (kept across [`MotoServer::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The file the server's output goes to.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Whether the server process is running (false after [`MotoServer::stop`]).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server; connections to its port are then refused. Does nothing when stopped.
    pub fn stop(&mut self) -> Result<(), TestkitError> {
        if let Some(mut child) = self.child.take() {
            // An error here means the process had already exited.
            let _ = child.kill();
            child.wait().map_err(|source| TestkitError::Io {
                context: format!("waiting for moto_server (pid {}) to exit", child.id()),
                source,
            })?;
        }
        Ok(())
    }

    /// Stops the server if it runs and starts a new one on the same port, with empty state.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        self.stop()?;
        self.spawn_and_wait()
    }

    /// Turns IAM enforcement on (every later call must be signed by a known key whose policies
    /// allow it) or off, through moto's `/moto-api/reset-auth`.
    pub fn enforce_iam(&self, enforce: bool) -> Result<(), TestkitError> {
        let count = if enforce { "0" } else { "inf" };
        let response = http::request(
            self.port,
            "POST",
            "/moto-api/reset-auth",
            &[],
            count.as_bytes(),
            REQUEST_TIMEOUT,
        )
        .map_err(|source| TestkitError::Http {
            endpoint: self.endpoint(),
            source,
        })?;
        if response.status != 200 {
            return Err(TestkitError::Api {
                action: "reset-auth".to_string(),
                status: response.status,
                body: response.text(),
            });
        }
        Ok(())
    }

    fn command(&self) -> Command {
        let port = self.port.to_string();
        let args = ["-H", "127.0.0.1", "-p", port.as_str()];
        match shebang_interpreter(&self.program) {
            Some(python) => {
                let mut command = Command::new(python);
                command
                    .arg("-c")
                    .arg(WATCHDOG)
                    .arg(&self.program)
                    .args(args);
                command
            }
            None => {
                let mut command = Command::new(&self.program);
                command.args(args);
                command
            }
        }
    }

    fn spawn_and_wait(&mut self) -> Result<(), TestkitError> {
        let started = Instant::now();
        let deadline = started + self.startup_timeout;
        let io_err = |context: String| {
            move |source| TestkitError::Io {
                context: context.clone(),
                source,
            }
        };
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io_err(format!("opening {}", self.log.display())))?;
        let log_err = log
            .try_clone()
            .map_err(io_err(format!("opening {}", self.log.display())))?;
        let mut command = self.command();
        command
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(log)
            .stderr(log_err);
        let child = command.spawn().map_err(|source| TestkitError::Spawn {
            program: self.program.clone(),
            source,
        })?;
        self.child = Some(child);
        loop {
            if self.answers() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                // The port may still be held by a server that is shutting down: try again.
                if Instant::now() < deadline && tail(&self.log).contains("Address already in use") {
                    std::thread::sleep(Duration::from_millis(200));
                    return self.respawn_until(deadline, started);
                }
                return Err(TestkitError::Exited {
                    status,
                    log: self.log.clone(),
                    log_tail: tail(&self.log),
                });
            }
            if Instant::now() >= deadline {
                let _ = self.stop();
                return Err(TestkitError::NotReady {
                    endpoint: self.endpoint(),
                    waited: started.elapsed(),
                    log: self.log.clone(),
                    log_tail: tail(&self.log),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn respawn_until(&mut self, deadline: Instant, started: Instant) -> Result<(), TestkitError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let saved = self.startup_timeout;
        self.startup_timeout = remaining;
        let result = self.spawn_and_wait();
        self.startup_timeout = saved;
        result.map_err(|err| match err {
            TestkitError::NotReady {
                endpoint,
                log,
                log_tail,
                ..
            } => TestkitError::NotReady {
                endpoint,
                waited: started.elapsed(),
                log,
                log_tail,
            },
            other => other,
        })
    }

    /// Whether the server answers an HTTP GET that does not count as an AWS action.
    fn answers(&self) -> bool {
        http::request(
            self.port,
            "GET",
            "/moto-api/data.json",
            &[],
            b"",
            Duration::from_secs(2),
        )
        .is_ok_and(|response| response.status == 200)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
