//! A data group's Raft log: openraft's `RaftLogStorage` over the partition's own segment log,
//! so each batch is written to disk once per replica (`entry.rs` says how entries are
//! stored).
//!
//! Owns the map from Raft index to stored batch: `first` (the index of the log's first
//! batch, persisted in `raft-anchor` beside the segments) and, per entry in order, its base
//! offset and term, rebuilt from the batch headers when the replica opens. Also the vote
//! (`raft-vote`, written atomically and synced before openraft acts on it).
//!
//! Owns as well the data group's snapshot (`snapshot.rs` in this directory encodes it): the
//! entries openraft purged are the only ones a snapshot stands for, so a snapshot is the
//! purge point (its log id and the membership in force there, kept in `raft-anchor`) plus
//! where the log goes on from it (next offset, log start, producer table, leader epoch).
//! Purging is where a replica's segments are deleted: retention and DeleteRecords only ask
//! for it (`retain.rs`), and openraft purges once no replication reads the entries.
//!
//! Invariants: the map holds exactly one element per batch of the log from `first` on, in
//! order; an append returns once its batches are readable and calls openraft back once they
//! are on disk (the shared flusher's group commit); a truncation only ever cuts entries
//! above the commit point ([`crate::log::PartitionLog::truncate_from`] refuses otherwise);
//! the anchor is written before the log start moves and before any segment is deleted, so
//! the segments always hold every entry from the anchor's offset on; purges and snapshot
//! installs run one at a time.

#![allow(
    clippy::result_large_err,
    reason = "openraft's StorageError is what its storage traits take and return"
)]

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use bytes::Bytes;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    CommittedLeaderId, EmptyNode, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend,
    RaftLogReader, StoredMembership, Vote,
};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use weir_protocol::record_batch::BatchHeader;

use super::entry::{self, BadEntry};
use super::types::{DataConfig, Entry, LogId, NodeId, Outcome, StorageError};
use crate::cluster::store::records::{encode, read_single};
use crate::cluster::store::storage_error as io_error;
use crate::log::{LogError, Offset};
use crate::producers::ReplicaVerdict;
use crate::storage::files::write_atomically;
use crate::topics::Partition;

const VOTE_FILE: &str = "raft-vote";
const ANCHOR_FILE: &str = "raft-anchor";
/// Bytes read per step when rebuilding the map or reading entries.
const READ_STEP: usize = 1 << 20;

/// Where the log's first batch sits in the Raft log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Anchor {
    /// Raft index of the batch at `offset`.
    pub(crate) first_index: u64,
    /// Offset of the log's first batch.
    pub(crate) offset: i64,
    /// The last entry before it that openraft purged, as `(term, index)`.
    pub(crate) purged: Option<(u64, u64)>,
    /// The membership in force at `purged`: the log id `(term, index)` of its entry and the
    /// membership in `entry.rs`'s encoding (never openraft's serde form).
    pub(crate) membership: Option<(u64, u64, Vec<u8>)>,
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 0), index)
}

impl Anchor {
    fn base_membership(&self) -> Option<Membership> {
        let (term, index, bytes) = self.membership.as_ref()?;
        let membership = entry::decode_membership(bytes)?;
        Some(StoredMembership::new(
            Some(log_id(*term, *index)),
            membership,
        ))
    }
}

/// A membership and the log id of its entry.
pub(crate) type Membership = StoredMembership<NodeId, EmptyNode>;

/// Raft index to stored batch, for the entries of the log from `first` on.
#[derive(Debug, Default)]
pub(crate) struct IndexMap {
    first: u64,
    /// Per entry: its batch's base offset and term.
    entries: VecDeque<(i64, u64)>,
    /// Offset after the last entry's batch.
    end_offset: i64,
    pub(super) purged: Option<LogId>,
    /// The membership entries of the log from `first` on, oldest first.
    memberships: Vec<Membership>,
    /// The membership in force at `purged` (its entry purged or never held here).
    base_membership: Membership,
    /// The purge point asked for by retention or DeleteRecords (`retain.rs`): the next
    /// snapshot is built there, and openraft purges up to it.
    pub(super) wanted: Option<LogId>,
    /// A log start a snapshot carried above the offset the log restarted at (DeleteRecords
    /// cut a batch): moved once the high watermark reaches it.
    pub(super) pending_start: Option<i64>,
}

