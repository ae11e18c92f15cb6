//! The open-file limit. Every connection the client holds is a file
//! descriptor, so a run of N concurrent streams needs N of them and then
//! some. Most systems start a process with a soft `RLIMIT_NOFILE` of 1024
//! and allow more (the hard limit): the `http` command raises the soft limit
//! to the hard one, then checks that the load it was asked for fits, before
//! it sends anything. Without the check, the streams past the limit would
//! fail as `connect` errors ("Too many open files") and the result would
//! describe a server that refuses load it never saw.
//!
//! A closed loop (`--concurrency N`) holds exactly N streams in flight: too
//! few descriptors for it is refused (a usage error). An open loop or a
//! trace holds as many as the server's pace leaves in flight, at most
//! `--max-inflight`: a limit below that is only warned about, since a server
//! that keeps up never needs them.

use super::load::Load;

/// Descriptors the client uses beside its streams' connections: stdin,
/// stdout and stderr; the result file, its temporary twin (replaced
/// atomically), the CSV and the requests log; the runtime's epoll and
/// wake-up descriptors; the `GET /v1/models` and `--server-metrics`
/// connections; the `/proc` files telemetry reads; connections being
/// replaced while their successors open.
pub const SLACK: u64 = 64;

/// Descriptors a client with `streams` connections in flight needs.
pub fn needed(streams: u64) -> u64 {
    streams.saturating_add(SLACK)
}

/// Raises this process's soft open-file limit to its hard limit and returns
/// the soft limit now in force (`u64::MAX` on a platform without one).
pub fn raise() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// The load asks for more descriptors than the process may open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--concurrency {concurrency} needs about {needed} open files (one per connection, plus {SLACK} \
     for files and other connections), but this process may open only {limit} \
     (RLIMIT_NOFILE, already raised to its hard limit): lower --concurrency to at most {most}, \
     or raise the hard limit (`ulimit -Hn`; systemd's LimitNOFILE; /etc/security/limits.conf)"
)]
pub struct FdLimitError {
    /// The closed-loop point's concurrency that does not fit.
    pub concurrency: u32,
    /// Descriptors it needs: the concurrency plus [`SLACK`].
    pub needed: u64,
    /// The soft open-file limit in force, already raised to the hard one.
    pub limit: u64,
    /// The highest concurrency the limit allows.
    pub most: u64,
}

/// Raises the limit (see [`raise`]) and checks `loads` against it: `Err`
/// when a closed-loop point cannot hold its streams, `Ok(Some(warning))`
/// when an open loop's `--max-inflight` exceeds the limit or the limit
/// could not be read, `Ok(None)` when everything fits.
pub fn check(loads: impl IntoIterator<Item = Load>) -> Result<Option<String>, FdLimitError> {
    match raise() {
        Ok(limit) => verdict(loads, limit),
        Err(e) => Ok(Some(format!(
            "could not raise the open-file limit (RLIMIT_NOFILE): {e}; a high --concurrency may fail to connect"
        ))),
    }
}

/// [`check`] against a given `limit`.
fn verdict(
    loads: impl IntoIterator<Item = Load>,
    limit: u64,
) -> Result<Option<String>, FdLimitError> {
    let most = limit.saturating_sub(SLACK);
    let mut widest_open = 0u32;
    for load in loads {
        match load {
            Load::Closed { concurrency } => {
                if needed(u64::from(concurrency)) > limit {
                    return Err(FdLimitError {
                        concurrency,
                        needed: needed(u64::from(concurrency)),
                        limit,
                        most,
                    });
                }
            }
            Load::Open { max_inflight, .. } | Load::Trace { max_inflight, .. } => {
                widest_open = widest_open.max(max_inflight);
            }
        }
    }
    Ok((needed(u64::from(widest_open)) > limit && widest_open > 0).then(|| {
        format!(
            "--max-inflight {widest_open} allows that many requests in flight, which needs about {} \
             open files, but this process may open only {limit} (RLIMIT_NOFILE, already raised to \
             its hard limit): if the server falls behind, requests past about {most} in flight will \
             fail to connect; lower --max-inflight or raise the hard limit (`ulimit -Hn`)",
            needed(u64::from(widest_open))
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrival::Arrival;

    fn open(max_inflight: u32) -> Load {
        Load::Open {
            rate: 10.0,
            arrival: Arrival::Poisson,
            max_inflight,
        }
    }

    #[test]
    fn a_closed_loop_beyond_the_limit_is_refused_naming_the_flag_and_the_limit() {
        let closed = |concurrency| Load::Closed { concurrency };
        assert_eq!(verdict([closed(1), closed(960)], 1024), Ok(None));
        let err = verdict([closed(1), closed(961), closed(2000)], 1024).unwrap_err();
        assert_eq!((err.concurrency, err.needed, err.most), (961, 1025, 960));
        let message = err.to_string();
        for needle in [
            "--concurrency 961",
            "only 1024",
            "RLIMIT_NOFILE",
            "at most 960",
        ] {
            assert!(message.contains(needle), "{needle:?} in {message}");
        }
    }

    #[test]
    fn an_open_loop_beyond_the_limit_is_only_warned_about() {
        assert_eq!(verdict([open(900)], 1024), Ok(None));
        let warning = verdict([open(100), open(4096)], 1024).unwrap().unwrap();
        assert!(warning.contains("--max-inflight 4096"), "{warning}");
        assert!(warning.contains("only 1024"), "{warning}");
        let trace = Load::Trace {
            speed: 1.0,
            max_inflight: 5000,
        };
        assert!(verdict([trace], 1024).unwrap().is_some());
        assert_eq!(verdict([trace], u64::MAX), Ok(None));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn raise_lifts_the_soft_limit_to_the_hard_one() {
        let limit = raise().unwrap();
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!(limit, soft);
        assert_eq!(soft, hard);
        // Raising again changes nothing.
        assert_eq!(raise().unwrap(), limit);
    }
}
