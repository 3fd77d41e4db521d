//! Choosing a record's partition the way Kafka's Java producer does.
//!
//! This module owns two policies:
//!
//! - **Keyed records**: [`partition_for_key`], `to_positive(murmur2(key)) % num_partitions`,
//!   bit for bit the Java client's `Utils.murmur2` and `Utils.toPositive`, so that a key lands
//!   on the same partition whichever Kafka client produced it. An empty key is a key.
//! - **Unkeyed records**: [`StickyPartitioner`] (KIP-480), which keeps a topic's records on
//!   one partition until the producer reports that the batch there is complete, so that
//!   batches fill up instead of being spread one record each.
//!
//! It does not read metadata or batches: callers pass the partition count and the partitions
//! that have a leader, and say when a batch is complete. Nothing here panics; a topic with no
//! partitions (`num_partitions <= 0`) gives `None`.

use std::collections::HashMap;

use crate::random::JitterSource;

/// MurmurHash2 (32-bit) exactly as Kafka's `org.apache.kafka.common.utils.Utils.murmur2`:
/// seed `0x9747b28c`, little-endian 4-byte blocks, the tail mixed in, then the final
/// avalanche. The result is Java's signed `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java's `length` is an int. A Kafka key is shorter than 2^31 bytes (its length is an
    // int32 on the wire), so the saturation only keeps this total for impossible inputs.
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut h = SEED ^ length;

    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }

    let tail = blocks.remainder();
    if let Some(&byte) = tail.get(2) {
        h ^= u32::from(byte) << 16;
    }
    if let Some(&byte) = tail.get(1) {
        h ^= u32::from(byte) << 8;
    }
    if let Some(&byte) = tail.first() {
        h ^= u32::from(byte);
        h = h.wrapping_mul(M);
    }

    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    // The same 32 bits, read as Java's signed int.
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit. Not `abs`, which overflows on `i32::MIN`
/// and sends negative hashes to other partitions than Java does.
pub const fn to_positive(number: i32) -> i32 {
    number & 0x7fff_ffff
}

/// The partition Kafka's default partitioner gives a record with this key:
/// `to_positive(murmur2(key)) % num_partitions`, over all partitions (available or not), so
/// that a key's partition depends only on the partition count.
///
/// `None` when `num_partitions <= 0`.
pub fn partition_for_key(key: &[u8], num_partitions: i32) -> Option<i32> {
    if num_partitions <= 0 {
        return None;
    }
    Some(to_positive(murmur2(key)) % num_partitions)
}

/// Where one topic's unkeyed records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sticky {
    /// Records go to this partition.
    On(i32),
    /// The batch on `previous` is complete: the next record picks another partition.
    Rotate { previous: i32 },
}

/// KIP-480's sticky partitioning for records without a key.
///
/// Each topic sticks to one partition until [`StickyPartitioner::on_new_batch`] reports that
/// the batch there is complete; the next record then goes to a partition chosen uniformly
/// among those with a leader, other than the previous one when there is a choice. When no
/// partition has a leader, all partitions are candidates, as in the Java client.
///
/// The state is one entry per topic the producer has sent unkeyed records to;
/// [`StickyPartitioner::forget`] drops a topic that is gone. Not synchronised: the producer
/// holds it behind its own lock.
#[derive(Debug)]
pub struct StickyPartitioner<R> {
    /// The current choice per topic.
    topics: HashMap<String, Sticky>,
    /// Where the choices come from.
    rng: R,
}

impl<R: JitterSource> StickyPartitioner<R> {
    /// A partitioner with no topics yet, choosing with `rng`.
    pub fn new(rng: R) -> Self {
        Self {
            topics: HashMap::new(),
            rng,
        }
    }

