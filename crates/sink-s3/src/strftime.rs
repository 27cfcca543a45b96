//! Ruby-compatible `strftime` formatting of chunk times (the subset that makes sense in object
//! keys), parsed once and rendered without failing.

use chrono::TimeZone;
use logferry_core::Timestamp;

/// The time zone times are rendered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Zone {
    /// UTC (`utc = true`).
    Utc,
    /// The host's local time zone (`TZ`, else `/etc/localtime`).
    Local,
}

/// A conversion that failed to parse: byte offset in the format and the reason.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub(crate) position: usize,
    pub(crate) reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pad {
    Default,
    None,
    Space,
    Zero,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Year,
    Century,
    Year2,
    Month,
    Day,
    DaySpace,
    YearDay,
    Hour,
    HourSpace,
    Hour12,
    Hour12Space,
    Minute,
    Second,
    Millis,
    Fraction,
    AmPm,
    AmPmLower,
    MonthAbbr,
    MonthFull,
    DayAbbr,
    DayFull,
    WeekdayMon1,
    WeekdaySun0,
    WeekSun,
    WeekMon,
    IsoWeek,
    IsoYear,
    IsoYear2,
    EpochSeconds,
    Offset,
    OffsetColon,
    ZoneName,
}

/// One piece of a parsed time format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TimeItem {
    Literal(String),
    Field {
        field: Field,
        pad: Pad,
        upper: bool,
        width: Option<usize>,
    },
}

impl TimeItem {
    fn plain(field: Field) -> TimeItem {
        TimeItem::Field {
            field,
            pad: Pad::Default,
            upper: false,
            width: None,
        }
    }
}

/// Parses one conversion starting at `format[start]` (just after a `%`); returns the items it
/// stands for and the offset after it.
pub(crate) fn parse_conversion(
    format: &str,
    start: usize,
) -> Result<(Vec<TimeItem>, usize), ParseError> {
    let bytes = format.as_bytes();
    let mut i = start;
    let mut pad = Pad::Default;
    let mut upper = false;
    let mut colon = false;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'-' => pad = Pad::None,
            b'_' => pad = Pad::Space,
            b'0' => pad = Pad::Zero,
            b'^' | b'#' => upper = true,
            b':' => colon = true,
            _ => break,
        }
        i += 1;
    }
    let width_start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let width = if i > width_start {
        let w: usize = format[width_start..i].parse().map_err(|_| ParseError {
            position: width_start,
            reason: "width too large".to_string(),
        })?;
        if w > 64 {
            return Err(ParseError {
                position: width_start,
                reason: "width above 64".into(),
            });
        }
        Some(w)
    } else {
        None
    };
    let Some(&conv) = bytes.get(i) else {
        return Err(ParseError {
            position: start.saturating_sub(1),
            reason: "`%` at the end (write `%%` for a percent sign)".to_string(),
        });
    };
    let field = |f: Field| {
        vec![TimeItem::Field {
            field: f,
            pad,
            upper,
            width,
        }]
    };
    let seq = |fields: &[Field], seps: &[&str]| {
        let mut items = Vec::new();
        for (n, f) in fields.iter().enumerate() {
            if n > 0 {
                items.push(TimeItem::Literal(seps[n - 1].to_string()));
            }
            items.push(TimeItem::plain(*f));
        }
        items
    };
    use Field::*;
    let items = match conv {
        b'Y' => field(Year),
        b'C' => field(Century),
        b'y' => field(Year2),
        b'm' => field(Month),
        b'd' => field(Day),
        b'e' => field(DaySpace),
        b'j' => field(YearDay),
        b'H' => field(Hour),
        b'k' => field(HourSpace),
        b'I' => field(Hour12),
        b'l' => field(Hour12Space),
        b'M' => field(Minute),
        b'S' => field(Second),
        b'L' => field(Millis),
        b'N' => field(Fraction),
        b'p' => field(AmPm),
        b'P' => field(AmPmLower),
        b'b' | b'h' => field(MonthAbbr),
        b'B' => field(MonthFull),
        b'a' => field(DayAbbr),
        b'A' => field(DayFull),
        b'u' => field(WeekdayMon1),
        b'w' => field(WeekdaySun0),
        b'U' => field(WeekSun),
        b'W' => field(WeekMon),
        b'V' => field(IsoWeek),
        b'G' => field(IsoYear),
        b'g' => field(IsoYear2),
        b's' => field(EpochSeconds),
        b'z' if colon => field(OffsetColon),
        b'z' => field(Offset),
        b'Z' => field(ZoneName),
        b'F' => seq(&[Year, Month, Day], &["-", "-"]),
        b'T' | b'X' => seq(&[Hour, Minute, Second], &[":", ":"]),
        b'D' | b'x' => seq(&[Month, Day, Year2], &["/", "/"]),
        b'R' => seq(&[Hour, Minute], &[":"]),
        b'r' => seq(&[Hour12, Minute, Second, AmPm], &[":", ":", " "]),
        b'c' => seq(
            &[DayAbbr, MonthAbbr, DaySpace, Hour, Minute, Second, Year],
            &[" ", " ", " ", ":", ":", " "],
        ),
        b'%' => vec![TimeItem::Literal("%".to_string())],
        b'n' => vec![TimeItem::Literal("\n".to_string())],
        b't' => vec![TimeItem::Literal("\t".to_string())],
        _ => {
            let shown = format[i..].chars().next().unwrap_or('?');
            return Err(ParseError {
                position: start.saturating_sub(1),
                reason: format!("unknown time conversion `%{shown}`"),
            });
        }
    };
    Ok((items, i + 1))
}

