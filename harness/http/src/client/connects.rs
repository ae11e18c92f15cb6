//! Counting the connections the client opens for its measured requests
//! (TCP, and TLS when the URL is https): whether a measured request paid
//! for a handshake is a point's `connections_opened`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Connects started and still in progress, shared by the client's clones.
#[derive(Debug, Default)]
pub struct ConnectCount {
    started: AtomicU64,
    pending: AtomicU64,
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
        self.0.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_is_pending_until_its_guard_drops() {
        let count = Arc::new(ConnectCount::default());
        let first = count.begin();
        let second = count.begin();
        assert_eq!((count.started(), count.pending()), (2, 2));
        drop(first);
        assert_eq!((count.started(), count.pending()), (2, 1));
        drop(second);
        assert_eq!((count.started(), count.pending()), (2, 0));
    }
}
