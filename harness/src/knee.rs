//! Where a throughput/latency curve stops paying off.
//!
//! The knee is found with Kneedle (Satopää et al., "Finding a 'Kneedle' in a
//! Haystack", 2011), parameter-free for a curve sampled at a few points: both
//! axes are normalized to [0, 1] by their range over the sweep, and the knee
//! is the point farthest above the straight line from the first point to the
//! last (the largest normalized throughput minus normalized latency). Before
//! it, each added millisecond of latency bought more throughput than the
//! sweep's average; after it, less. A curve that never rises above that line
//! (throughput growing no faster than latency) has no knee.

/// One point of a batch curve: latency per step (ms) and the throughput it
/// bought (tok/s), in the order of the sweep (batch size ascending).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    /// Latency per step, ms (the report takes the point's ITL p50, else its
    /// decode step's).
    pub latency_ms: f64,
    /// Throughput at that latency, tok/s (the report takes `decode_tok_s` p50).
    pub throughput: f64,
}

/// Index of the knee in `points` (ordered by batch size), or `None` when
/// there are fewer than three points, a range is zero or not finite, or no
/// point lies above the line from the first to the last.
pub fn knee(points: &[CurvePoint]) -> Option<usize> {
    if points.len() < 3 {
        return None;
    }
    let finite = |v: f64| v.is_finite();
    if !points
        .iter()
        .all(|p| finite(p.latency_ms) && finite(p.throughput))
    {
        return None;
    }
    let (first, last) = (points[0], points[points.len() - 1]);
    let x_range = last.latency_ms - first.latency_ms;
    let y_range = last.throughput - first.throughput;
    if x_range <= 0.0 || y_range <= 0.0 {
        return None;
    }
    let lift = |p: &CurvePoint| {
        (p.throughput - first.throughput) / y_range - (p.latency_ms - first.latency_ms) / x_range
    };
    let (index, best) = points
        .iter()
        .enumerate()
        .map(|(i, p)| (i, lift(p)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    // Below this the curve is a straight line to the histogram's precision.
    const MIN_LIFT: f64 = 1e-3;
    (best > MIN_LIFT).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(xy: &[(f64, f64)]) -> Vec<CurvePoint> {
        xy.iter()
            .map(|&(latency_ms, throughput)| CurvePoint {
                latency_ms,
                throughput,
            })
            .collect()
    }

    #[test]
    fn a_corner_is_the_knee() {
        // Throughput climbs steeply to B=8 (index 3), then barely moves
        // while latency triples.
        let c = curve(&[
            (10.0, 100.0),
            (11.0, 190.0),
            (12.0, 350.0),
            (14.0, 640.0),
            (30.0, 680.0),
            (60.0, 700.0),
        ]);
        assert_eq!(knee(&c), Some(3));
    }

    #[test]
    fn a_saturating_curve_has_its_knee_where_the_gain_per_ms_falls_below_average() {
        // y = 1 - exp(-x): Kneedle's knee on [0, 5] is near x = ln(5) ≈ 1.6.
        let c: Vec<CurvePoint> = (0..=10)
            .map(|i| {
                let x = f64::from(i) * 0.5;
                CurvePoint {
                    latency_ms: x,
                    throughput: 1.0 - (-x).exp(),
                }
            })
            .collect();
        assert_eq!(knee(&c), Some(3), "x = 1.5");
    }

    #[test]
    fn a_straight_or_convex_curve_has_no_knee() {
        assert_eq!(knee(&curve(&[(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)])), None);
        assert_eq!(knee(&curve(&[(1.0, 1.0), (2.0, 1.5), (3.0, 4.0)])), None);
    }

    #[test]
    fn too_few_points_or_no_range_have_no_knee() {
        assert_eq!(knee(&curve(&[(1.0, 1.0), (2.0, 5.0)])), None);
        assert_eq!(knee(&curve(&[(5.0, 1.0), (5.0, 2.0), (5.0, 3.0)])), None);
        assert_eq!(knee(&curve(&[(1.0, 3.0), (2.0, 3.0), (3.0, 3.0)])), None);
        assert_eq!(
            knee(&curve(&[(1.0, 1.0), (f64::NAN, 2.0), (3.0, 3.0)])),
            None
        );
    }

    #[test]
    fn the_knee_does_not_depend_on_units() {
        let c = curve(&[(10.0, 100.0), (12.0, 300.0), (14.0, 450.0), (40.0, 500.0)]);
        let scaled: Vec<CurvePoint> = c
            .iter()
            .map(|p| CurvePoint {
                latency_ms: p.latency_ms / 1000.0,
                throughput: p.throughput * 60.0,
            })
            .collect();
        assert_eq!(knee(&c), knee(&scaled));
        assert_eq!(knee(&c), Some(2));
    }
}