/// Parses a whole time format (`time_slice_format`): text and `%` conversions.
pub(crate) fn parse_time_format(format: &str) -> Result<Vec<TimeItem>, ParseError> {
    let mut items = Vec::new();
    let mut literal = String::new();
    let mut rest = format;
    let mut offset = 0;
    while let Some(p) = rest.find('%') {
        literal.push_str(&rest[..p]);
        let (parsed, next) = parse_conversion(format, offset + p + 1)?;
        for item in parsed {
            match item {
                TimeItem::Literal(text) => literal.push_str(&text),
                field => {
                    if !literal.is_empty() {
                        items.push(TimeItem::Literal(std::mem::take(&mut literal)));
                    }
                    items.push(field);
                }
            }
        }
        offset = next;
        rest = &format[next..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        items.push(TimeItem::Literal(literal));
    }
    Ok(items)
}

/// A broken-down time in some zone.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    /// 0 = Sunday.
    weekday: u32,
    /// 1-based day of the year.
    yday: u32,
    offset: i64,
    unix: i64,
    zone: Zone,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn year_day(year: i64, month: u32, day: u32) -> u32 {
    const CUMULATIVE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let leap = u32::from(month > 2 && is_leap(year));
    CUMULATIVE[(month.clamp(1, 12) - 1) as usize] + day + leap
}

/// Seconds east of UTC of the local zone at `ts`.
fn local_offset(ts: Timestamp) -> i64 {
    match chrono::DateTime::from_timestamp(ts.unix_seconds(), 0) {
        Some(utc) => {
            let offset = chrono::Local.offset_from_utc_datetime(&utc.naive_utc());
            i64::from(chrono::Offset::fix(&offset).local_minus_utc())
        }
        None => 0,
    }
}

impl Civil {
    /// Breaks `ts` down in `zone`.
    pub(crate) fn new(ts: Timestamp, zone: Zone) -> Civil {
        let offset = match zone {
            Zone::Utc => 0,
            Zone::Local => local_offset(ts),
        };
        // Near the ends of the supported range the shifted time may not exist: use UTC then.
        let (shifted, offset) = match ts.offset_seconds(offset) {
            Some(shifted) => (shifted, offset),
            None => (ts, 0),
        };
        let (year, month, day, hour, minute, second) = shifted.civil();
        let days = shifted.unix_seconds().div_euclid(86_400);
        Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos: ts.subsec_nanos(),
            weekday: (days + 4).rem_euclid(7) as u32,
            yday: year_day(year, month, day),
            offset,
            unix: ts.unix_seconds(),
            zone,
        }
    }

    /// `(ISO year, ISO week)`.
    fn iso_week(&self) -> (i64, u32) {
        let iso_wday = (self.weekday + 6) % 7 + 1; // Monday = 1 .. Sunday = 7
        let week = (self.yday as i64 - iso_wday as i64 + 10) / 7;
        let weeks_in = |year: i64, jan1_wday: u32| -> i64 {
            // jan1_wday: 0 = Sunday.
            if jan1_wday == 4 || (is_leap(year) && jan1_wday == 3) {
                53
            } else {
                52
            }
        };
        let jan1 = (self.weekday + 7 * 60 - (self.yday - 1) % 7) % 7;
        if week < 1 {
            let prev_len = if is_leap(self.year - 1) { 366 } else { 365 };
            let prev_jan1 = (jan1 + 7 * 60 - prev_len % 7) % 7;
            (self.year - 1, weeks_in(self.year - 1, prev_jan1) as u32)
        } else if week > weeks_in(self.year, jan1) {
            (self.year + 1, 1)
        } else {
            (self.year, week as u32)
        }
    }
}

