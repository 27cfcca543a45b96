//! A synthetic S3 server for whole-process backfill measurements (`scripts/bench-ingester`):
//! `synthetic-s3 --body FILE [--objects N] [--bucket B] [--prefix P] [--objects-per-day N]
//! [--port-file FILE]`.
//!
//! Serves the testkit's [`ListingServer`] on a free 127.0.0.1 port (written to `--port-file`):
//! a path-style bucket `B` (default `bench`) of `N` objects (default 100,000), ListObjectsV2,
//! GetObject and HeadObject, every object with the bytes of `--body` as its body. Object `i`
//! has the key `{P}YYYY/MM/DD/obj-{i:010}.json.gz` (`P` defaults to `logs/`; the date is
//! 2024-01-01 plus `i / objects-per-day` days, default 10,000 objects a day). Nothing is stored
//! per object and request signatures are not checked. It prints nothing but errors and serves
//! until it is killed.

use std::process::ExitCode;

use logferry_testkit::ListingServer;

const USAGE: &str = "usage: synthetic-s3 --body FILE [--objects N] [--bucket B] [--prefix P] \
                     [--objects-per-day N] [--port-file FILE]";

fn main() -> ExitCode {
    let mut builder = ListingServer::builder().bucket("bench").objects(100_000);
    let mut body = None;
    let mut port_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--objects", Some(n)) if n.parse::<u64>().is_ok() => {
                builder = builder.objects(n.parse().unwrap_or(0));
            }
            ("--objects-per-day", Some(n)) if n.parse::<u64>().is_ok() => {
                builder = builder.objects_per_day(n.parse().unwrap_or(0));
            }
            ("--bucket", Some(b)) => builder = builder.bucket(&b),
            ("--prefix", Some(p)) => builder = builder.prefix(&p),
            ("--body", Some(f)) => body = Some(f),
            ("--port-file", Some(f)) => port_file = Some(f),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(body) = body else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let body = match std::fs::read(&body) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("synthetic-s3: cannot read {body}: {e}");
            return ExitCode::from(1);
        }
    };
    let server = match builder.object_body(body).start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("synthetic-s3: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(file) = port_file
        && let Err(e) = std::fs::write(&file, format!("{}\n", server.port()))
    {
        eprintln!("synthetic-s3: cannot write {file}: {e}");
        return ExitCode::from(1);
    }
    // The server runs on a thread of its own until the process is killed.
    loop {
        std::thread::park();
    }
}
