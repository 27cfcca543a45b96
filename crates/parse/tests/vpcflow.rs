//! VPC flow logs: AWS's documented examples, custom layouts (header line and `fields` option),
//! errors, a round trip of generated records and a never-panics check.

mod writer;

use std::path::{Path, PathBuf};

use logferry_parse::{DecodeOptions, Format, FormatOptions, ParseErrorKind, Record};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Every field of AWS's "Available fields" table (versions 2 to 11), in its order.
const ALL_FIELDS: [&str; 54] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "instance-id",
    "tcp-flags",
    "type",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "region",
    "az-id",
    "sublocation-type",
    "sublocation-id",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "flow-direction",
    "traffic-path",
    "ecs-cluster-arn",
    "ecs-cluster-name",
    "ecs-container-instance-arn",
    "ecs-container-instance-id",
    "ecs-container-id",
    "ecs-second-container-id",
    "ecs-service-name",
    "ecs-task-definition-arn",
    "ecs-task-arn",
    "ecs-task-id",
    "reject-reason",
    "resource-id",
    "encryption-status",
    "instance-tag",
    "instance-tag-2",
    "interface-tag",
    "interface-tag-2",
    "asg-tag",
    "asg-tag-2",
    "interface-type",
    "next-hop-interface-id",
    "next-hop-subnet-id",
    "next-hop-az-id",
    "next-hop-vpc-id",
    "next-hop-interface-type",
];

/// The fields whose values are integers (JSON numbers).
const INT_FIELDS: [&str; 11] = [
    "version",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "tcp-flags",
    "traffic-path",
    "encryption-status",
];

/// Marks, in expected files, a record stamped with the time it was read.
const TIME_OF_READING: &str = "<time of reading>";

const FIXTURES: [&str; 9] = [
    "accepted-rejected",
    "no-data-skipped",
    "security-group-nacl",
    "ipv6",
    "tcp-flags",
    "nat-gateway",
    "transit-gateway",
    "traffic-path",
    "all-fields-v11",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vpcflow")
        .join(name)
}

fn format(options: &FormatOptions) -> Format {
    Format::new("vpcflow", options).expect("valid vpcflow options")
}

/// Decodes `input` and returns each record's JSON (see [`to_json`]), failing on any error.
fn decode_ok(format: &Format, input: &[u8]) -> Vec<Value> {
    let mut records = Vec::new();
    let summary = format
        .decode(input, &DecodeOptions::default(), |item| {
            let located = item.unwrap_or_else(|e| panic!("unexpected error: {e}"));
            let mut out = Vec::new();
            located.record.write_json(&mut out);
            assert!(out.starts_with(b"{\"@timestamp\":"), "@timestamp first");
            records.push(writer::to_json(&located.record));
        })
        .expect("decodes");
    assert_eq!(summary.errors, 0);
    records
}

/// Compares records with the expected ones; `<time of reading>` must be a time of this run.
fn assert_records(actual: &[Value], expected: &[Value], started: &str, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: number of records");
    for (i, (actual, expected)) in actual.iter().zip(expected).enumerate() {
        let mut actual = actual.clone();
        if expected["@timestamp"] == TIME_OF_READING {
            let read = actual["@timestamp"]
                .as_str()
                .expect("@timestamp is a string")
                .to_owned();
            // RFC 3339 UTC strings with a 4-digit year compare in time order... except that
            // fractions make `...:00Z` sort after `...:00.5Z`; compare up to the seconds.
            assert!(
                read.get(..19) >= started.get(..19),
                "{what} #{i}: {read} before {started}"
            );
            actual["@timestamp"] = json!(TIME_OF_READING);
        }
        assert_eq!(&actual, expected, "{what}: record {i}");
    }
}

fn now_rfc3339() -> String {
    let format = format(&FormatOptions::new().with("fields", "srcaddr"));
    let mut parser = format.line_parser();
    let record = parser.parse_line("10.0.0.1").unwrap().unwrap();
    record.timestamp().to_string()
}

