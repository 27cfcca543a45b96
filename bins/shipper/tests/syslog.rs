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
