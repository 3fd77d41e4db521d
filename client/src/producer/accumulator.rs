//! Records waiting to be sent, batched per partition, and the bookkeeping that bounds them.
//!
//! Owns: the queue of batches per partition (only the last one may still take records), the
//! sticky partitioner (its state changes when a batch is sealed), the buffer-memory
//! [`Reservation`]s the batches hold, and the tickets that let `flush` wait for exactly the
//! records sent before it.
//!
//! Does not: talk to brokers, assign sequence numbers (the sender does when it takes a batch)
//! or sleep. It lives behind the producer's `std::sync::Mutex`, held only for short,
//! non-blocking sections.
//!
//! Batch size adapts to the partition's pace: while a batch of the partition is with the
//! sender (in flight or waiting to be retried) the open batch keeps taking records up to
//! `max_batch` instead of sealing at `batch_size`, because it could not be sent earlier
//! anyway. So a busy partition sends fewer, larger batches (as librdkafka's 1 MB batches do)
//! and an idle one still sends as soon as `batch_size` or `linger` says.
//!
//! Invariants: each record is in exactly one batch; a batch's reservation covers the size
//! bounds of its records; `incomplete` counts every batch taken out of here or still in
//! here until the sender reports it done, keyed by the ticket of its first record.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, oneshot};
use weir_protocol::record_batch::{BatchBuilder, RecordInput};

use super::error::DeliveryError;
use super::record::{ProducerRecord, RecordMetadata};
use crate::partitioner::StickyPartitioner;
use crate::random::SplitMix64;

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TopicPartition {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
}

/// Where a record's outcome goes.
pub(crate) type Reply = oneshot::Sender<Result<RecordMetadata, DeliveryError>>;

/// Buffer memory held, given back to the semaphore when dropped (whatever the batch's fate).
#[derive(Debug)]
pub(crate) struct Reservation {
    semaphore: Arc<Semaphore>,
    bytes: usize,
}

impl Reservation {
    /// Takes over `bytes` permits already acquired from `semaphore` (and forgotten).
    pub(crate) fn new(semaphore: Arc<Semaphore>, bytes: usize) -> Self {
        Self { semaphore, bytes }
    }

    fn absorb(&mut self, mut other: Self) {
        self.bytes += std::mem::take(&mut other.bytes);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.semaphore.add_permits(self.bytes);
        }
    }
}

/// Records of one partition on their way into one v2 batch.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) tp: TopicPartition,
    /// The records encoded so far (producer id and sequence are set when it is taken).
    pub(crate) builder: BatchBuilder,
    /// One per record, in order, with the record's timestamp.
    pub(crate) replies: Vec<(Reply, i64)>,
    /// The buffer memory of its records.
    pub(crate) reservation: Reservation,
    /// When the first record arrived: `linger` and `delivery_timeout` count from here.
    pub(crate) created: Instant,
    /// The ticket of its first record (see [`Accumulator::flush_target`]).
    pub(crate) first_ticket: u64,
    /// No more records go in.
    sealed: bool,
}

/// What decides when a batch may go, besides the batch itself.
#[derive(Debug, Clone, Copy)]
struct Readiness {
    closing: bool,
    flush_ticket: u64,
    linger: Duration,
    batch_size: usize,
}

impl Batch {
    /// Full (sealed, or grown past `batch_size` while its partition was busy), lingered long
    /// enough, flushed, or the producer is closing.
    fn is_ready(&self, when: Readiness, now: Instant) -> bool {
        self.sealed
            || when.closing
            || self.first_ticket < when.flush_ticket
            || self.builder.size_in_bytes() >= when.batch_size
            || now >= self.created + when.linger
    }
}

/// All batches not yet taken by the sender, plus the bookkeeping of those it holds.
#[derive(Debug)]
pub(crate) struct Accumulator {
    queues: HashMap<TopicPartition, VecDeque<Batch>>,
    sticky: StickyPartitioner<SplitMix64>,
    batch_size: usize,
    /// The size an open batch may grow to while its partition is busy.
    max_batch: usize,
    linger: Duration,
    /// Partitions with batches taken by the sender and not yet answered, and how many.
    busy: HashMap<TopicPartition, usize>,
    /// The ticket of the next record.
    next_ticket: u64,
    /// Batches whose first ticket is below this are sent without waiting for `linger`.
    flush_ticket: u64,
    /// Batches not completed yet, by first ticket (several batches can share none, but a
    /// count keeps this honest).
    incomplete: BTreeMap<u64, usize>,
    /// No more records are accepted; every batch is ready.
    pub(crate) closing: bool,
}

