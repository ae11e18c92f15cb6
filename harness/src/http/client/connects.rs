//! Counting the connections the client opens. hyper-util's pool races each
//! checkout against a new connect, and a connect that lost the race goes on
//! in the background and joins the pool later: without a count, nothing says
//! when every connection `preconnect` started has landed, nor whether a
//! measured request paid for a handshake. The count wraps reqwest's
//! connector (TCP, and TLS when the URL is https) as a tower layer.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
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

    fn begin(self: &Arc<Self>) -> InProgress {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.pending.fetch_add(1, Ordering::AcqRel);
        InProgress(self.clone())
    }
}

/// One connect in progress; its end (or its future dropped) is counted.
struct InProgress(Arc<ConnectCount>);

impl Drop for InProgress {
    fn drop(&mut self) {
        if self.0.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.settled.notify_waiters();
        }
    }
}

/// The tower layer that counts a connector's calls into a [`ConnectCount`].
#[derive(Debug, Clone)]
pub struct CountConnects(pub Arc<ConnectCount>);

impl<S> tower_layer::Layer<S> for CountConnects {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            count: self.0.clone(),
        }
    }
}

/// A connector whose calls are counted.
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    count: Arc<ConnectCount>,
}

impl<S, R> tower_service::Service<R> for Counted<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let in_progress = self.count.begin();
        let connect = self.inner.call(request);
        Box::pin(async move {
            let connected = connect.await;
            drop(in_progress);
            connected
        })
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
