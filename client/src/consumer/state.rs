//! The state shared by the application's calls and the background tasks: the assignment,
//! each partition's position and prefetched records, and the byte accounting that bounds
//! prefetching.
//!
//! Held under a plain mutex, never across an `.await`. Invariants
//! ([`State::check_invariants`]): `buffered_bytes` is the sum of the partitions' buffered
//! bytes; a partition with no buffered records has `position == fetch_offset` (when known).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::config::{ConsumerConfig, OffsetReset};
use super::record::{ConsumerRecord, TopicPartition};
use crate::cluster::Cluster;
use crate::error::Error;

/// Errors waiting for `poll`, at most this many; older ones are logged and dropped.
const PENDING_ERRORS_MAX: usize = 16;

/// Records of one fetch response for one partition, and the bytes they were fetched as.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) records: VecDeque<ConsumerRecord>,
    /// Raw fetched bytes; released when the chunk is drained.
    pub(crate) bytes: usize,
}

/// One assigned partition.
#[derive(Debug)]
pub(crate) struct PartitionState {
    /// Shared by every record of the partition.
    pub(crate) topic: Arc<str>,
    /// The offset of the next record the application gets; `None` until resolved from the
    /// committed offset or the reset policy.
    pub(crate) position: Option<i64>,
    /// The next offset to fetch: the position plus what is buffered.
    pub(crate) fetch_offset: i64,
    /// Set when the position must come from this policy, not the committed offset
    /// (OFFSET_OUT_OF_RANGE, `seek_to_beginning`/`end`).
    pub(crate) reset: Option<OffsetReset>,
    /// A committed-offset or reset lookup is in flight.
    pub(crate) resolving: bool,
    /// A fetch including this partition is in flight.
    pub(crate) in_flight: bool,
    /// Bumped by every seek, reset and reassignment; answers to older requests are ignored.
    pub(crate) epoch: u64,
    /// The position when the current `poll` started: records below it were returned by an
    /// earlier poll and are taken as processed (what auto-commit and revocation commit).
    pub(crate) consumed: Option<i64>,
    /// The last offset committed by this consumer (commits of an unchanged offset are
    /// skipped).
    pub(crate) committed: Option<i64>,
    /// Paused by the application: not fetched, not returned.
    pub(crate) paused: bool,
    /// An error was reported for this partition; it is not fetched until a seek.
    pub(crate) stalled: bool,
    /// No fetch or lookup before this time (after a retriable failure).
    pub(crate) retry_at: Option<Instant>,
    /// Prefetched records, oldest first.
    pub(crate) chunks: VecDeque<Chunk>,
    /// Sum of the chunks' bytes.
    pub(crate) buffered_bytes: usize,
}

impl PartitionState {
    fn new(topic: &str) -> Self {
        Self {
            topic: Arc::from(topic),
            position: None,
            fetch_offset: 0,
            reset: None,
            resolving: false,
            in_flight: false,
            epoch: 0,
            consumed: None,
            committed: None,
            paused: false,
            stalled: false,
            retry_at: None,
            chunks: VecDeque::new(),
            buffered_bytes: 0,
        }
    }

    /// Drops the buffer and any request in flight's answer; returns the bytes freed.
    pub(crate) fn clear(&mut self) -> usize {
        self.epoch += 1;
        self.chunks.clear();
        self.stalled = false;
        self.retry_at = None;
        std::mem::take(&mut self.buffered_bytes)
    }
}

/// The membership this consumer's commits are made under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Generation {
    pub(crate) id: i32,
    pub(crate) member_id: String,
}

impl Generation {
    /// A simple commit: no membership (`assign()` with a group id).
    pub(crate) fn simple() -> Self {
        Self {
            id: -1,
            member_id: String::new(),
        }
    }
}

/// Everything the tasks share.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) partitions: BTreeMap<TopicPartition, PartitionState>,
    /// Bytes buffered in all partitions.
    pub(crate) buffered_bytes: usize,
    /// Budget taken by fetches in flight.
    pub(crate) reserved_bytes: usize,
    /// Failures to report from `poll`, oldest first.
    pub(crate) errors: VecDeque<Error>,
    /// Where the next `poll` starts taking records, so that no partition starves.
    pub(crate) cursor: usize,
    /// The group coordinator's node id, once found.
    pub(crate) coordinator: Option<i32>,
    /// With `subscribe`: the current generation, `None` while (re)joining.
    pub(crate) generation: Option<Generation>,
    /// With `subscribe`: the id the coordinator gave this member (for LeaveGroup).
    pub(crate) member_id: String,
}

