//! A UTC instant with nanosecond precision and a fast RFC 3339 formatter.

use std::fmt;

/// A point in time in UTC, as seconds and nanoseconds since the Unix epoch.
///
/// `Timestamp` is `Copy`, compares chronologically and formats as RFC 3339 in UTC with
/// the shortest of 0, 3, 6 or 9 fraction digits that represents it exactly
/// (`2018-07-02T22:23:00.186641Z`). It is what every logferry event carries as `@timestamp`.
///
/// ```
/// use logferry_core::Timestamp;
///
/// let ts = Timestamp::parse_rfc3339("2018-07-02T22:23:00.186641Z").unwrap();
/// assert_eq!(ts.to_string(), "2018-07-02T22:23:00.186641Z");
/// let ts = Timestamp::parse_rfc3339("2019-02-06T01:00:38+01:00").unwrap();
/// assert_eq!(ts.to_string(), "2019-02-06T00:00:38Z");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

/// Longest RFC 3339 text `Timestamp` writes: `-YYYYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ` fits in 40 bytes.
const MAX_RFC3339_LEN: usize = 40;

/// Earliest and latest year accepted, so every timestamp formats as a 4-digit year.
const MIN_YEAR: i64 = 0;
const MAX_YEAR: i64 = 9999;

impl Timestamp {
    /// The Unix epoch, `1970-01-01T00:00:00Z`.
    pub const UNIX_EPOCH: Timestamp = Timestamp { secs: 0, nanos: 0 };

    /// Builds a timestamp from seconds and nanoseconds since the epoch.
    /// Returns `None` when `nanos` is 1e9 or more or the year falls outside 0..=9999.
    pub fn from_unix(secs: i64, nanos: u32) -> Option<Timestamp> {
        if nanos >= 1_000_000_000 {
            return None;
        }
        let ts = Timestamp { secs, nanos };
        let year = ts.civil().0;
        (MIN_YEAR..=MAX_YEAR).contains(&year).then_some(ts)
    }

    /// Builds a timestamp from milliseconds since the epoch.
    pub fn from_unix_millis(millis: i64) -> Option<Timestamp> {
        Self::from_unix(
            millis.div_euclid(1000),
            (millis.rem_euclid(1000) as u32) * 1_000_000,
        )
    }

    /// Builds a timestamp from a fractional number of seconds since the epoch.
    pub fn from_unix_f64(secs: f64) -> Option<Timestamp> {
        if !secs.is_finite() || secs.abs() > 1e12 {
            return None;
        }
        let whole = secs.floor();
        let nanos = ((secs - whole) * 1e9).round() as u32;
        let (whole, nanos) = if nanos >= 1_000_000_000 {
            (whole + 1.0, 0)
        } else {
            (whole, nanos)
        };
        Self::from_unix(whole as i64, nanos)
    }

    /// Builds a timestamp from a civil date and time in UTC.
    /// Returns `None` for an impossible date or time (a leap second `:60` is folded onto `:59`).
    pub fn from_civil(
        year: i64,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        nanos: u32,
    ) -> Option<Timestamp> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year)
            || !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
            || nanos >= 1_000_000_000
        {
            return None;
        }
        let second = second.min(59);
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
        Some(Timestamp { secs, nanos })
    }

    /// Seconds since the epoch (negative before 1970).
    pub fn unix_seconds(&self) -> i64 {
        self.secs
    }

    /// Nanoseconds within the second.
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// Milliseconds since the epoch.
    pub fn unix_millis(&self) -> i64 {
        self.secs * 1000 + i64::from(self.nanos / 1_000_000)
    }

    /// Shifts the timestamp by a number of seconds (used to apply UTC offsets).
    pub fn offset_seconds(self, delta: i64) -> Option<Timestamp> {
        Self::from_unix(self.secs.checked_add(delta)?, self.nanos)
    }

    /// The current time from the system clock.
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            secs: d.as_secs() as i64,
            nanos: d.subsec_nanos(),
        }
    }

    /// `(year, month, day, hour, minute, second)` in UTC.
    pub fn civil(&self) -> (i64, u32, u32, u32, u32, u32) {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
    }

    /// Parses RFC 3339 / ISO 8601 date-times: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM|±HHMM)`.
    /// A space may stand for `T`; a missing offset means UTC.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        if !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        let year = digits(&b[0..4])?;
        let month = digits(&b[5..7])?;
        let day = digits(&b[8..10])?;
        let hour = digits(&b[11..13])?;
        let minute = digits(&b[14..16])?;
        let second = digits(&b[17..19])?;
        let (nanos, rest) = parse_fraction(&b[19..])?;
        let offset = parse_offset(rest)?;
        Timestamp::from_civil(i64::from(year), month, day, hour, minute, second, nanos)?
            .offset_seconds(-offset)
    }

    /// Writes the RFC 3339 form into `buf` and returns it as a `&str`.
    pub fn format_rfc3339<'b>(&self, buf: &'b mut [u8; MAX_RFC3339_LEN]) -> &'b str {
        let (y, mo, d, h, mi, s) = self.civil();
        let mut n = 0;
        let put2 = |buf: &mut [u8; MAX_RFC3339_LEN], n: &mut usize, v: u32| {
            buf[*n] = b'0' + (v / 10) as u8;
            buf[*n + 1] = b'0' + (v % 10) as u8;
            *n += 2;
        };
        let y = y.clamp(0, 9999) as u32;
        put2(buf, &mut n, y / 100);
        put2(buf, &mut n, y % 100);
        buf[n] = b'-';
        n += 1;
        put2(buf, &mut n, mo);
        buf[n] = b'-';
        n += 1;
        put2(buf, &mut n, d);
        buf[n] = b'T';
        n += 1;
        put2(buf, &mut n, h);
        buf[n] = b':';
        n += 1;
        put2(buf, &mut n, mi);
        buf[n] = b':';
        n += 1;
        put2(buf, &mut n, s);
        if self.nanos != 0 {
            let (mut value, width) = if self.nanos.is_multiple_of(1_000_000) {
                (self.nanos / 1_000_000, 3)
            } else if self.nanos.is_multiple_of(1000) {
                (self.nanos / 1000, 6)
            } else {
                (self.nanos, 9)
            };
            buf[n] = b'.';
            for i in (0..width).rev() {
                buf[n + 1 + i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
            n += 1 + width;
        }
        buf[n] = b'Z';
        n += 1;
        // Only ASCII digits and punctuation were written.
        std::str::from_utf8(&buf[..n]).unwrap_or_default()
    }
}

