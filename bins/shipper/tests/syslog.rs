//! End to end: the real `logferry-shipper` binary receiving syslog over UDP and TCP (both
//! RFC 6587 framings) and shipping fluentd-shaped records into a `file://` bucket.

mod common;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Following, records};
use logferry_testkit::{free_port, wait_until};

#[test]
fn ships_syslog_received_over_udp_and_tcp() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("syslog_e2e");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (udp, tcp) = (free_port().unwrap(), free_port().unwrap());
    std::fs::write(
        dir.join("shipper.toml"),
        format!(
            r#"
data_dir = "data"
shutdown_timeout = "10s"
[sources.udp]
type = "syslog"
protocol = "udp"
port = {udp}
[sources.tcp]
type = "syslog"
protocol = "tcp"
port = {tcp}
[outputs.local]
type = "s3"
match = "system.**"
bucket = "file://bucket"
path = "syslog/"
s3_object_key_format = "%{{path}}${{tag}}/%{{time_slice}}_%{{index}}.%{{file_extension}}"
utc = true
[outputs.local.buffer]
timekey = "1s"
timekey_wait = "0s"
flush_interval = "1s"
"#
        ),
    )
    .unwrap();
    let shipper = Following::start_listening(&dir, 2);
    let deadline = || Instant::now() + Duration::from_secs(60);

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to(
            b"<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick",
            ("127.0.0.1", udp),
        )
        .unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let rfc5424 = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 99 ID47 \
                   [exampleSDID@32473 iut=\"3\"] An application event";
    write!(stream, "{} {rfc5424}", rfc5424.len()).unwrap();
    stream
        .write_all(b"<13>Mar 15 11:59:00 host2 app: newline framed\n")
        .unwrap();
    stream.flush().unwrap();

    let bucket = dir.join("bucket");
    let arrived = wait_until(deadline(), || records(&bucket).len() == 3);
    let got = records(&bucket);
    let log = shipper.log();
    let status = shipper.terminate();
    assert!(arrived, "records: {got:?}\nshipper:\n{log}");
    assert!(status.success(), "{status}\n{log}");

    let find = |ident: &str| {
        got.iter()
            .find(|(_, r)| r["ident"] == ident)
            .unwrap_or_else(|| panic!("no {ident} in {got:?}"))
    };
    let (key, su) = find("su");
    assert!(key.contains("syslog/system.auth.crit/"), "{key}");
    assert_eq!(su["host"], "mymachine");
    assert_eq!(su["pid"], "123");
    assert_eq!(su["message"], "'su root' failed for lonvick");
    assert_eq!(
        (&su["facility"], &su["severity"]),
        (&"auth".into(), &"crit".into())
    );
    let (key, event) = find("evntslog");
    assert!(key.contains("syslog/system.local4.notice/"), "{key}");
    assert_eq!(event["msgid"], "ID47");
    assert_eq!(event["structured_data"]["exampleSDID@32473"]["iut"], "3");
    assert_eq!(event["time"], "2003-10-11T22:14:15.003Z");
    assert_eq!(event["message"], "An application event");
    let (_, app) = find("app");
    assert_eq!(app["message"], "newline framed");
}

