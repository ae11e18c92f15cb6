//! Counting the connections the client opens for its measured requests
//! (TCP, and TLS when the URL is https): whether a measured request paid
//! for a handshake is a point's `connections_opened`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// Connects started and still in progress, shared by the client's clones.
#[derive(Debug, Default)]
pub struct ConnectCount {
    started: AtomicU64,
    pending: AtomicU64,
    settled: Notify,
}

impl ConnectCount {
    /// Connections the client has begun to open (TCP and, for https, TLS),
    /// finished or not.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Connects begun and not yet finished (established or failed).
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Acquire)
    }

    /// Waits until no connect is in progress, at most `limit`; true if none is.
    pub async fn settle(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.settled.notified();
                if self.pending() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    /// Counts a connect begun; its end is counted when the guard drops.
    pub(super) fn begin(self: &Arc<Self>) -> InProgress {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.pending.fetch_add(1, Ordering::AcqRel);
        InProgress(self.clone())
    }
}

/// One connect in progress; its end (or its future dropped) is counted.
pub(super) struct InProgress(Arc<ConnectCount>);

impl Drop for InProgress {
    fn drop(&mut self) {
        if self.0.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.settled.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settles_when_the_last_connect_ends() {
        let count = Arc::new(ConnectCount::default());
        assert!(count.settle(Duration::from_millis(1)).await);
        let first = count.begin();
        let second = count.begin();
        assert_eq!((count.started(), count.pending()), (2, 2));
        assert!(
            !count.settle(Duration::from_millis(20)).await,
            "two pending"
        );
        drop(first);
        assert_eq!(count.pending(), 1);
        let waiter = {
            let count = count.clone();
            tokio::spawn(async move { count.settle(Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished(), "one connect still pending");
        drop(second);
        assert!(waiter.await.unwrap());
        assert_eq!((count.started(), count.pending()), (2, 0));
    }
}
