//! The source over UDP, with std sockets as clients.

mod common;

use std::net::UdpSocket;

use common::{config, json, start, start_unconsumed};
use logferry_source_syslog::Protocol;

fn client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

#[test]
fn datagrams_become_records_malformed_ones_kept_whole() {
    let running = start(config(Protocol::Udp));
    let c = client();
    let messages: [&[u8]; 4] = [
        b"<38>Feb  5 17:32:18 myhost sshd[1234]: Accepted publickey for bob\n",
        br#"<165>1 2003-10-11T22:14:15.003Z mymachine evntslog - ID47 [exampleSDID@32473 iut="3"] An application event"#,
        b"<1000>not a syslog message",
        b"<13>bad utf-8 \xff",
    ];
    for m in messages {
        c.send_to(m, running.addr).unwrap();
    }
    let got = running.wait_for_records(4);
    // Datagrams on loopback arrive in order.
    assert_eq!(got[0].0, "system.auth.info");
    let r = json(&got[0].1);
    assert_eq!(
        (&r["host"], &r["ident"], &r["pid"], &r["message"]),
        (
            &"myhost".into(),
            &"sshd".into(),
            &"1234".into(),
            &"Accepted publickey for bob".into()
        )
    );
    assert_eq!(got[1].0, "system.local4.notice");
    let r = json(&got[1].1);
    assert_eq!(r["msgid"], "ID47");
    assert_eq!(r["time"], "2003-10-11T22:14:15.003Z");
    assert_eq!(r["structured_data"]["exampleSDID@32473"]["iut"], "3");
    assert!(r.get("pid").is_none());
    assert_eq!(got[2].0, "system.unmatched");
    assert_eq!(
        json(&got[2].1),
        serde_json::json!({"message": "<1000>not a syslog message"})
    );
    assert_eq!(json(&got[3].1)["message"], "bad utf-8 \u{fffd}");
    let summary = running.stop().unwrap();
    assert_eq!(
        (summary.messages, summary.parse_errors, summary.dropped),
        (4, 1, 0)
    );
}

#[test]
fn oversized_datagrams_are_truncated() {
    let mut cfg = config(Protocol::Udp);
    cfg.message_length_limit = Some(logferry_core::ByteSize::new(100));
    let running = start(cfg);
    let mut big = b"<13>".to_vec();
    big.extend(std::iter::repeat_n(b'x', 5000));
    client().send_to(&big, running.addr).unwrap();
    let got = running.wait_for_records(1);
    assert_eq!(json(&got[0].1)["message"].as_str().unwrap().len(), 96);
    assert_eq!(running.stop().unwrap().truncated, 1);
}

#[test]
fn a_full_output_drops_datagrams_without_blocking_the_socket() {
    // A channel of one batch that nobody reads, one record per batch: the first batch fits,
    // the other 19 are dropped.
    let mut cfg = config(Protocol::Udp);
    cfg.batch_size = 1;
    let mut running = start_unconsumed(cfg, 1);
    let c = client();
    for i in 0..20 {
        c.send_to(format!("<13>message {i}").as_bytes(), running.addr)
            .unwrap();
    }
    running.wait_for("all received", |s| s.messages() == 20);
    assert_eq!(running.stats.dropped(), 19);
    running.consume();
    assert_eq!(running.wait_for_records(1).len(), 1);
    // The socket is still read.
    c.send_to(b"<13>after", running.addr).unwrap();
    let got = running.wait_for_records(2);
    assert_eq!(json(&got[1].1)["message"], "after");
    let summary = running.stop().unwrap();
    assert_eq!((summary.messages, summary.dropped), (21, 19));
}

#[test]
fn a_dropped_receiver_stops_the_source_with_an_error() {
    let running = start_unconsumed(config(Protocol::Udp), 1);
    let (runtime, addr, task) = running.into_parts();
    client().send_to(b"<13>nobody listens", addr).unwrap();
    let result = runtime.block_on(task).unwrap();
    assert!(
        matches!(
            result,
            Err(logferry_source_syslog::SyslogError::OutputClosed)
        ),
        "{result:?}"
    );
}
