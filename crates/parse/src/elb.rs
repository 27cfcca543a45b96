//! Classic Load Balancer access logs (`elb`).
//!
//! One entry per line, 15 space-separated fields:
//! `time elb client:port backend:port request_processing_time backend_processing_time
//! response_processing_time elb_status_code backend_status_code received_bytes sent_bytes
//! "request" "user_agent" ssl_cipher ssl_protocol`.
//!
//! HTTP/HTTPS listener entries carry a request line; TCP/SSL listener entries have `"- - - "`
//! as request, `-` status codes and `"-"` as user agent, which are omitted. Fields after
//! `ssl_protocol` (AWS has not added any) are ignored, as for the other AWS formats.

use logferry_core::Timestamp;
use serde::ser::{Serialize, Serializer};

use crate::alb::{Cursor, aws_time, ip_port, seconds, split_request, status_code, trim_line_end};
use crate::error::ParseError;
use crate::members::{self, MemberList, Members, present_members};

/// One Classic Load Balancer access log entry.
///
/// Serializes to one JSON object: `@timestamp` (the entry's `time`), then the fields under AWS's
/// names (`client:port` becomes `client_ip` and `client_port`, `backend:port` becomes
/// `backend_ip` and `backend_port`, `"request"` becomes `request_verb`, `request_url` and
/// `request_proto`). Fields AWS writes as `-` are omitted.
///
/// ```
/// use logferry_parse::{Format, FormatOptions};
///
/// let format = Format::new("elb", &FormatOptions::new()).unwrap();
/// let line = r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.001069 0.000028 0.000041 - - 82 305 "- - - " "-" - -"#;
/// let record = format.line_parser().parse_line(line).unwrap().unwrap();
/// let json = serde_json::to_value(&record).unwrap();
/// assert_eq!(json["backend_port"], 80);
/// assert_eq!(json["sent_bytes"], 305);
/// assert!(json.get("elb_status_code").is_none());
/// assert!(json.get("request_verb").is_none());
/// ```
#[derive(Debug, Clone)]
pub struct ElbRecord<'a> {
    timestamp: Timestamp,
    elb: &'a str,
    client_ip: Option<&'a str>,
    client_port: Option<u16>,
    backend_ip: Option<&'a str>,
    backend_port: Option<u16>,
    request_processing_time: Option<f64>,
    backend_processing_time: Option<f64>,
    response_processing_time: Option<f64>,
    elb_status_code: Option<u16>,
    backend_status_code: Option<u16>,
    received_bytes: Option<u64>,
    sent_bytes: Option<u64>,
    request_verb: Option<&'a str>,
    request_url: Option<&'a str>,
    request_proto: Option<&'a str>,
    user_agent: Option<&'a str>,
    ssl_cipher: Option<&'a str>,
    ssl_protocol: Option<&'a str>,
}

impl ElbRecord<'_> {
    /// The entry's `time`: when the load balancer received the request from the client.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// `elb_status_code` (HTTP listeners): the status code of the load balancer's response.
    pub fn elb_status_code(&self) -> Option<u16> {
        self.elb_status_code
    }

    /// `backend_status_code` (HTTP listeners): the status code of the instance's response.
    pub fn backend_status_code(&self) -> Option<u16> {
        self.backend_status_code
    }
}

impl MemberList for ElbRecord<'_> {
    /// The JSON members, in order (see the type's documentation).
    fn members<M: Members>(&self, out: &mut M) -> Result<(), M::Error> {
        out.member("@timestamp", &self.timestamp)?;
        out.member("elb", self.elb)?;
        present_members!(
            out,
            self,
            client_ip,
            client_port,
            backend_ip,
            backend_port,
            request_processing_time,
            backend_processing_time,
            response_processing_time,
            elb_status_code,
            backend_status_code,
            received_bytes,
            sent_bytes,
            request_verb,
            request_url,
            request_proto,
            user_agent,
            ssl_cipher,
            ssl_protocol
        );
        Ok(())
    }
}

