//! In-order acknowledgement of one file's batches.

use std::collections::VecDeque;

use logferry_core::{AckReceiver, AckStatus};

/// The batches of one file that were sent and are not yet committed, oldest first.
#[derive(Debug, Default)]
pub(crate) struct AckQueue {
    pending: VecDeque<Pending>,
}

#[derive(Debug)]
struct Pending {
    end_offset: u64,
    receiver: AckReceiver,
    status: Option<AckStatus>,
}

/// What [`AckQueue::poll`] learned.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AckProgress {
    /// The new committed offset, when the oldest batches were delivered.
    pub(crate) committed: Option<u64>,
    /// The oldest unresolved-or-failed batch failed: its end offset and status.
    pub(crate) failed: Option<(u64, AckStatus)>,
    /// Acknowledgements newly resolved as `Delivered`, in any position.
    pub(crate) delivered: u64,
    /// Acknowledgements newly resolved as `Errored` or `Rejected`, in any position.
    pub(crate) not_delivered: u64,
}

impl AckQueue {
    pub(crate) fn push(&mut self, end_offset: u64, receiver: AckReceiver) {
        self.pending.push_back(Pending {
            end_offset,
            receiver,
            status: None,
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Forgets every pending batch (their outcomes no longer matter).
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
    }

    /// Collects resolved acknowledgements without waiting and commits the delivered prefix.
    /// A failed batch stays at the front until the caller clears the queue.
    pub(crate) fn poll(&mut self) -> AckProgress {
        let mut progress = AckProgress::default();
        for pending in self.pending.iter_mut().filter(|p| p.status.is_none()) {
            pending.status = pending.receiver.try_status();
            match pending.status {
                Some(AckStatus::Delivered) => progress.delivered += 1,
                Some(_) => progress.not_delivered += 1,
                None => {}
            }
        }
        while let Some(front) = self.pending.front() {
            match front.status {
                Some(AckStatus::Delivered) => {
                    progress.committed = Some(front.end_offset);
                    self.pending.pop_front();
                }
                Some(status) => {
                    progress.failed = Some((front.end_offset, status));
                    break;
                }
                None => break,
            }
        }
        progress
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logferry_core::AckToken;

    #[test]
    fn commits_in_order() {
        let mut q = AckQueue::default();
        let tokens: Vec<AckToken> = (1..=3)
            .map(|i| {
                let (t, r) = AckToken::new();
                q.push(i * 10, r);
                t
            })
            .collect();
        let mut tokens = tokens.into_iter();
        let (t1, t2, t3) = (
            tokens.next().unwrap(),
            tokens.next().unwrap(),
            tokens.next().unwrap(),
        );
        t3.finish(AckStatus::Delivered);
        let p = q.poll();
        assert_eq!(
            p,
            AckProgress {
                delivered: 1,
                ..AckProgress::default()
            }
        );
        t1.finish(AckStatus::Delivered);
        assert_eq!(q.poll().committed, Some(10));
        t2.finish(AckStatus::Delivered);
        let p = q.poll();
        assert_eq!(p.committed, Some(30));
        assert_eq!(p.delivered, 1);
        assert!(q.is_empty());
    }

    #[test]
    fn failure_blocks_the_queue() {
        let mut q = AckQueue::default();
        let (t1, r1) = AckToken::new();
        let (t2, r2) = AckToken::new();
        q.push(5, r1);
        q.push(9, r2);
        t2.finish(AckStatus::Delivered);
        t1.finish(AckStatus::Errored);
        let p = q.poll();
        assert_eq!(p.committed, None);
        assert_eq!(p.failed, Some((5, AckStatus::Errored)));
        assert_eq!((p.delivered, p.not_delivered), (1, 1));
    }
}
