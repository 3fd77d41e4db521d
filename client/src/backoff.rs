//! Retry delays: exponential backoff with full jitter, as a plain [`Iterator`].
//!
//! This module owns the delay policy. It does not sleep, read a clock or count retries
//! against a limit: callers `sleep` for the delays they take and bound the loop themselves
//! (`.take(n)`, a deadline). The random source lives in [`crate::random`]; [`JitterSource`]
//! and [`SplitMix64`] are re-exported here because they were first published from this
//! module.
//!
//! # Policy
//!
//! Full jitter from the AWS article "Exponential Backoff And Jitter": the delay before retry
//! `attempt` (counting from 0) is drawn uniformly from `0..=min(max, initial * 2^attempt)`.
//! Of the variants in that article it spreads competing clients the most while doing the
//! least total work; the price is that a delay can be arbitrarily short, which is fine
//! because the *expected* delay still doubles with each attempt.
//!
//! # Invariants
//!
//! - No delay exceeds `max`, nor `initial * 2^attempt`.
//! - The ceiling is doubled with saturating arithmetic and clamped, so nothing overflows
//!   however many delays are taken; the iterator never ends.
//! - The randomness is injected: the same seed gives the same delays.

use std::iter::FusedIterator;
use std::time::Duration;

pub use crate::random::{JitterSource, SplitMix64};

/// The largest delay a [`Backoff`] yields: `u64::MAX` nanoseconds (about 584 years).
///
/// A larger `max` is clamped to it, so that every ceiling fits the `u64` the random draw
/// works in.
pub const MAX_DELAY: Duration = Duration::from_nanos(u64::MAX);

/// The delays between retries: an endless iterator, `initial` doubling up to `max`, each
/// delay drawn with full jitter (see the module docs).
///
/// ```
/// use std::time::Duration;
/// use weir_client::backoff::{Backoff, SplitMix64};
///
/// let mut backoff = Backoff::new(
///     Duration::from_millis(100),
///     Duration::from_secs(10),
///     SplitMix64::new(7),
/// );
/// for delay in backoff.by_ref().take(3) {
///     assert!(delay <= Duration::from_millis(400));
/// }
/// backoff.reset(); // after a success: the next failure starts from `initial` again
/// assert_eq!(backoff.attempts(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct Backoff<R> {
    /// The first ceiling, restored by [`Backoff::reset`]; already clamped to `max`.
    initial: Duration,
    /// The largest ceiling, clamped to [`MAX_DELAY`].
    max: Duration,
    /// The upper bound of the next delay: `min(max, initial * 2^attempts)`.
    ceiling: Duration,
    /// Delays yielded since creation or the last reset; saturates at `u32::MAX`.
    attempts: u32,
    /// Where the jitter comes from.
    rng: R,
}

impl<R: JitterSource> Backoff<R> {
    /// Delays starting below `initial` and never above `max`.
    ///
    /// An `initial` above `max` starts at `max`; an `initial` of zero yields zero delays
    /// forever (zero doubles to zero).
    pub fn new(initial: Duration, max: Duration, rng: R) -> Self {
        let max = max.min(MAX_DELAY);
        let initial = initial.min(max);
        Self {
            initial,
            max,
            ceiling: initial,
            attempts: 0,
            rng,
        }
    }

    /// Starts over from `initial`, as after a success.
    pub fn reset(&mut self) {
        self.ceiling = self.initial;
        self.attempts = 0;
    }

    /// How many delays have been taken since creation or the last [`Backoff::reset`].
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

impl<R: JitterSource> Iterator for Backoff<R> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        // The ceiling is at most MAX_DELAY, so its nanoseconds fit a u64; the fallback is
        // unreachable and merely keeps the conversion total.
        let ceiling_nanos = u64::try_from(self.ceiling.as_nanos()).unwrap_or(u64::MAX);
        let delay_nanos = match ceiling_nanos.checked_add(1) {
            Some(choices) => self.rng.next_below(choices),
            None => self.rng.next_u64(),
        };
        self.ceiling = self.ceiling.saturating_mul(2).min(self.max);
        self.attempts = self.attempts.saturating_add(1);
        Some(Duration::from_nanos(delay_nanos))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

impl<R: JitterSource> FusedIterator for Backoff<R> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// `min(max, initial * 2^attempt)` computed independently, in u128 nanoseconds.
    fn expected_ceiling(initial: Duration, max: Duration, attempt: u32) -> Duration {
        let max_nanos = max.min(MAX_DELAY).as_nanos();
        let initial_nanos = initial.as_nanos().min(max_nanos);
        let doubled = 1_u128
            .checked_shl(attempt)
            .and_then(|factor| initial_nanos.checked_mul(factor))
            .unwrap_or(u128::MAX);
        let nanos = if initial_nanos == 0 {
            0
        } else {
            doubled.min(max_nanos)
        };
        Duration::from_nanos(u64::try_from(nanos).unwrap())
    }

