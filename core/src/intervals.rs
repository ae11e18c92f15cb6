//! Time covered by overlapping intervals: the kernels' busy time in a step,
//! the wall time of merged runs.

use std::ops::{Add, Sub};

/// The length of the union of `(start, end)` intervals; an interval whose
/// end is not after its start covers nothing. Works for integer
/// nanoseconds and for float seconds alike.
pub fn union_length<T>(intervals: impl IntoIterator<Item = (T, T)>) -> T
where
    T: Copy + PartialOrd + Add<Output = T> + Sub<Output = T> + Default,
{
    let mut sorted: Vec<(T, T)> = intervals.into_iter().filter(|(s, e)| e > s).collect();
    sorted.sort_unstable_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let mut total = T::default();
    let mut current: Option<(T, T)> = None;
    for (start, end) in sorted {
        current = match current {
            Some((s, e)) if start <= e => Some((s, if end > e { end } else { e })),
            Some((s, e)) => {
                total = total + (e - s);
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    current.map_or(total, |(s, e)| total + (e - s))
}

#[cfg(test)]
mod tests {
    use super::union_length;

    #[test]
    fn overlaps_count_once_and_gaps_not_at_all() {
        assert_eq!(union_length([(0u64, 10), (5, 15)]), 15);
        assert_eq!(union_length([(20u64, 25), (0, 10)]), 15);
        assert_eq!(union_length([(0u64, 10), (2, 5)]), 10);
        assert_eq!(union_length([(0u64, 10), (10, 12)]), 12, "touching");
        assert_eq!(union_length([(5u64, 5), (9, 3)]), 0, "empty and reversed");
        assert_eq!(union_length(Vec::<(u64, u64)>::new()), 0);
        assert_eq!(union_length([(0.0, 1.5), (1.0, 2.0), (3.0, 3.5)]), 2.5);
    }
}
