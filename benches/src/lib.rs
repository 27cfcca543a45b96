//! Sample-data generators shared by logferry's benchmarks and whole-process measurements.
//!
//! Every generator is deterministic (a fixed-seed PRNG), so runs compare like with like. Lines
//! follow the layouts of AWS's documentation with varied values (addresses, times, status codes,
//! sizes, URLs, user agents).
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

use std::fmt::Write;

/// A small deterministic PRNG (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator with a fixed seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// One of `items`.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn ipv4(&mut self) -> String {
        let v = self.next_u64();
        format!(
            "{}.{}.{}.{}",
            10 + v % 200,
            (v >> 8) % 256,
            (v >> 16) % 256,
            1 + (v >> 24) % 254
        )
    }
}

const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/api/v1/orders?id=123&expand=items",
    "/static/js/app.4f3c2a.js",
    "/login",
    "/images/logo.png",
    "/health",
];
const AGENTS: &[&str] = &[
    "curl/7.46.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "python-requests/2.31.0",
    "ELB-HealthChecker/2.0",
];
const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE"];
const STATUS: &[&str] = &["200", "200", "200", "200", "301", "404", "500", "503"];

/// Seconds since the epoch of 2024-05-01T01:00:00Z, the base of generated times.
const BASE: i64 = 1_714_521_600 + 3600;