    /// A source that always returns the same value: the worst case for rejection sampling.
    struct Constant(u64);

    impl JitterSource for Constant {
        fn next_u64(&mut self) -> u64 {
            self.0
        }
    }

    /// A source that always returns the same value: the worst case for rejection sampling.
    #[test]
    fn delays_stay_within_the_ceiling_for_1000_attempts() {
        let cases = [
            (Duration::from_millis(100), Duration::from_secs(10)),
            (Duration::from_nanos(1), Duration::from_secs(1)),
            (Duration::from_nanos(3), Duration::from_nanos(1_000)),
            (Duration::from_secs(1), Duration::from_millis(10)), // initial above max
            (Duration::from_millis(50), Duration::from_millis(50)),
            (Duration::from_secs(1), Duration::MAX), // max clamped to MAX_DELAY
            (Duration::MAX, Duration::MAX),
            (Duration::ZERO, Duration::from_secs(1)),
            (Duration::from_secs(1), Duration::ZERO),
        ];
        for (seed, (initial, max)) in (0_u64..).zip(cases) {
            let mut backoff = Backoff::new(initial, max, SplitMix64::new(seed));
            for attempt in 0..=1_000 {
                let ceiling = expected_ceiling(initial, max, attempt);
                assert_eq!(backoff.ceiling, ceiling, "{initial:?}..{max:?} #{attempt}");
                let delay = backoff.next().unwrap();
                assert!(
                    delay <= ceiling && delay <= max && delay <= MAX_DELAY,
                    "{initial:?}..{max:?} #{attempt}: {delay:?} > {ceiling:?}"
                );
            }
            assert_eq!(backoff.attempts(), 1_001);
        }
    }

