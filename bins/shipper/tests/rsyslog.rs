//! End to end with real syslog clients: `logger` sends RFC 3164 and RFC 5424 messages to an
//! `rsyslogd` (Debian's, installed by `scripts/install-test-deps`), which forwards each of them
//! to the shipper over UDP, over TCP (newline framing, RFC 5424 format) and over TCP with
//! `TCP_Framing="octet-counted"` and over TLS with a client certificate (rsyslog's `ossl`
//! stream driver, Debian's `rsyslog-openssl`); the shipper stores them in a `file://` bucket
//! (read while waiting) and in S3 (moto), which holds the same records after shutdown.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Following, records};
use logferry_testkit::{
    MotoServer, TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY, free_port, tls_fixture,
    wait_until,
};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn rsyslog_forwards_logger_messages_over_udp_tcp_octet_counted_tcp_and_tls() {
    assert!(
        Path::new(RSYSLOGD).is_file(),
        "{RSYSLOGD} is missing: run scripts/install-test-deps"
    );
    let ossl = std::fs::read_dir("/usr/lib")
        .unwrap()
        .flatten()
        .any(|d| d.path().join("rsyslog/lmnsd_ossl.so").is_file());
    assert!(
        ossl,
        "rsyslog's openssl driver (Debian's rsyslog-openssl) is missing: run scripts/install-test-deps"
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rsyslog_e2e");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("rsyslog")).unwrap();
    let [udp, tcp, octet, tls, rsyslog_in] = [(); 5].map(|_| free_port().unwrap());
    let fixture = |name: &str| tls_fixture(name).display().to_string();
    let moto = MotoServer::start().expect("moto_server must run (scripts/install-test-deps)");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(moto.create_bucket("syslog")).unwrap();

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
tag = "udp"
[sources.tcp]
type = "syslog"
protocol = "tcp"
port = {tcp}
tag = "tcp"
[sources.octet]
type = "syslog"
protocol = "tcp"
port = {octet}
tag = "octet"
[sources.tls]
type = "syslog"
protocol = "tcp"
port = {tls}
tag = "tls"
[sources.tls.tls]
cert_path = "{server_cert}"
private_key_path = "{server_key}"
ca_path = "{ca}"
client_cert_auth = true
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
[outputs.moto]
type = "s3"
match = "**"
bucket = "syslog"
region = "{TEST_REGION}"
endpoint = "{endpoint}"
force_path_style = true
path = "syslog"
s3_object_key_format = "%{{path}}/${{tag}}/%{{time_slice}}_%{{index}}.%{{file_extension}}"
utc = true
[outputs.moto.credentials]
aws_key_id = "{TEST_ACCESS_KEY_ID}"
aws_sec_key = "{TEST_SECRET_ACCESS_KEY}"
[outputs.moto.buffer]
timekey = "1s"
timekey_wait = "0s"
flush_interval = "1s"
flush_at_shutdown = true
"#,
            server_cert = fixture("server.pem"),
            server_key = fixture("server.key"),
            ca = fixture("ca.pem"),
            endpoint = moto.endpoint(),
        ),
    )
    .unwrap();
    let shipper = Following::start_listening(&dir, 4);
    let log = || shipper.log();
    let deadline = || Instant::now() + Duration::from_secs(60);

    // rsyslogd in the foreground with its own state: input on UDP, three forwarding actions.
    // The RFC 3164 actions use a template that always ends the tag with a colon: rsyslog's
    // default forward format omits it for messages that arrived as RFC 5424, and
    // logferry-parse's RFC 3164 parser only takes a tag that ends in a colon (fluentd's regex
    // also takes one that ends in a space; see issue 4's note).
    let work = dir.join("rsyslog");
    std::fs::write(
        work.join("rsyslog.conf"),
        format!(
            r#"
global(workDirectory="{work}")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{rsyslog_in}")
template(name="Bsd" type="string" string="<%PRI%>%TIMESTAMP% %HOSTNAME% %APP-NAME%:%msg:::sp-if-no-1st-sp%%msg%")
*.* action(type="omfwd" target="127.0.0.1" port="{udp}" protocol="udp" template="Bsd")
*.* action(type="omfwd" target="127.0.0.1" port="{tcp}" protocol="tcp" template="RSYSLOG_SyslogProtocol23Format")
*.* action(type="omfwd" target="127.0.0.1" port="{octet}" protocol="tcp" TCP_Framing="octet-counted" template="Bsd")
*.* action(type="omfwd" target="127.0.0.1" port="{tls}" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format"
        StreamDriver="ossl" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost"
        StreamDriver.CAFile="{ca}" StreamDriver.CertFile="{client_cert}" StreamDriver.KeyFile="{client_key}")
"#,
            work = work.display(),
            ca = fixture("ca.pem"),
            client_cert = fixture("client.pem"),
            client_key = fixture("client.key"),
        ),
    )
    .unwrap();
    let rsyslog_log = work.join("rsyslogd.log");
    let _rsyslogd = Killed(
        Command::new(RSYSLOGD)
            .args(["-n", "-f"])
            .arg(work.join("rsyslog.conf"))
            .arg("-i")
            .arg(work.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&rsyslog_log).unwrap())
            .spawn()
            .unwrap(),
    );

    let bucket = dir.join("bucket");
    let logger = |args: &[&str]| {
        let status = Command::new("logger")
            .args(["-n", "127.0.0.1", "-P", &rsyslog_in.to_string(), "-d"])
            .args(args)
            .status()
            .unwrap();
        assert!(status.success(), "logger {args:?}");
    };
    // rsyslogd needs a moment to listen: send a probe until one arrives through every path.
    let ready = wait_until(deadline(), || {
        logger(&["-t", "probe", "ready?"]);
        let got = records(&bucket);
        ["udp.", "tcp.", "octet.", "tls."].iter().all(|p| {
            got.iter()
                .any(|(k, r)| k.starts_with(p) && r["ident"] == "probe")
        })
    });
    assert!(
        ready,
        "no probe through every path; shipper:\n{}\nrsyslogd:\n{}",
        log(),
        std::fs::read_to_string(&rsyslog_log).unwrap_or_default()
    );

    logger(&["-t", "myapp", "-p", "local3.warning", "hello from logger"]);
    logger(&[
        "--rfc5424",
        "-t",
        "app5424",
        "-p",
        "auth.notice",
        "--msgid",
        "ID47",
        "--sd-id",
        "zoo@32473",
        "--sd-param",
        "tiger=\"hungry\"",
        "structured hello",
    ]);
    let arrived = wait_until(deadline(), || {
        let got = records(&bucket);
        let count = |ident: &str| got.iter().filter(|(_, r)| r["ident"] == ident).count();
        count("myapp") >= 4 && count("app5424") >= 4
    });
    let got = records(&bucket);
    let summary: Vec<String> = got
        .iter()
        .map(|(k, r)| format!("{k} {}", r["ident"]))
        .collect();
    assert!(
        arrived,
        "records (key ident): {summary:#?}\nshipper:\n{}",
        log()
    );

    for transport in ["udp", "tcp", "octet", "tls"] {
        let of = |ident: &str| {
            got.iter()
                .find(|(k, r)| k.starts_with(&format!("{transport}.")) && r["ident"] == ident)
                .map(|(k, r)| (k.as_str(), r))
                .unwrap_or_else(|| panic!("no {ident} over {transport}: {got:#?}"))
        };
        let (key, plain) = of("myapp");
        assert!(
            key.starts_with(&format!("{transport}.local3.warn/")),
            "{key}"
        );
        assert_eq!(plain["message"], "hello from logger", "{transport}");
        assert_eq!(plain["facility"], "local3");
        assert_eq!(plain["severity"], "warn", "fluentd's name");
        assert!(plain["host"].is_string(), "{plain}");
        let (key, structured) = of("app5424");
        assert!(
            key.starts_with(&format!("{transport}.auth.notice/")),
            "{key}"
        );
        assert_eq!(structured["message"], "structured hello", "{transport}");
        if transport == "tcp" || transport == "tls" {
            // Forwarded in RFC 5424 form: message id and structured data survive.
            assert_eq!(structured["msgid"], "ID47", "{structured}");
            assert_eq!(
                structured["structured_data"]["zoo@32473"]["tiger"], "hungry",
                "{structured}"
            );
        }
    }

    // Stopped, the shipper flushes both buffers: S3 holds exactly what the local bucket holds.
    let status = shipper.terminate();
    assert!(status.success(), "{status}");
    let canonical = |records: Vec<(String, serde_json::Value)>| {
        let mut lines: Vec<String> = records.into_iter().map(|(_, r)| r.to_string()).collect();
        lines.sort();
        lines
    };
    let local = canonical(records(&bucket));
    let in_s3 = canonical(runtime.block_on(async {
        let mut out = Vec::new();
        for key in moto.list_keys("syslog", "syslog/").await.unwrap() {
            let gz = moto.get_object_bytes("syslog", &key).await.unwrap();
            let mut text = String::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_string(&mut text)
                .unwrap();
            assert!(key.ends_with(".gz"), "{key}");
            for line in text.lines() {
                out.push((key.clone(), serde_json::from_str(line).unwrap()));
            }
        }
        out
    }));
    assert!(local.len() >= 8, "{local:#?}");
    assert_eq!(in_s3, local);
}