impl IndexMap {
    /// The log id of the entry at `index`, in the map or purged.
    pub(crate) fn log_id_at(&self, index: u64) -> Option<LogId> {
        if let Some(pos) = self.position(index) {
            return Some(log_id(self.entries[pos].1, index));
        }
        self.purged.filter(|p| p.index == index)
    }

    /// The offset of the entry after `index` (the map's first one after the purged entry).
    pub(crate) fn offset_after_any(&self, index: u64) -> Option<i64> {
        if index.checked_add(1) == Some(self.first) {
            return Some(self.entries.front().map_or(self.end_offset, |(o, _)| *o));
        }
        self.offset_after(index)
    }

    /// The last entry whose batch lies wholly below `offset`: where a purge that lets the
    /// log start at `offset` goes. `None` when that is not past the purged point.
    pub(crate) fn purge_point(&self, offset: i64) -> Option<LogId> {
        let below = self.entries.partition_point(|(base, _)| *base < offset);
        let next = self.entries.get(below).map_or(self.end_offset, |(o, _)| *o);
        // The entry before `below` straddles `offset` unless the next batch starts there.
        let whole = if next <= offset {
            below
        } else {
            below.saturating_sub(1)
        };
        let pos = whole.checked_sub(1)?;
        let point = log_id(self.entries[pos].1, self.first + pos as u64);
        (Some(point) > self.purged).then_some(point)
    }

    /// The membership in force at `index`: the last membership entry at or before it.
    fn membership_at(&self, index: u64) -> Membership {
        self.memberships
            .iter()
            .rev()
            .find(|m| m.log_id().is_some_and(|id| id.index <= index))
            .cloned()
            .unwrap_or_else(|| self.base_membership.clone())
    }

    /// The map of a log restarted empty at `next_offset` after the snapshot at `point`.
    pub(crate) fn restarted(point: LogId, next_offset: i64, membership: Membership) -> Self {
        Self {
            first: point.index + 1,
            entries: VecDeque::new(),
            end_offset: next_offset,
            purged: Some(point),
            memberships: Vec::new(),
            base_membership: membership,
            wanted: None,
            pending_start: None,
        }
    }

    /// The entry whose batch starts at `offset`: its base offset and term.
    pub(crate) fn entry_at_offset(&self, offset: i64) -> Option<(i64, u64)> {
        let pos = self.entries.partition_point(|(base, _)| *base < offset);
        self.entries
            .get(pos)
            .copied()
            .filter(|(base, _)| *base == offset)
    }

    /// Where a snapshot is built now: the wanted purge point, else the purged one.
    pub(crate) fn snapshot_point(&self) -> Option<LogId> {
        self.wanted.max(self.purged)
    }

    fn last(&self) -> Option<LogId> {
        let (_, term) = self.entries.back()?;
        let index = self.first + self.entries.len() as u64 - 1;
        Some(LogId::new(CommittedLeaderId::new(*term, 0), index))
    }

    pub(crate) fn position(&self, index: u64) -> Option<usize> {
        let pos = usize::try_from(index.checked_sub(self.first)?).ok()?;
        (pos < self.entries.len()).then_some(pos)
    }

    /// The offset just after entry `index`'s batch (where the high watermark goes once it is
    /// committed).
    pub(crate) fn offset_after(&self, index: u64) -> Option<i64> {
        let pos = self.position(index)?;
        Some(
            self.entries
                .get(pos + 1)
                .map_or(self.end_offset, |(offset, _)| *offset),
        )
    }
}

/// Waiters told when a batch proposed here is stored locally (`acks=1`), by token.
type LocalWaiters = Mutex<HashMap<u64, oneshot::Sender<Outcome>>>;

struct Inner {
    partition: Arc<Partition>,
    dir: PathBuf,
    map: RwLock<IndexMap>,
    local: LocalWaiters,
    /// Held across a purge and across a snapshot install, which openraft may run at the same
    /// time (the purge on its core task, the install on its state-machine task).
    reshape: Mutex<()>,
}