    #[test]
    fn the_ceiling_doubles_then_holds_at_max() {
        let mut backoff = Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(1_000),
            SplitMix64::new(3),
        );
        let mut ceilings = Vec::new();
        for _ in 0..7 {
            ceilings.push(backoff.ceiling.as_millis());
            backoff.next();
        }
        assert_eq!(ceilings, [100, 200, 400, 800, 1_000, 1_000, 1_000]);
    }

    #[test]
    fn zero_initial_or_max_yields_zero_delays() {
        let mut zero_initial = Backoff::new(Duration::ZERO, Duration::MAX, SplitMix64::new(4));
        let mut zero_max = Backoff::new(Duration::MAX, Duration::ZERO, SplitMix64::new(4));
        for _ in 0..100 {
            assert_eq!(zero_initial.next(), Some(Duration::ZERO));
            assert_eq!(zero_max.next(), Some(Duration::ZERO));
        }
    }

    #[test]
    fn nothing_overflows_far_past_the_cap() {
        // Whole ceilings of MAX_DELAY: the draw covers all of u64, with no `+ 1` overflow.
        let mut backoff = Backoff::new(Duration::MAX, Duration::MAX, SplitMix64::new(5));
        for _ in 0..1_000 {
            assert!(backoff.next().unwrap() <= MAX_DELAY);
        }
        // The attempt counter saturates instead of wrapping.
        backoff.attempts = u32::MAX - 1;
        backoff.next();
        backoff.next();
        assert_eq!(backoff.attempts(), u32::MAX);
        assert_eq!(backoff.ceiling, MAX_DELAY);
        // A constant source at the top of the range, the largest possible draw.
        let mut top = Backoff::new(Duration::MAX, Duration::MAX, Constant(u64::MAX));
        assert_eq!(top.next(), Some(MAX_DELAY));
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let delays = |seed| {
            Backoff::new(
                Duration::from_millis(10),
                Duration::from_secs(30),
                SplitMix64::new(seed),
            )
            .take(200)
            .collect::<Vec<_>>()
        };
        assert_eq!(delays(42), delays(42));
        assert_ne!(delays(42), delays(43));
    }

    #[test]
    fn delays_are_spread_uniformly_under_the_ceiling() {
        // A fixed ceiling (initial == max), so every delay is uniform on 0..=100 ms.
        let ceiling = Duration::from_millis(100);
        let draws = 20_000_u32;
        let mut deciles = [0_u32; 10];
        let mut total = Duration::ZERO;
        let mut smallest = ceiling;
        let mut largest = Duration::ZERO;
        for delay in Backoff::new(ceiling, ceiling, SplitMix64::new(6)).take(20_000) {
            let decile = delay.as_nanos() * 10 / (ceiling.as_nanos() + 1);
            deciles[usize::try_from(decile).unwrap()] += 1;
            total += delay;
            smallest = smallest.min(delay);
            largest = largest.max(delay);
        }
        let mean = total / draws;
        assert!(
            (Duration::from_millis(49)..=Duration::from_millis(51)).contains(&mean),
            "mean {mean:?}"
        );
        for count in deciles {
            assert!((1_800..=2_200).contains(&count), "{deciles:?}");
        }
        assert!(smallest < Duration::from_millis(1), "{smallest:?}");
        assert!(largest > Duration::from_millis(99), "{largest:?}");
    }

    #[test]
    fn the_mean_delay_doubles_with_each_attempt() {
        // Many independent backoffs, same attempt: the mean is about half the ceiling.
        let mut rng = SplitMix64::new(8);
        let runs = 4_000_u32;
        let mut totals = [Duration::ZERO; 5];
        for _ in 0..runs {
            let backoff = Backoff::new(
                Duration::from_millis(100),
                Duration::from_secs(60),
                SplitMix64::new(rng.next_u64()),
            );
            for (total, delay) in totals.iter_mut().zip(backoff) {
                *total += delay;
            }
        }
        for (attempt, total) in (0_u32..).zip(totals) {
            let half_ceiling_ms = 50.0 * f64::from(1_u32 << attempt);
            let mean_ms = (total / runs).as_secs_f64() * 1_000.0;
            let error = (mean_ms - half_ceiling_ms).abs() / half_ceiling_ms;
            assert!(error < 0.05, "attempt {attempt}: mean {mean_ms} ms");
        }
    }

    #[test]
    fn reset_starts_over_from_initial() {
        let initial = Duration::from_millis(10);
        let mut backoff = Backoff::new(initial, Duration::from_secs(1), SplitMix64::new(9));
        backoff.by_ref().take(20).for_each(drop);
        assert_eq!(backoff.attempts(), 20);
        assert_eq!(backoff.ceiling, Duration::from_secs(1));

        backoff.reset();
        assert_eq!(backoff.attempts(), 0);
        assert_eq!(backoff.ceiling, initial);
        assert!(backoff.next().unwrap() <= initial);
        assert!(backoff.next().unwrap() <= initial * 2);
        assert_eq!(backoff.attempts(), 2);
    }

    #[test]
    fn reset_with_a_reseeded_source_repeats_the_sequence() {
        let fresh = Backoff::new(
            Duration::from_millis(5),
            Duration::from_secs(2),
            SplitMix64::new(10),
        );
        let mut used = fresh.clone();
        let first: Vec<_> = used.by_ref().take(30).collect();
        used.reset();
        used.rng = SplitMix64::new(10);
        let again: Vec<_> = used.take(30).collect();
        assert_eq!(first, again);
        assert_eq!(first, fresh.take(30).collect::<Vec<_>>());
    }

    #[test]
    fn the_iterator_never_ends() {
        let mut source = Constant(1);
        let mut backoff = Backoff::new(
            Duration::from_nanos(1),
            Duration::from_nanos(2),
            &mut source,
        );
        assert_eq!(backoff.size_hint(), (usize::MAX, None));
        assert_eq!(backoff.by_ref().take(10_000).count(), 10_000);
        assert!(backoff.next().is_some());
    }
}
