//! RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`.

use logferry_core::Timestamp;

use super::sd::StructuredData;
use super::{SyslogRecord, non_empty};
use crate::error::ParseError;
use crate::fields::{Fields, dash_none};

/// The byte order mark RFC 5424 puts before a UTF-8 MSG.
const BOM: char = '\u{feff}';

/// Parses what follows `<PRI>1 `: `header` starts at the TIMESTAMP.
pub(super) fn parse(
    pri: u8,
    header: &str,
    now: impl FnOnce() -> Timestamp,
) -> Result<SyslogRecord<'_>, ParseError> {
    let mut fields = Fields::new(header);
    let timestamp = match value(&mut fields, "timestamp")? {
        None => now(),
        Some(t) => Timestamp::parse_rfc3339(t)
            .ok_or_else(|| ParseError::invalid("timestamp", "an RFC 3339 timestamp or `-`"))?,
    };
    let mut record = SyslogRecord::new(pri, timestamp);
    record.version = Some(1);
    record.host = value(&mut fields, "hostname")?;
    record.ident = value(&mut fields, "app_name")?;
    record.pid = value(&mut fields, "procid")?;
    record.msgid = value(&mut fields, "msgid")?;
    let rest = fields.rest();
    let after = if let Some(after) = rest.strip_prefix('-') {
        after
    } else if rest.starts_with('[') {
        let (sd, after) = StructuredData::parse(rest)?;
        record.structured_data = Some(sd);
        after
    } else if rest.is_empty() {
        return Err(ParseError::missing("structured_data"));
    } else {
        return Err(ParseError::invalid("structured_data", "`-` or `[`"));
    };
    record.message = match after.as_bytes().first() {
        None => None,
        Some(b' ') => non_empty(after[1..].strip_prefix(BOM).unwrap_or(&after[1..])),
        Some(_) => {
            return Err(ParseError::invalid(
                "structured_data",
                "a space or the end of the line after the structured data",
            ));
        }
    };
    Ok(record)
}

/// The next header field: `None` for the NILVALUE `-`; an empty field (two spaces) is invalid.
fn value<'a>(fields: &mut Fields<'a>, name: &'static str) -> Result<Option<&'a str>, ParseError> {
    let token = fields.token(name)?;
    if token.is_empty() {
        return Err(ParseError::invalid(name, "a value or `-`"));
    }
    Ok(dash_none(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse_rfc3339("2024-03-15T12:00:00Z").unwrap()
    }

    fn fields(header: &str) -> Result<serde_json::Value, ParseError> {
        parse(165, header, now).map(|r| crate::syslog::checked_json(&r))
    }

    #[test]
    fn reads_nil_values() {
        let r = parse(14, "- - - - - -", now).unwrap();
        assert_eq!(r.timestamp(), now());
        let j = crate::syslog::checked_json(&r);
        assert_eq!(
            j,
            serde_json::json!({"@timestamp": "2024-03-15T12:00:00Z", "facility": "user",
                "severity": "info", "priority": 14, "version": 1})
        );
    }

    #[test]
    fn removes_the_bom_and_keeps_the_rest() {
        let j = fields("- h a p m - \u{feff}text  with  spaces ").unwrap();
        assert_eq!(j["message"], "text  with  spaces ");
        let j = fields("- h a p m - \u{feff}").unwrap();
        assert!(j.get("message").is_none());
        let j = fields("- h a p m - ").unwrap();
        assert!(j.get("message").is_none());
        let j = fields("- h a p m -  lead").unwrap();
        assert_eq!(j["message"], " lead");
    }

    #[test]
    fn converts_offsets_and_fractions() {
        let j = fields("2003-08-24T05:14:15.000003-07:00 h a p m -").unwrap();
        assert_eq!(j["@timestamp"], "2003-08-24T12:14:15.000003Z");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("", "timestamp"),
            ("2003-13-11T22:14:15Z h a p m -", "timestamp"),
            ("Oct 11 22:14:15 h a p m -", "timestamp"),
            ("-", "hostname"),
            ("-  a p m -", "hostname"),
            ("- h", "app_name"),
            ("- h a", "procid"),
            ("- h a p", "msgid"),
            ("- h a p m", "structured_data"),
            ("- h a p m ", "structured_data"),
            ("- h a p m msg", "structured_data"),
            ("- h a p m -msg", "structured_data"),
            ("- h a p m [x a=\"1\"]msg", "structured_data"),
            ("- h a p m [x a=\"1\"", "structured_data"),
        ];
        for (header, field) in cases {
            assert_eq!(fields(header).unwrap_err().field(), field, "{header:?}");
        }
    }
}
