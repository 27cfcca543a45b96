//! The `cloudtrail` format through the public API: AWS's documented log file examples
//! (fixtures), streaming a large generated document in bounded memory, records over the size
//! limit, truncated and malformed documents, and inputs that must never panic.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use logferry_parse::{DecodeError, DecodeOptions, DecodeSummary, Format, FormatOptions};
use proptest::prelude::*;
use serde_json::{Value, json};

fn format() -> Format {
    Format::new("cloudtrail", &FormatOptions::new()).unwrap()
}

fn fixture(name: &str) -> PathBuf {
    common::fixture("cloudtrail", name)
}

/// Decodes `input`; see [`common::decode_items`].
fn decode(
    input: &[u8],
    options: &DecodeOptions,
) -> (Vec<Value>, Result<DecodeSummary, DecodeError>) {
    common::decode_items(&format(), input, options, |_| {})
}

/// Every `fixtures/cloudtrail/NAME.json` decodes to exactly `NAME.expected.json`: one
/// `{"line", "position", "record"}` per event, the record being the event with `@timestamp`.
#[test]
fn documented_examples() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixture("")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.ends_with(".json") || name.ends_with(".expected.json") {
            continue;
        }
        let input = std::fs::read(&path).unwrap();
        let expected: Value = serde_json::from_slice(
            &std::fs::read(fixture(&name.replace(".json", ".expected.json"))).unwrap(),
        )
        .unwrap();
        let (items, result) = decode(&input, &DecodeOptions::default());
        let summary = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(Value::Array(items), expected, "{name}");
        let count = expected.as_array().unwrap().len() as u64;
        assert_eq!((summary.records, summary.errors), (count, 0), "{name}");
        let lines = input
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        assert_eq!(summary.lines, lines as u64, "{name}");
        seen += 1;
    }
    // StartInstances, StopInstances, CreateKeyPair, CreateUser, AddUserToGroup, CreateRole,
    // an error code and message, all of them in one compact file, and two digest files.
    assert_eq!(seen, 10);
}