/// Bad input and many clients through the binary: malformed and oversized datagrams and
/// frames, a client that disconnects mid-frame, 40 concurrent TCP clients. Nothing crashes,
/// every good message arrives exactly once, bad ones are kept (whole or truncated) and counted.
#[test]
fn bad_input_and_many_clients_lose_nothing_else() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("syslog_bad_input");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (udp, tcp) = (free_port().unwrap(), free_port().unwrap());
    std::fs::write(
        dir.join("shipper.toml"),
        format!(
            r#"
data_dir = "data"
shutdown_timeout = "10s"
[sources.udp]
type = "syslog"
protocol = "udp"
port = {udp}
tag = "u"
message_length_limit = 200
[sources.tcp]
type = "syslog"
protocol = "tcp"
port = {tcp}
tag = "t"
message_length_limit = 200
[outputs.local]
type = "s3"
match = "**"
bucket = "file://bucket"
s3_object_key_format = "${{tag}}/%{{time_slice}}_%{{index}}.%{{file_extension}}"
utc = true
[outputs.local.buffer]
timekey = "1s"
timekey_wait = "0s"
flush_interval = "1s"
flush_at_shutdown = true
"#
        ),
    )
    .unwrap();
    let shipper = Following::start_listening(&dir, 2);

    // UDP: garbage, invalid UTF-8, an empty datagram, a priority out of range, an oversized
    // message; then a good one.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let oversized = format!("<13>Mar 15 11:59:00 host big: {}", "x".repeat(5000));
    let datagrams: [&[u8]; 6] = [
        b"\x00\x01\x02 binary garbage",
        b"<13>Mar 15 11:59:00 host app: bad \xff\xfe bytes",
        b"",
        b"<999>not a priority",
        oversized.as_bytes(),
        b"<13>Mar 15 11:59:00 host app: udp good",
    ];
    for d in datagrams {
        socket.send_to(d, ("127.0.0.1", udp)).unwrap();
    }

    // TCP: an oversized newline frame and a good one on one connection; a client that
    // promises 500 bytes and disconnects after a few.
    let mut c = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    write!(
        c,
        "<13>Mar 15 11:59:00 host big: {}\n<13>Mar 15 11:59:00 host app: tcp good\n",
        "y".repeat(3000)
    )
    .unwrap();
    drop(c);
    let mut cut = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    cut.write_all(b"500 <13>Mar 15 11:59:00 host app: cut sho")
        .unwrap();
    drop(cut);

    // 40 clients at once, 25 messages each, both framings.
    let clients: Vec<_> = (0..40)
        .map(|client| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
                for i in 0..25 {
                    let msg = format!("<14>Mar 15 11:59:00 h{client} many: c{client} m{i}");
                    if i % 2 == 0 {
                        write!(s, "{} {msg}", msg.len()).unwrap();
                    } else {
                        writeln!(s, "{msg}").unwrap();
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }

    let bucket = dir.join("bucket");
    let deadline = Instant::now() + Duration::from_secs(60);
    // 6 datagrams, 2 TCP messages, 1000 from the clients.
    let arrived = wait_until(deadline, || records(&bucket).len() >= 1008);
    let log = shipper.log();
    let status = shipper.terminate();
    let got = records(&bucket);
    assert!(arrived, "{} records\nshipper:\n{log}", got.len());
    assert!(status.success(), "{status}\n{log}");
    assert_eq!(got.len(), 1008, "nothing twice, the cut frame not at all");

    let mut many: Vec<String> = got
        .iter()
        .filter(|(_, r)| r["ident"] == "many")
        .map(|(_, r)| r["message"].as_str().unwrap().to_owned())
        .collect();
    many.sort();
    many.dedup();
    assert_eq!(many.len(), 1000, "each client message exactly once");
    let message = |m: &str| got.iter().any(|(_, r)| r["message"] == m);
    assert!(message("udp good") && message("tcp good"));
    assert!(!got.iter().any(|(_, r)| r.to_string().contains("cut sho")));

    // Kept whole under <tag>.unmatched: the empty datagram and the bad priority.
    let mut unmatched: Vec<&str> = got
        .iter()
        .filter(|(k, _)| k.starts_with("u.unmatched/"))
        .map(|(_, r)| r["message"].as_str().unwrap())
        .collect();
    unmatched.sort();
    assert_eq!(unmatched, ["", "<999>not a priority"]);
    // Text without a priority is a user.notice message, whole (RFC 3164 4.3.3, as rsyslog).
    let (key, garbage) = got
        .iter()
        .find(|(_, r)| r["message"] == "\u{0}\u{1}\u{2} binary garbage")
        .unwrap_or_else(|| panic!("{got:?}"));
    assert!(key.starts_with("u.user.notice/"), "{key}: {garbage}");
    // Invalid UTF-8 replaced, the message otherwise parsed.
    assert!(message("bad \u{fffd}\u{fffd} bytes"), "{got:?}");
    // Oversized messages cut to message_length_limit (200 bytes of the raw message).
    for (transport, ch) in [("u.", 'x'), ("t.", 'y')] {
        let big = got
            .iter()
            .find(|(k, r)| k.starts_with(transport) && r["ident"] == "big")
            .unwrap_or_else(|| panic!("no truncated {transport} message: {got:?}"));
        let text = big.1["message"].as_str().unwrap();
        assert!(text.chars().all(|c| c == ch) && text.len() < 200, "{text}");
    }
    let stopped = |source: &str| {
        log_after_stop(&dir, source)
            .unwrap_or_else(|| panic!("no summary of {source}:\n{}", read_log(&dir)))
    };
    let udp_summary = stopped("udp");
    assert!(udp_summary.contains("truncated=1"), "{udp_summary}");
    assert!(udp_summary.contains("parse_errors=2"), "{udp_summary}");
    let tcp_summary = stopped("tcp");
    assert!(tcp_summary.contains("truncated=1"), "{tcp_summary}");
    assert!(tcp_summary.contains("incomplete_frames=1"), "{tcp_summary}");
    assert!(tcp_summary.contains("messages=1002"), "{tcp_summary}");
}

fn read_log(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("shipper.log")).unwrap_or_default()
}

/// The "Syslog source stopped." line of `source`.
fn log_after_stop(dir: &std::path::Path, source: &str) -> Option<String> {
    read_log(dir)
        .lines()
        .find(|l| l.contains("Syslog source stopped.") && l.contains(&format!("source={source} ")))
        .map(str::to_owned)
}
