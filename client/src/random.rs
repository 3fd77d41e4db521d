//! The client's small random source: [`JitterSource`] and its one generator, [`SplitMix64`].
//!
//! Owns the uniform draws used wherever the client randomises (backoff jitter in
//! [`crate::backoff`], the sticky partition choice in [`crate::partitioner`]) and the seeding
//! of production generators. It does not decide delays or partitions, and it is not
//! cryptographic.
//!
//! # Invariants
//!
//! - Randomness is injected: the same seed gives the same sequence, so tests fix seeds and
//!   print them when they fail.
//! - [`JitterSource::next_below`] is uniform (rejection sampling) and always terminates, even
//!   with a broken source.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// How many draws [`JitterSource::next_below`] rejects before it accepts a slightly biased
/// value. With a working source a rejection has probability below one half, so the limit is
/// never reached; it exists so that a broken source (one returning a constant) cannot hang
/// the caller.
const REJECTIONS_MAX: u32 = 64;

/// A source of uniformly distributed 64-bit values, injected wherever the client randomises
/// (backoff jitter, sticky partition choice) so that tests can fix the seed.
pub trait JitterSource {
    /// The next value, uniform over all of `u64`.
    fn next_u64(&mut self) -> u64;

    /// A value uniform in `0..bound`, or 0 when `bound` is 0.
    ///
    /// Rejection sampling: a plain `next_u64() % bound` favours small values whenever `bound`
    /// does not divide 2^64. At most 64 draws are rejected, so that a broken
    /// source cannot hang the caller.
    fn next_below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        // 2^64 mod bound: values below it are the incomplete last "lap" of the modulo.
        let threshold = bound.wrapping_neg() % bound;
        let mut value = self.next_u64();
        let mut rejections = 0;
        while value < threshold && rejections < REJECTIONS_MAX {
            value = self.next_u64();
            rejections += 1;
        }
        value % bound
    }
}

impl<J: JitterSource + ?Sized> JitterSource for &mut J {
    fn next_u64(&mut self) -> u64 {
        (**self).next_u64()
    }
}

impl<J: JitterSource + ?Sized> JitterSource for Box<J> {
    fn next_u64(&mut self) -> u64 {
        (**self).next_u64()
    }
}

/// SplitMix64 (Steele, Lea, Flood; Vigna's reference `splitmix64.c`): a tiny, fast generator
/// whose output passes BigCrush. Not cryptographic, which jitter does not need.
///
/// [`SplitMix64::new`] is deterministic for tests; [`SplitMix64::from_entropy`] is the
/// production source.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    /// The generator's whole state; advanced by the golden-ratio increment on every draw.
    state: u64,
}

impl SplitMix64 {
    /// A generator that yields the same sequence for the same `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator seeded from the process's hash keys (OS randomness), the time, the thread
    /// and a per-process counter, so that clients started together do not back off in step.
    pub fn from_entropy() -> Self {
        /// Distinguishes generators created by one thread within one clock tick.
        static CREATED: AtomicU64 = AtomicU64::new(0);
        let since_epoch_nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let seed = RandomState::new().hash_one((
            since_epoch_nanos,
            std::thread::current().id(),
            CREATED.fetch_add(1, Ordering::Relaxed),
        ));
        Self::new(seed)
    }
}

impl JitterSource for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Constant(u64);

    impl JitterSource for Constant {
        fn next_u64(&mut self) -> u64 {
            self.0
        }
    }

    #[test]
    fn splitmix64_matches_the_reference_outputs() {
        // Rosetta Code, "Pseudo-random numbers/Splitmix64": the first five for seed 1234567.
        let mut rng = SplitMix64::new(1_234_567);
        let expected = [
            6_457_827_717_110_365_317,
            3_203_168_211_198_807_973,
            9_817_491_932_198_370_423,
            4_593_380_528_125_082_431,
            16_408_922_859_458_223_821,
        ];
        for value in expected {
            assert_eq!(rng.next_u64(), value);
        }
    }

    #[test]
    fn entropy_seeded_generators_differ() {
        let mut a = SplitMix64::from_entropy();
        let mut b = SplitMix64::from_entropy();
        assert_ne!((a.next_u64(), a.next_u64()), (b.next_u64(), b.next_u64()));
    }

    #[test]
    fn next_below_stays_below_the_bound() {
        let mut rng = SplitMix64::new(1);
        for bound in [1, 2, 3, 7, 10, 1 << 32, 3 << 62, (1 << 63) + 1, u64::MAX] {
            for _ in 0..1_000 {
                assert!(rng.next_below(bound) < bound, "bound {bound}");
            }
        }
        assert_eq!(rng.next_below(0), 0);
        assert_eq!(rng.next_below(1), 0);
    }

    #[test]
    fn next_below_is_uniform() {
        // With bound 3 * 2^62, 2^64 is one whole lap plus a quarter: a plain modulo would give
        // the lowest third of the range half of the draws instead of a third.
        let mut rng = SplitMix64::new(2);
        let bound = 3_u64 << 62;
        let draws = 30_000;
        let lowest_third = (0..draws)
            .filter(|_| rng.next_below(bound) < bound / 3)
            .count();
        assert!((9_500..=10_500).contains(&lowest_third), "{lowest_third}");

        let mut counts = [0_u32; 6];
        for _ in 0..60_000 {
            counts[usize::try_from(rng.next_below(6)).unwrap()] += 1;
        }
        for count in counts {
            assert!((9_500..=10_500).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn next_below_terminates_with_a_constant_source() {
        // 0 is below the rejection threshold for every bound that does not divide 2^64.
        for bound in [3, 7, 3 << 62, (1 << 63) + 1] {
            assert!(Constant(0).next_below(bound) < bound);
            assert!(Constant(u64::MAX).next_below(bound) < bound);
        }
    }
}
