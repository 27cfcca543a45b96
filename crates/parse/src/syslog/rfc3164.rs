//! RFC 3164 (BSD syslog): `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG`, read leniently.
//!
//! - TIMESTAMP: `Mmm dd hh:mm:ss` (day space- or zero-padded, or a single digit; optional
//!   `.fraction`), or an RFC 3339 timestamp as rsyslog's high-precision formats write it. The
//!   classic form has no year and no zone: it is read as UTC, in the current year, or the
//!   previous year if that would put it more than a day in the future (the next year if that
//!   puts it within the coming day, for a Jan 1 message read on Dec 31).
//! - Without a valid TIMESTAMP, RFC 3164 section 4.3.2 says a relay treats everything after
//!   the PRI as the message: so does this parser, with the time of parsing.
//! - HOSTNAME: the first word after the TIMESTAMP, unless that word is already a TAG ending in
//!   `:` (`su:`, `systemd[1]:`): local senders (`logger`, journald, glibc's `syslog(3)`) leave
//!   the HOSTNAME out.
//! - TAG: the word after the HOSTNAME when it ends in `:` right before a space or the end of
//!   the line, optionally with `[PID]` before the colon. It may hold anything but spaces,
//!   brackets and colons (`postfix/smtpd`, `org.gnome.Shell.desktop`, `systemd-logind`).
//!   Otherwise there is no TAG and the message starts at that word.
//! - MSG: what follows, after the one space that ends the TAG.

use logferry_core::Timestamp;

use super::{SyslogRecord, non_empty};

/// Parses what follows the PRI (or the whole line when there is none). Never fails: what
/// cannot be read as a header is kept as the message.
pub(super) fn parse(pri: u8, rest: &str, now: impl FnOnce() -> Timestamp) -> SyslogRecord<'_> {
    let now = now();
    let Some((timestamp, after)) = timestamp(rest, now) else {
        let mut record = SyslogRecord::new(pri, now);
        record.message = non_empty(rest);
        return record;
    };
    let mut record = SyslogRecord::new(pri, timestamp);
    let after = after.trim_start_matches(' ');
    if let Some(tag) = tag(after) {
        record.set_tag(tag);
        return record;
    }
    let (host, after) = after.split_once(' ').unwrap_or((after, ""));
    record.host = non_empty(host);
    let after = after.trim_start_matches(' ');
    match tag(after) {
        Some(tag) => record.set_tag(tag),
        None => record.message = non_empty(after),
    }
    record
}

/// A TAG with its PID and the message after it.
struct Tag<'a> {
    ident: &'a str,
    pid: Option<&'a str>,
    message: Option<&'a str>,
}

impl<'a> SyslogRecord<'a> {
    fn set_tag(&mut self, tag: Tag<'a>) {
        self.ident = Some(tag.ident);
        self.pid = tag.pid;
        self.message = tag.message;
    }
}

/// Reads `TAG: MSG` or `TAG[PID]: MSG` at the start of `s`.
fn tag(s: &str) -> Option<Tag<'_>> {
    let b = s.as_bytes();
    let end = b
        .iter()
        .position(|&c| matches!(c, b' ' | b'[' | b']' | b':'))?;
    if end == 0 {
        return None;
    }
    let ident = s.get(..end)?;
    let mut pid = None;
    let mut colon = end;
    if b[end] == b'[' {
        let tail = b.get(end + 1..)?;
        let len = tail.iter().position(|&c| matches!(c, b' ' | b'[' | b']'))?;
        if len == 0 || tail[len] != b']' {
            return None;
        }
        pid = s.get(end + 1..end + 1 + len);
        colon = end + 2 + len;
    }
    if b.get(colon) != Some(&b':') {
        return None;
    }
    let message = match b.get(colon + 1) {
        None => None,
        Some(b' ') => non_empty(s.get(colon + 2..)?),
        Some(_) => return None,
    };
    Some(Tag {
        ident,
        pid,
        message,
    })
}

/// Reads the TIMESTAMP at the start of `s`; returns the time and the rest of `s`.
fn timestamp(s: &str, now: Timestamp) -> Option<(Timestamp, &str)> {
    let b = s.as_bytes();
    if b.len() > 4 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        let (text, rest) = s.split_once(' ').unwrap_or((s, ""));
        return Some((Timestamp::parse_rfc3339(text)?, rest));
    }
    let (civil, len) = bsd_timestamp(b)?;
    Some((with_year(civil, now)?, s.get(len..)?))
}

/// A date and time without a year: month, day, hour, minute, second, nanoseconds.
type Civil = (u32, u32, u32, u32, u32, u32);

