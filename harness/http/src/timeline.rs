//! A served point over time, kept in memory that grows with the point's
//! length and not with its request count: the in-flight count in bins (for
//! the steady-state window) and the point's time slices, each with small
//! TTFT and TPOT histograms (for the figures over time and the drift test).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use inferbench_core::schema::timeline::{
    DriftCheck, SteadyState, TimeSlice, TimeSlices, DRIFT_MIN_CHANGE, DRIFT_MIN_REQUESTS,
    DRIFT_P_VALUE, STEADY_SHARE,
};
use inferbench_core::schema::{LoadDescription, LoadKind};

use crate::significance::{mann_whitney_p, Sample};

/// The in-flight count's first resolution.
const FIRST_BIN_S: f64 = 0.01;

/// Bins kept before two neighbours become one (and the resolution halves):
/// 65,536 bins of 10 ms cover 11 minutes.
const MAX_BINS: usize = 1 << 16;

/// Automatic slices start at a second and double while a point would have
/// more than this many.
const AUTO_FIRST_SLICE_S: f64 = 1.0;
const AUTO_MAX_SLICES: usize = 60;

/// Slices asked for with `--slice` double only beyond this many, so that a
/// day-long point at `--slice 1s` still fits in memory.
const FLAG_MAX_SLICES: usize = 4096;

/// Slice histograms record microseconds to two significant figures (within
/// 1%): a thousandth of the memory of the point's own histograms.
const SLICE_FIGURES: u8 = 2;

/// One finished request, as the timeline needs it.
pub struct TimelineRequest<'a> {
    /// When it was sent.
    pub sent: Instant,
    /// Open loop: when it was due; it is sliced by this time.
    pub scheduled: Option<Instant>,
    /// Its last content chunk, or when it failed.
    pub ended: Instant,
    /// Its content chunks' arrivals (empty for a failure).
    pub content_times: &'a [Instant],
    /// Its output tokens, spread evenly over its chunks.
    pub output_tokens: u64,
    /// TTFT as the point judges it, ms (None: failed).
    pub ttft_ms: Option<f64>,
    /// TPOT, ms (None: failed, or a single token).
    pub tpot_ms: Option<f64>,
}

#[derive(Debug)]
struct Slice {
    requests: u64,
    failed: u64,
    ttft_us: Histogram<u64>,
    tpot_us: Histogram<u64>,
    output_tokens: f64,
    completed: u64,
}

impl Slice {
    #[expect(
        clippy::expect_used,
        reason = "two significant figures is a valid hdrhistogram setting"
    )]
    fn new() -> Slice {
        let histogram = || {
            let mut h = Histogram::new(SLICE_FIGURES).expect("a valid setting");
            h.auto(true);
            h
        };
        Slice {
            requests: 0,
            failed: 0,
            ttft_us: histogram(),
            tpot_us: histogram(),
            output_tokens: 0.0,
            completed: 0,
        }
    }

    #[expect(
        clippy::expect_used,
        reason = "auto-resizing histograms of the same precision always merge"
    )]
    fn absorb(&mut self, other: Slice) {
        self.requests += other.requests;
        self.failed += other.failed;
        self.ttft_us.add(&other.ttft_us).expect("same settings");
        self.tpot_us.add(&other.tpot_us).expect("same settings");
        self.output_tokens += other.output_tokens;
        self.completed += other.completed;
    }
}

fn record_ms(h: &mut Histogram<u64>, ms: f64) {
    if ms.is_finite() && ms >= 0.0 {
        // An auto-resizing histogram takes any u64.
        let _ = h.record((ms * 1e3).round() as u64);
    }
}

fn quantile_ms(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1e3)
}