    /// The partition for the next unkeyed record of `topic`.
    ///
    /// `available` lists the partitions that currently have a leader; ids outside
    /// `0..num_partitions` are ignored. The sticky partition is kept while it is in range and,
    /// if any partition is available, available; otherwise a new one is chosen. `None` when
    /// `num_partitions <= 0`.
    pub fn partition(
        &mut self,
        topic: &str,
        num_partitions: i32,
        available: &[i32],
    ) -> Option<i32> {
        if num_partitions <= 0 {
            return None;
        }
        let avoid = match self.topics.get(topic) {
            Some(&Sticky::On(partition)) if usable(partition, num_partitions, available) => {
                return Some(partition);
            }
            Some(&Sticky::On(_)) | None => None,
            Some(&Sticky::Rotate { previous }) => Some(previous),
        };
        let chosen = choose(&mut self.rng, num_partitions, available, avoid)?;
        match self.topics.get_mut(topic) {
            Some(sticky) => *sticky = Sticky::On(chosen),
            None => {
                self.topics.insert(topic.to_owned(), Sticky::On(chosen));
            }
        }
        Some(chosen)
    }

    /// Reports that the batch on `previous_partition` of `topic` is complete, so that the next
    /// unkeyed record moves to another partition.
    ///
    /// Ignored unless `previous_partition` is the topic's current sticky partition: a late
    /// report about a partition already left must not move records off the new one.
    pub fn on_new_batch(&mut self, topic: &str, previous_partition: i32) {
        let current = self.topics.get_mut(topic);
        if let Some(sticky) = current.filter(|sticky| **sticky == Sticky::On(previous_partition)) {
            *sticky = Sticky::Rotate {
                previous: previous_partition,
            };
        }
    }

    /// Drops the state of `topic` (deleted, or no longer produced to).
    pub fn forget(&mut self, topic: &str) {
        self.topics.remove(topic);
    }
}

/// Whether records may stay on `partition`: it is in range and available, or in range and
/// no partition in range is available (then all are candidates, as in [`choose`]).
fn usable(partition: i32, num_partitions: i32, available: &[i32]) -> bool {
    let in_range = |candidate: &i32| (0..num_partitions).contains(candidate);
    in_range(&partition) && (available.contains(&partition) || !available.iter().any(in_range))
}

/// A partition chosen uniformly, preferring in order: available partitions other than
/// `avoid`, `avoid` if it is the only one available, any partition other than `avoid`, any
/// partition. `None` only when `num_partitions <= 0`.
fn choose(
    rng: &mut impl JitterSource,
    num_partitions: i32,
    available: &[i32],
    avoid: Option<i32>,
) -> Option<i32> {
    let all = 0..num_partitions;
    let not_avoided = |partition: &i32| Some(*partition) != avoid;
    let in_range = |partition: &i32| all.contains(partition);
    let available = available.iter().copied().filter(in_range);
    choose_from(rng, available.clone().filter(not_avoided))
        .or_else(|| choose_from(rng, available))
        .or_else(|| choose_from(rng, all.clone().filter(not_avoided)))
        .or_else(|| choose_from(rng, all.clone()))
}