/// Which offset of a partition is ready to be committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Processed {
    /// Records returned by earlier polls (auto-commit, revocation).
    EarlierPolls,
    /// Everything returned so far (explicit commit, close).
    AllReturned,
}

impl State {
    /// The offsets to commit, per partition, leaving out those already committed.
    pub(crate) fn uncommitted(&self, processed: Processed) -> BTreeMap<TopicPartition, i64> {
        self.partitions
            .iter()
            .filter_map(|(tp, p)| {
                let offset = match processed {
                    Processed::EarlierPolls => p.consumed,
                    Processed::AllReturned => p.position,
                };
                offset
                    .filter(|&o| p.committed != Some(o))
                    .map(|o| (tp.clone(), o))
            })
            .collect()
    }

    /// Makes `partitions` the assignment: kept partitions keep their state, others are
    /// dropped with their buffers, new ones start unresolved.
    pub(crate) fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        let mut next = BTreeMap::new();
        for tp in partitions {
            let state = self
                .partitions
                .remove(&tp)
                .unwrap_or_else(|| PartitionState::new(&tp.topic));
            next.insert(tp, state);
        }
        for (_, mut dropped) in std::mem::replace(&mut self.partitions, next) {
            self.buffered_bytes -= dropped.clear();
        }
        self.check_invariants();
    }

    /// Queues an error for `poll`.
    pub(crate) fn report(&mut self, err: Error) {
        if self.errors.len() >= PENDING_ERRORS_MAX
            && let Some(old) = self.errors.pop_front()
        {
            tracing::warn!(error = %old, "consumer error not collected by poll");
        }
        self.errors.push_back(err);
    }

    /// Takes up to `max` records from partitions that are not paused, starting at the
    /// cursor, and advances their positions.
    pub(crate) fn take(&mut self, max: usize) -> Vec<ConsumerRecord> {
        let mut out = Vec::new();
        let n = self.partitions.len();
        if n == 0 {
            return out;
        }
        let start = self.cursor % n;
        let mut freed = 0usize;
        let mut partitions: Vec<&mut PartitionState> = self.partitions.values_mut().collect();
        for i in (start..n).chain(0..start) {
            freed += take_from(partitions[i], max - out.len(), &mut out);
            if out.len() >= max {
                break;
            }
        }
        self.buffered_bytes -= freed;
        self.cursor = start + 1;
        self.check_invariants();
        out
    }

    /// Asserts the accounting (debug builds).
    pub(crate) fn check_invariants(&self) {
        debug_assert_eq!(
            self.buffered_bytes,
            self.partitions
                .values()
                .map(|p| p.buffered_bytes)
                .sum::<usize>(),
            "buffered bytes"
        );
        debug_assert!(
            self.partitions.values().all(|p| !p.chunks.is_empty()
                || p.position.is_none()
                || p.position == Some(p.fetch_offset)),
            "an empty buffer means position == fetch offset"
        );
    }
}

/// Moves up to `max` records of `p` into `out`; returns the bytes freed.
fn take_from(p: &mut PartitionState, max: usize, out: &mut Vec<ConsumerRecord>) -> usize {
    let mut freed = 0;
    if p.paused {
        return 0;
    }
    while out.len() < max {
        let Some(chunk) = p.chunks.front_mut() else {
            break;
        };
        if let Some(record) = chunk.records.pop_front() {
            p.position = Some(record.offset + 1);
            out.push(record);
        }
        if chunk.records.is_empty() {
            freed += chunk.bytes;
            p.chunks.pop_front();
        }
    }
    p.buffered_bytes -= freed;
    if p.chunks.is_empty() && p.position.is_some() {
        // Skipped control batches put the fetch offset past the last record.
        p.position = Some(p.fetch_offset);
    }
    freed
}

/// The consumer's shared core: configuration, cluster, state and wake-ups.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) config: ConsumerConfig,
    state: Mutex<State>,
    /// Wakes the fetch task: assignment, positions, pauses or buffer space changed.
    pub(crate) fetch_wake: Notify,
    /// Wakes a waiting `poll`: records, positions or an error arrived.
    pub(crate) data_wake: Notify,
}

impl Shared {
    pub(crate) fn new(config: ConsumerConfig) -> Arc<Self> {
        Arc::new(Self {
            cluster: Cluster::new(config.client.clone()),
            config,
            state: Mutex::new(State::default()),
            fetch_wake: Notify::new(),
            data_wake: Notify::new(),
        })
    }

    /// The state. A panic while holding the lock leaves the state as it was at the panic,
    /// which every method keeps consistent, so a poisoned lock is used as is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