/// The in-flight count and the slices of one point.
#[derive(Debug)]
pub struct Timeline {
    start: Instant,
    bin_s: f64,
    /// In-flight time, in bins, of requests that covered part of a bin.
    partial: Vec<f64>,
    /// Requests that covered whole bins, as a difference array.
    whole: Vec<f64>,
    tokens: Vec<f64>,
    completed: Vec<f64>,
    first_send_s: Option<f64>,
    last_end_s: f64,
    slice_s: f64,
    flag: bool,
    slices: Vec<Slice>,
}

impl Timeline {
    /// An empty timeline from `start`, sliced every `slice` (None: chosen
    /// from the point's length).
    pub fn new(start: Instant, slice: Option<Duration>) -> Timeline {
        Timeline {
            start,
            bin_s: FIRST_BIN_S,
            partial: Vec::new(),
            whole: Vec::new(),
            tokens: Vec::new(),
            completed: Vec::new(),
            first_send_s: None,
            last_end_s: 0.0,
            slice_s: slice.map_or(AUTO_FIRST_SLICE_S, |s| s.as_secs_f64().max(1e-3)),
            flag: slice.is_some(),
            slices: Vec::new(),
        }
    }

    fn seconds(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.start).as_secs_f64()
    }

    /// Adds one finished request.
    pub fn add(&mut self, r: &TimelineRequest<'_>) {
        let sent = self.seconds(r.sent);
        let ended = self.seconds(r.ended).max(sent);
        self.first_send_s = Some(self.first_send_s.map_or(sent, |f| f.min(sent)));
        self.last_end_s = self.last_end_s.max(ended);
        self.add_in_flight(sent, ended);

        let due = r.scheduled.map_or(sent, |s| self.seconds(s));
        let slice = self.slice_mut(due);
        slice.requests += 1;
        match r.ttft_ms {
            Some(ttft) => {
                record_ms(&mut slice.ttft_us, ttft);
                if let Some(tpot) = r.tpot_ms {
                    record_ms(&mut slice.tpot_us, tpot);
                }
            }
            None => slice.failed += 1,
        }
        if r.ttft_ms.is_some() {
            self.slice_mut(ended).completed += 1;
            let bin = self.bin_mut(ended);
            self.completed[bin] += 1.0;
        }
        if !r.content_times.is_empty() {
            let per_chunk = r.output_tokens as f64 / r.content_times.len() as f64;
            for &t in r.content_times {
                let s = self.seconds(t);
                self.slice_mut(s).output_tokens += per_chunk;
                let bin = self.bin_mut(s);
                self.tokens[bin] += per_chunk;
            }
        }
    }

    /// The bin of `s` seconds, the arrays grown (and coarsened) to hold it.
    fn bin_mut(&mut self, s: f64) -> usize {
        let mut bin = (s / self.bin_s) as usize;
        while bin >= MAX_BINS {
            self.coarsen_bins();
            bin = (s / self.bin_s) as usize;
        }
        if self.partial.len() <= bin + 1 {
            let len = bin + 2;
            self.partial.resize(len, 0.0);
            self.whole.resize(len, 0.0);
            self.tokens.resize(len, 0.0);
            self.completed.resize(len, 0.0);
        }
        bin
    }

    /// Counts [from, to) seconds as one request in flight: exactly, the
    /// edges as fractions of their bins, the bins between through the
    /// difference array.
    fn add_in_flight(&mut self, from: f64, to: f64) {
        let last = self.bin_mut(to);
        let first = self.bin_mut(from);
        let w = self.bin_s;
        if first == last {
            self.partial[first] += (to - from) / w;
        } else {
            self.partial[first] += ((first + 1) as f64 * w - from) / w;
            self.partial[last] += (to - last as f64 * w) / w;
            self.whole[first + 1] += 1.0;
            self.whole[last] -= 1.0;
        }
    }

    /// The mean in-flight count of every bin.
    fn in_flight(&self) -> Vec<f64> {
        let mut running = 0.0;
        self.partial
            .iter()
            .zip(&self.whole)
            .map(|(p, w)| {
                running += w;
                p + running
            })
            .collect()
    }

    fn coarsen_bins(&mut self) {
        let occupancy = self.in_flight();
        let pairs = |v: &[f64], mean: bool| -> Vec<f64> {
            v.chunks(2)
                .map(|c| {
                    let sum: f64 = c.iter().sum();
                    if mean {
                        sum / 2.0
                    } else {
                        sum
                    }
                })
                .collect()
        };
        self.partial = pairs(&occupancy, true);
        self.whole = vec![0.0; self.partial.len()];
        self.tokens = pairs(&self.tokens, false);
        self.completed = pairs(&self.completed, false);
        self.bin_s *= 2.0;
    }

    fn slice_mut(&mut self, s: f64) -> &mut Slice {
        let cap = if self.flag {
            FLAG_MAX_SLICES
        } else {
            AUTO_MAX_SLICES
        };
        let mut index = (s / self.slice_s) as usize;
        while index >= cap {
            let old = std::mem::take(&mut self.slices);
            let mut merged = Vec::with_capacity(old.len() / 2 + 1);
            let mut iter = old.into_iter();
            while let Some(mut a) = iter.next() {
                if let Some(b) = iter.next() {
                    a.absorb(b);
                }
                merged.push(a);
            }
            self.slices = merged;
            self.slice_s *= 2.0;
            index = (s / self.slice_s) as usize;
        }
        if self.slices.len() <= index {
            self.slices.resize_with(index + 1, Slice::new);
        }
        &mut self.slices[index]
    }

    /// The steady-state window of a point run under `load`: the longest
    /// span whose in-flight count, smoothed over a tenth of the point (at
    /// most a second), stays at 90% of the target or more.
    pub fn steady_state(&self, load: &LoadDescription) -> Option<SteadyState> {
        let first = self.first_send_s?;
        let end = self.last_end_s;
        if end <= first {
            return None;
        }
        let w = self.bin_s;
        let occupancy = self.in_flight();
        let (lo, hi) = (
            (first / w) as usize,
            ((end / w) as usize).min(occupancy.len() - 1),
        );
        let window = &occupancy[lo..=hi];
        let mean = window.iter().sum::<f64>() / window.len() as f64;
        let (target_from, target) = match (load.kind, load.concurrency) {
            (LoadKind::Closed, Some(c)) => ("concurrency", f64::from(c)),
            _ => ("mean_in_flight", mean),
        };
        let threshold = STEADY_SHARE * target;
        let half = (((end - first) / 10.0).min(1.0) / w / 2.0) as usize;
        // Running sums: a snapshot of a long point (taken every second
        // while it runs) smooths 65,536 bins in one pass.
        let mut sums = Vec::with_capacity(window.len() + 1);
        sums.push(0.0);
        for v in window {
            sums.push(sums[sums.len() - 1] + v);
        }
        let smoothed: Vec<f64> = (0..window.len())
            .map(|i| {
                let (a, b) = (i.saturating_sub(half), (i + half).min(window.len() - 1));
                (sums[b + 1] - sums[a]) / (b - a + 1) as f64
            })
            .collect();
        let (mut best, mut run_start) = ((0, 0), None);
        for (i, &v) in smoothed.iter().enumerate() {
            match (v >= threshold, run_start) {
                (true, None) => run_start = Some(i),
                (false, Some(s)) => {
                    if i - s > best.1 - best.0 {
                        best = (s, i);
                    }
                    run_start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = run_start {
            if smoothed.len() - s > best.1 - best.0 {
                best = (s, smoothed.len());
            }
        }
        let (a, b) = (lo + best.0, lo + best.1);
        let duration = (b - a) as f64 * w;
        let per_s = |v: &[f64]| {
            if duration > 0.0 {
                v[a..b].iter().sum::<f64>() / duration
            } else {
                0.0
            }
        };
        Some(SteadyState {
            target_from: target_from.into(),
            target_in_flight: target,
            threshold_in_flight: threshold,
            start_s: (a as f64 * w - first).max(0.0),
            duration_s: duration,
            share_of_point: (duration / (end - first)).min(1.0),
            mean_in_flight: if b > a {
                occupancy[a..b].iter().sum::<f64>() / (b - a) as f64
            } else {
                0.0
            },
            output_throughput_tok_s: per_s(&self.tokens),
            request_throughput_req_s: per_s(&self.completed),
            resolution_s: w,
        })
    }

    /// The slices, and the first against the last for drift; `ttft_metric`
    /// names the TTFT they hold.
    pub fn slices(&self, ttft_metric: &str) -> Option<TimeSlices> {
        if self.slices.is_empty() {
            return None;
        }
        let count = self.slices.len();
        let slices: Vec<TimeSlice> = self
            .slices
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let start = i as f64 * self.slice_s;
                let duration = if i + 1 == count {
                    (self.last_end_s - start).clamp(1e-9, self.slice_s)
                } else {
                    self.slice_s
                };
                TimeSlice {
                    start_s: start,
                    duration_s: duration,
                    requests: s.requests,
                    failed: s.failed,
                    ttft_p50_ms: quantile_ms(&s.ttft_us, 0.5),
                    ttft_p99_ms: quantile_ms(&s.ttft_us, 0.99),
                    tpot_p50_ms: quantile_ms(&s.tpot_us, 0.5),
                    tpot_p99_ms: quantile_ms(&s.tpot_us, 0.99),
                    output_throughput_tok_s: s.output_tokens / duration,
                    request_throughput_req_s: s.completed as f64 / duration,
                }
            })
            .collect();
        // The first slices holding enough successful requests against the
        // last ones: with `--slice`, 10 (its first slice and its last, given
        // the traffic); by default a tenth of the point too, so that a point
        // of a few requests a second is still tested.
        let succeeded: u64 = self.slices.iter().map(|s| s.ttft_us.len()).sum();
        let want = if self.flag {
            DRIFT_MIN_REQUESTS
        } else {
            DRIFT_MIN_REQUESTS.max(succeeded / 10)
        };
        let first = Span::gather(self.slices.iter(), want);
        let last = Span::gather(self.slices.iter().rev(), want);
        let (drift, drift_note) = match (first, last) {
            (Some(first), Some(last)) if first.slices + last.slices <= count => (
                [
                    (ttft_metric, &first.ttft_us, &last.ttft_us),
                    ("tpot_ms", &first.tpot_us, &last.tpot_us),
                ]
                .into_iter()
                .filter_map(|(metric, a, b)| {
                    drift_check(
                        metric,
                        a,
                        b,
                        first.slices as f64 * self.slice_s,
                        last.slices as f64 * self.slice_s,
                    )
                })
                .collect(),
                None,
            ),
            _ => (
                Vec::new(),
                Some(format!(
                    "{count} slice{} of {} s and {succeeded} successful requests: the drift test needs {want} in the first slices and {want} in the last, apart",
                    if count == 1 { "" } else { "s" },
                    self.slice_s,
                )),
            ),
        };
        Some(TimeSlices {
            slice_s: self.slice_s,
            chosen_by: if self.flag { "flag" } else { "auto" }.into(),
            ttft_metric: ttft_metric.into(),
            slices,
            drift,
            drift_note,
        })
    }
}

