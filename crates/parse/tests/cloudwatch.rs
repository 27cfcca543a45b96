//! The `cloudwatch` format (CloudWatch Logs subscription data delivered by Firehose) through
//! the public API: AWS's documented payloads (fixtures), concatenated payloads, control
//! messages, errors, round trips of generated payloads, and inputs that must never panic.

mod common;

use std::path::PathBuf;

use logferry_core::Timestamp;
use logferry_parse::{DecodeError, DecodeOptions, DecodeSummary, Format, FormatOptions, Record};
use proptest::prelude::*;
use serde_json::{Value, json};

fn format() -> Format {
    Format::new("cloudwatch", &FormatOptions::new()).unwrap()
}

fn fixture(name: &str) -> PathBuf {
    common::fixture("cloudwatch", name)
}

/// Decodes `input`; see [`common::decode_items`].
fn decode(
    input: &[u8],
    options: &DecodeOptions,
) -> (Vec<Value>, Result<DecodeSummary, DecodeError>) {
    common::decode_items(&format(), input, options, |record| {
        assert!(matches!(record, Record::CloudWatch(_)))
    })
}

/// Every `fixtures/cloudwatch/NAME.json` decodes to exactly `NAME.expected.json`.
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
        seen += 1;
    }
    // The Kinesis and Lambda examples of AWS's subscription filter guide, a control message,
    // and Firehose objects holding several payloads back to back or one per line.
    assert_eq!(seen, 5);
}

#[test]
fn strings_pass_through_as_raw_json() {
    let input = std::fs::read(fixture("firehose-concatenated.json")).unwrap();
    let mut lines = Vec::new();
    let summary = format()
        .decode(&input[..], &DecodeOptions::default(), |item| {
            let mut out = Vec::new();
            item.unwrap().record.write_json(&mut out);
            lines.push(String::from_utf8(out).unwrap());
        })
        .unwrap();
    assert_eq!(summary.records, 8);
    assert_eq!(
        lines[1],
        concat!(
            r#"{"@timestamp":"2017-11-08T02:46:48.017Z","#,
            r#""id":"01234567890123456789012345678901234567890123456789012346","#,
            r#""timestamp":1510109208017,"message":"log message 2 \u00e9 \"quoted\"\ttab","#,
            r#""logGroup":"log_group_name","logStream":"log_stream_name","owner":"123456789012","#,
            r#""subscriptionFilters":["subscription_filter_name"]}"#
        )
    );
}

