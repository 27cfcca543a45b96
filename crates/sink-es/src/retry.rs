//! Which failures are retried, and how long to wait before the next attempt.

use std::time::Duration;

use crate::config::OpType;

/// Whether a whole bulk request answered with `status` should be sent again: 408, 429 and 5xx
/// (the cluster is busy or failing), and 401/403 (credentials being rotated, a role being
/// granted: the events stay unacknowledged and the pipeline stalls instead of dead-lettering
/// everything over a configuration mistake). Other statuses (400, 404, 413, ...) reject the
/// request's documents.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 401 | 403 | 408 | 429) || status >= 500
}

/// What to do with one item of a bulk answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItemAction {
    /// 2xx: stored.
    Delivered,
    /// 409 with `op_type = "create"`: the document already exists, which is what a replay
    /// produces; counts as delivered.
    Conflict,
    /// 408, 429 or 5xx: send this item again.
    Retry,
    /// Any other status (400 `mapper_parsing_exception`, 403 on an index, 404, 409 with
    /// `index`): rejected for good, dead-lettered with the reason.
    Reject,
}

/// Classifies one item of a bulk answer.
///
/// ```
/// use logferry_sink_es::{ItemAction, OpType, classify_item};
/// assert_eq!(classify_item(201, OpType::Create), ItemAction::Delivered);
/// assert_eq!(classify_item(409, OpType::Create), ItemAction::Conflict);
/// assert_eq!(classify_item(429, OpType::Create), ItemAction::Retry);
/// assert_eq!(classify_item(400, OpType::Create), ItemAction::Reject);
/// ```
pub fn classify_item(status: u16, op_type: OpType) -> ItemAction {
    match status {
        200..=299 => ItemAction::Delivered,
        409 if op_type == OpType::Create => ItemAction::Conflict,
        408 | 429 => ItemAction::Retry,
        500.. => ItemAction::Retry,
        _ => ItemAction::Reject,
    }
}

/// Exponential backoff with "equal jitter": attempt `n` waits between half and all of
/// `initial * 2^(n-1)`, capped at `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
}

impl Backoff {
    /// The delay before retry number `attempt` (1-based).
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(20);
        let full = self.initial.saturating_mul(factor).min(self.max);
        let half = full / 2;
        let jitter = full.saturating_sub(half).as_nanos() as u64;
        half + Duration::from_nanos(fastrand::u64(0..=jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_statuses() {
        for status in [401, 403, 408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(status), "{status}");
        }
        for status in [200, 400, 404, 405, 413] {
            assert!(!is_retryable_status(status), "{status}");
        }
    }

    #[test]
    fn item_statuses() {
        use ItemAction::*;
        let cases = [
            (200, OpType::Index, Delivered),
            (201, OpType::Create, Delivered),
            (409, OpType::Create, Conflict),
            (409, OpType::Index, Reject),
            (429, OpType::Create, Retry),
            (503, OpType::Index, Retry),
            (500, OpType::Create, Retry),
            (400, OpType::Create, Reject),
            (403, OpType::Create, Reject),
            (404, OpType::Index, Reject),
        ];
        for (status, op, expected) in cases {
            assert_eq!(classify_item(status, op), expected, "{status} {op:?}");
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        for _ in 0..100 {
            let d1 = backoff.delay(1);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = backoff.delay(3);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d40 = backoff.delay(40);
            assert!(
                d40 >= Duration::from_secs(1) && d40 <= Duration::from_secs(2),
                "{d40:?}"
            );
        }
    }
}