fn iso(secs: i64, micros: u64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // 2024-05-01 is day 19844; generated times stay within May 2024.
    let day = 1 + (days - 19_844);
    format!(
        "2024-05-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Generates `n` ALB access-log lines (HTTP and HTTPS entries with every current field).
pub fn alb_lines(n: usize) -> String {
    let mut rng = Rng::new(1);
    let mut out = String::with_capacity(n * 520);
    for i in 0..n {
        let t = BASE + (i as i64) / 50;
        let https = rng.below(3) != 0;
        let scheme = if https { "https" } else { "http" };
        let port = if https { 443 } else { 80 };
        let method = rng.pick(METHODS);
        let status = rng.pick(STATUS);
        let _ = writeln!(
            out,
            "{ty} {time} app/my-loadbalancer/50dc6c495c0c9188 {cip}:{cport} {tip}:80 0.{a:03} 0.{b:03} 0.000 {status} {status} {rx} {tx} \"{method} {scheme}://www.example.com:{port}{path} HTTP/1.1\" \"{agent}\" {cipher} {proto} arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 \"Root=1-58337262-36d228ad5d99923122bbe{i:03x}\" \"www.example.com\" \"{cert}\" 1 {ctime} \"forward\" \"-\" \"-\" \"{tip}:80\" \"{status}\" \"-\" \"-\" TID_{i:016x}",
            ty = if https { "https" } else { "http" },
            time = iso(t, rng.below(1_000_000)),
            cip = rng.ipv4(),
            cport = 1024 + rng.below(60000),
            tip = rng.ipv4(),
            a = rng.below(10),
            b = rng.below(999),
            rx = 30 + rng.below(2000),
            tx = 100 + rng.below(100_000),
            path = rng.pick(PATHS),
            agent = rng.pick(AGENTS),
            cipher = if https {
                "ECDHE-RSA-AES128-GCM-SHA256"
            } else {
                "-"
            },
            proto = if https { "TLSv1.2" } else { "-" },
            cert = if https {
                "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012"
            } else {
                "-"
            },
            ctime = iso(t - 1, rng.below(1_000_000)),
        );
    }
    out
}

/// Generates `n` Classic Load Balancer lines (HTTP, HTTPS and TCP listener entries).
pub fn elb_lines(n: usize) -> String {
    let mut rng = Rng::new(2);
    let mut out = String::with_capacity(n * 300);
    for i in 0..n {
        let t = BASE + (i as i64) / 50;
        if rng.below(10) == 0 {
            let _ = writeln!(
                out,
                "{} my-loadbalancer {}:{} {}:80 0.001069 0.000028 0.000041 - - 82 305 \"- - - \" \"-\" - -",
                iso(t, rng.below(1_000_000)),
                rng.ipv4(),
                1024 + rng.below(60000),
                rng.ipv4()
            );
            continue;
        }
        let status = rng.pick(STATUS);
        let _ = writeln!(
            out,
            "{} my-loadbalancer {}:{} {}:80 0.000073 0.001048 0.000057 {status} {status} 0 {} \"{} http://www.example.com:80{} HTTP/1.1\" \"{}\" - -",
            iso(t, rng.below(1_000_000)),
            rng.ipv4(),
            1024 + rng.below(60000),
            rng.ipv4(),
            100 + rng.below(50_000),
            rng.pick(METHODS),
            rng.pick(PATHS),
            rng.pick(AGENTS),
        );
    }
    out
}

/// Generates `n` VPC flow log records in the default (version 2) format.
pub fn vpcflow_lines(n: usize) -> String {
    let mut rng = Rng::new(3);
    let mut out = String::with_capacity(n * 120);
    for i in 0..n {
        let start = BASE + (i as i64) / 20;
        let action = if rng.below(5) == 0 {
            "REJECT"
        } else {
            "ACCEPT"
        };
        let _ = writeln!(
            out,
            "2 123456789010 eni-1235b8ca123456789 {} {} {} {} {} {} {} {} {} {action} OK",
            rng.ipv4(),
            rng.ipv4(),
            1024 + rng.below(60000),
            rng.pick(&["22", "443", "80", "53", "3306"]),
            rng.pick(&["6", "6", "17", "1"]),
            1 + rng.below(100),
            40 + rng.below(100_000),
            start,
            start + 60,
        );
    }
    out
}

/// Generates `n` syslog messages, alternating RFC 3164 (as rsyslog forwards) and RFC 5424
/// (with structured data).
pub fn syslog_lines(n: usize) -> String {
    let mut rng = Rng::new(4);
    let mut out = String::with_capacity(n * 160);
    for i in 0..n {
        let pri = rng.below(192);
        let sec = i % 60;
        if i % 2 == 0 {
            let _ = writeln!(
                out,
                "<{pri}>May  1 10:{:02}:{sec:02} web-{} {}[{}]: Accepted publickey for deploy from {} port {} ssh2",
                (i / 60) % 60,
                rng.below(20),
                rng.pick(&["sshd", "sudo", "cron", "systemd"]),
                100 + rng.below(30000),
                rng.ipv4(),
                1024 + rng.below(60000),
            );
        } else {
            let _ = writeln!(
                out,
                "<{pri}>1 2024-05-01T10:{:02}:{sec:02}.{:03}Z host-{}.example.com {} {} ID{} [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"{}\"] An application event log entry {}",
                (i / 60) % 60,
                rng.below(1000),
                rng.below(20),
                rng.pick(&["evntslog", "nginx", "app"]),
                100 + rng.below(30000),
                rng.below(100),
                rng.below(10000),
                i,
            );
        }
    }
    out
}

/// Generates `n` S3 server access log lines.
pub fn s3access_lines(n: usize) -> String {
    let mut rng = Rng::new(5);
    let mut out = String::with_capacity(n * 420);
    for i in 0..n {
        let op = rng.pick(&["REST.GET.OBJECT", "REST.PUT.OBJECT", "REST.GET.VERSIONING"]);
        let status = rng.pick(&["200", "200", "404", "403"]);
        let _ = writeln!(
            out,
            "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be DOC-EXAMPLE-BUCKET1 [06/Feb/2019:00:{:02}:{:02} +0000] {} 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be 3E57427F3EXAMPLE {op} photos/{i}.jpg \"GET /DOC-EXAMPLE-BUCKET1/photos/{i}.jpg HTTP/1.1\" {status} - {} {} {} {} \"-\" \"S3Console/0.4\" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader DOC-EXAMPLE-BUCKET1.s3.us-west-1.amazonaws.com TLSV1.2 - -",
            (i / 60) % 60,
            i % 60,
            rng.ipv4(),
            rng.below(100_000),
            rng.below(100_000),
            1 + rng.below(100),
            rng.below(50),
        );
    }
    out
}

/// Generates a CloudFront standard log file: `#Version`/`#Fields` headers then `n` lines.
pub fn cloudfront_lines(n: usize) -> String {
    let mut rng = Rng::new(6);
    let mut out = String::with_capacity(n * 420 + 600);
    out.push_str("#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end\n");
    for i in 0..n {
        let _ = writeln!(
            out,
            "2019-12-04\t21:{:02}:{:02}\tLAX1-C3\t{}\t{}\tGET\td111111abcdef8.cloudfront.net\t{}\t200\t-\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\td111111abcdef8.cloudfront.net\thttps\t23\t0.{:03}\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t{}\t0.001\tHit\ttext/html\t78\t-\t-",
            (i / 60) % 60,
            i % 60,
            100 + rng.below(100_000),
            rng.ipv4(),
            rng.pick(PATHS).split('?').next().unwrap_or("/"),
            rng.below(999),
            1024 + rng.below(60000),
        );
    }
    out
}

/// Generates `n` AWS WAF log lines (JSON).
pub fn waf_lines(n: usize) -> String {
    let mut rng = Rng::new(7);
    let mut out = String::with_capacity(n * 900);
    for i in 0..n {
        let _ = writeln!(
            out,
            r#"{{"timestamp":{},"formatVersion":1,"webaclId":"arn:aws:wafv2:us-east-1:123456789012:regional/webacl/test/111","terminatingRuleId":"Default_Action","terminatingRuleType":"REGULAR","action":"{}","terminatingRuleMatchDetails":[],"httpSourceName":"ALB","httpSourceId":"123456789012-app/my-loadbalancer/50dc6c495c0c9188","ruleGroupList":[],"rateBasedRuleList":[],"nonTerminatingMatchingRules":[],"requestHeadersInserted":null,"responseCodeSent":null,"httpRequest":{{"clientIp":"{}","country":"US","headers":[{{"name":"Host","value":"www.example.com"}},{{"name":"User-Agent","value":"{}"}}],"uri":"{}","args":"","httpVersion":"HTTP/1.1","httpMethod":"{}","requestId":"1-{i:08x}-1234567890abcdef"}},"labels":[{{"name":"awswaf:managed:aws:bot-control:signal:non_browser_user_agent"}}]}}"#,
            (BASE + i as i64) * 1000 + rng.below(1000) as i64,
            rng.pick(&["ALLOW", "ALLOW", "BLOCK"]),
            rng.ipv4(),
            rng.pick(AGENTS),
            rng.pick(PATHS),
            rng.pick(METHODS),
        );
    }
    out
}

fn cloudtrail_record(rng: &mut Rng, i: usize) -> String {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:session-{i}","arn":"arn:aws:sts::123456789012:assumed-role/Admin/session-{i}","accountId":"123456789012","accessKeyId":"ASIAEXAMPLE","sessionContext":{{"attributes":{{"creationDate":"2024-05-01T00:00:00Z","mfaAuthenticated":"false"}}}}}},"eventTime":"{}","eventSource":"{}","eventName":"{}","awsRegion":"us-east-1","sourceIPAddress":"{}","userAgent":"aws-cli/2.15.0","requestParameters":{{"bucketName":"example-bucket","key":"logs/{i}.gz"}},"responseElements":null,"requestID":"{i:016X}","eventID":"{:08x}-1234-5678-9abc-def012345678","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}}"#,
        iso(BASE + i as i64, 0).replace(".000000", ""),
        rng.pick(&[
            "s3.amazonaws.com",
            "ec2.amazonaws.com",
            "iam.amazonaws.com",
            "sts.amazonaws.com"
        ]),
        rng.pick(&["GetObject", "DescribeInstances", "AssumeRole", "ListUsers"]),
        rng.ipv4(),
        rng.next_u64() as u32,
    )
}

