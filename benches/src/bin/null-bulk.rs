//! A null Elasticsearch bulk endpoint for whole-process measurements (`scripts/bench-ingester`):
//! `null-bulk [--port PORT] [--port-file FILE]`.
//!
//! Listens on 127.0.0.1 (port 0 by default: the kernel picks one; the address is printed on
//! stdout as `listening on http://127.0.0.1:PORT` and written to `--port-file`). Every `POST
//! .../_bulk` is read whole (gzip bodies are decompressed) and answered `200` with
//! `{"errors":false,"items":[...]}`, one `{"create":{"status":201}}` item per action (every
//! other line of the NDJSON body, as for `create`/`index` actions). `GET /_null/count` answers
//! the number of documents received so far (for checking a run); every other request gets `{}`.
//! One thread: it takes as little of the machine's CPU from the client as it can.

use std::io::Read as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

fn main() -> ExitCode {
    let mut port = 0u16;
    let mut port_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--port", Some(p)) if p.parse::<u16>().is_ok() => port = p.parse().unwrap_or(0),
            ("--port-file", Some(f)) => port_file = Some(f),
            _ => {
                eprintln!("usage: null-bulk [--port PORT] [--port-file FILE]");
                return ExitCode::from(2);
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("null-bulk: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("null-bulk: cannot listen on 127.0.0.1:{port}: {e}");
                return ExitCode::from(1);
            }
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
        println!("listening on http://127.0.0.1:{port}");
        if let Some(file) = port_file
            && let Err(e) = std::fs::write(&file, format!("{port}\n"))
        {
            eprintln!("null-bulk: cannot write {file}: {e}");
            return ExitCode::from(1);
        }
        let documents = Arc::new(AtomicU64::new(0));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, Arc::clone(&documents)));
        }
    })
}

/// Answers the requests of one connection until it closes.
async fn serve(stream: tokio::net::TcpStream, documents: Arc<AtomicU64>) {
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    let mut body = Vec::new();
    let mut plain = Vec::new();
    let mut answer = Vec::new();
    loop {
        let mut length = 0usize;
        let mut gzip = false;
        line.clear();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let request = line.trim_end().to_owned();
        loop {
            line.clear();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            } else if let Some(value) = lower.strip_prefix("content-encoding:") {
                gzip = value.trim() == "gzip";
            }
        }
        body.resize(length, 0);
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        answer.clear();
        if request.starts_with("POST ") && request.contains("/_bulk") {
            let text: &[u8] = if gzip {
                plain.clear();
                if flate2::read::MultiGzDecoder::new(&body[..])
                    .read_to_end(&mut plain)
                    .is_err()
                {
                    let _ = stream
                        .get_mut()
                        .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                }
                &plain
            } else {
                &body
            };
            let lines = text.iter().filter(|&&b| b == b'\n').count()
                + usize::from(text.last().is_some_and(|&b| b != b'\n'));
            let items = lines / 2;
            documents.fetch_add(items as u64, Ordering::Relaxed);
            answer.extend_from_slice(b"{\"errors\":false,\"items\":[");
            for i in 0..items {
                if i > 0 {
                    answer.push(b',');
                }
                answer.extend_from_slice(b"{\"create\":{\"status\":201}}");
            }
            answer.extend_from_slice(b"]}");
        } else if request.starts_with("GET /_null/count") {
            answer.extend_from_slice(documents.load(Ordering::Relaxed).to_string().as_bytes());
        } else {
            answer.extend_from_slice(b"{}");
        }
        // Head and body in one write: two small writes would wait for the client's delayed ACK
        // (Nagle), adding ~40 ms to every answer.
        let mut response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        )
        .into_bytes();
        response.extend_from_slice(&answer);
        if stream.get_mut().write_all(&response).await.is_err() {
            return;
        }
    }
}