/// A uniformly chosen element of `candidates`, `None` if there are none.
fn choose_from(
    rng: &mut impl JitterSource,
    mut candidates: impl Iterator<Item = i32> + Clone,
) -> Option<i32> {
    let count = u64::try_from(candidates.clone().count()).ok()?;
    if count == 0 {
        return None;
    }
    let index = usize::try_from(rng.next_below(count)).ok()?;
    candidates.nth(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SplitMix64;

    /// `(key, murmur2(key))`, generated with kafka-python 3.0.12's
    /// `kafka.partitioner.default.murmur2` (a port of the Java `Utils.murmur2`), converted to
    /// Java's signed int. Every length from 0 to 20 bytes, bytes with the high bit set, UTF-8,
    /// and the six cases of Kafka's own `UtilsTest.testMurmur2` ("21", "foobar", "abc" and
    /// the three long strings), which the Python output agrees with.
    const MURMUR2_VECTORS: &[(&[u8], i32)] = &[
        (b"", 275646681),
        (b"\x00", 375494588),
        (b"a", -1563381124),
        (b"\x7f", 21296028),
        (b"\x80", 857690492),
        (b"\xff", -311467685),
        (b"21", -973932308),
        (b"ab", 316155434),
        (b"\x00\x00", 595382058),
        (b"\xff\xff", -1642832928),
        (b"abc", 479470107),
        (b"\x80\x81\x82", -1975640061),
        (b"\xff\xff\xff", 1548199422),
        (b"abcd", -1323649548),
        (b"\x00\x00\x00\x00", 850957120),
        (b"\xff\xff\xff\xff", 644171429),
        (b"\xde\xad\xbe\xef", 833564499),
        (b"hello", 2132663229),
        (b"foobar", -790332482),
        (b"\xc3\xa9t\xc3\xa9!", 1212100132),
        (b"key-001", 667883291),
        (b"\xe6\x97\xa5\xe6\x9c\xac", -700811021),
        (b"order-42", 501153024),
        (b"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 1431860170),
        (b"user:12345", 1192617008),
        (b"partition-12", 327895502),
        (b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b", -234812442),
        (b"customer-0001", -27067893),
        (
            b"\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d",
            1507217673,
        ),
        (b"0123456789abcde", 1792992660),
        (b"0123456789abcdef", 1438427052),
        (
            b"\xef\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9\xfa\xfb\xfc\xfd\xfe\xff",
            763995202,
        ),
        (b"topic/\xf0\x9f\x98\x80/key-001", -377759771),
        (b"the-quick-brown-fox", -70576675),
        (
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
            -1534586066,
        ),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58897971,
        ),
    ];

    /// The partition counts of [`PARTITION_VECTORS`].
    const PARTITION_COUNTS: [i32; 6] = [1, 2, 3, 12, 100, i32::MAX];

    /// `(key, partition for each of PARTITION_COUNTS)`, from the same kafka-python function
    /// as `(murmur2(key) & 0x7fffffff) % count`, the expression of its `DefaultPartitioner`.
    const PARTITION_VECTORS: &[(&[u8], [i32; 6])] = &[
        (b"", [0, 1, 0, 9, 81, 275646681]),
        (b"a", [0, 0, 1, 4, 24, 584102524]),
        (b"21", [0, 0, 0, 0, 40, 1173551340]),
        (b"\xff\xff", [0, 0, 2, 8, 20, 504650720]),
        (b"abc", [0, 1, 0, 3, 7, 479470107]),
        (b"abcd", [0, 0, 2, 8, 0, 823834100]),
        (b"foobar", [0, 0, 0, 6, 66, 1357151166]),
        (
            b"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
            [0, 0, 1, 10, 70, 1431860170],
        ),
        (b"partition-12", [0, 0, 2, 2, 2, 327895502]),
        (b"a-little-bit-long-string", [0, 0, 2, 8, 12, 1161502112]),
    ];

    #[test]
    fn murmur2_matches_the_java_client() {
        for &(key, expected) in MURMUR2_VECTORS {
            assert_eq!(murmur2(key), expected, "key {key:x?}");
        }
    }

    #[test]
    fn the_vectors_cover_every_length_up_to_20() {
        for length in 0..=20 {
            assert!(
                MURMUR2_VECTORS.iter().any(|(key, _)| key.len() == length),
                "no vector of {length} bytes"
            );
        }
    }

    #[test]
    fn murmur2_of_long_input_does_not_panic() {
        let data: Vec<u8> = (0..=255).cycle().take(1 << 20).collect();
        for length in [1 << 20, (1 << 20) - 1, (1 << 20) - 2, (1 << 20) - 3] {
            let _hash: i32 = murmur2(&data[..length]);
        }
    }

    #[test]
    fn to_positive_clears_the_sign_bit_only() {
        assert_eq!(to_positive(0), 0);
        assert_eq!(to_positive(1), 1);
        assert_eq!(to_positive(i32::MAX), i32::MAX);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-973932308), 1173551340);
    }

    #[test]
    fn partition_for_key_matches_the_default_partitioner() {
        for &(key, expected) in PARTITION_VECTORS {
            for (count, partition) in PARTITION_COUNTS.into_iter().zip(expected) {
                assert_eq!(
                    partition_for_key(key, count),
                    Some(partition),
                    "key {key:x?}, {count} partitions"
                );
            }
        }
    }

    #[test]
    fn partition_for_key_is_in_range_for_every_vector() {
        for &(key, _) in MURMUR2_VECTORS {
            for count in [1, 2, 7, 64, 1_000, i32::MAX] {
                let partition = partition_for_key(key, count).unwrap();
                assert!((0..count).contains(&partition));
            }
        }
    }

    #[test]
    fn no_partitions_is_none() {
        for count in [0, -1, i32::MIN] {
            assert_eq!(partition_for_key(b"key", count), None);
            let mut sticky = StickyPartitioner::new(SplitMix64::new(0));
            assert_eq!(sticky.partition("t", count, &[]), None);
            assert_eq!(sticky.partition("t", count, &[0, 1]), None);
        }
    }

    #[test]
    fn sticky_stays_on_one_partition_until_a_batch_completes() {
        let mut sticky = StickyPartitioner::new(SplitMix64::new(1));
        let available = [0, 1, 2, 3, 4, 5];
        let first = sticky.partition("t", 6, &available).unwrap();
        for _ in 0..1_000 {
            assert_eq!(sticky.partition("t", 6, &available), Some(first));
        }
    }

    #[test]
    fn a_completed_batch_moves_to_another_partition() {
        let mut sticky = StickyPartitioner::new(SplitMix64::new(2));
        let available = [0, 1, 2, 3];
        let mut current = sticky.partition("t", 4, &available).unwrap();
        let mut visits = [0_u32; 4];
        for _ in 0..4_000 {
            sticky.on_new_batch("t", current);
            let next = sticky.partition("t", 4, &available).unwrap();
            assert_ne!(next, current);
            assert_eq!(sticky.partition("t", 4, &available), Some(next));
            visits[usize::try_from(next).unwrap()] += 1;
            current = next;
        }
        for count in visits {
            assert!((850..=1_150).contains(&count), "{visits:?}");
        }
    }

    #[test]
    fn the_new_partition_is_uniform_among_the_others() {
        let mut rng = SplitMix64::new(3);
        let mut counts = [0_u32; 5];
        for _ in 0..8_000 {
            let partition = choose(&mut rng, 5, &[0, 1, 2, 3, 4], Some(2)).unwrap();
            counts[usize::try_from(partition).unwrap()] += 1;
        }
        assert_eq!(counts[2], 0);
        for (partition, count) in counts.into_iter().enumerate() {
            if partition != 2 {
                assert!((1_850..=2_150).contains(&count), "{counts:?}");
            }
        }
    }

    #[test]
    fn a_stale_batch_report_is_ignored() {
        let mut sticky = StickyPartitioner::new(SplitMix64::new(4));
        let available = [0, 1, 2];
        let current = sticky.partition("t", 3, &available).unwrap();
        let other = (current + 1) % 3;
        sticky.on_new_batch("t", other);
        assert_eq!(sticky.partition("t", 3, &available), Some(current));

        // Two reports for the same batch rotate once: the second names the old partition.
        sticky.on_new_batch("t", current);
        let next = sticky.partition("t", 3, &available).unwrap();
        sticky.on_new_batch("t", current);
        assert_eq!(sticky.partition("t", 3, &available), Some(next));

        // A report for a topic never partitioned creates nothing.
        sticky.on_new_batch("unknown", 0);
        assert!(!sticky.topics.contains_key("unknown"));
    }

    #[test]
    fn a_single_available_partition_is_kept() {
        let mut sticky = StickyPartitioner::new(SplitMix64::new(5));
        assert_eq!(sticky.partition("t", 6, &[4]), Some(4));
        for _ in 0..100 {
            sticky.on_new_batch("t", 4);
            assert_eq!(sticky.partition("t", 6, &[4]), Some(4));
        }
    }

    #[test]
    fn only_available_partitions_are_chosen() {
        let mut sticky = StickyPartitioner::new(SplitMix64::new(6));
        let available = [1, 3, 5];
        let mut current = sticky.partition("t", 6, &available).unwrap();
        for _ in 0..1_000 {
            assert!(available.contains(&current));
            sticky.on_new_batch("t", current);
            current = sticky.partition("t", 6, &available).unwrap();
        }
    }

    #[test]
    fn with_no_available_partition_any_partition_is_used() {
        let mut sticky = StickyPartitioner::new(SplitMix64::new(7));
        let mut seen = [false; 4];
        let mut current = sticky.partition("t", 4, &[]).unwrap();
        for _ in 0..200 {
            seen[usize::try_from(current).unwrap()] = true;
            sticky.on_new_batch("t", current);
            let next = sticky.partition("t", 4, &[]).unwrap();
            assert_ne!(next, current);
            current = next;
        }
        assert_eq!(seen, [true; 4]);

        // One partition in all: it is the only choice, again and again.
        let mut single = StickyPartitioner::new(SplitMix64::new(7));
        for _ in 0..10 {
            assert_eq!(single.partition("t", 1, &[]), Some(0));
            single.on_new_batch("t", 0);
        }
    }

    #[test]
    fn a_sticky_partition_that_loses_its_leader_is_replaced() {
        let mut sticky = StickyPartitioner::new(SplitMix64::new(8));
        let current = sticky.partition("t", 3, &[0, 1, 2]).unwrap();
        let remaining: Vec<i32> = (0..3).filter(|&p| p != current).collect();
        let next = sticky.partition("t", 3, &remaining).unwrap();
        assert_ne!(next, current);
        assert!(remaining.contains(&next));
        // ... and kept from then on, even when the old one comes back.
        assert_eq!(sticky.partition("t", 3, &[0, 1, 2]), Some(next));
    }

    #[test]
    fn a_shrunk_topic_gets_a_partition_in_range() {
        let mut sticky = StickyPartitioner::new(SplitMix64::new(9));
        let available: Vec<i32> = (0..100).collect();
        let mut current = sticky.partition("t", 100, &available).unwrap();
        while current < 2 {
            sticky.on_new_batch("t", current);
            current = sticky.partition("t", 100, &available).unwrap();
        }
        // Metadata now says 2 partitions; stale ids in `available` are ignored.
        let after = sticky.partition("t", 2, &available).unwrap();
        assert!((0..2).contains(&after));
        // Only stale ids: any partition in range will do, and it sticks.
        let fallback = sticky.partition("t", 2, &[7, -1, 40]).unwrap();
        assert!((0..2).contains(&fallback));
        for _ in 0..100 {
            assert_eq!(sticky.partition("t", 2, &[7, -1, 40]), Some(fallback));
        }
    }

    #[test]
    fn topics_are_independent() {
        let mut sticky = StickyPartitioner::new(SplitMix64::new(10));
        let available: Vec<i32> = (0..50).collect();
        let a = sticky.partition("a", 50, &available).unwrap();
        let b = sticky.partition("b", 50, &available).unwrap();
        sticky.on_new_batch("a", a);
        let a2 = sticky.partition("a", 50, &available).unwrap();
        assert_ne!(a2, a);
        assert_eq!(sticky.partition("b", 50, &available), Some(b));
        // A report naming b's partition under topic a does not move b.
        sticky.on_new_batch("a", b);
        assert_eq!(sticky.partition("b", 50, &available), Some(b));
    }

    #[test]
    fn forget_drops_a_topic() {
        let mut sticky = StickyPartitioner::new(SplitMix64::new(11));
        sticky.partition("t", 3, &[]).unwrap();
        sticky.forget("t");
        assert!(sticky.topics.is_empty());
        sticky.forget("never-seen");
        assert!(sticky.partition("t", 3, &[]).is_some());
    }

    #[test]
    fn the_same_seed_makes_the_same_choices() {
        let run = |seed| {
            let mut sticky = StickyPartitioner::new(SplitMix64::new(seed));
            let available: Vec<i32> = (0..32).collect();
            let mut chosen = Vec::new();
            for _ in 0..100 {
                let partition = sticky.partition("t", 32, &available).unwrap();
                chosen.push(partition);
                sticky.on_new_batch("t", partition);
            }
            chosen
        };
        assert_eq!(run(12), run(12));
        assert_ne!(run(12), run(13));
    }
}