/// Generates a CloudTrail log file (`{"Records":[...]}`) with `n` events.
pub fn cloudtrail_document(n: usize) -> String {
    let mut rng = Rng::new(8);
    let mut out = String::from(r#"{"Records":["#);
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&cloudtrail_record(&mut rng, i));
    }
    out.push_str("]}");
    out
}

/// Generates CloudWatch Logs subscription payloads as Firehose writes them: `objects`
/// concatenated JSON objects with no separator, each with `events` log events.
pub fn cloudwatch_document(objects: usize, events: usize) -> String {
    let mut rng = Rng::new(9);
    let mut out = String::new();
    for o in 0..objects {
        let _ = write!(
            out,
            r#"{{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/lambda/app-{}","logStream":"2024/05/01/[$LATEST]0123456789abcdef","subscriptionFilters":["to-firehose"],"logEvents":["#,
            o % 7
        );
        for e in 0..events {
            if e > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                r#"{{"id":"3195310660696698337880902507980421114328961542429EXAMPLE{e}","timestamp":{},"message":"REPORT RequestId: {:08x} Duration: {}.{} ms Billed Duration: 100 ms Memory Size: 128 MB Max Memory Used: 64 MB\n"}}"#,
                (BASE + (o * events + e) as i64) * 1000,
                rng.next_u64() as u32,
                rng.below(1000),
                rng.below(100),
            );
        }
        out.push_str("]}");
    }
    out
}