/// The first (or last) slices of a point that together hold `want`
/// successful requests, their histograms merged.
struct Span {
    slices: usize,
    ttft_us: Histogram<u64>,
    tpot_us: Histogram<u64>,
}

impl Span {
    #[expect(
        clippy::expect_used,
        reason = "histograms of the same precision always merge"
    )]
    fn gather<'a>(slices: impl Iterator<Item = &'a Slice>, want: u64) -> Option<Span> {
        let mut span: Option<Span> = None;
        for s in slices {
            let span = span.get_or_insert_with(|| Span {
                slices: 0,
                ttft_us: s.ttft_us.clone(),
                tpot_us: s.tpot_us.clone(),
            });
            if span.slices > 0 {
                span.ttft_us.add(&s.ttft_us).expect("same settings");
                span.tpot_us.add(&s.tpot_us).expect("same settings");
            }
            span.slices += 1;
            if span.ttft_us.len() >= want {
                return Some(Span {
                    slices: span.slices,
                    ttft_us: span.ttft_us.clone(),
                    tpot_us: span.tpot_us.clone(),
                });
            }
        }
        None
    }
}

fn buckets(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to() as f64 / 1e3, v.count_at_value()))
        .collect()
}

fn drift_check(
    metric: &str,
    first: &Histogram<u64>,
    last: &Histogram<u64>,
    first_span_s: f64,
    last_span_s: f64,
) -> Option<DriftCheck> {
    if first.len() < DRIFT_MIN_REQUESTS || last.len() < DRIFT_MIN_REQUESTS {
        return None;
    }
    let a = Sample::from_buckets(buckets(first), first.len())?;
    let b = Sample::from_buckets(buckets(last), last.len())?;
    let p_value = mann_whitney_p(&a, &b);
    let (first_p50, last_p50) = (quantile_ms(first, 0.5)?, quantile_ms(last, 0.5)?);
    let change = if first_p50 > 0.0 {
        last_p50 / first_p50 - 1.0
    } else {
        0.0
    };
    Some(DriftCheck {
        metric: metric.into(),
        first_span_s,
        last_span_s,
        first_requests: first.len(),
        last_requests: last.len(),
        first_p50,
        last_p50,
        change,
        p_value,
        drifted: p_value < DRIFT_P_VALUE && change.abs() >= DRIFT_MIN_CHANGE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferbench_core::schema::LoadKind;

    fn load(kind: LoadKind, concurrency: Option<u32>) -> LoadDescription {
        LoadDescription {
            kind,
            concurrency,
            rate: None,
            arrival: None,
            burstiness: None,
            max_inflight: None,
            trace_speed: None,
        }
    }

    fn request(
        t0: Instant,
        sent_s: f64,
        end_s: f64,
        ttft_ms: f64,
    ) -> (Instant, Instant, Vec<Instant>, f64) {
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        (at(sent_s), at(end_s), vec![at(end_s)], ttft_ms)
    }

    #[test]
    fn a_ramp_up_and_a_drain_are_left_out_of_the_steady_state() {
        // Closed loop of 4 streams whose starts are staggered by a second
        // (the ramp) and whose ends are staggered likewise (the drain):
        // 4 in flight only from 3 s to 10 s.
        let t0 = Instant::now();
        let mut timeline = Timeline::new(t0, None);
        for stream in 0..4u32 {
            let begin = f64::from(stream);
            let finish = 10.0 + f64::from(stream);
            let mut t = begin;
            while t < finish - 1e-9 {
                let (sent, ended, times, ttft) = request(t0, t, t + 0.5, 100.0);
                timeline.add(&TimelineRequest {
                    sent,
                    scheduled: None,
                    ended,
                    content_times: &times,
                    output_tokens: 10,
                    ttft_ms: Some(ttft),
                    tpot_ms: Some(10.0),
                });
                t += 0.5;
            }
        }
        let steady = timeline
            .steady_state(&load(LoadKind::Closed, Some(4)))
            .expect("a window");
        assert_eq!(steady.target_from, "concurrency");
        assert!((steady.threshold_in_flight - 3.6).abs() < 1e-9);
        // 3 s .. 10 s, give or take the smoothing's reach (a tenth of the
        // 13 s point, capped at 1 s: half a second each side).
        assert!(
            (steady.start_s - 3.0).abs() <= 0.5 && (steady.duration_s - 7.0).abs() <= 1.0,
            "{steady:?}"
        );
        assert!((steady.mean_in_flight - 4.0).abs() < 0.2, "{steady:?}");
        // Inside the window: 4 streams × 2 requests/s × 10 tokens.
        assert!(
            (steady.output_throughput_tok_s - 80.0).abs() < 8.0,
            "{steady:?}"
        );
        assert!(steady.share_of_point < 0.7, "{steady:?}");
    }

    #[test]
    fn an_open_loop_is_steady_against_its_own_mean() {
        let t0 = Instant::now();
        let mut timeline = Timeline::new(t0, None);
        // One request every 100 ms lasting 300 ms: 3 in flight after 0.3 s.
        for i in 0..100 {
            let s = f64::from(i) * 0.1;
            let (sent, ended, times, ttft) = request(t0, s, s + 0.3, 50.0);
            timeline.add(&TimelineRequest {
                sent,
                scheduled: Some(sent),
                ended,
                content_times: &times,
                output_tokens: 1,
                ttft_ms: Some(ttft),
                tpot_ms: None,
            });
        }
        let steady = timeline
            .steady_state(&load(LoadKind::Open, None))
            .expect("a window");
        assert_eq!(steady.target_from, "mean_in_flight");
        assert!(steady.share_of_point > 0.9, "{steady:?}");
        assert!((steady.mean_in_flight - 3.0).abs() < 0.1, "{steady:?}");
    }

    #[test]
    fn slices_double_past_sixty_and_a_slower_end_is_drift() {
        let t0 = Instant::now();
        let mut timeline = Timeline::new(t0, None);
        // 130 s, a request every 0.25 s; TTFT 100 ms, the last 10 s 150 ms.
        for i in 0..520 {
            let s = f64::from(i) * 0.25;
            let ttft = if s >= 120.0 { 150.0 } else { 100.0 } + f64::from(i % 7);
            let (sent, ended, times, ttft) = request(t0, s, s + 0.2, ttft);
            timeline.add(&TimelineRequest {
                sent,
                scheduled: None,
                ended,
                content_times: &times,
                output_tokens: 2,
                ttft_ms: Some(ttft),
                tpot_ms: Some(5.0 + f64::from(i % 3)),
            });
        }
        let slices = timeline.slices("ttft_ms").expect("slices");
        // 1 s slices would be 131: doubled twice to 4 s, 33 slices.
        assert_eq!((slices.slice_s, slices.slices.len()), (4.0, 33));
        assert_eq!(slices.chosen_by, "auto");
        assert_eq!(slices.slices[0].requests, 16);
        assert!((slices.slices[0].output_throughput_tok_s - 8.0).abs() < 1e-9);
        let ttft = &slices.drift[0];
        assert!(ttft.drifted && ttft.change > 0.4, "{ttft:?}");
        let tpot = &slices.drift[1];
        assert!(!tpot.drifted, "{tpot:?}");
        assert_eq!(slices.reasons().len(), 1);
    }

    #[test]
    fn a_point_too_short_for_its_flagged_slices_says_so() {
        let t0 = Instant::now();
        let mut timeline = Timeline::new(t0, Some(Duration::from_secs(10)));
        // 12 s: the second slice holds 4 requests.
        for i in 0..24 {
            let s = f64::from(i) * 0.5;
            let (sent, ended, times, ttft) = request(t0, s, s + 0.1, 10.0);
            timeline.add(&TimelineRequest {
                sent,
                scheduled: None,
                ended,
                content_times: &times,
                output_tokens: 1,
                ttft_ms: Some(ttft),
                tpot_ms: None,
            });
        }
        let slices = timeline.slices("ttft_ms").expect("slices");
        assert_eq!(slices.slices.len(), 2);
        assert!(slices.drift.is_empty());
        let reasons = slices.reasons();
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(
            reasons[0].starts_with("too short for its --slice 10s"),
            "{reasons:?}"
        );
    }
}
