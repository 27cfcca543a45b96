//! A shutdown signal that many tasks can wait on.

use tokio::sync::watch;

/// Fires the shutdown; dropping it without firing does not shut anything down.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

/// A clonable handle that resolves once shutdown is triggered.
///
/// ```
/// use logferry_core::shutdown_pair;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (trigger, signal) = shutdown_pair();
/// let waiter = signal.clone();
/// assert!(!waiter.is_triggered());
/// trigger.trigger();
/// signal.wait().await;
/// assert!(waiter.is_triggered());
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct ShutdownSignal {
    rx: watch::Receiver<bool>,
}

/// Creates a trigger and its signal.
pub fn shutdown_pair() -> (ShutdownTrigger, ShutdownSignal) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, ShutdownSignal { rx })
}

impl ShutdownTrigger {
    /// Signals every [`ShutdownSignal`] clone.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
}

impl ShutdownSignal {
    /// A signal that never fires (for embedders that stop tasks by other means).
    pub fn never() -> ShutdownSignal {
        let (tx, rx) = watch::channel(false);
        std::mem::forget(tx);
        ShutdownSignal { rx }
    }

    /// Whether shutdown has been triggered.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits until shutdown is triggered. If the trigger was dropped without firing this
    /// waits forever.
    pub async fn wait(mut self) {
        if self.rx.wait_for(|fired| *fired).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