#[test]
fn documented_examples_give_the_expected_json() {
    let started = now_rfc3339();
    let format = format(&FormatOptions::new());
    for name in FIXTURES {
        let input = std::fs::read(fixture(&format!("{name}.log"))).unwrap();
        let expected: Vec<Value> = serde_json::from_slice(
            &std::fs::read(fixture(&format!("{name}.expected.json"))).unwrap(),
        )
        .unwrap();
        let actual = decode_ok(&format, &input);
        assert_records(&actual, &expected, &started, name);
    }
}

#[test]
fn fields_option_gives_the_same_records_as_the_header_line() {
    let started = now_rfc3339();
    for name in FIXTURES {
        let input = std::fs::read_to_string(fixture(&format!("{name}.log"))).unwrap();
        let Some((header, body)) = input.split_once('\n') else {
            panic!("{name} is empty")
        };
        if !header.starts_with(|c: char| c.is_ascii_lowercase()) {
            continue; // default format: no header line
        }
        let expected: Vec<Value> = serde_json::from_slice(
            &std::fs::read(fixture(&format!("{name}.expected.json"))).unwrap(),
        )
        .unwrap();
        // The LogFormat parameter's `${field}` syntax and plain names are both accepted.
        let dollar: Vec<String> = header.split(' ').map(|f| format!("${{{f}}}")).collect();
        for fields in [dollar.join(" "), header.to_owned()] {
            let format = format(&FormatOptions::new().with("fields", fields.as_str()));
            let actual = decode_ok(&format, body.as_bytes());
            assert_records(&actual, &expected, &started, name);
            // The header line wins over the option: here they agree.
            let actual = decode_ok(&format, input.as_bytes());
            assert_records(&actual, &expected, &started, name);
        }
    }
}

#[test]
fn header_line_wins_over_the_fields_option_for_its_input() {
    let format = format(&FormatOptions::new().with("fields", "srcaddr dstaddr"));
    let input = std::fs::read(fixture("traffic-path.log")).unwrap();
    let records = decode_ok(&format, &input);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["traffic_path"], Value::Null);
    assert_eq!(records[1]["traffic_path"], 8);
    assert_eq!(records[1]["pkt_dst_aws_service"], "S3");
    // A new input (a new line parser) starts again from the option.
    let mut parser = format.line_parser();
    let Some(Record::VpcFlow(record)) = parser.parse_line("10.0.0.1 10.0.0.2").unwrap() else {
        panic!("a VPC flow log record")
    };
    assert_eq!(record.get("dstaddr"), Some("10.0.0.2"));
}

#[test]
fn errors_name_the_field_and_do_not_stop_the_input() {
    let input = "version srcport start\n2 80 1418530010\n2 http 1418530010\n2 80\n2 - -\n2 443 1418530070 extra\n";
    let format = format(&FormatOptions::new());
    let mut seen = Vec::new();
    let summary = format
        .decode(
            input.as_bytes(),
            &DecodeOptions::default(),
            |item| match item {
                Ok(located) => {
                    seen.push((located.line, Ok(located.record.timestamp().to_string())))
                }
                Err(e) => seen.push((e.line, Err((e.error.field(), e.error.kind().clone())))),
            },
        )
        .unwrap();
    assert_eq!(summary.lines, 6);
    assert_eq!(summary.records, 3);
    assert_eq!(summary.errors, 2);
    let expected_kind = ParseErrorKind::Invalid {
        expected: "an unsigned integer or `-`",
    };
    assert_eq!(seen[0], (2, Ok("2014-12-14T04:06:50Z".to_owned())));
    assert_eq!(seen[1], (3, Err(("srcport", expected_kind))));
    assert_eq!(seen[2], (4, Err(("start", ParseErrorKind::Missing))));
    assert!(
        matches!(seen[3], (5, Ok(_))),
        "no start or end: the time of reading"
    );
    assert_eq!(seen[4], (6, Ok("2014-12-14T04:07:50Z".to_owned())));
}

