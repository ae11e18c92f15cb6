//! Live progress on stderr: indicatif draws nothing when stderr is not a
//! terminal, so logs and captured output stay clean.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use inferbench_harness::http::point::RequestRecord;
use inferbench_harness::stats::Distribution;

/// A bar of `total` steps, each one `unit` (e.g. "runs").
pub fn bar(total: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} {{msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// How often the running TTFT median is recomputed.
const MESSAGE_EVERY: Duration = Duration::from_millis(200);

/// One served point: requests done of total (or a count, under
/// `--duration`), ok/failed, the running TTFT p50 and the time elapsed.
pub struct PointProgress {
    bar: ProgressBar,
    label: String,
    ok: u64,
    failed: u64,
    ttft: Distribution,
    last_message: Option<Instant>,
}

impl PointProgress {
    pub fn new(label: String, total: Option<u64>) -> PointProgress {
        let bar = match total {
            Some(n) => bar(n, "requests"),
            None => {
                let b = ProgressBar::new_spinner();
                b.set_style(
                    ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {pos} requests {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                b
            }
        };
        bar.enable_steady_tick(Duration::from_millis(250));
        let mut p = PointProgress {
            bar,
            label,
            ok: 0,
            failed: 0,
            ttft: Distribution::milliseconds(),
            last_message: None,
        };
        p.update_message();
        p
    }

    pub fn record(&mut self, record: &RequestRecord) {
        if record.ok {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
        if let Some(t) = record.ttft_ms {
            self.ttft.record(t);
        }
        self.bar.inc(1);
        if self
            .last_message
            .is_none_or(|t| t.elapsed() >= MESSAGE_EVERY)
        {
            self.update_message();
        }
    }

    fn update_message(&mut self) {
        let ttft = self
            .ttft
            .stats()
            .map_or("-".into(), |s| format!("{:.1} ms", s.p50));
        self.bar.set_message(format!(
            "{} | ok {} failed {} | TTFT p50 {ttft}",
            self.label, self.ok, self.failed
        ));
        self.last_message = Some(Instant::now());
    }

    /// `more` requests added to the point (a search's probe extended).
    pub fn extend(&mut self, more: u64) {
        if let Some(total) = self.bar.length() {
            self.bar.set_length(total + more);
        }
    }

    /// Clears the bar, so that the point's row prints where it was.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
