//! The format registry's public behaviour, independent of any one format.

use logferry_parse::{
    DecodeError, DecodeOptions, FORMAT_NAMES, Format, FormatError, FormatOptions,
};

#[test]
fn every_documented_name_resolves_and_unknown_names_list_them() {
    for name in FORMAT_NAMES {
        let format = Format::new(name, &FormatOptions::new()).unwrap();
        assert_eq!(format.name(), *name);
    }
    let err = Format::new("apache", &FormatOptions::new()).unwrap_err();
    assert!(matches!(err, FormatError::UnknownFormat { .. }));
    assert!(err.to_string().contains("alb, elb, cloudfront"), "{err}");
}

#[test]
fn unknown_options_are_refused_naming_the_key() {
    let err = Format::new("alb", &FormatOptions::new().with("strict", "true")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "format `alb` has no option `strict` (it takes: no options)"
    );
    let err = Format::new("json", &FormatOptions::new().with("timestamp_fild", "t")).unwrap_err();
    assert!(err.to_string().contains("timestamp_fild"), "{err}");
    assert!(
        err.to_string()
            .contains("timestamp_field, timestamp_format"),
        "{err}"
    );
}

#[test]
fn document_formats_refuse_single_lines() {
    for name in ["cloudtrail", "cloudwatch", "config"] {
        let format = Format::new(name, &FormatOptions::new()).unwrap();
        assert!(format.is_document());
        let err = format.line_parser().parse_line("{}").unwrap_err();
        assert_eq!(err.field(), "document");
    }
    assert!(
        !Format::new("alb", &FormatOptions::new())
            .unwrap()
            .is_document()
    );
}

#[test]
fn decode_reports_positions_and_skips_long_lines() {
    let format = Format::new("raw", &FormatOptions::new()).unwrap();
    let input = "first\n\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nlast";
    let options = DecodeOptions {
        max_line_bytes: 16,
        ..DecodeOptions::default()
    };
    let mut seen = Vec::new();
    let summary = format
        .decode(input.as_bytes(), &options, |item| match item {
            Ok(l) => seen.push(format!("ok {} {}", l.line, l.position)),
            Err(e) => seen.push(format!("err {} {} {}", e.line, e.position, e.error.field())),
        })
        .unwrap();
    assert_eq!(seen, ["ok 1 0", "err 3 7 line", "ok 4 55"]);
    assert_eq!((summary.lines, summary.records, summary.errors), (4, 2, 1));
}

#[test]
fn decode_enforces_the_input_limit() {
    let format = Format::new("raw", &FormatOptions::new()).unwrap();
    let input = "a\n".repeat(100);
    let options = DecodeOptions {
        max_input_bytes: Some(50),
        ..DecodeOptions::default()
    };
    let mut records = 0;
    let err = format
        .decode(input.as_bytes(), &options, |_| records += 1)
        .unwrap_err();
    assert!(matches!(err, DecodeError::TooLarge { limit: 50 }));
    assert!(records > 0 && records <= 25);
}