const MONTHS: [&[u8; 3]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

/// Reads `Mmm dd hh:mm:ss[.fraction]` followed by a space or the end; returns it and its
/// length.
fn bsd_timestamp(b: &[u8]) -> Option<(Civil, usize)> {
    let name = [
        b.first()?.to_ascii_lowercase(),
        b.get(1)?.to_ascii_lowercase(),
        b.get(2)?.to_ascii_lowercase(),
    ];
    let month = MONTHS.iter().position(|m| **m == name)? as u32 + 1;
    if b.get(3) != Some(&b' ') {
        return None;
    }
    // `dd`, ` d` or `d`.
    let (day, mut i) = match (b.get(4)?, b.get(5)?) {
        (b' ', d) => (digit(*d)?, 6),
        (d1, b' ') => (digit(*d1)?, 5),
        (d1, d2) => (digit(*d1)? * 10 + digit(*d2)?, 6),
    };
    if b.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    let t = b.get(i..i + 8)?;
    if t[2] != b':' || t[5] != b':' {
        return None;
    }
    let two = |at: usize| Some(digit(t[at])? * 10 + digit(t[at + 1])?);
    let (hour, minute, second) = (two(0)?, two(3)?, two(6)?);
    i += 8;
    let mut nanos = 0;
    if b.get(i) == Some(&b'.') {
        let digits = b
            .get(i + 1..)?
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        for k in 0..9 {
            let d = if k < digits {
                b.get(i + 1 + k).and_then(|&c| digit(c))?
            } else {
                0
            };
            nanos = nanos * 10 + d;
        }
        i += 1 + digits;
    }
    match b.get(i) {
        None | Some(b' ') => Some(((month, day, hour, minute, second, nanos), i)),
        _ => None,
    }
}

fn digit(c: u8) -> Option<u32> {
    c.is_ascii_digit().then(|| u32::from(c - b'0'))
}

/// Gives a year-less date the most recent year that does not put it more than a day after
/// `now` (trying next year first, for messages stamped early on Jan 1 read on Dec 31). Feb 29
/// goes back to the last leap year; an impossible date (`Feb 30`) gives `None`.
fn with_year(
    (month, day, hour, minute, second, nanos): Civil,
    now: Timestamp,
) -> Option<Timestamp> {
    let year = now.civil().0;
    let limit = now.unix_seconds().saturating_add(86_400);
    (year.saturating_sub(4)..=year.saturating_add(1))
        .rev()
        .find_map(|y| {
            Timestamp::from_civil(y, month, day, hour, minute, second, nanos)
                .filter(|t| t.unix_seconds() <= limit)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn parse_now(line: &str, now: &str) -> Value {
        crate::syslog::checked_json(&parse(13, line, || at(now)))
    }

    fn fields(line: &str) -> Value {
        let mut v = parse_now(line, "2024-03-15T12:00:00Z");
        let o = v.as_object_mut().unwrap();
        for k in ["facility", "severity", "priority"] {
            o.remove(k);
        }
        v
    }

    #[test]
    fn reads_bsd_timestamps() {
        let ts = |s: &str| bsd_timestamp(s.as_bytes());
        assert_eq!(ts("Oct 11 22:14:15 x"), Some(((10, 11, 22, 14, 15, 0), 15)));
        assert_eq!(ts("Oct  1 22:14:15"), Some(((10, 1, 22, 14, 15, 0), 15)));
        assert_eq!(ts("Oct 01 22:14:15"), Some(((10, 1, 22, 14, 15, 0), 15)));
        assert_eq!(ts("oct 1 22:14:15"), Some(((10, 1, 22, 14, 15, 0), 14)));
        assert_eq!(
            ts("Oct 11 22:14:15.123 x"),
            Some(((10, 11, 22, 14, 15, 123_000_000), 19))
        );
        assert_eq!(
            ts("Oct 11 22:14:15.1234567891"),
            Some(((10, 11, 22, 14, 15, 123_456_789), 26))
        );
        for bad in [
            "",
            "Oct",
            "Oct 11",
            "Oct 11 22:14",
            "Oct 11 22:14:1",
            "Oct 11 22:14:15x",
            "Oct 11 22-14-15",
            "Okt 11 22:14:15",
            "Oct 111 22:14:15",
            "Oct 11  22:14:15",
            "Oct 11 22:14:15.",
            "Oct 1a 22:14:15",
            "Oct  é 22:14:15",
            "1990 Oct 22 10:52:01",
        ] {
            assert_eq!(ts(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn picks_the_year() {
        let now = at("2024-03-15T12:00:00Z");
        let y = |c| with_year(c, now).map(|t| t.to_string());
        assert_eq!(y((3, 15, 11, 0, 0, 0)).unwrap(), "2024-03-15T11:00:00Z");
        assert_eq!(y((3, 16, 11, 0, 0, 0)).unwrap(), "2024-03-16T11:00:00Z");
        assert_eq!(y((3, 16, 12, 0, 1, 0)).unwrap(), "2023-03-16T12:00:01Z");
        assert_eq!(y((12, 31, 23, 0, 0, 0)).unwrap(), "2023-12-31T23:00:00Z");
        assert_eq!(y((2, 29, 0, 0, 0, 0)).unwrap(), "2024-02-29T00:00:00Z");
        assert_eq!(y((2, 30, 0, 0, 0, 0)), None);
        let y = |c, now| with_year(c, at(now)).map(|t| t.to_string());
        assert_eq!(
            y((1, 1, 0, 10, 0, 0), "2024-12-31T23:55:00Z").unwrap(),
            "2025-01-01T00:10:00Z"
        );
        assert_eq!(
            y((12, 31, 23, 59, 0, 0), "2025-01-01T00:01:00Z").unwrap(),
            "2024-12-31T23:59:00Z"
        );
        assert_eq!(
            y((2, 29, 1, 0, 0, 0), "2027-06-01T00:00:00Z").unwrap(),
            "2024-02-29T01:00:00Z"
        );
    }

    #[test]
    fn reads_tags() {
        let t = |s| tag(s).map(|t| (t.ident, t.pid, t.message));
        assert_eq!(t("su: msg"), Some(("su", None, Some("msg"))));
        assert_eq!(t("su:"), Some(("su", None, None)));
        assert_eq!(t("su: "), Some(("su", None, None)));
        assert_eq!(
            t("app[123]: m: x"),
            Some(("app", Some("123"), Some("m: x")))
        );
        assert_eq!(
            t("postfix/smtpd[2211]: connect"),
            Some(("postfix/smtpd", Some("2211"), Some("connect")))
        );
        assert_eq!(
            t("a.b-c_d[x-1]:  two"),
            Some(("a.b-c_d", Some("x-1"), Some(" two")))
        );
        for not in [
            "su",
            "su:x",
            "fe80::1",
            "::1",
            "[1]: x",
            "app[]: x",
            "app[1 2]: x",
            "app[1]x",
            "app[1]",
            "app[1",
            "a]: x",
            "Use the BFG!",
            "10.0.0.99",
        ] {
            assert!(tag(not).is_none(), "{not}");
        }
    }

    #[test]
    fn finds_host_and_tag() {
        assert_eq!(
            fields("Oct 11 22:14:15 mymachine su: 'su root' failed"),
            json!({"@timestamp": "2023-10-11T22:14:15Z", "host": "mymachine", "ident": "su",
                   "message": "'su root' failed"})
        );
        assert_eq!(
            fields("Oct 11 22:14:15 su: no host"),
            json!({"@timestamp": "2023-10-11T22:14:15Z", "ident": "su", "message": "no host"})
        );
        assert_eq!(
            fields("Feb  5 17:32:18 10.0.0.99 Use the BFG!"),
            json!({"@timestamp": "2024-02-05T17:32:18Z", "host": "10.0.0.99", "message": "Use the BFG!"})
        );
        assert_eq!(
            fields("2024-03-15T10:00:00.123456+01:00 web-1 nginx[812]: GET /"),
            json!({"@timestamp": "2024-03-15T09:00:00.123456Z", "host": "web-1", "ident": "nginx",
                   "pid": "812", "message": "GET /"})
        );
        assert_eq!(
            fields("Oct 11 22:14:15"),
            json!({"@timestamp": "2023-10-11T22:14:15Z"})
        );
        assert_eq!(
            fields("Oct 11 22:14:15 "),
            json!({"@timestamp": "2023-10-11T22:14:15Z"})
        );
        assert_eq!(
            fields("Oct 11 22:14:15  host"),
            json!({"@timestamp": "2023-10-11T22:14:15Z", "host": "host"})
        );
        assert_eq!(
            fields("Oct 11 22:14:15 host  app: x"),
            json!({"@timestamp": "2023-10-11T22:14:15Z", "host": "host", "ident": "app", "message": "x"})
        );
        assert_eq!(
            fields("Oct 11 22:14:15 fe80::1 app: x"),
            json!({"@timestamp": "2023-10-11T22:14:15Z", "host": "fe80::1", "ident": "app", "message": "x"})
        );
    }

    #[test]
    fn keeps_unreadable_headers_as_message() {
        for line in [
            "1990 Oct 22 10:52:01 TZ-6 host app[0]: x",
            "garbage",
            "Feb 30 10:00:00 h a: x",
            "2024-13-01T00:00:00Z h a: x",
        ] {
            assert_eq!(
                fields(line),
                json!({"@timestamp": "2024-03-15T12:00:00Z", "message": line}),
                "{line}"
            );
        }
        assert_eq!(fields(""), json!({"@timestamp": "2024-03-15T12:00:00Z"}));
    }
}
