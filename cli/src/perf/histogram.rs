//! A latency histogram of fixed size: exact below 128 µs, then 64 buckets per power of two
//! (at most 1.6% relative error), so millions of samples cost a few kilobytes and percentiles
//! need no sorting. The maximum is kept exactly.

/// Values below this are counted exactly.
const EXACT: u64 = 128;
/// Buckets per power of two above [`EXACT`].
const PER_OCTAVE: u64 = 64;
/// Octaves from 2^7 to 2^63.
const OCTAVES: u64 = 57;
const BUCKETS: usize = 128 + 57 * 64;
const _: () = assert!(BUCKETS as u64 == EXACT + OCTAVES * PER_OCTAVE);

/// Counts of microsecond values.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn index(v: u64) -> usize {
    let i = if v < EXACT {
        v
    } else {
        let octave = u64::from(63 - v.leading_zeros()); // 7..=63
        let mantissa = v >> (octave - 6); // 64..128
        EXACT + (octave - 7) * PER_OCTAVE + (mantissa - PER_OCTAVE)
    };
    // Always below BUCKETS (asserted above), which fits a usize.
    usize::try_from(i).unwrap_or(BUCKETS - 1)
}

/// The middle of bucket `i`.
fn value_of(i: usize) -> u64 {
    let i = i as u64;
    if i < EXACT {
        return i;
    }
    let octave = (i - EXACT) / PER_OCTAVE + 7;
    let mantissa = (i - EXACT) % PER_OCTAVE + PER_OCTAVE;
    let width = 1u64 << (octave - 6);
    (mantissa << (octave - 6)) + width / 2
}

impl Histogram {
    /// Counts one value.
    pub(crate) fn record(&mut self, micros: u64) {
        self.counts[index(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    /// Adds another histogram's counts.
    pub(crate) fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// How many values were counted.
    pub(crate) fn len(&self) -> u64 {
        self.total
    }

    /// The largest value counted.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1): the smallest value with at least `q` of the counts
    /// at or below it; 0 when empty.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value_of(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact_and_large_ones_within_two_percent() {
        for v in (0..200).chain([1_000, 4_095, 4_096, 123_456, 10_000_000, u64::MAX / 3]) {
            let back = value_of(index(v));
            let err = back.abs_diff(v) as f64 / (v.max(1)) as f64;
            assert!(err <= 0.016, "{v} -> {back}");
            if v < EXACT {
                assert_eq!(back, v);
            }
        }
        assert!(index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles_of_one_to_a_thousand() {
        let mut h = Histogram::default();
        for v in 1..=1000 {
            h.record(v);
        }
        assert_eq!(h.len(), 1000);
        assert_eq!(h.max(), 1000);
        for (q, want) in [(0.5, 500.0), (0.99, 990.0), (0.999, 999.0), (1.0, 1000.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want <= 0.016, "q {q}: {got}");
        }
        let mut other = Histogram::default();
        other.record(5000);
        h.merge(&other);
        assert_eq!(h.max(), 5000);
        assert_eq!(h.len(), 1001);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }
}
