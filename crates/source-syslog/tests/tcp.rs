//! The source over TCP, with std sockets as clients.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::{config, json, start, start_unconsumed};
use logferry_core::ByteSize;
use logferry_source_syslog::Protocol;

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(common::DEADLINE)).unwrap();
    s
}

fn octet(msg: &str) -> String {
    format!("{} {msg}", msg.len())
}

fn messages(got: &[(String, String)]) -> Vec<String> {
    got.iter()
        .map(|(_, j)| json(j)["message"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn both_framings_mixed_on_one_connection() {
    let running = start(config(Protocol::Tcp));
    let mut c = connect(running.addr);
    let rfc5424 = r#"<165>1 2003-10-11T22:14:15.003Z host app 7 ID1 [a@1 k="v"] multi
line"#;
    let stream = format!(
        "{}<38>Feb  5 17:32:18 myhost sshd[1234]: newline framed\n{}<13>last, unterminated",
        octet(rfc5424),
        octet("<13>counted"),
    );
    // In small writes, so frames arrive split across reads.
    for chunk in stream.as_bytes().chunks(7) {
        c.write_all(chunk).unwrap();
    }
    c.shutdown(Shutdown::Write).unwrap();
    let got = running.wait_for_records(4);
    assert_eq!(
        messages(&got),
        [
            "multi\nline",
            "newline framed",
            "counted",
            "last, unterminated"
        ]
    );
    assert_eq!(got[0].0, "system.local4.notice");
    let r = json(&got[0].1);
    assert_eq!((&r["msgid"], &r["pid"]), (&"ID1".into(), &"7".into()));
    assert_eq!(r["structured_data"]["a@1"]["k"], "v");
    assert_eq!(got[1].0, "system.auth.info");
    running.wait_for("closed", |s| s.open_connections() == 0);
    let summary = running.stop().unwrap();
    assert_eq!(
        (
            summary.messages,
            summary.connections,
            summary.incomplete_frames
        ),
        (4, 1, 0)
    );
}

#[test]
fn oversized_and_malformed_frames() {
    let mut cfg = config(Protocol::Tcp);
    cfg.message_length_limit = Some(ByteSize::new(64));
    let running = start(cfg);
    let mut c = connect(running.addr);
    let long = format!("<13>{}", "y".repeat(100_000));
    let stream = format!(
        "{}{long}\n<bad>garbage\n99999999999 not a count\n{}",
        octet(&long),
        octet("<13>ok")
    );
    c.write_all(stream.as_bytes()).unwrap();
    let got = running.wait_for_records(5);
    let m = messages(&got);
    assert_eq!(m[0], "y".repeat(60));
    assert_eq!(m[1], "y".repeat(60));
    assert_eq!(&got[2].0, "system.unmatched");
    assert_eq!(m[2], "<bad>garbage");
    assert_eq!(m[3], "99999999999 not a count");
    assert_eq!(m[4], "ok");
    let summary = running.stop().unwrap();
    assert_eq!((summary.truncated, summary.parse_errors), (2, 1));
}

#[test]
fn a_client_disconnecting_mid_frame_ends_only_its_connection() {
    let running = start(config(Protocol::Tcp));
    let mut other = connect(running.addr);
    other.write_all(octet("<13>before").as_bytes()).unwrap();
    let mut c = connect(running.addr);
    c.write_all(format!("{}200 <13>cut sho", octet("<13>whole")).as_bytes())
        .unwrap();
    drop(c);
    running.wait_for("incomplete frame seen", |s| s.incomplete_frames() == 1);
    other.write_all(octet("<13>after").as_bytes()).unwrap();
    let got = running.wait_for_records(3);
    let mut m = messages(&got);
    m.sort();
    assert_eq!(m, ["after", "before", "whole"]);
    drop(other);
    running.wait_for("closed", |s| s.open_connections() == 0);
    assert_eq!(running.stop().unwrap().messages, 3);
}

#[test]
fn many_concurrent_clients() {
    const CLIENTS: usize = 50;
    const EACH: usize = 200;
    let running = start(config(Protocol::Tcp));
    let addr = running.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            std::thread::spawn(move || {
                let mut c = connect(addr);
                let mut out = String::new();
                for i in 0..EACH {
                    let msg = format!("<134>Feb  5 17:32:18 host app[{client}]: {i}");
                    if i % 2 == 0 {
                        out.push_str(&octet(&msg));
                    } else {
                        out.push_str(&msg);
                        out.push('\n');
                    }
                }
                c.write_all(out.as_bytes()).unwrap();
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let got = running.wait_for_records(CLIENTS * EACH);
    assert_eq!(got.len(), CLIENTS * EACH);
    // Each client's messages arrive complete and in order.
    let mut next = vec![0usize; CLIENTS];
    for (tag, j) in &got {
        assert_eq!(tag, "system.local0.info");
        let r = json(j);
        let client: usize = r["pid"].as_str().unwrap().parse().unwrap();
        assert_eq!(r["message"].as_str().unwrap(), next[client].to_string());
        next[client] += 1;
    }
    running.wait_for("closed", |s| s.open_connections() == 0);
    let summary = running.stop().unwrap();
    assert_eq!(summary.connections, CLIENTS as u64);
}

#[test]
fn connections_beyond_the_limit_are_closed() {
    let mut cfg = config(Protocol::Tcp);
    cfg.max_connections = 2;
    let running = start(cfg);
    let mut a = connect(running.addr);
    let mut b = connect(running.addr);
    a.write_all(b"<13>a\n").unwrap();
    b.write_all(b"<13>b\n").unwrap();
    running.wait_for_records(2);
    let mut c = connect(running.addr);
    running.wait_for("rejected", |s| s.rejected_connections() == 1);
    let mut buf = [0u8; 1];
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
    drop(a);
    running.wait_for("one closed", |s| s.open_connections() == 1);
    let mut d = connect(running.addr);
    d.write_all(b"<13>d\n").unwrap();
    running.wait_for_records(3);
    drop((b, d));
    running.stop().unwrap();
}

#[test]
fn idle_connections_are_closed() {
    let mut cfg = config(Protocol::Tcp);
    cfg.idle_timeout = logferry_core::ConfigDuration::new(Duration::from_millis(200));
    let running = start(cfg);
    let mut c = connect(running.addr);
    c.write_all(b"<13>hello\n").unwrap();
    running.wait_for("idle timeout", |s| s.idle_timeouts() == 1);
    let mut buf = [0u8; 1];
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
    assert_eq!(running.wait_for_records(1).len(), 1);
    running.stop().unwrap();
}

#[test]
fn a_full_output_stops_reading() {
    let mut cfg = config(Protocol::Tcp);
    cfg.batch_size = 10;
    let mut running = start_unconsumed(cfg, 1);
    let mut c = connect(running.addr);
    c.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    // Far more than the socket buffers hold: the writes stall once the source stops reading.
    let line = format!("<13>{}\n", "z".repeat(1000));
    let mut written = 0u64;
    let stalled = loop {
        match c.write(line.as_bytes()) {
            Ok(n) => written += n as u64,
            Err(_) => break true,
        }
        if written > 1 << 30 {
            break false;
        }
    };
    assert!(
        stalled,
        "a gigabyte was written without the source stopping"
    );
    assert!(running.stats.bytes() < written);
    // Once the output drains, everything written arrives.
    running.consume();
    drop(c);
    let full_lines = (written / line.len() as u64) as usize;
    running.wait_for("closed", |s| s.open_connections() == 0);
    let got = running.count();
    assert!(
        got == full_lines || got == full_lines + 1,
        "{got} records for {full_lines} whole lines written"
    );
    running.stop().unwrap();
}

#[test]
fn shutdown_ends_open_connections() {
    let running = start(config(Protocol::Tcp));
    let mut c = connect(running.addr);
    c.write_all(b"<13>partial frame without its newline")
        .unwrap();
    running.wait_for("connected", |s| s.open_connections() == 1 && s.bytes() > 0);
    let stats = running.stats.clone();
    running.stop().unwrap();
    assert_eq!(stats.open_connections(), 0);
    let mut buf = [0u8; 1];
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
}