#[test]
fn fields_option_errors_name_the_unknown_field() {
    let err = Format::new(
        "vpcflow",
        &FormatOptions::new().with("fields", "version pkt-src-addr"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`pkt-src-addr`") && err.contains("fields"),
        "{err}"
    );
    let err = Format::new("vpcflow", &FormatOptions::new().with("field", "version")).unwrap_err();
    assert!(err.to_string().contains("fields"), "{err}");
}

#[test]
fn accessors_read_values_as_written() {
    let format = format(&FormatOptions::new());
    let mut parser = format.line_parser();
    let line = "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA";
    let Some(Record::VpcFlow(record)) = parser.parse_line(line).unwrap() else {
        panic!("a VPC flow log record")
    };
    assert_eq!(record.get("log-status"), Some("NODATA"));
    assert_eq!(record.get("srcaddr"), None);
    assert_eq!(record.get("no-such-field"), None);
    let fields: Vec<(&str, Option<&str>)> = record.fields().collect();
    assert_eq!(fields.len(), 14);
    assert_eq!(fields[0], ("version", Some("2")));
    assert_eq!(fields[3], ("srcaddr", None));
}

/// A value for `field` as AWS writes it (`None`: `-`).
fn value_strategy(field: &'static str) -> BoxedStrategy<Option<String>> {
    if field == "start" || field == "end" {
        // Unix seconds AWS can write (the output's years are limited to 0..=9999).
        prop::option::of((0u64..=4_102_444_800).prop_map(|n| n.to_string())).boxed()
    } else if INT_FIELDS.contains(&field) {
        prop::option::of(any::<u64>().prop_map(|n| n.to_string())).boxed()
    } else {
        // IDs, addresses, ARNs, percent-encoded tags: no space, never `-` alone, and never a
        // field name (which starts lower case), so a record is never taken for a header.
        prop::option::of("[A-Z0-9][A-Za-z0-9:./_%=+-]{0,40}").boxed()
    }
}

/// A layout (1 to 54 distinct fields in any order) and one value per field.
fn record_strategy() -> impl Strategy<Value = Vec<(&'static str, Option<String>)>> {
    prop::sample::subsequence(ALL_FIELDS.to_vec(), 1..=ALL_FIELDS.len())
        .prop_shuffle()
        .prop_flat_map(|layout| {
            let values: Vec<_> = layout.iter().map(|field| value_strategy(field)).collect();
            (Just(layout), values)
        })
        .prop_map(|(layout, values)| layout.into_iter().zip(values).collect())
}

/// The default layout with generated values.
fn default_record_strategy() -> impl Strategy<Value = Vec<(&'static str, Option<String>)>> {
    let layout = &ALL_FIELDS[..14];
    let values: Vec<_> = layout.iter().map(|field| value_strategy(field)).collect();
    values.prop_map(move |values| layout.iter().copied().zip(values).collect())
}

/// Formats a record as AWS does: values separated by one space, `-` for absent.
fn aws_line(record: &[(&str, Option<String>)]) -> String {
    let values: Vec<&str> = record
        .iter()
        .map(|(_, v)| v.as_deref().unwrap_or("-"))
        .collect();
    values.join(" ")
}

/// The JSON object the record must give, without `@timestamp`.
fn expected_object(record: &[(&str, Option<String>)]) -> Map<String, Value> {
    let mut object = Map::new();
    for (field, value) in record {
        let Some(value) = value else { continue };
        let value = if INT_FIELDS.contains(field) {
            json!(value.parse::<u64>().unwrap())
        } else {
            json!(value)
        };
        object.insert(field.replace('-', "_"), value);
    }
    object
}

/// Parses `line` after an optional header and checks it against `record`.
fn check_round_trip(
    format: &Format,
    header: Option<&str>,
    record: &[(&str, Option<String>)],
) -> Result<(), TestCaseError> {
    let line = aws_line(record);
    let mut parser = format.line_parser();
    if let Some(header) = header {
        prop_assert!(
            parser.parse_line(header).unwrap().is_none(),
            "header line carries no record"
        );
    }
    let parsed = parser
        .parse_line(&line)
        .map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
    let Some(parsed) = parsed else {
        return Err(TestCaseError::fail("no record"));
    };
    let mut actual: Map<String, Value> = serde_json::from_value(writer::to_json(&parsed)).unwrap();
    let timestamp = actual.remove("@timestamp").unwrap();
    prop_assert_eq!(timestamp, json!(parsed.timestamp().to_string()));
    let value = |name: &str| {
        record
            .iter()
            .find(|(f, _)| *f == name)
            .and_then(|(_, v)| v.clone())
    };
    if let Some(secs) = value("start").or_else(|| value("end")) {
        prop_assert_eq!(parsed.timestamp().unix_seconds().to_string(), secs);
        prop_assert_eq!(parsed.timestamp().subsec_nanos(), 0);
    }
    prop_assert_eq!(actual, expected_object(record));
    Ok(())
}

proptest! {
    #[test]
    fn default_records_round_trip(record in default_record_strategy()) {
        check_round_trip(&format(&FormatOptions::new()), None, &record)?;
    }

    #[test]
    fn custom_records_round_trip(record in record_strategy(), dollar in any::<bool>()) {
        let names: Vec<String> = record
            .iter()
            .map(|(f, _)| if dollar { format!("${{{f}}}") } else { (*f).to_owned() })
            .collect();
        let names = names.join(" ");
        // The layout given as the `fields` option ...
        check_round_trip(&format(&FormatOptions::new().with("fields", names.as_str())), None, &record)?;
        // ... or by the header line of an S3 file.
        let header: Vec<&str> = record.iter().map(|(f, _)| *f).collect();
        check_round_trip(&format(&FormatOptions::new()), Some(&header.join(" ")), &record)?;
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}", custom in any::<bool>()) {
        let options = if custom {
            FormatOptions::new().with("fields", "start srcaddr tcp-flags instance-tag end")
        } else {
            FormatOptions::new()
        };
        check_no_panic(&format(&options), &text);
    }

    #[test]
    fn mutated_lines_never_panic(
        record in record_strategy(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), "\\PC{0,3}", 0usize..3), 0..6),
    ) {
        let names: Vec<&str> = record.iter().map(|(f, _)| *f).collect();
        let mut text = format!("{}\n{}", names.join(" "), aws_line(&record));
        for (at, insert, remove) in edits {
            let mut pos = at.index(text.len() + 1);
            while !text.is_char_boundary(pos) {
                pos -= 1;
            }
            let mut end = pos;
            for _ in 0..remove {
                end += text[end..].chars().next().map_or(0, char::len_utf8);
            }
            text.replace_range(pos..end, &insert);
        }
        check_no_panic(&format(&FormatOptions::new()), &text);
    }
}

/// Decodes `text` whole and line by line; every record must encode to a JSON object whose
/// first member is `@timestamp`, the same text both ways (see [`to_json`]).
fn check_no_panic(format: &Format, text: &str) {
    let check = |record: &Record<'_>| {
        let mut out = Vec::new();
        record.write_json(&mut out);
        assert!(
            out.starts_with(b"{\"@timestamp\":\""),
            "{}",
            String::from_utf8_lossy(&out)
        );
        assert!(writer::to_json(record).is_object());
    };
    let _ = format.decode(text.as_bytes(), &DecodeOptions::default(), |item| {
        if let Ok(located) = item {
            check(&located.record);
        }
    });
    let mut parser = format.line_parser();
    for line in text.split('\n') {
        if let Ok(Some(record)) = parser.parse_line(line) {
            check(&record);
        }
    }
}
