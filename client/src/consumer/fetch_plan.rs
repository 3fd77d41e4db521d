//! The consumer's fetch planner: which partitions go in which fetch request to which leader,
//! how many bytes each may bring, and in what order.
//!
//! Owns the fetch policy of [`super::fetcher`] and the rotation of partitions across
//! successive requests. Pure: the fetcher passes a snapshot (each partition's state, its
//! leader, the leaders with a fetch in flight, the bytes buffered and reserved) and `now`,
//! and does the I/O with the answer.
//!
//! Does not: look up leaders, read a clock, build wire requests, or change the consumer's
//! state; the only state here is the rotation ([`FetchPlanner::served`]).
//!
//! # Invariants
//!
//! - A partition is fetched only while it has a position, is not paused, stalled, backing
//!   off or in a fetch already, and its buffer is below `max_partition_fetch_bytes`.
//! - At most one fetch per leader is in flight (leaders in `busy` get none).
//! - A request asks for at most what the prefetch bound leaves (`max_prefetch_bytes` minus
//!   what is buffered and reserved by fetches in flight) and at most `fetch_max_bytes`; its
//!   `max_bytes` is reserved until it is answered. Each partition asks for at most
//!   `max_partition_fetch_bytes` minus its buffer (never 0: a request must ask for something).
//! - Rotation (KIP-74, as the Java client does): the broker gives the request's `max_bytes`
//!   to the partitions in request order, only the first partition with data may exceed it,
//!   and later ones get nothing that round. So partitions that returned data go to the back
//!   of the next requests; partitions never served, or served longest ago, go first. With
//!   every partition always having more data than `max_bytes`, each is therefore first, and
//!   served, at least once every `n` requests to its leader (`n` its fetchable partitions).

use std::collections::{BTreeMap, HashMap, HashSet};

use tokio::time::Instant;

use super::record::TopicPartition;

/// The byte limits the planner applies, from the consumer's configuration.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) fetch_max_bytes: usize,
    pub(super) max_partition_fetch_bytes: usize,
    pub(super) max_prefetch_bytes: usize,
}

/// What the planner knows of one assigned partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PartitionView {
    /// Its position is resolved.
    pub(super) has_position: bool,
    pub(super) paused: bool,
    /// A fetch including it is in flight.
    pub(super) in_flight: bool,
    /// An error was reported for it; not fetched until a seek.
    pub(super) stalled: bool,
    /// Not fetched before this time.
    pub(super) retry_at: Option<Instant>,
    /// Bytes fetched and not yet polled.
    pub(super) buffered_bytes: usize,
}

/// Whether a partition may be fetched now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fetchable {
    Yes,
    /// Not before this time (after a retriable failure).
    BackingOff(Instant),
    No,
}

/// Whether the partition may be fetched now (see the module's invariants).
pub(super) fn fetchable(view: &PartitionView, limits: &Limits, now: Instant) -> Fetchable {
    if let Some(at) = view.retry_at.filter(|&at| at > now) {
        return Fetchable::BackingOff(at);
    }
    if view.has_position
        && !view.paused
        && !view.in_flight
        && !view.stalled
        && view.buffered_bytes < limits.max_partition_fetch_bytes
    {
        Fetchable::Yes
    } else {
        Fetchable::No
    }
}

/// One fetch request to plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fetch {
    pub(super) node: i32,
    /// The partitions, in request order, with the bytes each may bring.
    pub(super) partitions: Vec<(TopicPartition, usize)>,
    /// The request's `max_bytes`, reserved from the prefetch bound until it is answered.
    pub(super) max_bytes: usize,
}

/// The fetch planner, with the rotation state it keeps between requests.
#[derive(Debug, Default)]
pub(super) struct FetchPlanner {
    /// When each partition last returned data, on the `served_clock`; absent: never (or not
    /// since it was forgotten), which puts it first.
    served_at: HashMap<TopicPartition, u64>,
    /// Counts answers with data; only ever compared, so wrapping would take 2^64 answers.
    served_clock: u64,
}

impl FetchPlanner {
    /// Records that `tp` returned data: it goes behind the others in the next requests.
    pub(super) fn served(&mut self, tp: &TopicPartition) {
        self.served_clock += 1;
        self.served_at.insert(tp.clone(), self.served_clock);
    }