impl Serialize for ElbRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        members::serialize_struct(self, "ElbRecord", serializer)
    }
}

/// Parses one Classic Load Balancer access log entry.
pub(crate) fn parse(line: &str) -> Result<ElbRecord<'_>, ParseError> {
    let mut f = Cursor::new(trim_line_end(line))?;
    let timestamp = aws_time(f.token("time")?, "time")?;
    let elb = f.token("elb")?;
    let (client_ip, client_port) = ip_port(f.token("client:port")?, "client:port")?;
    let (backend_ip, backend_port) = ip_port(f.token("backend:port")?, "backend:port")?;
    let request_processing_time = seconds(
        f.token("request_processing_time")?,
        "request_processing_time",
    )?;
    let backend_processing_time = seconds(
        f.token("backend_processing_time")?,
        "backend_processing_time",
    )?;
    let response_processing_time = seconds(
        f.token("response_processing_time")?,
        "response_processing_time",
    )?;
    let elb_status_code = status_code(f.token("elb_status_code")?, "elb_status_code")?;
    let backend_status_code = status_code(f.token("backend_status_code")?, "backend_status_code")?;
    let received_bytes = f.opt_u64("received_bytes")?;
    let sent_bytes = f.opt_u64("sent_bytes")?;
    let [request_verb, request_url, request_proto] = split_request(f.quoted("request")?);
    let user_agent = f.opt_quoted("user_agent")?;
    let ssl_cipher = f.opt_token("ssl_cipher")?;
    let ssl_protocol = f.opt_token("ssl_protocol")?;
    // Anything after `ssl_protocol` is a field this parser does not know: ignored.
    Ok(ElbRecord {
        timestamp,
        elb,
        client_ip,
        client_port,
        backend_ip,
        backend_port,
        request_processing_time,
        backend_processing_time,
        response_processing_time,
        elb_status_code,
        backend_status_code,
        received_bytes,
        sent_bytes,
        request_verb,
        request_url,
        request_proto,
        user_agent,
        ssl_cipher,
        ssl_protocol,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTTP: &str = r#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#;

    #[test]
    fn parses_an_http_entry() {
        let r = parse(HTTP).unwrap();
        assert_eq!(r.elb, "my-loadbalancer");
        assert_eq!(r.backend_ip, Some("10.0.0.1"));
        assert_eq!(r.request_processing_time, Some(0.000073));
        assert_eq!(r.backend_status_code, Some(200));
        assert_eq!(r.request_verb, Some("GET"));
        assert_eq!(r.user_agent, Some("curl/7.38.0"));
        assert_eq!(r.ssl_cipher, None);
    }

    #[test]
    fn every_field_through_ssl_protocol_is_required() {
        let cut = HTTP.rfind(" -").unwrap();
        assert_eq!(parse(&HTTP[..cut]).unwrap_err().field(), "ssl_protocol");
        assert_eq!(
            parse("2015-05-13T23:39:43Z lb").unwrap_err().field(),
            "client:port"
        );
        assert_eq!(parse("nope").unwrap_err().field(), "time");
    }

    #[test]
    fn errors_name_the_field() {
        let bad = HTTP.replace(" 200 200 ", " 200 OK ");
        assert_eq!(parse(&bad).unwrap_err().field(), "backend_status_code");
        let bad = HTTP.replace(" 0 29 ", " 0 -29 ");
        assert_eq!(parse(&bad).unwrap_err().field(), "sent_bytes");
        let bad = HTTP.replace("10.0.0.1:80", "10.0.0.1:http");
        assert_eq!(parse(&bad).unwrap_err().field(), "backend:port");
    }

    #[test]
    fn trailing_fields_are_ignored() {
        assert!(parse(&format!("{HTTP} extra \"field\"")).is_ok());
    }
}
