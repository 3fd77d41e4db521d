//! The producer's drain planner: which partitions send a batch this round, to which broker,
//! and how the batches are packed into produce requests.
//!
//! Owns the sending policy of [`super::sender`], as two pure steps over a snapshot:
//!
//! 1. [`admit`]: from each partition's view (leader, batches in flight, retries and their
//!    backoff deadline) and the produce requests already in flight per broker, the partitions
//!    that may send one batch now, which batch (a retry, the batch left out of the last
//!    request, or a new one), and to which leader.
//! 2. [`pack`]: from the admitted batches' sizes, in admission order, which go into this
//!    round's request to their broker and which wait for the next round.
//!
//! The steps are apart because a new batch's size is known only once the sender has sealed
//! it (producer id, sequence, compression), between the two.
//!
//! Does not: read a clock (`now` is passed in), take batches out of the accumulator, seal,
//! send, or change any state; the sender does all of that with what the planner answers.
//!
//! # Invariants
//!
//! - A partition sends at most one batch per round, so at most one per request.
//! - At most `max_in_flight` batches of a partition are in flight, and none more than
//!   `max_in_flight` batches after its oldest unanswered one (so a late failure of that one is
//!   retried within the window an idempotent broker remembers for duplicates).
//! - After a failure nothing newer of the partition goes until every batch of it in flight is
//!   answered and the retry backoff is over; then its retries go one at a time, before
//!   anything newer (the sender keeps them oldest first).
//! - A broker has at most `max_in_flight` produce requests in flight.
//! - A request holds at most `max_request_size` bytes of batches, except that its first batch
//!   always goes (a batch larger than the limit could never go otherwise).
//! - A partition without a leader is skipped, and reported so the sender refreshes metadata.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::accumulator::TopicPartition;

/// The limits the planner applies, from the producer's configuration.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Batches in flight per partition, and produce requests in flight per broker.
    pub(super) max_in_flight: usize,
    /// Bytes of batches per request (the first batch aside).
    pub(super) max_request_size: usize,
    /// How long to wait before looking again for a partition without a leader.
    pub(super) retry_backoff: Duration,
}

/// What the planner knows of one partition that has something to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PartitionView {
    /// The partition's leader, if metadata names one.
    pub(super) leader: Option<i32>,
    /// When the partition has batches to retry: when the backoff after the failure ends.
    pub(super) retry_at: Option<Instant>,
    /// Whether a sealed batch was left out of the last request (it goes before new ones).
    pub(super) has_unsent: bool,
    /// The number (in the partition's order of batches) of the batch that would go next if
    /// there were no retries: the unsent one's, else the next new one's.
    pub(super) next_number: u64,
    /// How many batches of the partition are in flight.
    pub(super) in_flight: usize,
    /// The number of the oldest batch of the partition in flight.
    pub(super) oldest_in_flight: Option<u64>,
}

/// Which of a partition's batches goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// The oldest batch waiting to be retried.
    Retry,
    /// The sealed batch that did not fit in the last request.
    Unsent,
    /// A new batch from the accumulator.
    Fresh,
}

/// A partition allowed to send one batch this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Admission {
    pub(super) tp: TopicPartition,
    pub(super) node: i32,
    pub(super) source: Source,
}

/// What [`admit`] answers.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Admissions {
    /// The partitions that send, in the candidates' order (which is the packing order).
    pub(super) go: Vec<Admission>,
    /// Some partition had no leader: metadata should be refreshed.
    pub(super) leaderless: bool,
    /// When to look again for the partitions skipped for want of a leader.
    pub(super) wake_at: Option<Instant>,
}

/// The partitions of `candidates` that may send a batch now, with the batch and the broker.
/// `requests_in_flight` counts the produce requests in flight per broker.
pub(super) fn admit(
    candidates: &BTreeMap<TopicPartition, PartitionView>,
    requests_in_flight: &HashMap<i32, usize>,
    limits: &Limits,
    now: Instant,
) -> Admissions {
    let mut out = Admissions::default();
    for (tp, view) in candidates {
        let Some(node) = view.leader else {
            out.leaderless = true;
            let at = now + limits.retry_backoff;
            out.wake_at = Some(out.wake_at.map_or(at, |w| w.min(at)));
            continue;
        };
        let Some(source) = may_send(view, limits, now) else {
            continue;
        };
        if requests_in_flight.get(&node).copied().unwrap_or(0) >= limits.max_in_flight {
            continue;
        }
        out.go.push(Admission {
            tp: tp.clone(),
            node,
            source,
        });
    }
    out
}