    /// Drops the rotation state of partitions no longer assigned, so it stays bounded by the
    /// assignment.
    pub(super) fn retain(&mut self, assigned: impl Fn(&TopicPartition) -> bool) {
        self.served_at.retain(|tp, _| assigned(tp));
    }

    /// The fetches to start: one per leader not in `busy` with fetchable partitions, in
    /// leader order, while the prefetch bound leaves room. `candidates` are the partitions
    /// with their leader; `used_bytes` is what is buffered plus reserved by fetches in flight.
    pub(super) fn plan(
        &self,
        candidates: impl IntoIterator<Item = (TopicPartition, i32, PartitionView)>,
        busy: &HashSet<i32>,
        used_bytes: usize,
        limits: &Limits,
        now: Instant,
    ) -> Vec<Fetch> {
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, PartitionView)>> = BTreeMap::new();
        for (tp, node, view) in candidates {
            if !busy.contains(&node) && fetchable(&view, limits, now) == Fetchable::Yes {
                by_leader.entry(node).or_default().push((tp, view));
            }
        }
        let mut used = used_bytes;
        let mut fetches = Vec::new();
        for (node, mut partitions) in by_leader {
            let free = limits
                .max_prefetch_bytes
                .saturating_sub(used)
                .min(limits.fetch_max_bytes);
            if free == 0 {
                break;
            }
            // Least recently served first; ties (never served) in partition order.
            partitions.sort_by(|(a, _), (b, _)| {
                let at = |tp| self.served_at.get(tp).copied().unwrap_or(0);
                at(a).cmp(&at(b)).then_with(|| a.cmp(b))
            });
            let mut asked = 0_usize;
            let partitions: Vec<(TopicPartition, usize)> = partitions
                .into_iter()
                .map(|(tp, view)| {
                    let room = limits
                        .max_partition_fetch_bytes
                        .saturating_sub(view.buffered_bytes)
                        .min(free)
                        .max(1);
                    asked = asked.saturating_add(room);
                    (tp, room)
                })
                .collect();
            let max_bytes = asked.min(free);
            used = used.saturating_add(max_bytes);
            fetches.push(Fetch {
                node,
                partitions,
                max_bytes,
            });
        }
        fetches
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIMITS: Limits = Limits {
        fetch_max_bytes: 1_000,
        max_partition_fetch_bytes: 400,
        max_prefetch_bytes: 10_000,
    };

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition::new("t", partition)
    }

    fn ready() -> PartitionView {
        PartitionView {
            has_position: true,
            paused: false,
            in_flight: false,
            stalled: false,
            retry_at: None,
            buffered_bytes: 0,
        }
    }

    fn order(fetch: &Fetch) -> Vec<i32> {
        fetch
            .partitions
            .iter()
            .map(|(tp, _)| tp.partition)
            .collect()
    }

    #[test]
    fn partitions_are_grouped_by_leader_and_busy_leaders_skipped() {
        let planner = FetchPlanner::default();
        let now = Instant::now();
        let candidates = [
            (tp(0), 2, ready()),
            (tp(1), 1, ready()),
            (tp(2), 2, ready()),
            (tp(3), 3, ready()),
        ];
        let fetches = planner.plan(candidates, &HashSet::from([3]), 0, &LIMITS, now);
        let planned: Vec<(i32, Vec<i32>)> = fetches.iter().map(|f| (f.node, order(f))).collect();
        assert_eq!(planned, [(1, vec![1]), (2, vec![0, 2])]);
    }

    #[test]
    fn paused_stalled_in_flight_unpositioned_full_and_backing_off_partitions_are_left_out() {
        let planner = FetchPlanner::default();
        let now = Instant::now();
        let later = now + Duration::from_millis(5);
        let views = [
            PartitionView {
                paused: true,
                ..ready()
            },
            PartitionView {
                stalled: true,
                ..ready()
            },
            PartitionView {
                in_flight: true,
                ..ready()
            },
            PartitionView {
                has_position: false,
                ..ready()
            },
            PartitionView {
                buffered_bytes: LIMITS.max_partition_fetch_bytes,
                ..ready()
            },
            PartitionView {
                retry_at: Some(later),
                ..ready()
            },
            PartitionView {
                retry_at: Some(now),
                ..ready()
            },
        ];
        assert_eq!(
            fetchable(&views[5], &LIMITS, now),
            Fetchable::BackingOff(later)
        );
        let candidates = (0..).zip(views).map(|(p, view)| (tp(p), 1, view));
        let fetches = planner.plan(candidates, &HashSet::new(), 0, &LIMITS, now);
        assert_eq!(fetches.len(), 1);
        assert_eq!(order(&fetches[0]), [6]);
    }

    #[test]
    fn requests_stay_within_the_prefetch_bound() {
        let planner = FetchPlanner::default();
        let now = Instant::now();
        let candidates = [
            (
                tp(0),
                1,
                PartitionView {
                    buffered_bytes: 100,
                    ..ready()
                },
            ),
            (tp(1), 1, ready()),
            (tp(2), 2, ready()),
            (tp(3), 3, ready()),
        ];
        // 9_500 of 10_000 used: 500 left, which the first request takes whole.
        let fetches = planner.plan(candidates, &HashSet::new(), 9_500, &LIMITS, now);
        assert_eq!(fetches.len(), 1);
        assert_eq!(fetches[0].partitions, [(tp(0), 300), (tp(1), 400)]);
        assert_eq!(fetches[0].max_bytes, 500);
        // Plenty of room: each request is capped by fetch_max_bytes, and what it asks.
        let fetches = planner.plan(
            [
                (tp(0), 1, ready()),
                (tp(1), 1, ready()),
                (tp(2), 1, ready()),
                (tp(3), 2, ready()),
            ],
            &HashSet::new(),
            0,
            &LIMITS,
            now,
        );
        let max_bytes: Vec<usize> = fetches.iter().map(|f| f.max_bytes).collect();
        assert_eq!(max_bytes, [1_000, 400]);
    }

    #[test]
    fn a_full_prefetch_bound_plans_nothing() {
        let planner = FetchPlanner::default();
        let fetches = planner.plan(
            [(tp(0), 1, ready())],
            &HashSet::new(),
            LIMITS.max_prefetch_bytes,
            &LIMITS,
            Instant::now(),
        );
        assert!(fetches.is_empty());
    }

    #[test]
    fn partitions_that_returned_data_go_to_the_back() {
        let mut planner = FetchPlanner::default();
        let now = Instant::now();
        let candidates = || (0..4).map(|p| (tp(p), 1, ready()));
        let plan = |planner: &FetchPlanner| {
            order(&planner.plan(candidates(), &HashSet::new(), 0, &LIMITS, now)[0])
        };
        assert_eq!(plan(&planner), [0, 1, 2, 3]);
        planner.served(&tp(0));
        assert_eq!(plan(&planner), [1, 2, 3, 0]);
        planner.served(&tp(2));
        planner.served(&tp(1));
        assert_eq!(plan(&planner), [3, 0, 2, 1]);
        // A partition no longer assigned is forgotten; if it comes back it goes first.
        planner.retain(|tp| tp.partition != 0);
        assert_eq!(plan(&planner), [0, 3, 2, 1]);
    }

    /// KIP-74: with every partition always holding more than the request's `max_bytes`, the
    /// broker gives data to the first partition of each request only. Without rotation the
    /// first partition would take every answer and the others starve.
    #[test]
    fn every_partition_makes_progress_when_each_has_more_than_max_bytes() {
        let mut planner = FetchPlanner::default();
        let now = Instant::now();
        let partitions = 5;
        let mut answers = vec![0_u32; 5];
        for round in 0..50 {
            let candidates = (0..partitions).map(|p| (tp(p), 1, ready()));
            let fetches = planner.plan(candidates, &HashSet::new(), 0, &LIMITS, now);
            let first = fetches[0].partitions[0].0.clone();
            answers[usize::try_from(first.partition).unwrap()] += 1;
            planner.served(&first);
            if round == partitions - 1 {
                assert_eq!(
                    answers, [1; 5],
                    "each served once in the first five requests"
                );
            }
        }
        assert_eq!(answers, [10; 5]);
    }
}