impl Timestamp {
    /// Appends the RFC 3339 form as a JSON string (the text its `Serialize` gives through
    /// serde_json).
    pub fn write_json(&self, out: &mut String) {
        let mut buf = [0u8; MAX_RFC3339_LEN];
        out.push('"');
        out.push_str(self.format_rfc3339(&mut buf));
        out.push('"');
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; MAX_RFC3339_LEN];
        f.write_str(self.format_rfc3339(&mut buf))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; MAX_RFC3339_LEN];
        serializer.serialize_str(self.format_rfc3339(&mut buf))
    }
}

/// Parses a run of ASCII digits (at most 9) as a number.
pub(crate) fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Parses an optional `.digits` fraction; returns nanoseconds and the rest.
fn parse_fraction(b: &[u8]) -> Option<(u32, &[u8])> {
    if b.first() != Some(&b'.') && b.first() != Some(&b',') {
        return Some((0, b));
    }
    let end = b[1..]
        .iter()
        .position(|c| !c.is_ascii_digit())
        .map_or(b.len(), |p| p + 1);
    let frac = &b[1..end];
    if frac.is_empty() {
        return None;
    }
    let mut nanos = 0u32;
    for i in 0..9 {
        nanos = nanos * 10 + frac.get(i).map_or(0, |c| u32::from(c - b'0'));
    }
    Some((nanos, &b[end..]))
}

/// Parses `Z`, `±HH:MM`, `±HHMM`, `±HH` or nothing; returns the offset east of UTC in seconds.
fn parse_offset(b: &[u8]) -> Option<i64> {
    match b {
        [] | [b'Z'] | [b'z'] => Some(0),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest {
                [h1, h2] => (digits(&[*h1, *h2])?, 0),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?)
                }
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => None,
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Number of days in `month` of `year`.
pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_with_shortest_exact_fraction() {
        let ts = Timestamp::from_civil(2018, 7, 2, 22, 23, 0, 186_641_000).unwrap();
        assert_eq!(ts.to_string(), "2018-07-02T22:23:00.186641Z");
        let ts = Timestamp::from_civil(2018, 7, 2, 22, 23, 0, 5_000_000).unwrap();
        assert_eq!(ts.to_string(), "2018-07-02T22:23:00.005Z");
        assert_eq!(Timestamp::UNIX_EPOCH.to_string(), "1970-01-01T00:00:00Z");
        let ts = Timestamp::from_unix(-1, 1).unwrap();
        assert_eq!(ts.to_string(), "1969-12-31T23:59:59.000000001Z");
    }

    #[test]
    fn parses_offsets_and_rejects_garbage() {
        let ts = Timestamp::parse_rfc3339("2020-02-29T23:30:00-01:30").unwrap();
        assert_eq!(ts.to_string(), "2020-03-01T01:00:00Z");
        assert!(Timestamp::parse_rfc3339("2021-02-29T00:00:00Z").is_none());
        assert!(Timestamp::parse_rfc3339("2021-01-01T00:00:00.Z").is_none());
        assert!(Timestamp::parse_rfc3339("2021-01-01T24:00:00Z").is_none());
        assert!(Timestamp::parse_rfc3339("2021-01-01X00:00:00Z").is_none());
        assert!(Timestamp::parse_rfc3339("2021-01-01T00:00:00+9").is_none());
        assert!(Timestamp::parse_rfc3339("").is_none());
    }

    #[test]
    fn millis_and_floats() {
        let ts = Timestamp::from_unix_millis(1_510_109_208_016).unwrap();
        assert_eq!(ts.to_string(), "2017-11-08T02:46:48.016Z");
        assert_eq!(ts.unix_millis(), 1_510_109_208_016);
        let ts = Timestamp::from_unix_f64(1_510_109_208.5).unwrap();
        assert_eq!(ts.to_string(), "2017-11-08T02:46:48.500Z");
        assert!(Timestamp::from_unix_f64(f64::NAN).is_none());
        assert!(Timestamp::from_unix_millis(i64::MAX).is_none());
    }

    proptest! {
        #[test]
        fn rfc3339_round_trips(secs in -62_135_596_800i64..253_402_300_799, nanos in 0u32..1_000_000_000) {
            let ts = Timestamp::from_unix(secs, nanos).unwrap();
            let text = ts.to_string();
            prop_assert_eq!(Timestamp::parse_rfc3339(&text), Some(ts));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = Timestamp::parse_rfc3339(&s);
        }
    }
}
