//! The retry schedule of failed uploads: fluentd's exponential backoff.

use std::time::Duration;

use crate::BufferConfig;

/// Share of a delay by which `retry_randomize` may lengthen or shorten it (fluentd's
/// `retry_randomize_width`).
const RANDOMIZE_WIDTH: f64 = 0.125;

/// When a chunk whose upload failed is offered again, and when it is given up.
///
/// The delay before retry number `attempt + 1` is `retry_wait * base^attempt`, capped at
/// `retry_max_interval`, then (with `retry_randomize`) varied by up to ±12.5%, as fluentd does.
///
/// ```
/// use std::time::Duration;
/// use logferry_buffer::BufferConfig;
///
/// let config = BufferConfig { retry_randomize: false, ..BufferConfig::default() };
/// let policy = config.retry_policy();
/// assert_eq!(policy.delay(0), Duration::from_secs(1));
/// assert_eq!(policy.delay(3), Duration::from_secs(8));
/// assert_eq!(policy.delay(30), Duration::from_secs(300));
/// assert!(!policy.gives_up_after(1_000_000));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    wait: Duration,
    base: f64,
    max_interval: Option<Duration>,
    randomize: bool,
    max_times: Option<u32>,
}

impl RetryPolicy {
    /// The policy of a buffer configuration (`retry_*` options).
    pub fn from_config(config: &BufferConfig) -> RetryPolicy {
        RetryPolicy {
            wait: config.retry_wait.as_duration(),
            base: config.retry_exponential_backoff_base,
            max_interval: config.retry_max_interval.map(|d| d.as_duration()),
            randomize: config.retry_randomize,
            max_times: if config.retry_forever {
                None
            } else {
                config.retry_max_times
            },
        }
    }

    /// The delay before the retry that follows failed attempt number `attempt` (0 for the first
    /// failure), with jitter when `retry_randomize` is on.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.base_delay(attempt);
        if !self.randomize {
            return base;
        }
        let factor = 1.0 + RANDOMIZE_WIDTH * (2.0 * fastrand::f64() - 1.0);
        Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base)
    }

    /// The delay before the retry that follows failed attempt `attempt`, without jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let secs = self.wait.as_secs_f64() * self.base.powi(exponent);
        let cap = self
            .max_interval
            .unwrap_or(Duration::from_secs(86_400 * 365));
        match Duration::try_from_secs_f64(secs) {
            Ok(d) => d.min(cap),
            Err(_) => cap,
        }
    }

    /// Whether a chunk that has failed `failures` times is given up (moved to `failed/`):
    /// only with `retry_forever = false`, once `failures` exceeds `retry_max_times`.
    pub fn gives_up_after(&self, failures: u32) -> bool {
        self.max_times.is_some_and(|max| failures > max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logferry_core::ConfigDuration;

    #[test]
    fn exponential_capped_and_jittered() {
        let config = BufferConfig {
            retry_wait: ConfigDuration::from_secs(2),
            retry_exponential_backoff_base: 3.0,
            retry_max_interval: Some(ConfigDuration::from_secs(100)),
            ..BufferConfig::default()
        };
        let policy = config.retry_policy();
        assert_eq!(policy.base_delay(0), Duration::from_secs(2));
        assert_eq!(policy.base_delay(2), Duration::from_secs(18));
        assert_eq!(policy.base_delay(10), Duration::from_secs(100));
        assert_eq!(policy.base_delay(u32::MAX), Duration::from_secs(100));
        for _ in 0..100 {
            let d = policy.delay(10).as_secs_f64();
            assert!((87.5..=112.5).contains(&d), "{d}");
        }
    }

    #[test]
    fn gives_up_only_without_retry_forever() {
        let forever = BufferConfig::default().retry_policy();
        assert!(!forever.gives_up_after(u32::MAX));
        let limited = BufferConfig {
            retry_forever: false,
            retry_max_times: Some(2),
            ..BufferConfig::default()
        }
        .retry_policy();
        assert!(!limited.gives_up_after(2));
        assert!(limited.gives_up_after(3));
    }
}