#[test]
fn passes_the_event_through_verbatim() {
    let input = std::fs::read(fixture("ec2-create-key-pair.json")).unwrap();
    let mut out = Vec::new();
    format()
        .decode(&input[..], &DecodeOptions::default(), |item| {
            item.unwrap().record.write_json(&mut out);
        })
        .unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with(r#"{"@timestamp":"2014-03-06T17:10:34Z","eventVersion":"1.0","#));
    // Values are the document's own bytes: escapes and layout are kept.
    assert!(
        out.contains(r#""keyMaterial": "\u003csensitiveDataRemoved\u003e""#),
        "{out}"
    );
    assert!(
        out.contains("\"requestParameters\":{\"keyName\": \"mykeypair\"}"),
        "{out}"
    );
}

/// AWS's page shows the CreateRole example with a line break inside a JSON string (invalid
/// JSON): that record fails alone, naming `record`, at the line where it ends.
#[test]
fn the_documented_create_role_text_fails_as_one_record() {
    let fixed = std::fs::read_to_string(fixture("iam-create-role.json")).unwrap();
    let as_shown = fixed.replace(
        r#"\"\",\n\"Effect"#,
        concat!(r#"\"\","#, "\n            ", r#"\n\"Effect"#),
    );
    assert_ne!(as_shown, fixed);
    let (items, result) = decode(as_shown.as_bytes(), &DecodeOptions::default());
    assert_eq!(
        items,
        vec![json!({"line": 33, "position": 0, "error": "record"})]
    );
    let summary = result.unwrap();
    assert_eq!((summary.records, summary.errors, summary.lines), (0, 1, 34));
}

#[test]
fn bad_records_are_reported_and_skipped() {
    let input = concat!(
        "{\"Records\":[\n",
        "{\"eventTime\":\"2014-03-06T21:22:54Z\",\"eventName\":\"A\"},\n",
        "{\"eventName\":\"no time\"},\n",
        "{\"eventTime\":\"not a time\"},\n",
        "[1, 2],\n",
        "\"a string\",\n",
        "{\"eventTime\":\"2014-03-06T21:22:55.5+01:00\",\"eventName\":\"B\"}\n",
        "]}\n"
    );
    let (items, result) = decode(input.as_bytes(), &DecodeOptions::default());
    assert_eq!(
        items,
        vec![
            json!({"line": 2, "position": 0, "record": {
                "@timestamp": "2014-03-06T21:22:54Z",
                "eventTime": "2014-03-06T21:22:54Z",
                "eventName": "A"
            }}),
            json!({"line": 3, "position": 1, "error": "eventTime"}),
            json!({"line": 4, "position": 2, "error": "eventTime"}),
            json!({"line": 5, "position": 3, "error": "record"}),
            json!({"line": 6, "position": 4, "error": "record"}),
            json!({"line": 7, "position": 5, "record": {
                "@timestamp": "2014-03-06T20:22:55.500Z",
                "eventTime": "2014-03-06T21:22:55.5+01:00",
                "eventName": "B"
            }}),
        ]
    );
    let summary = result.unwrap();
    assert_eq!((summary.lines, summary.records, summary.errors), (8, 2, 4));
}

#[test]
fn a_record_over_the_size_limit_is_skipped_with_an_error() {
    let big = "x".repeat(5000);
    let input = format!(
        r#"{{"Records":[{{"eventTime":"2014-03-06T21:22:54Z"}},{{"eventTime":"2014-03-06T21:22:54Z","big":"{big}"}},{{"eventTime":"2014-03-06T21:22:56Z"}}]}}"#
    );
    let options = DecodeOptions {
        max_line_bytes: 1000,
        ..DecodeOptions::default()
    };
    let (items, result) = decode(input.as_bytes(), &options);
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["record"]["@timestamp"], "2014-03-06T21:22:54Z");
    assert_eq!(
        items[1],
        json!({"line": 1, "position": 1, "error": "record"})
    );
    assert_eq!(items[2]["position"], 2);
    assert_eq!(items[2]["record"]["@timestamp"], "2014-03-06T21:22:56Z");
    assert_eq!(result.unwrap().errors, 1);
}

#[test]
fn documents_without_records() {
    for input in [
        "",
        " \n\t\r\n",
        "{}",
        r#"{"Records":[]}"#,
        r#"{"a":{"Records":[1]},"b":[{}]}"#,
    ] {
        let (items, result) = decode(input.as_bytes(), &DecodeOptions::default());
        assert!(items.is_empty(), "{input:?}");
        let summary = result.unwrap();
        assert_eq!((summary.records, summary.errors), (0, 0), "{input:?}");
    }
}

#[test]
fn malformed_documents_stop_with_the_line() {
    let cases: &[(&str, u64)] = &[
        ("[]", 1),
        ("{\"Records\":{}}", 1),
        (
            "{\"Records\":[{\"eventTime\":\"2014-03-06T21:22:54Z\"}]}\n{}",
            2,
        ),
        (
            "{\"Records\":[{\"eventTime\":\"2014-03-06T21:22:54Z\"}\n{}]}",
            2,
        ),
        ("{\"Records\":[1,]}", 1),
        ("{\n\"Records\"\n[]}", 3),
        ("{\"a\":1 \"b\":2}", 1),
        ("{\"a\":}", 1),
        ("{1:2}", 1),
        ("x", 1),
    ];
    for &(input, line) in cases {
        let (_, result) = decode(input.as_bytes(), &DecodeOptions::default());
        match result {
            Err(DecodeError::Document { line: got, .. }) => assert_eq!(got, line, "{input:?}"),
            other => panic!("{input:?}: {other:?}"),
        }
    }
}

/// Every strict prefix of a documented example is reported as a truncated document at the
/// line where the input stops; records completed before that point are passed on.
#[test]
fn truncated_documents_report_the_line() {
    for name in ["ec2-start-instances.json", "all-compact.json"] {
        let input = std::fs::read(fixture(name)).unwrap();
        let full = decode(&input, &DecodeOptions::default()).0.len();
        let end = input.iter().rposition(|&b| b == b'}').unwrap();
        for cut in 1..=end {
            let prefix = &input[..cut];
            let (items, result) = decode(prefix, &DecodeOptions::default());
            let line = prefix.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
            match result {
                Err(DecodeError::Document { line: got, .. }) => {
                    assert_eq!(got, line, "{name} {cut}")
                }
                other => panic!("{name} cut at {cut}: {other:?}"),
            }
            assert!(items.len() <= full);
            assert!(
                items.iter().all(|i| i.get("record").is_some()),
                "{name} {cut}"
            );
        }
    }
}

#[test]
fn enforces_the_input_limit() {
    let input = std::fs::read(fixture("all-compact.json")).unwrap();
    let options = DecodeOptions {
        max_input_bytes: Some(1000),
        ..DecodeOptions::default()
    };
    let (_, result) = decode(&input, &options);
    assert!(
        matches!(result, Err(DecodeError::TooLarge { limit: 1000 })),
        "{result:?}"
    );
}

// ---- A large document, generated on the fly, in bounded memory ----

/// Counts the bytes allocated by the current thread, to check that decoding never holds the
/// document.
struct CountingAllocator;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

#[allow(unsafe_code)]
// SAFETY: every call is forwarded unchanged to the system allocator; only sizes are counted.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// A CloudTrail document `{"Records":[...]}` of `events` events, produced as it is read.
struct GeneratedDocument {
    events: u64,
    next: u64,
    chunk: Vec<u8>,
    offset: usize,
    done: bool,
}

impl GeneratedDocument {
    fn new(events: u64) -> GeneratedDocument {
        GeneratedDocument {
            events,
            next: 0,
            chunk: b"{\"Records\":[".to_vec(),
            offset: 0,
            done: false,
        }
    }

    fn refill(&mut self) {
        self.chunk.clear();
        self.offset = 0;
        if self.next == self.events {
            if !self.done {
                self.chunk.extend_from_slice(b"]}\n");
                self.done = true;
            }
            return;
        }
        let i = self.next;
        if i > 0 {
            self.chunk.push(b',');
        }
        let (minute, second) = (i / 60 % 60, i % 60);
        let event = format!(
            concat!(
                r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:session-{i}","#,
                r#""arn":"arn:aws:sts::123456789012:assumed-role/Role/session-{i}","accountId":"123456789012","#,
                r#""accessKeyId":"ASIAEXAMPLE","sessionContext":{{"attributes":{{"creationDate":"2024-01-01T00:00:00Z","#,
                r#""mfaAuthenticated":"false"}}}}}},"eventTime":"2024-01-01T10:{minute:02}:{second:02}Z","#,
                r#""eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","#,
                r#""sourceIPAddress":"192.0.2.{ip}","userAgent":"[aws-sdk-go/1.44.0 (go1.20; linux; amd64)]","#,
                r#""requestParameters":{{"bucketName":"example-bucket","key":"logs/2024/01/01/object-{i}.json.gz","#,
                r#""Host":"example-bucket.s3.us-east-1.amazonaws.com"}},"responseElements":null,"#,
                r#""additionalEventData":{{"bytesTransferredIn":0,"bytesTransferredOut":{i},"x-amz-id-2":"EXAMPLE\/id\u002b2=="}},"#,
                r#""requestID":"EXAMPLE{i}","eventID":"00000000-0000-0000-0000-{i:012}","readOnly":true,"#,
                r#""resources":[{{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::example-bucket/logs/object-{i}.json.gz"}},"#,
                r#"{{"accountId":"123456789012","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::example-bucket"}}],"#,
                r#""eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"123456789012","#,
                r#""eventCategory":"Data","tlsDetails":{{"tlsVersion":"TLSv1.2","cipherSuite":"ECDHE-RSA-AES128-GCM-SHA256","#,
                r#""clientProvidedHostHeader":"example-bucket.s3.us-east-1.amazonaws.com"}}}}"#
            ),
            i = i,
            minute = minute,
            second = second,
            ip = i % 250,
        );
        self.chunk.extend_from_slice(event.as_bytes());
        self.next += 1;
    }
}

impl Read for GeneratedDocument {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.offset == self.chunk.len() {
            self.refill();
        }
        let rest = &self.chunk[self.offset..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.offset += n;
        Ok(n)
    }
}

#[test]
fn streams_a_50_mb_document_in_bounded_memory() {
    const EVENTS: u64 = 45_000;
    let reader = BufReader::with_capacity(64 * 1024, GeneratedDocument::new(EVENTS));
    let mut records = 0u64;
    let mut bytes = 0usize;
    let mut out = Vec::with_capacity(4096);
    let before = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let summary = format()
        .decode(reader, &DecodeOptions::default(), |item| {
            let located = item.unwrap();
            assert_eq!(located.position, records);
            out.clear();
            located.record.write_json(&mut out);
            bytes += out.len();
            records += 1;
        })
        .unwrap();
    let peak = PEAK.with(Cell::get) - before;
    assert_eq!(
        (summary.records, summary.errors, summary.lines),
        (EVENTS, 0, 1)
    );
    assert_eq!(records, EVENTS);
    assert!(bytes > 50_000_000, "only {bytes} bytes of events");
    // The reader's 64 KiB buffer, one event (~1.2 KB) and the shallow view of it: far below
    // the size of the document.
    assert!(peak < 512 * 1024, "decoding held {peak} bytes at once");
}

// ---- Never panic ----

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&input, &DecodeOptions { max_line_bytes: 64, ..DecodeOptions::default() });
        let _ = decode(&input, &DecodeOptions::default());
    }

    #[test]
    fn json_like_bytes_never_panic(input in r#"[{}\[\]",: \n\\a-z0-9eE.+-]{0,200}"#) {
        let _ = decode(input.as_bytes(), &DecodeOptions::default());
        let wrapped = format!("{{\"Records\":[{input}]}}");
        let _ = decode(wrapped.as_bytes(), &DecodeOptions::default());
    }

    #[test]
    fn mutated_documents_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut input = std::fs::read(fixture("all-compact.json")).unwrap();
        for (at, byte, op) in edits {
            let i = at.index(input.len());
            match op {
                0 => input[i] = byte,
                1 => { input.remove(i); }
                _ => input.insert(i, byte),
            }
        }
        let _ = decode(&input, &DecodeOptions { max_line_bytes: 700, ..DecodeOptions::default() });
        let cut = cut.index(input.len() + 1);
        let _ = decode(&input[..cut], &DecodeOptions::default());
    }
}
