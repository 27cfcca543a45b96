//! Acknowledgements: a token shared by every event of a unit of work that reports, once all
//! copies are gone, whether everything was delivered.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use tokio::sync::oneshot;

/// The outcome of delivering an event, or of a whole unit of work.
///
/// Statuses combine by severity: `Delivered < Errored < Rejected`, and a unit of work
/// reports the most severe status of its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum AckStatus {
    /// Durably stored by the output (or dead-lettered, which is also durable).
    Delivered = 0,
    /// A transient failure: the unit of work should be retried later (e.g. left in SQS).
    Errored = 1,
    /// A permanent failure: retrying the same input would fail the same way.
    Rejected = 2,
}

impl AckStatus {
    fn from_u8(v: u8) -> AckStatus {
        match v {
            0 => AckStatus::Delivered,
            1 => AckStatus::Errored,
            _ => AckStatus::Rejected,
        }
    }
}

struct Shared {
    status: AtomicU8,
    sender: Mutex<Option<oneshot::Sender<AckStatus>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let status = AckStatus::from_u8(*self.status.get_mut());
        let sender = match self.sender.get_mut() {
            Ok(sender) => sender.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(sender) = sender {
            // The receiver may be gone (its owner shut down); nothing to report to then.
            let _ = sender.send(status);
        }
    }
}

/// A handle carried by every event of one unit of work (an SQS message, a tailed line range).
///
/// Clone it once per event; each holder calls [`AckToken::update`] with its outcome (or simply
/// drops it after success). When the last clone is dropped, the [`AckReceiver`] resolves to the
/// most severe status reported, `Delivered` if none was.
///
/// ```
/// use logferry_core::{AckStatus, AckToken};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (token, receiver) = AckToken::new();
/// let a = token.clone();
/// let b = token;
/// a.update(AckStatus::Delivered);
/// b.update(AckStatus::Errored);
/// drop((a, b));
/// assert_eq!(receiver.await, AckStatus::Errored);
/// # });
/// ```
#[derive(Clone)]
pub struct AckToken {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AckToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckToken")
            .field(
                "status",
                &AckStatus::from_u8(self.shared.status.load(Ordering::Relaxed)),
            )
            .field("holders", &Arc::strong_count(&self.shared))
            .finish()
    }
}

impl AckToken {
    /// Creates a token and the receiver that learns the combined outcome.
    pub fn new() -> (AckToken, AckReceiver) {
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            status: AtomicU8::new(AckStatus::Delivered as u8),
            sender: Mutex::new(Some(tx)),
        });
        (AckToken { shared }, AckReceiver { rx })
    }

    /// Records an outcome; the most severe one reported wins.
    pub fn update(&self, status: AckStatus) {
        self.shared.status.fetch_max(status as u8, Ordering::AcqRel);
    }

    /// Records an outcome and releases this holder.
    pub fn finish(self, status: AckStatus) {
        self.update(status);
    }
}

/// Resolves to the combined [`AckStatus`] once every clone of its [`AckToken`] is dropped.
#[derive(Debug)]
pub struct AckReceiver {
    rx: oneshot::Receiver<AckStatus>,
}

impl AckReceiver {
    /// Returns the outcome if it is already known, without waiting.
    pub fn try_status(&mut self) -> Option<AckStatus> {
        match self.rx.try_recv() {
            Ok(status) => Some(status),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(AckStatus::Errored),
        }
    }
}

impl Future for AckReceiver {
    type Output = AckStatus;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<AckStatus> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(AckStatus::Errored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivered_when_all_dropped_without_updates() {
        let (token, mut rx) = AckToken::new();
        let copies: Vec<_> = (0..10).map(|_| token.clone()).collect();
        drop(token);
        assert_eq!(rx.try_status(), None);
        drop(copies);
        assert_eq!(rx.await, AckStatus::Delivered);
    }

    #[tokio::test]
    async fn most_severe_wins_across_threads() {
        let (token, rx) = AckToken::new();
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let t = token.clone();
                std::thread::spawn(move || {
                    t.finish(if i == 5 {
                        AckStatus::Rejected
                    } else {
                        AckStatus::Delivered
                    })
                })
            })
            .collect();
        drop(token);
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(rx.await, AckStatus::Rejected);
    }
}
