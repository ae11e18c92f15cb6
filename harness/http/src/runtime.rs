//! The runtime the client's requests run on, the same for the `http` command
//! and for the benchmark that measures the client's own error.
//!
//! Requests run on the worker threads; the caller's thread (inside
//! [`ClientRuntime::block_on`]) only receives finished requests, so folding
//! them into statistics and saving results never delays a chunk's timestamp.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Name of the client's worker threads (seen in `top -H`, and used to tell
/// the client's CPU time from a co-located server's).
pub const CLIENT_THREAD_NAME: &str = "inferbench-client";

/// A multi-threaded tokio runtime of named client workers, optionally
/// busy-polling.
pub struct ClientRuntime {
    runtime: tokio::runtime::Runtime,
    threads: u32,
    busy_poll: bool,
}

impl ClientRuntime {
    /// `busy_poll`: while a future runs, every worker spins polling its
    /// sockets instead of sleeping until one is ready. An idle thread woken
    /// by the kernel starts late (about 0.1 ms on a virtual machine, more in
    /// deep idle states), and that delay lands in every timestamp; spinning
    /// removes it at the price of one full core per worker, which a server
    /// on the same host no longer gets.
    pub fn new(threads: u32, busy_poll: bool) -> std::io::Result<ClientRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1) as usize)
            .thread_name(CLIENT_THREAD_NAME)
            .enable_all()
            .build()?;
        Ok(ClientRuntime {
            runtime,
            threads: threads.max(1),
            busy_poll,
        })
    }

    /// Worker threads the requests run on (`--client-threads`, at least 1).
    pub fn threads(&self) -> u32 {
        self.threads
    }

    /// Whether the workers spin polling their sockets (`--busy-poll`).
    pub fn busy_poll(&self) -> bool {
        self.busy_poll
    }

    /// Runs `future` to its end on the calling thread, its spawned tasks on
    /// the workers (spinning meanwhile with `busy_poll`), and returns its
    /// output.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        if !self.busy_poll {
            return self.runtime.block_on(future);
        }
        let stop = Arc::new(AtomicBool::new(false));
        for _ in 0..self.threads {
            let stop = stop.clone();
            // `yield_now` defers the task until the worker has polled its
            // I/O driver without blocking: a loop of it is a busy poll.
            self.runtime.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::task::yield_now().await;
                }
            });
        }
        let output = self.runtime.block_on(future);
        stop.store(true, Ordering::Relaxed);
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn alive_tasks_settle_to_zero(runtime: &ClientRuntime) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if runtime.runtime.metrics().num_alive_tasks() == 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn busy_poll_runs_the_future_and_stops_spinning_after_it() {
        let runtime = ClientRuntime::new(2, true).unwrap();
        assert!(runtime.busy_poll());
        assert_eq!(runtime.threads(), 2);
        let answer = runtime.block_on(async {
            let spawned = tokio::spawn(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                41
            });
            spawned.await.unwrap() + 1
        });
        assert_eq!(answer, 42);
        assert!(
            alive_tasks_settle_to_zero(&runtime),
            "the spinning tasks outlived block_on"
        );
    }

    #[test]
    fn client_threads_carry_their_name() {
        let runtime = ClientRuntime::new(1, false).unwrap();
        let name = runtime.block_on(async {
            tokio::spawn(async { std::thread::current().name().map(str::to_string) })
                .await
                .unwrap()
        });
        assert_eq!(name.as_deref(), Some(CLIENT_THREAD_NAME));
    }
}