impl Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// A data group's log store (cheap to clone: openraft takes it by value, the state machine
/// and the leader's produce path share it).
#[derive(Debug, Clone)]
pub struct ReplicaStore {
    inner: Arc<Inner>,
}

fn log_error(verb: ErrorVerb, err: &dyn std::error::Error) -> StorageError {
    io_error(ErrorSubject::Logs, verb, err)
}

impl ReplicaStore {
    /// Opens the store of `partition`'s replica (its log already opened replicated), reading
    /// the map from the batch headers.
    ///
    /// # Errors
    /// When the log cannot be read or holds a batch no data group writes.
    pub fn open(partition: Arc<Partition>) -> Result<Self, StorageError> {
        let log = Arc::clone(partition.log());
        let dir = log.dir().to_path_buf();
        let anchor: Anchor = read_single(&dir.join(ANCHOR_FILE))
            .map_err(|e| log_error(ErrorVerb::Read, &e))?
            .unwrap_or_default();
        let mut map = IndexMap {
            first: anchor.first_index,
            entries: VecDeque::new(),
            end_offset: anchor.offset,
            purged: anchor.purged.map(|(term, index)| log_id(term, index)),
            memberships: Vec::new(),
            base_membership: anchor.base_membership().unwrap_or_default(),
            wanted: None,
            pending_start: None,
        };
        let end = log.log_end_offset().0;
        // The anchor's offset starts a batch, and the segments hold every batch from it on
        // (they go only after the anchor moved past them); the log start may lie above it
        // (DeleteRecords applied, not purged yet), or below (a purge interrupted before it
        // moved the start, finished here).
        let mut offset = anchor.offset;
        map.end_offset = offset;
        if anchor.purged.is_some() {
            // Entries up to the purge point were applied: committed.
            log.set_high_watermark(Offset(anchor.offset));
            log.advance_start(Offset(anchor.offset))
                .map_err(|e| log_error(ErrorVerb::Write, &e))?;
        }
        while offset < end {
            let read = log
                .read_to_end(Offset(offset), READ_STEP)
                .map_err(|e| log_error(ErrorVerb::Read, &e))?;
            let mut rest = &read.records[..];
            if rest.is_empty() {
                break;
            }
            while !rest.is_empty() {
                let header =
                    BatchHeader::parse(rest).map_err(|e| log_error(ErrorVerb::Read, &e))?;
                let len = header
                    .total_len()
                    .map_err(|e| log_error(ErrorVerb::Read, &e))?;
                if header.base_offset >= offset {
                    let term = u64::try_from(header.partition_leader_epoch).unwrap_or(0);
                    let index = map.first + map.entries.len() as u64;
                    if header.attributes.is_control() {
                        let bytes = Bytes::copy_from_slice(rest.get(..len).unwrap_or_default());
                        if let Ok(Entry {
                            log_id,
                            payload: EntryPayload::Membership(membership),
                        }) = entry::decode(bytes, &header, index)
                        {
                            map.memberships
                                .push(StoredMembership::new(Some(log_id), membership));
                        }
                    }
                    map.entries.push_back((header.base_offset, term));
                    offset = header.next_offset();
                    map.end_offset = offset;
                }
                rest = rest.get(len..).unwrap_or_default();
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                partition,
                dir,
                map: RwLock::new(map),
                local: Mutex::new(HashMap::new()),
                reshape: Mutex::new(()),
            }),
        })
    }

    pub(crate) fn map(&self) -> std::sync::RwLockReadGuard<'_, IndexMap> {
        self.inner
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn map_mut(&self) -> std::sync::RwLockWriteGuard<'_, IndexMap> {
        self.inner
            .map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The replica's partition.
    pub fn partition(&self) -> &Arc<Partition> {
        &self.inner.partition
    }

    /// Registers a waiter told when the batch proposed with `token` is stored here.
    pub fn on_local_append(&self, token: u64) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token, tx);
        rx
    }

    /// Forgets the waiter of `token` (its produce gave up).
    pub fn forget_local(&self, token: u64) {
        self.inner
            .local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&token);
    }

    /// Held across purges and snapshot installs.
    pub(crate) fn reshape_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner
            .reshape
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The membership in force at `index`, and the log id at `index` (if the map or the
    /// purge point knows it).
    pub(crate) fn point(&self, index: u64) -> Option<(LogId, Membership)> {
        let map = self.map();
        Some((map.log_id_at(index)?, map.membership_at(index)))
    }

    /// The membership in force at the purge point (what the state machine starts from).
    pub(crate) fn purged_state(&self) -> (Option<LogId>, Membership) {
        let map = self.map();
        (map.purged, map.base_membership.clone())
    }

    fn write_anchor(&self, anchor: &Anchor) -> Result<(), StorageError> {
        let bytes = encode(anchor).map_err(|e| log_error(ErrorVerb::Write, &e))?;
        let log = self.inner.partition.log();
        write_atomically(&self.inner.dir, ANCHOR_FILE, &bytes, log.disk())
            .map_err(|e| log_error(ErrorVerb::Write, &e))
    }

    /// Stores `entries` (on a blocking thread); returns the offset after the last one.
    fn append_blocking(&self, entries: Vec<Entry>) -> Result<i64, StorageError> {
        let partition = &self.inner.partition;
        let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        let mut end = self.map().end_offset;
        for entry in entries {
            let term = entry.log_id.leader_id.term;
            let epoch = i32::try_from(term).map_err(|e| log_error(ErrorVerb::Write, &e))?;
            let (bytes, token) = match &entry.payload {
                EntryPayload::Normal(batch) => (batch.bytes.clone(), batch.token),
                _ => (entry::control_batch(&entry, now).unwrap_or_default(), 0),
            };
            let marker = |verdict: &ReplicaVerdict| {
                let outcome = match verdict {
                    ReplicaVerdict::Duplicate(original) => Outcome::Duplicate {
                        base_offset: original.base_offset,
                        last_offset: original.last_offset,
                    },
                    ReplicaVerdict::Refused(refusal) => Outcome::Refused {
                        code: crate::producers::sequence_error_code(refusal).code(),
                        message: refusal.to_string(),
                    },
                    ReplicaVerdict::Stored => Outcome::Control,
                };
                entry::marker(&outcome, now)
            };
            let appended = partition
                .append_replica(&bytes, epoch, token != 0, marker)
                .map_err(|e| log_error(ErrorVerb::Write, &e))?;
            {
                let mut map = self.map_mut();
                let expected = map.first + map.entries.len() as u64;
                if entry.log_id.index != expected {
                    let why = std::io::Error::other(format!(
                        "entry {} appended where {expected} was due",
                        entry.log_id.index
                    ));
                    return Err(log_error(ErrorVerb::Write, &why));
                }
                map.entries.push_back((appended.info.base_offset.0, term));
                map.end_offset = appended.info.last_offset.0 + 1;
                if let EntryPayload::Membership(membership) = &entry.payload {
                    map.memberships.push(StoredMembership::new(
                        Some(entry.log_id),
                        membership.clone(),
                    ));
                }
                end = map.end_offset;
            }
            if token != 0 {
                let waiter = self
                    .inner
                    .local
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&token);
                if let Some(waiter) = waiter {
                    let outcome = match appended.verdict {
                        ReplicaVerdict::Stored => Outcome::Stored {
                            base_offset: appended.info.base_offset.0,
                            last_offset: appended.info.last_offset.0,
                        },
                        ReplicaVerdict::Duplicate(original) => Outcome::Duplicate {
                            base_offset: original.base_offset,
                            last_offset: original.last_offset,
                        },
                        ReplicaVerdict::Refused(refusal) => Outcome::Refused {
                            code: crate::producers::sequence_error_code(&refusal).code(),
                            message: refusal.to_string(),
                        },
                    };
                    let _gone = waiter.send(outcome);
                }
            }
        }
        Ok(end)
    }

    /// Reads the entries of `[from, to)` from the log.
    fn read_entries(&self, from: u64, to: u64) -> Result<Vec<Entry>, StorageError> {
        let mut out = Vec::new();
        let (mut index, mut offset) = {
            let map = self.map();
            let from = from.max(map.first);
            let Some(pos) = map.position(from) else {
                return Ok(out);
            };
            (from, map.entries[pos].0)
        };
        let log = self.inner.partition.log();
        while index < to {
            let read = log
                .read_to_end(Offset(offset), READ_STEP)
                .map_err(|e| log_error(ErrorVerb::Read, &e))?;
            let mut rest = read.records.clone();
            if rest.is_empty() {
                break;
            }
            while !rest.is_empty() && index < to {
                let header =
                    BatchHeader::parse(&rest).map_err(|e| log_error(ErrorVerb::Read, &e))?;
                let len = header
                    .total_len()
                    .map_err(|e| log_error(ErrorVerb::Read, &e))?;
                let bytes: Bytes = rest.split_to(len.min(rest.len()));
                if header.base_offset < offset {
                    continue;
                }
                let entry = entry::decode(bytes, &header, index)
                    .map_err(|e: BadEntry| log_error(ErrorVerb::Read, &e))?;
                out.push(entry);
                index += 1;
                offset = header.next_offset();
            }
        }
        Ok(out)
    }

    fn truncate_blocking(&self, index: u64) -> Result<(), StorageError> {
        let cut = {
            let map = self.map();
            map.position(index).map(|pos| (pos, map.entries[pos].0))
        };
        let Some((pos, offset)) = cut else {
            return Ok(());
        };
        let partition = &self.inner.partition;
        partition
            .log()
            .truncate_from(Offset(offset))
            .and_then(|()| partition.reload_producers())
            .map_err(|e: LogError| log_error(ErrorVerb::Delete, &e))?;
        let mut map = self.map_mut();
        map.entries.truncate(pos);
        map.end_offset = offset;
        map.memberships
            .retain(|m| m.log_id().is_some_and(|id| id.index < index));
        Ok(())
    }

    /// Forgets the entries up to `log_id` (openraft purged them): the anchor moves past them
    /// first, then the log start, then the segments wholly below it go.
    fn purge_blocking(&self, log_id: LogId) -> Result<(), StorageError> {
        let _one = self.reshape_lock();
        let anchor = {
            let mut map = self.map_mut();
            if Some(log_id) <= map.purged {
                return Ok(());
            }
            if log_id.index >= map.first + map.entries.len() as u64 {
                // Past the log's last entry: a snapshot being installed covers it (openraft
                // purges while the state machine installs); the install sets the anchor.
                tracing::debug!(
                    index = log_id.index,
                    "purge past the log end left to the snapshot install"
                );
                return Ok(());
            }
            map.base_membership = map.membership_at(log_id.index);
            while map.first <= log_id.index && !map.entries.is_empty() {
                map.entries.pop_front();
                map.first += 1;
            }
            if map.entries.is_empty() && map.first <= log_id.index {
                map.first = log_id.index + 1;
            }
            map.purged = Some(log_id);
            map.memberships
                .retain(|m| m.log_id().is_some_and(|id| id.index > log_id.index));
            anchor_of(&map)
        };
        self.write_anchor(&anchor)?;
        let log = self.inner.partition.log();
        log.advance_start(Offset(anchor.offset))
            .and_then(|_| log.delete_segments_below(Offset(anchor.offset)))
            .map_err(|e| log_error(ErrorVerb::Delete, &e))?;
        Ok(())
    }
}

