//! Open-loop arrival schedules: absolute send times drawn from a seed before
//! anything is sent, so a schedule never drifts with how fast the server
//! answers, and the same seed gives the same schedule.

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Gamma};

pub use inferbench_core::spec::Arrival;

/// Offsets from the start of the point at which requests are due, for a
/// mean `rate` in requests per second. Infinite: take what the point needs.
#[expect(
    clippy::expect_used,
    reason = "rates are validated where they are read: positive, finite, at most MAX_RATE"
)]
pub fn schedule(arrival: Arrival, rate: f64, seed: u64) -> impl Iterator<Item = Duration> + Send {
    assert!(
        rate > 0.0 && rate.is_finite(),
        "rate must be positive, got {rate}"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // A stream of its own, apart from the prompts' streams of the same seed.
    rng.set_stream(u64::MAX);
    let gap: Box<dyn FnMut(&mut ChaCha8Rng) -> f64 + Send> = match arrival {
        Arrival::Poisson => {
            let exp = Exp::new(rate).expect("positive rate");
            Box::new(move |rng| exp.sample(rng))
        }
        // The command line keeps burstiness within 0.001..=1000; outside, the
        // distribution may not exist, and the schedule then ends after its
        // first request (a gap that is not a number) rather than panicking.
        Arrival::Gamma { burstiness } => match Gamma::new(burstiness, 1.0 / (rate * burstiness)) {
            Ok(gamma) => Box::new(move |rng| gamma.sample(rng)),
            Err(_) => Box::new(|_| f64::NAN),
        },
        Arrival::Constant => Box::new(move |_| 1.0 / rate),
    };
    let mut gap = gap;
    let mut at = 0.0f64;
    std::iter::from_fn(move || {
        // The first request is due at once; each later one a gap after the last.
        let due = at;
        at += gap(&mut rng);
        // A due time past what a Duration holds (or not a number, from a
        // degenerate distribution) ends the schedule instead of panicking.
        Duration::try_from_secs_f64(due).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_rate(arrival: Arrival, rate: f64, n: usize) -> f64 {
        let last = schedule(arrival, rate, 7).nth(n).unwrap();
        n as f64 / last.as_secs_f64()
    }

    #[test]
    fn a_degenerate_distribution_ends_the_schedule_without_a_panic() {
        // Regression: --burstiness 1e308 made every gap NaN, and turning it
        // into a Duration panicked inside a spawned task.
        let due: Vec<_> = schedule(Arrival::Gamma { burstiness: 1e308 }, 2.0, 1)
            .take(5)
            .collect();
        assert!(due.len() <= 5);
        assert_eq!(due.first(), Some(&Duration::ZERO));
    }

    #[test]
    fn reproducible_and_monotonic() {
        let a: Vec<_> = schedule(Arrival::Poisson, 10.0, 1).take(100).collect();
        let b: Vec<_> = schedule(Arrival::Poisson, 10.0, 1).take(100).collect();
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(a[0], Duration::ZERO);
        let c: Vec<_> = schedule(Arrival::Poisson, 10.0, 2).take(100).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn mean_rate_matches_for_every_process() {
        for arrival in [
            Arrival::Poisson,
            Arrival::Gamma { burstiness: 0.5 },
            Arrival::Gamma { burstiness: 4.0 },
        ] {
            let r = mean_rate(arrival, 20.0, 20_000);
            assert!((r - 20.0).abs() / 20.0 < 0.03, "{arrival:?}: {r}");
        }
        assert!((mean_rate(Arrival::Constant, 4.0, 100) - 4.0).abs() < 1e-9);
    }

    #[test]
    fn burstiness_changes_the_spread_of_gaps() {
        let cv = |arrival| {
            let t: Vec<f64> = schedule(arrival, 10.0, 3)
                .take(5001)
                .map(|d| d.as_secs_f64())
                .collect();
            let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
            let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
            let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
            var.sqrt() / mean
        };
        // Coefficient of variation of gamma gaps is 1/sqrt(shape).
        assert!((cv(Arrival::Poisson) - 1.0).abs() < 0.06);
        assert!((cv(Arrival::Gamma { burstiness: 0.25 }) - 2.0).abs() < 0.2);
        assert!(cv(Arrival::Constant) < 1e-9);
    }
}