impl Accumulator {
    /// Batches seal at `batch_size`, or at `max_batch` (at least `batch_size`) while their
    /// partition is busy.
    pub(crate) fn new(batch_size: usize, max_batch: usize, linger: Duration) -> Self {
        Self {
            queues: HashMap::new(),
            sticky: StickyPartitioner::new(SplitMix64::from_entropy()),
            batch_size,
            max_batch: max_batch.max(batch_size),
            linger,
            busy: HashMap::new(),
            next_ticket: 0,
            flush_ticket: 0,
            incomplete: BTreeMap::new(),
            closing: false,
        }
    }

    /// The sticky partition for an unkeyed record of `topic`.
    pub(crate) fn sticky_partition(
        &mut self,
        topic: &str,
        count: i32,
        available: &[i32],
    ) -> Option<i32> {
        self.sticky.partition(topic, count, available)
    }

    /// Adds a record to the open batch of `tp` (or a new one). Returns whether the sender
    /// should look again: a batch was created (its linger starts) or sealed.
    pub(crate) fn append(
        &mut self,
        tp: TopicPartition,
        record: &ProducerRecord,
        timestamp: i64,
        reservation: Reservation,
        reply: Reply,
        now: Instant,
    ) -> bool {
        let size = record.size_bound();
        let limit = if self.busy.contains_key(&tp) {
            self.max_batch
        } else {
            self.batch_size
        };
        let queue = self.queues.entry(tp.clone()).or_default();
        let mut wake = false;
        let fits = queue.back().is_some_and(|open| {
            !open.sealed && open.builder.size_in_bytes().saturating_add(size) <= limit
        });
        if !fits {
            if let Some(open) = queue.back_mut().filter(|b| !b.sealed) {
                open.sealed = true;
                self.sticky.on_new_batch(&tp.topic, tp.partition);
            }
            *self.incomplete.entry(self.next_ticket).or_default() += 1;
            queue.push_back(Batch {
                tp: tp.clone(),
                builder: BatchBuilder::new(),
                replies: Vec::new(),
                reservation: Reservation::new(Arc::clone(&reservation.semaphore), 0),
                created: now,
                first_ticket: self.next_ticket,
                sealed: false,
            });
            wake = true;
        }
        // Never `None`: a batch was pushed above unless the last one had room.
        let Some(batch) = queue.back_mut() else {
            return wake;
        };
        let headers: Vec<(&[u8], Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_deref()))
            .collect();
        batch.builder.push(RecordInput {
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            headers: &headers,
            timestamp,
        });
        batch.replies.push((reply, timestamp));
        batch.reservation.absorb(reservation);
        if batch.builder.size_in_bytes() >= limit {
            batch.sealed = true;
            self.sticky.on_new_batch(&tp.topic, tp.partition);
            wake = true;
        }
        self.next_ticket += 1;
        wake
    }

    /// Partitions whose first batch may be sent now, and the earliest time another becomes
    /// ready by lingering.
    pub(crate) fn ready(&self, now: Instant) -> (Vec<TopicPartition>, Option<Instant>) {
        let mut ready = Vec::new();
        let mut next: Option<Instant> = None;
        for (tp, queue) in &self.queues {
            let Some(front) = queue.front() else { continue };
            if self.is_ready(front, now) {
                ready.push(tp.clone());
            } else {
                let at = front.created + self.linger;
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        ready.sort_unstable();
        (ready, next)
    }

    fn readiness(&self) -> Readiness {
        Readiness {
            closing: self.closing,
            flush_ticket: self.flush_ticket,
            linger: self.linger,
            batch_size: self.batch_size,
        }
    }

    fn is_ready(&self, batch: &Batch, now: Instant) -> bool {
        batch.is_ready(self.readiness(), now)
    }

    /// Takes the first batch of `tp` if it is ready, sealing it; `tp` is busy until
    /// [`Self::complete`] reports the batch answered.
    pub(crate) fn take(&mut self, tp: &TopicPartition, now: Instant) -> Option<Batch> {
        let when = self.readiness();
        let queue = self.queues.get_mut(tp)?;
        if !queue.front().is_some_and(|b| b.is_ready(when, now)) {
            return None;
        }
        let mut batch = queue.pop_front()?;
        *self.busy.entry(tp.clone()).or_default() += 1;
        if queue.is_empty() {
            self.queues.remove(tp);
        }
        if !batch.sealed {
            batch.sealed = true;
            self.sticky.on_new_batch(&tp.topic, tp.partition);
        }
        Some(batch)
    }

    /// Removes the batches created at or before `deadline` (they waited too long to be
    /// sent at all).
    pub(crate) fn expire(&mut self, deadline: Instant) -> Vec<Batch> {
        let mut expired = Vec::new();
        self.queues.retain(|_, queue| {
            while queue.front().is_some_and(|b| b.created <= deadline) {
                expired.extend(queue.pop_front());
            }
            !queue.is_empty()
        });
        expired
    }

    /// The earliest creation time of a waiting batch (for the delivery timeout).
    pub(crate) fn oldest(&self) -> Option<Instant> {
        self.queues
            .values()
            .filter_map(|q| q.front().map(|b| b.created))
            .min()
    }

    /// A batch left the producer (delivered or failed); `taken` if the sender had it.
    pub(crate) fn complete(&mut self, tp: &TopicPartition, first_ticket: u64, taken: bool) {
        if taken && let Some(count) = self.busy.get_mut(tp) {
            *count -= 1;
            if *count == 0 {
                self.busy.remove(tp);
            }
        }
        if let Some(count) = self.incomplete.get_mut(&first_ticket) {
            *count -= 1;
            if *count == 0 {
                self.incomplete.remove(&first_ticket);
            }
        }
    }

    /// Makes every record accepted so far ready, and returns the ticket to wait for.
    pub(crate) fn flush_target(&mut self) -> u64 {
        self.flush_ticket = self.flush_ticket.max(self.next_ticket);
        self.next_ticket
    }

    /// Whether every batch holding a record with a ticket below `target` is complete.
    pub(crate) fn flushed(&self, target: u64) -> bool {
        self.incomplete
            .keys()
            .next()
            .is_none_or(|&first| first >= target)
    }

    /// Whether no batch is waiting or outstanding.
    pub(crate) fn is_idle(&self) -> bool {
        self.incomplete.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(bytes: usize) -> ProducerRecord {
        ProducerRecord::new("t", vec![0u8; bytes])
    }

    #[test]
    fn batches_seal_at_batch_size_and_flush_waits_for_earlier_tickets() {
        let memory = Arc::new(Semaphore::new(0));
        let mut acc = Accumulator::new(300, 300, Duration::from_secs(60));
        let tp = TopicPartition {
            topic: Arc::from("t"),
            partition: 0,
        };
        let now = Instant::now();
        let append = |acc: &mut Accumulator, size| {
            let r = record(size);
            let reservation = Reservation::new(Arc::clone(&memory), r.size_bound());
            acc.append(tp.clone(), &r, 0, reservation, oneshot::channel().0, now)
        };
        assert!(append(&mut acc, 100), "a new batch starts its linger");
        assert!(!append(&mut acc, 50), "the open batch had room");
        assert!(append(&mut acc, 200), "no room: sealed, and a new batch");
        // The sealed batch is ready; the open one lingers.
        let (ready, next) = acc.ready(now);
        assert_eq!(ready, std::slice::from_ref(&tp));
        assert_eq!(next, None, "the front batch is ready");
        let first = acc.take(&tp, now).unwrap();
        assert_eq!(first.replies.len(), 2);
        assert!(acc.take(&tp, now).is_none(), "still lingering");

        let target = acc.flush_target();
        assert_eq!(target, 3);
        assert!(!acc.flushed(target));
        let second = acc.take(&tp, now).expect("flushed batches are ready");
        acc.complete(&tp, first.first_ticket, true);
        assert!(!acc.flushed(target));
        acc.complete(&tp, second.first_ticket, true);
        assert!(acc.flushed(target) && acc.is_idle());
        // Memory comes back when the batches are dropped.
        drop((first, second));
        assert_eq!(memory.available_permits(), 3 * 36 + 350);
    }
}