/// The anchor of `map` as it stands.
pub(crate) fn anchor_of(map: &IndexMap) -> Anchor {
    Anchor {
        first_index: map.first,
        offset: map.entries.front().map_or(map.end_offset, |(o, _)| *o),
        purged: map.purged.map(|p| (p.leader_id.term, p.index)),
        membership: map.base_membership.log_id().map(|id| {
            (
                id.leader_id.term,
                id.index,
                entry::encode_membership(map.base_membership.membership()),
            )
        }),
    }
}

impl ReplicaStore {
    /// Encodes `anchor` as `raft-anchor` holds it.
    pub(crate) fn encode_anchor(anchor: &Anchor) -> Result<Vec<u8>, StorageError> {
        encode(anchor).map_err(|e| log_error(ErrorVerb::Write, &e))
    }

    /// The anchor file's name.
    pub(crate) const ANCHOR_FILE: &'static str = ANCHOR_FILE;
}

fn range_of<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let from = match range.start_bound() {
        Bound::Included(i) => *i,
        Bound::Excluded(i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(i) => i.saturating_add(1),
        Bound::Excluded(i) => *i,
        Bound::Unbounded => u64::MAX,
    };
    (from, to)
}

impl RaftLogReader<DataConfig> for ReplicaStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (from, to) = range_of(&range);
        let this = self.clone();
        blocking(move || this.read_entries(from, to)).await
    }
}

