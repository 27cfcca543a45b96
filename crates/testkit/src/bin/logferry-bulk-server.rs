//! `logferry-bulk-server [--url-file FILE]`: the testkit bulk-API server (`BulkServer`) as a
//! process of its own, on a free loopback port. Prints `http://127.0.0.1:PORT` on stdout (and
//! writes it to `--url-file`), then serves until it is killed.
//!
//! `scripts/test` uses it to run the sink tests in their real-cluster mode
//! (`LOGFERRY_ES_URL`), so that mode keeps working where no real cluster is at hand.

use std::io::Write as _;
use std::process::ExitCode;

use logferry_testkit::BulkServer;

fn main() -> ExitCode {
    let mut url_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--url-file", Some(path)) => url_file = Some(path),
            _ => {
                eprintln!("usage: logferry-bulk-server [--url-file FILE]");
                return ExitCode::from(2);
            }
        }
    }
    let server = match BulkServer::start() {
        Ok(server) => server,
        Err(err) => {
            eprintln!("logferry-bulk-server: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    let url = server.url();
    println!("{url}");
    let _ = std::io::stdout().flush();
    if let Some(path) = url_file {
        // Written whole under another name, then renamed: a reader never sees half a URL.
        let partial = format!("{path}.partial");
        if let Err(err) =
            std::fs::write(&partial, &url).and_then(|()| std::fs::rename(&partial, &path))
        {
            eprintln!("logferry-bulk-server: cannot write {path}: {err}");
            return ExitCode::FAILURE;
        }
    }
    // The server runs on its own thread; this one only keeps the process (and it) alive.
    loop {
        std::thread::park();
    }
}
