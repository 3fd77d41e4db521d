//! Latency counts for `weir perf`: an HDR histogram (the `hdrhistogram` crate, the same
//! structure as Kafka's and wrk's tools) at 3 significant digits, so a value is known within
//! 0.1% and millions of samples cost a few tens of kilobytes. This wrapper keeps the largest
//! value exactly and never fails: values beyond an hour are counted as an hour.

use hdrhistogram::Histogram as Hdr;

/// Significant decimal digits kept for each value.
const SIGNIFICANT_DIGITS: u8 = 3;
/// Largest value tracked, in µs (one hour); larger ones are counted at this value.
const HIGHEST_MICROS: u64 = 3_600_000_000;

/// Counts of microsecond values.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: Hdr<u64>,
    /// The largest value recorded, exactly (the HDR maximum is rounded to its bucket).
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        let counts = Hdr::new_with_max(HIGHEST_MICROS, SIGNIFICANT_DIGITS)
            .unwrap_or_else(|err| unreachable!("constant bounds are valid: {err}"));
        Self { counts, max: 0 }
    }
}

impl Histogram {
    /// Counts one value.
    pub(crate) fn record(&mut self, micros: u64) {
        self.counts.saturating_record(micros);
        self.max = self.max.max(micros);
    }

    /// Adds another histogram's counts.
    pub(crate) fn merge(&mut self, other: &Self) {
        // Same bounds on both sides: adding cannot fail.
        if let Err(err) = self.counts.add(&other.counts) {
            unreachable!("histograms with the same bounds add: {err}");
        }
        self.max = self.max.max(other.max);
    }

    /// How many values were counted.
    pub(crate) fn len(&self) -> u64 {
        self.counts.len()
    }

    /// The largest value counted.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1): the smallest value with at least `q` of the counts
    /// at or below it (within 0.1%, never above the maximum); 0 when empty.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.counts.is_empty() {
            return 0;
        }
        self.counts
            .value_at_quantile(q.clamp(0.0, 1.0))
            .min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert!((got - want).abs() / want <= 0.001, "q {q}: {got}");
        }
        let mut other = Histogram::default();
        other.record(5000);
        h.merge(&other);
        assert_eq!(h.max(), 5000);
        assert_eq!(h.len(), 1001);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }

    #[test]
    fn large_values_are_within_a_thousandth_and_huge_ones_saturate() {
        for v in [0, 127, 4_095, 123_456, 10_000_000, 3_599_999_999] {
            let mut h = Histogram::default();
            h.record(v);
            h.record(v);
            let back = h.quantile(0.5);
            let err = back.abs_diff(v) as f64 / v.max(1) as f64;
            assert!(err <= 0.001, "{v} -> {back}");
        }
        let mut h = Histogram::default();
        h.record(u64::MAX);
        assert_eq!(h.len(), 1);
        assert_eq!(h.max(), u64::MAX, "the maximum stays exact");
    }
}
