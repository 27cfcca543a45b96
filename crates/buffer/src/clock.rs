//! Time: the clock that drives sealing and retries, and the time slices of chunks.

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Offset, TimeZone};
use logferry_core::Timestamp;

/// The source of "now" for sealing by time and for retry delays.
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to, for tests.
///
/// ```
/// use std::time::Duration;
/// use logferry_buffer::{Clock, ManualClock};
/// use logferry_core::Timestamp;
///
/// let clock = ManualClock::new(Timestamp::UNIX_EPOCH);
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now().unix_seconds(), 90);
/// ```
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Sets the time (it may go backwards).
    pub fn set(&self, now: Timestamp) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = add(*now, by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The latest timestamp: 9999-12-31T23:59:59Z.
fn max_timestamp() -> Timestamp {
    Timestamp::from_unix(253_402_300_799, 0).unwrap_or_default()
}

fn as_nanos(t: Timestamp) -> i128 {
    i128::from(t.unix_seconds()) * 1_000_000_000 + i128::from(t.subsec_nanos())
}

/// `t + d`, saturating at the end of year 9999.
pub(crate) fn add(t: Timestamp, d: Duration) -> Timestamp {
    let total = as_nanos(t).saturating_add(i128::try_from(d.as_nanos()).unwrap_or(i128::MAX));
    let secs = i64::try_from(total.div_euclid(1_000_000_000)).unwrap_or(i64::MAX);
    let nanos = u32::try_from(total.rem_euclid(1_000_000_000)).unwrap_or(0);
    Timestamp::from_unix(secs, nanos).unwrap_or_else(max_timestamp)
}

/// `later - earlier`, or zero when `later` is not later.
pub(crate) fn until(earlier: Timestamp, later: Timestamp) -> Duration {
    let diff = as_nanos(later) - as_nanos(earlier);
    u64::try_from(diff).map_or(Duration::ZERO, Duration::from_nanos)
}

/// Cuts time into slices of `timekey` seconds, aligned to UTC or to the local time zone.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slicer {
    timekey: i64,
    use_utc: bool,
}

impl Slicer {
    pub(crate) fn new(timekey: Duration, use_utc: bool) -> Slicer {
        Slicer {
            timekey: i64::try_from(timekey.as_secs()).unwrap_or(i64::MAX).max(1),
            use_utc,
        }
    }

    /// Length of a slice in seconds.
    pub(crate) fn timekey_secs(&self) -> i64 {
        self.timekey
    }

    /// Start of the slice holding `t`, in seconds since the epoch: fluentd's
    /// `t - ((t + utc_offset) % timekey)`.
    pub(crate) fn slice_start(&self, t: Timestamp) -> i64 {
        let secs = t.unix_seconds();
        let offset = if self.use_utc { 0 } else { local_offset(secs) };
        secs - (secs + offset).rem_euclid(self.timekey)
    }
}

/// The local time zone's offset east of UTC at `secs`, in seconds.
fn local_offset(secs: i64) -> i64 {
    DateTime::from_timestamp(secs, 0).map_or(0, |utc| {
        i64::from(
            chrono::Local
                .offset_from_utc_datetime(&utc.naive_utc())
                .fix()
                .local_minus_utc(),
        )
    })
}

/// A slice start as a timestamp (the start clamped into the supported years).
pub(crate) fn slice_timestamp(start: i64) -> Timestamp {
    Timestamp::from_unix(start, 0).unwrap_or_else(|| {
        if start < 0 {
            Timestamp::from_civil(0, 1, 1, 0, 0, 0, 0).unwrap_or_default()
        } else {
            max_timestamp()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_slices() {
        let s = Slicer::new(Duration::from_secs(3600), true);
        let t = Timestamp::parse_rfc3339("2024-05-01T13:59:59.9Z").unwrap();
        let start = s.slice_start(t);
        assert_eq!(slice_timestamp(start).to_string(), "2024-05-01T13:00:00Z");
        let t = Timestamp::from_unix(-1, 0).unwrap();
        assert_eq!(s.slice_start(t), -3600);
    }

    #[test]
    fn local_slices_follow_the_offset() {
        let s = Slicer::new(Duration::from_secs(86_400), false);
        let t = Timestamp::parse_rfc3339("2024-05-01T13:00:00Z").unwrap();
        let start = s.slice_start(t);
        assert_eq!((start + local_offset(start)).rem_euclid(86_400), 0);
        assert!(start <= t.unix_seconds() && t.unix_seconds() < start + 86_400);
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_unix(10, 500_000_000).unwrap();
        assert_eq!(
            add(t, Duration::from_millis(600)),
            Timestamp::from_unix(11, 100_000_000).unwrap()
        );
        assert_eq!(add(t, Duration::MAX), max_timestamp());
        assert_eq!(until(t, Timestamp::UNIX_EPOCH), Duration::ZERO);
        assert_eq!(
            until(Timestamp::UNIX_EPOCH, t),
            Duration::from_millis(10_500)
        );
    }
}
