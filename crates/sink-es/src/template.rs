//! Index names from a template: `strftime` conversions of the event's `@timestamp` (UTC) and
//! `%{[field]}` references to the event's fields (Logstash's syntax; `${NAME}` is left to the
//! configuration loader, which replaces it with an environment variable).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use logferry_core::Timestamp;
use serde_json::value::RawValue;

use crate::EsError;

/// A time conversion of an index template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimeField {
    Year,
    Year2,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    DayOfYear,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Time(TimeField),
    Field(Vec<String>),
}

/// A parsed index template such as `alb-%Y.%m.%d` or `logs-%{[service]}-%Y.%m`.
///
/// Conversions: `%Y` (4-digit year), `%y`, `%m`, `%d`, `%H`, `%M`, `%S`, `%j` (day of the
/// year), `%%`, all in UTC; `%{[field]}` or `%{[outer][inner]}` is the value of a field of the
/// document (a string, number or boolean), lower-cased because index names must be.
///
/// ```
/// use logferry_core::Timestamp;
/// use logferry_sink_es::IndexTemplate;
///
/// let template = IndexTemplate::parse("alb-%{[env]}-%Y.%m.%d").unwrap();
/// let ts = Timestamp::parse_rfc3339("2024-03-05T23:59:59Z").unwrap();
/// let mut name = String::new();
/// template.render(ts, r#"{"@timestamp":"2024-03-05T23:59:59Z","env":"Prod"}"#, &mut name).unwrap();
/// assert_eq!(name, "alb-prod-2024.03.05");
/// assert!(IndexTemplate::parse("bad-%Q").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexTemplate {
    text: String,
    parts: Vec<Part>,
}

/// Why an event's index name could not be rendered (a referenced field is missing or not a
/// scalar). The event is dead-lettered with this reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("index template field `{field}` {problem}")]
pub struct RenderError {
    field: String,
    problem: &'static str,
}

impl IndexTemplate {
    /// Parses a template; errors name the byte offset of the problem.
    pub fn parse(text: &str) -> Result<IndexTemplate, EsError> {
        let err = |position: usize, reason: &str| EsError::Template {
            template: text.to_string(),
            position,
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(err(0, "the index name is empty"));
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((pos, c)) = chars.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            let Some((_, conv)) = chars.next() else {
                return Err(err(pos, "`%` at the end (write `%%` for a percent sign)"));
            };
            let field = match conv {
                '%' => {
                    literal.push('%');
                    continue;
                }
                'Y' => TimeField::Year,
                'y' => TimeField::Year2,
                'm' => TimeField::Month,
                'd' => TimeField::Day,
                'H' => TimeField::Hour,
                'M' => TimeField::Minute,
                'S' => TimeField::Second,
                'j' => TimeField::DayOfYear,
                '{' => {
                    let rest = &text[pos + 2..];
                    let end = rest
                        .find('}')
                        .ok_or_else(|| err(pos, "`%{` without a closing `}`"))?;
                    let path = parse_field_path(&rest[..end])
                        .ok_or_else(|| err(pos, "expected `%{[field]}` or `%{[outer][inner]}`"))?;
                    let stop = pos + 2 + end + 1;
                    while chars.peek().is_some_and(|(i, _)| *i < stop) {
                        chars.next();
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(path));
                    continue;
                }
                _ => {
                    return Err(err(
                        pos,
                        "unknown conversion (known: %Y %y %m %d %H %M %S %j %% %{[field]})",
                    ));
                }
            };
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Time(field));
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(IndexTemplate {
            text: text.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the template names event fields (rendering then reads the document).
    pub fn uses_fields(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Field(_)))
    }

    /// For a template that reads only the timestamp: the length in seconds of the periods
    /// (counted from the Unix epoch, UTC) within which every timestamp renders the same name;
    /// `None` when the template reads fields. One day for `%d`, `%m`, `%Y`, `%j`.
    ///
    /// ```
    /// use logferry_sink_es::IndexTemplate;
    ///
    /// assert_eq!(IndexTemplate::parse("alb-%Y.%m.%d").unwrap().constant_within(), Some(86_400));
    /// assert_eq!(IndexTemplate::parse("alb-%Y.%m.%d-%H").unwrap().constant_within(), Some(3_600));
    /// assert_eq!(IndexTemplate::parse("alb").unwrap().constant_within(), Some(i64::MAX));
    /// assert_eq!(IndexTemplate::parse("alb-%{[env]}").unwrap().constant_within(), None);
    /// ```
    pub fn constant_within(&self) -> Option<i64> {
        let mut period = i64::MAX;
        for part in &self.parts {
            let p = match part {
                Part::Literal(_) => continue,
                Part::Field(_) => return None,
                Part::Time(TimeField::Second) => 1,
                Part::Time(TimeField::Minute) => 60,
                Part::Time(TimeField::Hour) => 3_600,
                Part::Time(
                    TimeField::Day
                    | TimeField::DayOfYear
                    | TimeField::Month
                    | TimeField::Year
                    | TimeField::Year2,
                ) => 86_400,
            };
            period = period.min(p);
        }
        Some(period)
    }

    /// Writes the index name of an event into `out` (cleared first).
    pub fn render(&self, ts: Timestamp, json: &str, out: &mut String) -> Result<(), RenderError> {
        out.clear();
        let civil = ts.civil();
        let mut fields: Option<BTreeMap<String, &RawValue>> = None;
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Time(field) => {
                    let (y, mo, d, h, mi, s) = civil;
                    let _ = match field {
                        TimeField::Year => write!(out, "{y:04}"),
                        TimeField::Year2 => write!(out, "{:02}", y.rem_euclid(100)),
                        TimeField::Month => write!(out, "{mo:02}"),
                        TimeField::Day => write!(out, "{d:02}"),
                        TimeField::Hour => write!(out, "{h:02}"),
                        TimeField::Minute => write!(out, "{mi:02}"),
                        TimeField::Second => write!(out, "{s:02}"),
                        TimeField::DayOfYear => write!(out, "{:03}", day_of_year(y, mo, d)),
                    };
                }
                Part::Field(path) => {
                    if fields.is_none() {
                        fields = Some(serde_json::from_str(json).map_err(|_| RenderError {
                            field: path.join("."),
                            problem: "cannot be read: the document is not a JSON object",
                        })?);
                    }
                    let top = fields.as_ref().map(|f| f.get(path[0].as_str()).copied());
                    let value = lookup(top.flatten(), &path[1..]).ok_or_else(|| RenderError {
                        field: path.join("."),
                        problem: "is missing",
                    })?;
                    push_scalar(value, out).ok_or_else(|| RenderError {
                        field: path.join("."),
                        problem: "is not a string, number or boolean",
                    })?;
                }
            }
        }
        Ok(())
    }
}

