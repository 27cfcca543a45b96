//! Fast parsers for the log formats AWS writes to S3, plus syslog and JSON lines.
//!
//! One entry point: a [`Format`] looked up by name with [`FormatOptions`]. Parse a single line
//! with [`Format::line_parser`], or decode a whole decompressed object or stream with
//! [`Format::decode`]. Every parsed [`Record`] borrows from its input and serializes (serde)
//! to one JSON object whose first member is `@timestamp` (RFC 3339, UTC), followed by the
//! format's fields under the names AWS's documentation uses, in `snake_case`. Fields AWS writes
//! as `-` ("absent") are omitted. Errors ([`ParseError`]) name the field that failed.
//!
//! | name | input |
//! |------|-------|
//! | `alb` | Application Load Balancer access logs |
//! | `elb` | Classic Load Balancer access logs (HTTP and TCP listeners) |
//! | `cloudfront` | CloudFront standard access logs (`#Fields` header drives the layout) |
//! | `s3access` | S3 server access logs |
//! | `vpcflow` | VPC flow logs, default or custom format (header line or `fields` option) |
//! | `waf` | AWS WAF logs (JSON lines) |
//! | `cloudtrail` | CloudTrail `{"Records":[...]}` documents |
//! | `cloudwatch` | CloudWatch Logs subscription data delivered by Firehose |
//! | `config` | AWS Config snapshot and history files |
//! | `syslog` | RFC 3164 and RFC 5424 syslog, auto-detected |
//! | `json` | JSON lines (`timestamp_field`, `timestamp_format` options) |
//! | `raw` | each line as `message` |
//!
//! ```
//! use logferry_parse::{DecodeOptions, Format, FormatOptions};
//!
//! let format = Format::new("alb", &FormatOptions::new()).unwrap();
//! let log = br#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90
//! "#;
//! let mut out = Vec::new();
//! let summary = format
//!     .decode(&log[..], &DecodeOptions::default(), |item| {
//!         let located = item.expect("the sample parses");
//!         located.record.write_json(&mut out);
//!         out.push(b'\n');
//!     })
//!     .unwrap();
//! assert_eq!(summary.records, 1);
//! let event: serde_json::Value = serde_json::from_slice(&out).unwrap();
//! assert_eq!(event["@timestamp"], "2018-07-02T22:23:00.186641Z");
//! assert_eq!(event["client_ip"], "192.168.131.39");
//! assert_eq!(event["elb_status_code"], 200);
//! assert_eq!(event["request_verb"], "GET");
//! ```
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod alb;
mod cloudfront;
mod cloudtrail;
mod cloudwatch;
mod compression;
mod config;
mod elb;
mod error;
mod fields;
mod format;
mod framing;
mod json;
mod jsonobj;
mod jsonstream;
mod members;
mod s3access;
mod syslog;
mod vpcflow;
mod waf;

pub use alb::AlbRecord;
pub use cloudfront::CloudFrontRecord;
pub use cloudwatch::CloudWatchRecord;
pub use compression::{Compression, decompress, decompress_read};
pub use elb::ElbRecord;
pub use error::{DecodeError, FormatError, LineError, ParseError, ParseErrorKind};
pub use format::{
    DecodeOptions, DecodeSummary, FORMAT_NAMES, Format, FormatOptions, LineParser, Located, Record,
};
pub use framing::{Frame, FrameError, Framer};
pub use json::RawRecord;
pub use jsonobj::{JsonObject, JsonRecord};
pub use s3access::S3AccessRecord;
pub use syslog::SyslogRecord;
pub use vpcflow::VpcFlowRecord;