fn push_number(
    out: &mut String,
    value: i64,
    default_width: usize,
    default_pad: Pad,
    pad: Pad,
    width: Option<usize>,
) {
    let pad = if pad == Pad::Default {
        default_pad
    } else {
        pad
    };
    let width = width.unwrap_or(default_width);
    let digits = value.unsigned_abs().to_string();
    if value < 0 {
        out.push('-');
    }
    let fill = width.saturating_sub(digits.len() + usize::from(value < 0));
    let fill_char = match pad {
        Pad::None => None,
        Pad::Space => Some(' '),
        Pad::Zero | Pad::Default => Some('0'),
    };
    if let Some(c) = fill_char {
        out.extend(std::iter::repeat_n(c, fill));
    }
    out.push_str(&digits);
}

fn push_text(out: &mut String, text: &str, upper: bool, width: Option<usize>) {
    if let Some(w) = width {
        out.extend(std::iter::repeat_n(' ', w.saturating_sub(text.len())));
    }
    if upper {
        out.push_str(&text.to_ascii_uppercase());
    } else {
        out.push_str(text);
    }
}

fn push_offset(out: &mut String, offset: i64, colon: bool) {
    out.push(if offset < 0 { '-' } else { '+' });
    let abs = offset.unsigned_abs();
    let (h, m) = (abs / 3600, abs / 60 % 60);
    out.push_str(&format!("{h:02}"));
    if colon {
        out.push(':');
    }
    out.push_str(&format!("{m:02}"));
}

/// Appends `items` rendered at `civil` to `out`.
pub(crate) fn render(items: &[TimeItem], civil: &Civil, out: &mut String) {
    for item in items {
        match item {
            TimeItem::Literal(text) => out.push_str(text),
            TimeItem::Field {
                field,
                pad,
                upper,
                width,
            } => render_field(*field, *pad, *upper, *width, civil, out),
        }
    }
}