impl RaftLogStorage<DataConfig> for ReplicaStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<DataConfig>, StorageError> {
        let map = self.map();
        Ok(LogState {
            last_purged_log_id: map.purged,
            last_log_id: map.last().or(map.purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let this = self.clone();
        let vote = *vote;
        blocking(move || {
            let bytes =
                encode(&vote).map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Write, &e))?;
            let log = this.inner.partition.log();
            write_atomically(&this.inner.dir, VOTE_FILE, &bytes, log.disk())
                .map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Write, &e))
        })
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        read_single(&self.inner.dir.join(VOTE_FILE))
            .map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Read, &e))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<DataConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let this = self.clone();
        let end = blocking(move || this.append_blocking(entries)).await?;
        // Readable now; openraft hears of durability from the flusher's shared sync (a
        // follower's acknowledgement and the leader's own vote in the commit count on it).
        let log = Arc::clone(self.inner.partition.log());
        tokio::spawn(async move {
            let synced = log.wait_durable(Offset(end)).await;
            callback.log_io_completed(synced.map_err(std::io::Error::other));
        });
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let this = self.clone();
        blocking(move || this.truncate_blocking(log_id.index)).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let this = self.clone();
        blocking(move || this.purge_blocking(log_id)).await
    }
}

/// Runs file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join| Err(log_error(ErrorVerb::Write, &join)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries 10.. at offsets 100, 105, 110 (term 2) and 120 (term 3), ending at 130; 9
    /// purged.
    fn map() -> IndexMap {
        IndexMap {
            first: 10,
            entries: VecDeque::from([(100, 2), (105, 2), (110, 2), (120, 3)]),
            end_offset: 130,
            purged: Some(log_id(2, 9)),
            memberships: Vec::new(),
            base_membership: Membership::default(),
            wanted: None,
            pending_start: None,
        }
    }

    #[test]
    fn a_purge_point_covers_only_entries_wholly_below_the_offset() {
        let map = map();
        // Nothing wholly below the first entry's end.
        assert_eq!(map.purge_point(100), None);
        assert_eq!(map.purge_point(104), None);
        // A batch start: the entries before it.
        assert_eq!(map.purge_point(105), Some(log_id(2, 10)));
        assert_eq!(map.purge_point(120), Some(log_id(2, 12)));
        // Inside a batch (DeleteRecords): the entries before that batch.
        assert_eq!(map.purge_point(112), Some(log_id(2, 11)));
        // The log end: every entry.
        assert_eq!(map.purge_point(130), Some(log_id(3, 13)));
    }

    #[test]
    fn offsets_after_an_entry_include_the_purge_point() {
        let map = map();
        assert_eq!(map.offset_after_any(9), Some(100), "after the purged entry");
        assert_eq!(map.offset_after_any(11), Some(110));
        assert_eq!(map.offset_after_any(13), Some(130));
        assert_eq!(map.offset_after_any(14), None);
        assert_eq!(map.entry_at_offset(110), Some((110, 2)));
        assert_eq!(map.entry_at_offset(111), None);
        assert_eq!(map.log_id_at(9), Some(log_id(2, 9)));
        assert_eq!(map.log_id_at(13), Some(log_id(3, 13)));
    }

    #[test]
    fn the_anchor_names_the_first_entry_and_the_purge_point() {
        let anchor = anchor_of(&map());
        assert_eq!(anchor.first_index, 10);
        assert_eq!(anchor.offset, 100);
        assert_eq!(anchor.purged, Some((2, 9)));
        assert_eq!(anchor.membership, None);
    }
}