/// Generates an AWS Config snapshot file with `n` configuration items.
pub fn config_document(n: usize) -> String {
    let mut rng = Rng::new(10);
    let mut out = String::from(
        r#"{"fileVersion":"1.0","configSnapshotId":"1d4ea4a0-0000-4000-8000-000000000000","configurationItems":["#,
    );
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"relatedEvents":[],"relationships":[{{"resourceId":"vpc-{i:08x}","resourceType":"AWS::EC2::VPC","name":"Is contained in Vpc"}}],"configuration":{{"instanceId":"i-{:016x}","instanceType":"t3.micro","state":{{"code":16,"name":"running"}},"privateIpAddress":"{}"}},"supplementaryConfiguration":{{}},"tags":{{"Name":"web-{i}"}},"configurationItemVersion":"1.3","configurationItemCaptureTime":"{}","configurationStateId":{},"awsAccountId":"123456789012","configurationItemStatus":"OK","resourceType":"AWS::EC2::Instance","resourceId":"i-{i:016x}","ARN":"arn:aws:ec2:us-east-1:123456789012:instance/i-{i:016x}","awsRegion":"us-east-1","availabilityZone":"us-east-1a","configurationStateMd5Hash":"","resourceCreationTime":"2024-04-01T00:00:00.000Z"}}"#,
            rng.next_u64(),
            rng.ipv4(),
            iso(BASE + i as i64, 0).replace("000000Z", "000Z"),
            1_714_521_600_000u64 + i as u64,
        );
    }
    out.push_str("]}");
    out
}

/// Generates `n` JSON lines such as go-audit or an application writes.
pub fn json_lines(n: usize) -> String {
    let mut rng = Rng::new(11);
    let mut out = String::with_capacity(n * 200);
    for i in 0..n {
        let _ = writeln!(
            out,
            r#"{{"timestamp":"{}","level":"{}","msg":"request handled","path":"{}","status":{},"duration_ms":{},"request_id":"{i:016x}"}}"#,
            iso(BASE + i as i64, rng.below(1_000_000)),
            rng.pick(&["info", "info", "warn", "error"]),
            rng.pick(PATHS),
            rng.pick(STATUS),
            rng.below(2000),
        );
    }
    out
}

/// Sample input for `format` (a logferry-parse format name) holding about `n` records.
pub fn sample(format: &str, n: usize) -> Option<String> {
    Some(match format {
        "alb" => alb_lines(n),
        "elb" => elb_lines(n),
        "vpcflow" => vpcflow_lines(n),
        "syslog" => syslog_lines(n),
        "s3access" => s3access_lines(n),
        "cloudfront" => cloudfront_lines(n),
        "waf" => waf_lines(n),
        "cloudtrail" => cloudtrail_document(n),
        "cloudwatch" => cloudwatch_document(n.div_ceil(100), 100.min(n)),
        "config" => config_document(n),
        "json" => json_lines(n),
        "raw" => json_lines(n),
        _ => return None,
    })
}