fn render_field(
    field: Field,
    pad: Pad,
    upper: bool,
    width: Option<usize>,
    c: &Civil,
    out: &mut String,
) {
    let hour12 = if c.hour.is_multiple_of(12) {
        12
    } else {
        c.hour % 12
    };
    let num = |out: &mut String, v: i64, w: usize, p: Pad| push_number(out, v, w, p, pad, width);
    match field {
        Field::Year => num(out, c.year, 4, Pad::Zero),
        Field::Century => num(out, c.year.div_euclid(100), 2, Pad::Zero),
        Field::Year2 => num(out, c.year.rem_euclid(100), 2, Pad::Zero),
        Field::Month => num(out, c.month.into(), 2, Pad::Zero),
        Field::Day => num(out, c.day.into(), 2, Pad::Zero),
        Field::DaySpace => num(out, c.day.into(), 2, Pad::Space),
        Field::YearDay => num(out, c.yday.into(), 3, Pad::Zero),
        Field::Hour => num(out, c.hour.into(), 2, Pad::Zero),
        Field::HourSpace => num(out, c.hour.into(), 2, Pad::Space),
        Field::Hour12 => num(out, hour12.into(), 2, Pad::Zero),
        Field::Hour12Space => num(out, hour12.into(), 2, Pad::Space),
        Field::Minute => num(out, c.minute.into(), 2, Pad::Zero),
        Field::Second => num(out, c.second.into(), 2, Pad::Zero),
        Field::Millis | Field::Fraction => {
            // The width is the number of fraction digits (`%3N`), truncated, not rounded.
            let default = if field == Field::Millis { 3 } else { 9 };
            let digits = width.unwrap_or(default);
            let nine = format!("{:09}", c.nanos);
            out.push_str(&nine[..digits.min(9)]);
            out.extend(std::iter::repeat_n('0', digits.saturating_sub(9)));
        }
        Field::AmPm => push_text(out, if c.hour < 12 { "AM" } else { "PM" }, upper, width),
        Field::AmPmLower => push_text(out, if c.hour < 12 { "am" } else { "pm" }, upper, width),
        Field::MonthAbbr => push_text(
            out,
            &MONTHS[(c.month.clamp(1, 12) - 1) as usize][..3],
            upper,
            width,
        ),
        Field::MonthFull => push_text(
            out,
            MONTHS[(c.month.clamp(1, 12) - 1) as usize],
            upper,
            width,
        ),
        Field::DayAbbr => push_text(out, &DAYS[(c.weekday % 7) as usize][..3], upper, width),
        Field::DayFull => push_text(out, DAYS[(c.weekday % 7) as usize], upper, width),
        Field::WeekdayMon1 => num(out, ((c.weekday + 6) % 7 + 1).into(), 1, Pad::Zero),
        Field::WeekdaySun0 => num(out, c.weekday.into(), 1, Pad::Zero),
        Field::WeekSun => num(out, ((c.yday - 1 + 7 - c.weekday) / 7).into(), 2, Pad::Zero),
        Field::WeekMon => num(
            out,
            ((c.yday - 1 + 7 - (c.weekday + 6) % 7) / 7).into(),
            2,
            Pad::Zero,
        ),
        Field::IsoWeek => num(out, c.iso_week().1.into(), 2, Pad::Zero),
        Field::IsoYear => num(out, c.iso_week().0, 4, Pad::Zero),
        Field::IsoYear2 => num(out, c.iso_week().0.rem_euclid(100), 2, Pad::Zero),
        Field::EpochSeconds => num(out, c.unix, 1, Pad::Zero),
        Field::Offset => push_offset(out, c.offset, false),
        Field::OffsetColon => push_offset(out, c.offset, true),
        Field::ZoneName => match c.zone {
            Zone::Utc => push_text(out, "UTC", upper, width),
            Zone::Local => push_offset(out, c.offset, false),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(format: &str, ts: Timestamp) -> String {
        let items = parse_time_format(format).unwrap();
        let mut out = String::new();
        render(&items, &Civil::new(ts, Zone::Utc), &mut out);
        out
    }

    fn ts(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Timestamp {
        Timestamp::from_civil(y, mo, d, h, mi, s, 123_456_789).unwrap()
    }

    #[test]
    fn common_fields() {
        let t = ts(2013, 1, 11, 22, 5, 9);
        assert_eq!(fmt("%Y%m%d%H", t), "2013011122");
        assert_eq!(fmt("%Y-%m-%d.%H.%M.%S", t), "2013-01-11.22.05.09");
        assert_eq!(
            fmt("%y %j %b %B %a %A %e", t),
            "13 011 Jan January Fri Friday 11"
        );
        assert_eq!(fmt("%I%p %l%P %k", t), "10PM 10pm 22");
        assert_eq!(fmt("%F %T %D %R", t), "2013-01-11 22:05:09 01/11/13 22:05");
        assert_eq!(fmt("%L %N %3N %s", t), "123 123456789 123 1357941909");
        assert_eq!(fmt("%z %:z %Z %%", t), "+0000 +00:00 UTC %");
        assert_eq!(fmt("%-m/%-d %_m %^b %C", t), "1/11  1 JAN 20");
        assert_eq!(fmt("%u %w %U %W", t), "5 5 01 01");
        assert_eq!(fmt("no conversions", t), "no conversions");
    }

    #[test]
    fn iso_weeks_at_year_edges() {
        // 2021-01-01 is a Friday: ISO week 53 of 2020.
        assert_eq!(fmt("%G-W%V-%u", ts(2021, 1, 1, 0, 0, 0)), "2020-W53-5");
        // 2024-12-30 is a Monday: ISO week 1 of 2025.
        assert_eq!(fmt("%G-W%V-%u", ts(2024, 12, 30, 0, 0, 0)), "2025-W01-1");
        assert_eq!(fmt("%G-W%V", ts(2023, 6, 15, 0, 0, 0)), "2023-W24");
        // 2016-01-03 is a Sunday: ISO week 53 of 2015.
        assert_eq!(fmt("%G-W%V %g", ts(2016, 1, 3, 0, 0, 0)), "2015-W53 15");
    }

    #[test]
    fn unknown_conversions_are_errors() {
        let err = parse_time_format("%Y-%Q").unwrap_err();
        assert_eq!(err.position, 3);
        assert!(err.reason.contains("%Q"), "{}", err.reason);
        assert!(parse_time_format("abc%").is_err());
        assert!(parse_time_format("%Ä").is_err());
        assert!(parse_time_format("%999d").is_err());
    }

    #[test]
    fn local_zone_matches_chrono() {
        let t = ts(2020, 7, 1, 12, 0, 0);
        let items = parse_time_format("%Y-%m-%dT%H:%M:%S%z").unwrap();
        let mut out = String::new();
        render(&items, &Civil::new(t, Zone::Local), &mut out);
        let expected = chrono::DateTime::from_timestamp(t.unix_seconds(), 0)
            .unwrap()
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%dT%H:%M:%S%z")
            .to_string();
        assert_eq!(out, expected);
    }
}