fn parse_field_path(inner: &str) -> Option<Vec<String>> {
    let mut path = Vec::new();
    let mut rest = inner;
    while !rest.is_empty() {
        let close = rest.strip_prefix('[')?.find(']')?;
        let name = &rest[1..=close];
        if name.is_empty() {
            return None;
        }
        path.push(name.to_string());
        rest = &rest[close + 2..];
    }
    (!path.is_empty()).then_some(path)
}

fn lookup<'a>(value: Option<&'a RawValue>, rest: &[String]) -> Option<&'a RawValue> {
    let mut value = value?;
    for name in rest {
        let map: BTreeMap<String, &RawValue> = serde_json::from_str(value.get()).ok()?;
        value = *map.get(name.as_str())?;
    }
    Some(value)
}

fn push_scalar(value: &RawValue, out: &mut String) -> Option<()> {
    let raw = value.get();
    match raw.as_bytes().first()? {
        b'"' => {
            let text: String = serde_json::from_str(raw).ok()?;
            out.extend(text.chars().flat_map(char::to_lowercase));
        }
        b'-' | b'0'..=b'9' | b't' | b'f' => out.push_str(raw),
        _ => return None,
    }
    Some(())
}

fn day_of_year(y: i64, m: u32, d: u32) -> u32 {
    const CUMULATIVE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    CUMULATIVE[(m - 1) as usize] + d + u32::from(leap && m > 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, ts: &str, json: &str) -> Result<String, RenderError> {
        let mut out = String::new();
        IndexTemplate::parse(template).unwrap().render(
            Timestamp::parse_rfc3339(ts).unwrap(),
            json,
            &mut out,
        )?;
        Ok(out)
    }

    #[test]
    fn time_conversions_in_utc() {
        assert_eq!(
            render("alb-%Y.%m.%d", "2024-02-29T23:30:00-01:00", "{}").unwrap(),
            "alb-2024.03.01"
        );
        assert_eq!(
            render("x-%y%j-%H%M%S-%%", "2024-12-31T01:02:03Z", "{}").unwrap(),
            "x-24366-010203-%"
        );
        assert_eq!(
            render("static", "2024-12-31T01:02:03Z", "{}").unwrap(),
            "static"
        );
        assert!(!IndexTemplate::parse("a-%Y").unwrap().uses_fields());
    }

    #[test]
    fn field_references() {
        let json = r#"{"@timestamp":"2024-01-01T00:00:00Z","app":"Web\"1","n":42,"b":true,"o":{"env":"prod"},"nul":null,"arr":[1]}"#;
        assert_eq!(
            render("%{[app]}-%Y", "2024-01-01T00:00:00Z", json).unwrap(),
            "web\"1-2024"
        );
        assert_eq!(
            render("%{[n]}-%{[b]}-%{[o][env]}", "2024-01-01T00:00:00Z", json).unwrap(),
            "42-true-prod"
        );
        let missing = render("%{[nope]}", "2024-01-01T00:00:00Z", json).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "index template field `nope` is missing"
        );
        assert!(render("%{[o]}", "2024-01-01T00:00:00Z", json).is_err());
        assert!(render("%{[nul]}", "2024-01-01T00:00:00Z", json).is_err());
        assert!(render("%{[arr]}", "2024-01-01T00:00:00Z", json).is_err());
        assert!(render("%{[o][x]}", "2024-01-01T00:00:00Z", json).is_err());
        assert!(render("%{[a]}", "2024-01-01T00:00:00Z", "not json").is_err());
    }

    #[test]
    fn parse_errors_name_the_position() {
        for (text, position) in [
            ("a-%Q", 2),
            ("abc%", 3),
            ("x%{[a]", 1),
            ("%{a}", 0),
            ("%{[]}", 0),
            ("", 0),
        ] {
            match IndexTemplate::parse(text) {
                Err(EsError::Template { position: p, .. }) => assert_eq!(p, position, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
