//! Sustained syslog receive rate over UDP on loopback, and the loss at that rate.
//!
//! A `logferry_source_syslog::SyslogSource` listens on a free port; a consumer drains its
//! batches (as the shipper's router does, without a buffer behind it); a sender thread sends
//! RFC 3164 datagrams (131 bytes) at a fixed rate, then as fast as it can. Printed per rate:
//! messages sent, received, lost (%) and the receive rate. UDP loses what the socket's receive
//! buffer cannot hold, so this measures how fast the source empties it.
//!
//! ```sh
//! cargo bench -p logferry-benches --bench syslog_udp
//! ```

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use logferry_core::shutdown_pair;
use logferry_source_syslog::{Protocol, SyslogConfig, SyslogSource};

/// Messages per measured run.
const MESSAGES: u64 = 300_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    println!("syslog_udp: {MESSAGES} datagrams per run, one receiving core");
    for rate in [50_000u64, 100_000, 200_000, 0] {
        let (sent, received, elapsed) = runtime.block_on(run(rate));
        let lost = sent - received.min(sent);
        println!(
            "  offered {:>9}: sent {sent}, received {received}, lost {lost} ({:.2}%), {:.0} msgs/s received",
            if rate == 0 {
                "max".to_string()
            } else {
                format!("{rate}/s")
            },
            lost as f64 * 100.0 / sent as f64,
            received as f64 / elapsed.as_secs_f64(),
        );
    }
}

/// Sends `MESSAGES` datagrams at `rate` per second (0 = as fast as possible); returns sent,
/// received and the time from the first send to the last message received.
async fn run(rate: u64) -> (u64, u64, Duration) {
    let mut config = SyslogConfig::new(Protocol::Udp);
    config.port = 0;
    let source = SyslogSource::bind("bench", config).await.unwrap();
    let addr = source.local_addr();
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let (trigger, signal) = shutdown_pair();
    let listener = tokio::spawn(source.run(tx, signal));
    let received = Arc::new(AtomicU64::new(0));
    let counted = received.clone();
    let consumer = tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            counted.fetch_add(batch.records.len() as u64, Ordering::Relaxed);
        }
    });

    let start = Instant::now();
    let sender = std::thread::spawn(move || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut sent = 0u64;
        for i in 0..MESSAGES {
            let line = format!(
                "<86>Oct 11 22:14:15 web-{:03} sshd[{:05}]: Accepted publickey for deploy from 10.0.{}.{} port 51234",
                i % 100,
                i % 30000,
                i % 250,
                i % 200
            );
            if socket.send_to(line.as_bytes(), addr).is_ok() {
                sent += 1;
            }
            if rate > 0 {
                // Pace by the clock: the i-th message leaves at i / rate seconds.
                let due = Duration::from_secs_f64(i as f64 / rate as f64);
                while start.elapsed() < due {
                    std::hint::spin_loop();
                }
            }
        }
        sent
    });
    let sent = tokio::task::spawn_blocking(move || sender.join().unwrap())
        .await
        .unwrap();
    // Drained once the count stops moving for 200 ms (what is left in no buffer is lost).
    let mut last = (received.load(Ordering::Relaxed), Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = received.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(200) {
            break;
        }
    }
    let elapsed = last.1 - start;
    trigger.trigger();
    let _ = listener.await;
    let _ = consumer.await;
    (sent, last.0, elapsed)
}