/// Which batch of the partition may go now, if any (see the module's invariants).
fn may_send(view: &PartitionView, limits: &Limits, now: Instant) -> Option<Source> {
    if let Some(retry_at) = view.retry_at {
        return (view.in_flight == 0 && retry_at <= now).then_some(Source::Retry);
    }
    let window = u64::try_from(limits.max_in_flight).unwrap_or(u64::MAX);
    let within_window = view
        .oldest_in_flight
        .is_none_or(|oldest| view.next_number.saturating_sub(oldest) < window);
    if view.in_flight >= limits.max_in_flight || !within_window {
        return None;
    }
    Some(if view.has_unsent {
        Source::Unsent
    } else {
        Source::Fresh
    })
}

/// Where [`pack`] puts a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placement {
    /// Into this round's request to its broker.
    Request,
    /// No room left in that request: it goes first next round.
    NoRoom,
}

/// Packs batches, given as `(broker, size in bytes)` in admission order, into one request per
/// broker of at most `max_request_size` bytes (the first batch of a request always fits).
/// Answers one placement per batch, in the same order.
pub(super) fn pack(
    batches: impl IntoIterator<Item = (i32, usize)>,
    max_request_size: usize,
) -> Vec<Placement> {
    let mut bytes: HashMap<i32, usize> = HashMap::new();
    batches
        .into_iter()
        .map(|(node, size)| match bytes.get_mut(&node) {
            Some(used) if used.saturating_add(size) > max_request_size => Placement::NoRoom,
            Some(used) => {
                *used += size;
                Placement::Request
            }
            None => {
                bytes.insert(node, size);
                Placement::Request
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const LIMITS: Limits = Limits {
        max_in_flight: 5,
        max_request_size: 100,
        retry_backoff: Duration::from_millis(100),
    };

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition {
            topic: Arc::from("t"),
            partition,
        }
    }

    /// A partition led by broker 1 with nothing in flight and no retries.
    fn idle() -> PartitionView {
        PartitionView {
            leader: Some(1),
            retry_at: None,
            has_unsent: false,
            next_number: 0,
            in_flight: 0,
            oldest_in_flight: None,
        }
    }

    fn one(view: PartitionView, now: Instant) -> Option<Source> {
        let candidates = BTreeMap::from([(tp(0), view)]);
        let admissions = admit(&candidates, &HashMap::new(), &LIMITS, now);
        assert!(admissions.go.len() <= 1);
        admissions.go.first().map(|a| a.source)
    }

    #[test]
    fn after_a_failure_nothing_goes_until_everything_in_flight_is_answered() {
        let now = Instant::now();
        let failed = PartitionView {
            retry_at: Some(now),
            has_unsent: true,
            next_number: 4,
            in_flight: 2,
            oldest_in_flight: Some(2),
            ..idle()
        };
        // Batches 2 and 3 still in flight: neither the retry nor anything newer goes.
        assert_eq!(one(failed, now), None);
        // One retry in flight (a retry goes alone): still nothing.
        assert_eq!(
            one(
                PartitionView {
                    in_flight: 1,
                    ..failed
                },
                now
            ),
            None
        );
        // All answered: the retry goes, before the unsent batch and anything new.
        let answered = PartitionView {
            in_flight: 0,
            oldest_in_flight: None,
            ..failed
        };
        assert_eq!(one(answered, now), Some(Source::Retry));
        // Retries done: the unsent batch goes before anything new.
        assert_eq!(
            one(
                PartitionView {
                    retry_at: None,
                    ..answered
                },
                now
            ),
            Some(Source::Unsent)
        );
    }

    #[test]
    fn retries_wait_for_their_backoff_deadline() {
        let now = Instant::now();
        let backing_off = PartitionView {
            retry_at: Some(now + Duration::from_millis(1)),
            ..idle()
        };
        assert_eq!(one(backing_off, now), None);
        assert_eq!(
            one(backing_off, now + Duration::from_millis(1)),
            Some(Source::Retry)
        );
    }

    #[test]
    fn the_in_flight_window_bounds_a_partition() {
        let now = Instant::now();
        // Four in flight (numbers 0..4): a fifth may go.
        let four = PartitionView {
            next_number: 4,
            in_flight: 4,
            oldest_in_flight: Some(0),
            ..idle()
        };
        assert_eq!(one(four, now), Some(Source::Fresh));
        // Five in flight: no sixth.
        let five = PartitionView {
            next_number: 5,
            in_flight: 5,
            ..four
        };
        assert_eq!(one(five, now), None);
        // Batch 0 still unanswered, 1..=4 answered: batch 5 would be 5 after it, too far.
        let far = PartitionView {
            next_number: 5,
            in_flight: 1,
            oldest_in_flight: Some(0),
            ..idle()
        };
        assert_eq!(one(far, now), None);
        // Once batch 1 is the oldest unanswered, batch 5 may go.
        assert_eq!(
            one(
                PartitionView {
                    oldest_in_flight: Some(1),
                    ..far
                },
                now
            ),
            Some(Source::Fresh)
        );
    }

    #[test]
    fn a_busy_broker_takes_no_more_requests() {
        let now = Instant::now();
        let candidates = BTreeMap::from([
            (tp(0), idle()),
            (
                tp(1),
                PartitionView {
                    leader: Some(2),
                    ..idle()
                },
            ),
        ]);
        let busy = HashMap::from([(1, LIMITS.max_in_flight), (2, LIMITS.max_in_flight - 1)]);
        let admissions = admit(&candidates, &busy, &LIMITS, now);
        let nodes: Vec<i32> = admissions.go.iter().map(|a| a.node).collect();
        assert_eq!(nodes, [2]);
    }

    #[test]
    fn partitions_without_a_leader_are_skipped_and_reported() {
        let now = Instant::now();
        let candidates = BTreeMap::from([
            (
                tp(0),
                PartitionView {
                    leader: None,
                    ..idle()
                },
            ),
            (tp(1), idle()),
        ]);
        let admissions = admit(&candidates, &HashMap::new(), &LIMITS, now);
        assert_eq!(
            admissions,
            Admissions {
                go: vec![Admission {
                    tp: tp(1),
                    node: 1,
                    source: Source::Fresh,
                }],
                leaderless: true,
                wake_at: Some(now + LIMITS.retry_backoff),
            }
        );
    }

    #[test]
    fn admissions_keep_the_candidates_order_one_per_partition() {
        let now = Instant::now();
        let candidates: BTreeMap<TopicPartition, PartitionView> =
            [3, 0, 2, 1].into_iter().map(|p| (tp(p), idle())).collect();
        let admissions = admit(&candidates, &HashMap::new(), &LIMITS, now);
        let order: Vec<i32> = admissions.go.iter().map(|a| a.tp.partition).collect();
        assert_eq!(order, [0, 1, 2, 3]);
    }

    #[test]
    fn requests_are_packed_up_to_the_size_limit_per_broker() {
        use Placement::{NoRoom, Request};
        let placements = pack(
            [(1, 60), (2, 90), (1, 40), (1, 1), (2, 20), (1, 0)],
            LIMITS.max_request_size,
        );
        // Broker 1: 60 + 40 = 100 fits, one more byte does not, an empty batch still does.
        // Broker 2: 90 + 20 > 100.
        assert_eq!(
            placements,
            [Request, Request, Request, NoRoom, NoRoom, Request]
        );
    }

    #[test]
    fn an_oversized_batch_goes_alone_in_its_request() {
        use Placement::{NoRoom, Request};
        let placements = pack([(1, 500), (1, 1)], LIMITS.max_request_size);
        assert_eq!(placements, [Request, NoRoom]);
    }
}
