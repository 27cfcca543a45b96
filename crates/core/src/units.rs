//! Durations (`"60s"`) and sizes (`"256MiB"`) as users write them in configuration files.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration written as a string with a unit: `"500ms"`, `"60s"`, `"5m"`, `"1h"`, `"1d"`
/// (a bare number is seconds; units may be combined: `"1h30m"`).
///
/// ```
/// use logferry_core::ConfigDuration;
/// let d: ConfigDuration = "1h30m".parse().unwrap();
/// assert_eq!(d.as_duration().as_secs(), 5400);
/// assert_eq!(d.to_string(), "1h30m");
/// assert!("10 parsecs".parse::<ConfigDuration>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigDuration(Duration);

/// A size in bytes written as an integer or a string with a unit: `"256MiB"`, `"4GiB"`,
/// `"64KiB"`, `"10MB"` (powers of 1000), `"1k"` / `"1m"` / `"1g"` (fluentd's powers of 1024).
///
/// ```
/// use logferry_core::ByteSize;
/// assert_eq!("256MiB".parse::<ByteSize>().unwrap().bytes(), 256 << 20);
/// assert_eq!("8m".parse::<ByteSize>().unwrap().bytes(), 8 << 20);
/// assert_eq!("1000".parse::<ByteSize>().unwrap().bytes(), 1000);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

/// A duration or size that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not {expected}")]
pub struct UnitError {
    input: String,
    expected: &'static str,
}

impl ConfigDuration {
    /// Wraps a duration.
    pub const fn new(d: Duration) -> ConfigDuration {
        ConfigDuration(d)
    }

    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> ConfigDuration {
        ConfigDuration(Duration::from_secs(secs))
    }

    /// The duration.
    pub const fn as_duration(&self) -> Duration {
        self.0
    }
}

impl From<ConfigDuration> for Duration {
    fn from(d: ConfigDuration) -> Duration {
        d.0
    }
}

impl FromStr for ConfigDuration {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = || UnitError {
            input: s.to_owned(),
            expected: "a duration such as \"500ms\", \"60s\", \"5m\", \"1h\" or \"1d\"",
        };
        let text = s.trim();
        if text.is_empty() {
            return Err(err());
        }
        if let Ok(secs) = text.parse::<u64>() {
            return Ok(ConfigDuration::from_secs(secs));
        }
        let mut total = Duration::ZERO;
        let mut rest = text;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit() && c != '.')
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(err());
            }
            let value: f64 = rest[..digits].parse().map_err(|_| err())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = rest[unit_len..].trim_start();
            let scale = match unit {
                "ns" => 1e-9,
                "us" | "µs" => 1e-6,
                "ms" => 1e-3,
                "s" | "sec" | "secs" => 1.0,
                "m" | "min" | "mins" => 60.0,
                "h" | "hr" | "hour" | "hours" => 3600.0,
                "d" | "day" | "days" => 86_400.0,
                _ => return Err(err()),
            };
            let secs = value * scale;
            if !secs.is_finite() || secs > 1e12 {
                return Err(err());
            }
            total += Duration::from_secs_f64(secs);
        }
        Ok(ConfigDuration(total))
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() != 0 {
            return write!(f, "{}ms", d.as_millis());
        }
        let mut secs = d.as_secs();
        if secs == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if secs >= size {
                write!(f, "{}{unit}", secs / size)?;
                secs %= size;
            }
        }
        Ok(())
    }
}

impl ByteSize {
    /// A size of `bytes` bytes.
    pub const fn new(bytes: u64) -> ByteSize {
        ByteSize(bytes)
    }

    /// The size in bytes.
    pub const fn bytes(&self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = || UnitError {
            input: s.to_owned(),
            expected: "a size such as 1048576, \"64KiB\", \"256MiB\" or \"4GiB\"",
        };
        let text = s.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len());
        let (number, unit) = (&text[..split], text[split..].trim());
        if number.is_empty() {
            return Err(err());
        }
        let scale: u64 = match unit {
            "" | "b" | "B" => 1,
            "k" | "K" | "KiB" | "kib" => 1 << 10,
            "m" | "M" | "MiB" | "mib" => 1 << 20,
            "g" | "G" | "GiB" | "gib" => 1 << 30,
            "t" | "T" | "TiB" | "tib" => 1 << 40,
            "KB" | "kB" | "kb" => 1000,
            "MB" | "mb" => 1_000_000,
            "GB" | "gb" => 1_000_000_000,
            "TB" | "tb" => 1_000_000_000_000,
            _ => return Err(err()),
        };
        if let Ok(n) = number.parse::<u64>() {
            return n.checked_mul(scale).map(ByteSize).ok_or_else(err);
        }
        let value: f64 = number.parse().map_err(|_| err())?;
        let bytes = value * scale as f64;
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Err(err());
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if b >= 1 << shift && b.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", b >> shift);
            }
        }
        write!(f, "{b}")
    }
}

macro_rules! string_or_number_serde {
    ($ty:ident, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                        v.to_string().parse().map_err(E::custom)
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                        u64::try_from(v)
                            .map_err(|_| E::custom(concat!("negative ", $expecting)))
                            .and_then(|v| self.visit_u64(v))
                    }
                }
                deserializer.deserialize_any(V)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
    };
}

string_or_number_serde!(ConfigDuration, "a duration");
string_or_number_serde!(ByteSize, "a size");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = |s: &str| {
            s.parse::<ConfigDuration>()
                .unwrap()
                .as_duration()
                .as_millis()
        };
        assert_eq!(ms("500ms"), 500);
        assert_eq!(ms("60s"), 60_000);
        assert_eq!(ms("5m"), 300_000);
        assert_eq!(ms("1d"), 86_400_000);
        assert_eq!(ms("1.5s"), 1500);
        assert_eq!(ms("30"), 30_000);
        for bad in ["", "s", "5x", "-1s", "1e400s"] {
            assert!(bad.parse::<ConfigDuration>().is_err(), "{bad}");
        }
        assert_eq!(ConfigDuration::from_secs(3661).to_string(), "1h1m1s");
    }

    #[test]
    fn sizes() {
        let b = |s: &str| s.parse::<ByteSize>().unwrap().bytes();
        assert_eq!(b("4GiB"), 4 << 30);
        assert_eq!(b("10MB"), 10_000_000);
        assert_eq!(b("1.5KiB"), 1536);
        assert!("99999999999TiB".parse::<ByteSize>().is_err());
        assert!("12 apples".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize::new(256 << 20).to_string(), "256MiB");
    }

    #[test]
    fn deserializes_strings_and_integers() {
        #[derive(Deserialize)]
        struct C {
            d: ConfigDuration,
            s: ByteSize,
        }
        let c: C = serde_json::from_str(r#"{"d":"1h","s":1024}"#).unwrap();
        assert_eq!(c.d.as_duration().as_secs(), 3600);
        assert_eq!(c.s.bytes(), 1024);
        assert!(serde_json::from_str::<C>(r#"{"d":"1y","s":1}"#).is_err());
    }
}