#[test]
fn accessors() {
    let input = std::fs::read(fixture("firehose-concatenated.json")).unwrap();
    let mut seen = false;
    format()
        .decode(&input[..], &DecodeOptions::default(), |item| {
            let located = item.unwrap();
            if located.position != 1 {
                return;
            }
            let Record::CloudWatch(record) = &located.record else {
                panic!("not cloudwatch")
            };
            assert_eq!(record.timestamp().to_string(), "2017-11-08T02:46:48.017Z");
            assert_eq!(record.millis(), 1_510_109_208_017);
            assert_eq!(record.message(), "log message 2 é \"quoted\"\ttab");
            assert_eq!(
                record.message_json(),
                r#""log message 2 \u00e9 \"quoted\"\ttab""#
            );
            assert_eq!(record.log_group().as_deref(), Some("log_group_name"));
            assert_eq!(record.log_stream().as_deref(), Some("log_stream_name"));
            assert_eq!(record.owner().as_deref(), Some("123456789012"));
            assert_eq!(
                record.subscription_filters_json(),
                Some(r#"["subscription_filter_name"]"#)
            );
            seen = true;
        })
        .unwrap();
    assert!(seen);
}

#[test]
fn control_messages_yield_nothing() {
    let input = std::fs::read(fixture("control-message.json")).unwrap();
    let twice = [&input[..], b"\n", &input[..]].concat();
    let (items, result) = decode(&twice, &DecodeOptions::default());
    assert!(items.is_empty());
    let summary = result.unwrap();
    assert_eq!((summary.lines, summary.records, summary.errors), (2, 0, 0));
}

const DATA: &str = r#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","subscriptionFilters":["f"],"logEvents":[{"id":"a","timestamp":1000,"message":"one"},{"id":"b","timestamp":2000,"message":"two"}]}"#;

#[test]
fn unknown_message_types_are_reported_once_per_payload() {
    let other = DATA.replace("DATA_MESSAGE", "OTHER_MESSAGE");
    let missing = DATA.replace(r#""messageType":"DATA_MESSAGE","#, "");
    let input = format!("{other}\n{missing}\n{DATA}\n");
    let (items, result) = decode(input.as_bytes(), &DecodeOptions::default());
    assert_eq!(
        items
            .iter()
            .map(|i| (i["line"].clone(), i["position"].clone(), i["error"].clone()))
            .collect::<Vec<_>>(),
        vec![
            (json!(1), json!(0), json!("messageType")),
            (json!(2), json!(0), json!("messageType")),
            (json!(3), json!(0), Value::Null),
            (json!(3), json!(1), Value::Null),
        ]
    );
    assert_eq!(items[3]["record"]["message"], "two");
    let summary = result.unwrap();
    assert_eq!((summary.lines, summary.records, summary.errors), (3, 2, 2));
}

#[test]
fn bad_log_events_are_reported_and_skipped() {
    let input = DATA.replace(
        r#"{"id":"b","timestamp":2000,"message":"two"}"#,
        r#"{"id":"b","timestamp":"2000","message":"two"},{"id":"c","timestamp":3000},{"id":"d","timestamp":4000,"message":"four"}"#,
    );
    let (items, result) = decode(input.as_bytes(), &DecodeOptions::default());
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["record"]["message"], "one");
    assert_eq!(
        items[1],
        json!({"line": 1, "position": 1, "error": "timestamp"})
    );
    assert_eq!(
        items[2],
        json!({"line": 1, "position": 2, "error": "message"})
    );
    assert_eq!(items[3]["position"], 3);
    assert_eq!(items[3]["record"]["@timestamp"], "1970-01-01T00:00:04Z");
    assert_eq!(result.unwrap().errors, 2);
}

#[test]
fn a_log_event_over_the_size_limit_is_skipped_with_an_error() {
    let big = "x".repeat(3000);
    let input = DATA.replace(r#""message":"one""#, &format!(r#""message":"{big}""#));
    let options = DecodeOptions {
        max_line_bytes: 1000,
        ..DecodeOptions::default()
    };
    let (items, result) = decode(input.as_bytes(), &options);
    assert_eq!(
        items[0],
        json!({"line": 1, "position": 0, "error": "logEvents"})
    );
    assert_eq!(items[1]["record"]["message"], "two");
    assert_eq!(items[1]["position"], 1);
    assert_eq!(result.unwrap().errors, 1);
}

/// Payloads whose `logEvents` come before the members the records carry are held until the
/// payload ends, and give the same records.
#[test]
fn log_events_before_the_other_members() {
    let reordered = r#"{"logEvents":[{"id":"a","timestamp":1000,"message":"one"},{"id":"b","timestamp":2000,"message":"two"}],"subscriptionFilters":["f"],"messageType":"DATA_MESSAGE","logStream":"s","logGroup":"g","owner":"1"}"#;
    let (expected, _) = decode(DATA.as_bytes(), &DecodeOptions::default());
    let (items, result) = decode(reordered.as_bytes(), &DecodeOptions::default());
    assert_eq!(items, expected);
    assert_eq!(result.unwrap().records, 2);
    // Without some of those members: records without them.
    let (items, _) = decode(
        br#"{"messageType":"DATA_MESSAGE","logEvents":[{"timestamp":1000,"message":"m"}]}"#,
        &DecodeOptions::default(),
    );
    assert_eq!(
        items,
        vec![json!({"line": 1, "position": 0, "record": {
            "@timestamp": "1970-01-01T00:00:01Z", "timestamp": 1000, "message": "m"
        }})]
    );
    // A held-back array over the size limit is one error.
    let options = DecodeOptions {
        max_line_bytes: 50,
        ..DecodeOptions::default()
    };
    let (items, result) = decode(reordered.as_bytes(), &options);
    assert_eq!(
        items,
        vec![json!({"line": 1, "position": 0, "error": "logEvents"})]
    );
    assert_eq!(result.unwrap().errors, 1);
}

#[test]
fn malformed_payload_members_are_reported() {
    let cases = [
        (DATA.replace(r#""owner":"1""#, r#""owner":1"#), "owner"),
        (DATA.replace(r#"["f"]"#, r#""f""#), "subscriptionFilters"),
        (
            DATA.replace(r#""logEvents":["#, r#""logEvents":{"a":["#)
                .replace("]}", "]}}"),
            "logEvents",
        ),
        (r#"{"messageType":"DATA_MESSAGE"}"#.to_owned(), "logEvents"),
        ("{}".to_owned(), "messageType"),
    ];
    for (input, field) in cases {
        let (items, result) = decode(input.as_bytes(), &DecodeOptions::default());
        assert_eq!(items.len(), 1, "{input}");
        assert_eq!(items[0]["error"], field, "{input}");
        assert_eq!(result.unwrap().errors, 1, "{input}");
    }
}

#[test]
fn malformed_objects_stop_with_the_line() {
    let cases: &[(&str, u64)] = &[
        ("[]", 1),
        ("{\"messageType\":\"DATA_MESSAGE\"}\n\nx", 3),
        ("{\"messageType\":\"DATA_MESSAGE\",}", 1),
        (
            concat!(
                r#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"s","#,
                r#""subscriptionFilters":[],"logEvents":[{"timestamp":1,"message":"m"}"#,
                "\n{}]}"
            ),
            2,
        ),
    ];
    for &(input, line) in cases {
        match decode(input.as_bytes(), &DecodeOptions::default()).1 {
            Err(DecodeError::Document { line: got, .. }) => assert_eq!(got, line, "{input:?}"),
            other => panic!("{input:?}: {other:?}"),
        }
    }
    let (items, result) = decode(b"", &DecodeOptions::default());
    assert!(items.is_empty() && result.unwrap().records == 0);
}

/// Every strict prefix of an object of several payloads is reported as truncated at the line
/// where the input stops, unless it ends between payloads; records completed before that
/// point are passed on.
#[test]
fn truncated_objects_report_the_line() {
    let input = std::fs::read(fixture("newline-delimited.json")).unwrap();
    let (full, _) = decode(&input, &DecodeOptions::default());
    for cut in 1..input.len() {
        let prefix = &input[..cut];
        let (items, result) = decode(prefix, &DecodeOptions::default());
        // Each payload of the fixture is one line.
        let between_payloads = prefix.ends_with(b"\n") || input[cut] == b'\n';
        let line = prefix.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        match result {
            Ok(_) => assert!(between_payloads, "cut at {cut}"),
            Err(DecodeError::Document { line: got, .. }) => {
                assert!(!between_payloads, "cut at {cut}");
                assert_eq!(got, line, "cut at {cut}");
            }
            Err(e) => panic!("cut at {cut}: {e}"),
        }
        assert_eq!(items[..], full[..items.len()], "cut at {cut}");
    }
}

#[test]
fn enforces_the_input_limit() {
    let input = std::fs::read(fixture("newline-delimited.json")).unwrap();
    let options = DecodeOptions {
        max_input_bytes: Some(500),
        ..DecodeOptions::default()
    };
    let result = decode(&input, &options).1;
    assert!(
        matches!(result, Err(DecodeError::TooLarge { limit: 500 })),
        "{result:?}"
    );
}

// ---- Round trips ----

#[derive(Debug, Clone)]
struct Event {
    id: String,
    millis: i64,
    message: String,
}

#[derive(Debug, Clone)]
struct Payload {
    data: bool,
    owner: String,
    log_group: String,
    log_stream: String,
    filters: Vec<String>,
    events: Vec<Event>,
    /// Whether `logEvents` comes first rather than last.
    events_first: bool,
}

fn event() -> impl Strategy<Value = Event> {
    // Years 0 to 9999, in milliseconds.
    (
        "[0-9]{0,56}",
        -62_167_219_200_000i64..253_402_300_800_000,
        any::<String>(),
    )
        .prop_map(|(id, millis, message)| Event {
            id,
            millis,
            message,
        })
}

fn payload() -> impl Strategy<Value = Payload> {
    (
        prop::bool::weighted(0.8),
        "[0-9]{12}",
        "/[ -~]{0,30}",
        any::<String>(),
        prop::collection::vec("[a-zA-Z0-9_-]{1,20}", 0..3),
        prop::collection::vec(event(), 0..6),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(data, owner, log_group, log_stream, filters, events, events_first)| Payload {
                data,
                owner,
                log_group,
                log_stream,
                filters,
                events,
                events_first,
            },
        )
}

fn serialize(payload: &Payload, pretty: bool) -> String {
    let events: Vec<Value> = payload
        .events
        .iter()
        .map(|e| json!({"id": e.id, "timestamp": e.millis, "message": e.message}))
        .collect();
    let members = [
        (
            "messageType",
            json!(if payload.data {
                "DATA_MESSAGE"
            } else {
                "CONTROL_MESSAGE"
            }),
        ),
        ("owner", json!(payload.owner)),
        ("logGroup", json!(payload.log_group)),
        ("logStream", json!(payload.log_stream)),
        ("subscriptionFilters", json!(payload.filters)),
    ];
    let to_text = |v: &Value| {
        if pretty {
            serde_json::to_string_pretty(v)
        } else {
            serde_json::to_string(v)
        }
        .unwrap()
    };
    let mut parts: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}:{}", json!(k), to_text(v)))
        .collect();
    let events = format!("\"logEvents\":{}", to_text(&Value::Array(events)));
    if payload.events_first {
        parts.insert(0, events);
    } else {
        parts.push(events);
    }
    let sep = if pretty { ",\n  " } else { "," };
    format!("{{{}}}", parts.join(sep))
}

proptest! {
    #[test]
    fn round_trip(
        payloads in prop::collection::vec(payload(), 1..5),
        separators in prop::collection::vec(prop::sample::select(vec!["", "\n", " \r\n", "\n\n"]), 5),
        pretty in any::<bool>(),
    ) {
        let mut input = String::new();
        let mut expected = Vec::new();
        for (payload, sep) in payloads.iter().zip(&separators) {
            input.push_str(sep);
            input.push_str(&serialize(payload, pretty));
            if !payload.data {
                continue;
            }
            for e in &payload.events {
                expected.push(json!({
                    "@timestamp": Timestamp::from_unix_millis(e.millis).unwrap().to_string(),
                    "id": e.id,
                    "timestamp": e.millis,
                    "message": e.message,
                    "logGroup": payload.log_group,
                    "logStream": payload.log_stream,
                    "owner": payload.owner,
                    "subscriptionFilters": payload.filters,
                }));
            }
        }
        let (items, result) = decode(input.as_bytes(), &DecodeOptions::default());
        let summary = result.unwrap();
        prop_assert_eq!(summary.errors, 0);
        prop_assert_eq!(summary.records, expected.len() as u64);
        let records: Vec<Value> = items.iter().map(|i| i["record"].clone()).collect();
        prop_assert_eq!(records, expected);
        for (i, item) in items.iter().enumerate() {
            prop_assert_eq!(&item["position"], &json!(i));
        }
        let lines = input.matches('\n').count() + usize::from(!input.ends_with('\n'));
        prop_assert_eq!(summary.lines, lines as u64);
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&input, &DecodeOptions { max_line_bytes: 64, ..DecodeOptions::default() });
        let _ = decode(&input, &DecodeOptions::default());
    }

    #[test]
    fn json_like_bytes_never_panic(input in r#"[{}\[\]",: \n\\a-z0-9eE.+-]{0,200}"#) {
        let _ = decode(input.as_bytes(), &DecodeOptions::default());
        let wrapped = format!(r#"{{"messageType":"DATA_MESSAGE","logEvents":[{input}]}}"#);
        let _ = decode(wrapped.as_bytes(), &DecodeOptions::default());
    }

    #[test]
    fn mutated_objects_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut input = std::fs::read(fixture("firehose-concatenated.json")).unwrap();
        for (at, byte, op) in edits {
            let i = at.index(input.len());
            match op {
                0 => input[i] = byte,
                1 => { input.remove(i); }
                _ => input.insert(i, byte),
            }
        }
        let _ = decode(&input, &DecodeOptions { max_line_bytes: 150, ..DecodeOptions::default() });
        let cut = cut.index(input.len() + 1);
        let _ = decode(&input[..cut], &DecodeOptions::default());
    }
}
