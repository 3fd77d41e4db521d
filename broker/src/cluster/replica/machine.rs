//! A data group's state machine. The records are already in the log (the log is the Raft
//! log), so applying an entry copies nothing: it moves the partition's high watermark past
//! the entry's batch, wakes fetches parked on the partition, and answers a data entry with
//! where it was stored (or what its marker says, `entry.rs`).
//!
//! A DeleteRecords entry moves the replica's log start when it is applied (after the high
//! watermark passed it), so every replica moves it at the same entry.
//!
//! Snapshots stand for the purged part of the log only (`snapshot.rs`): openraft builds one
//! when a purge is wanted (`retain.rs`), and installs the leader's on a follower that lacks
//! purged entries. The applied state starts at the purge point when the replica opens (the
//! entries before it are gone, and were applied before they were purged).

#![allow(
    clippy::result_large_err,
    reason = "openraft's StorageError is what its storage traits take and return"
)]

use std::io::Cursor;
use std::sync::{Arc, Mutex, PoisonError};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    EmptyNode, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder,
    SnapshotMeta, StoredMembership,
};
use weir_protocol::record_batch::BatchHeader;

use super::entry;
use super::store::ReplicaStore;
use super::types::{DataConfig, Entry, LogId, NodeId, Outcome, StorageError};
use crate::cluster::store::storage_error as io_error;
use crate::log::Offset;

/// Told when the partition's high watermark moved (wakes parked fetches).
pub type OnCommit = Arc<dyn Fn() + Send + Sync>;

#[derive(Debug, Default, Clone)]
struct Applied {
    last: Option<LogId>,
    membership: StoredMembership<NodeId, EmptyNode>,
}

/// A data group's state machine (cheap to clone).
#[derive(Clone)]
pub struct ReplicaMachine {
    store: ReplicaStore,
    applied: Arc<Mutex<Applied>>,
    on_commit: OnCommit,
}

impl std::fmt::Debug for ReplicaMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaMachine").finish_non_exhaustive()
    }
}

fn nothing_to_snapshot() -> StorageError {
    let err = std::io::Error::other("no purge point to build a snapshot at");
    io_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, &err)
}

impl ReplicaMachine {
    /// The state machine over `store`'s partition, applied up to the store's purge point.
    pub fn new(store: ReplicaStore, on_commit: OnCommit) -> Self {
        let (last, membership) = store.purged_state();
        Self {
            store,
            applied: Arc::new(Mutex::new(Applied { last, membership })),
            on_commit,
        }
    }

    /// Applies a DeleteRecords entry at `index` asking for `offset`: the high watermark
    /// first passes the entry (it is committed), then the log start moves.
    async fn delete_records(&self, index: u64, offset: i64) -> Outcome {
        let log = Arc::clone(self.store.partition().log());
        if let Some(after) = self.store.map().offset_after(index) {
            log.set_high_watermark(Offset(after));
        }
        // A sync and a file write: off the runtime's threads.
        let moving = Arc::clone(&log);
        let moved = tokio::task::spawn_blocking(move || moving.advance_start(Offset(offset)))
            .await
            .unwrap_or_else(|join| {
                Err(crate::log::LogError::Io {
                    op: "move the log start of",
                    path: log.dir().to_path_buf(),
                    source: std::io::Error::other(join),
                })
            });
        match moved {
            Ok(start) => Outcome::LogStart { offset: start.0 },
            Err(err) => {
                tracing::warn!(dir = %log.dir().display(), error = %err, "applying DeleteRecords failed");
                Outcome::Refused {
                    code: weir_protocol::error_code::ErrorCode::KafkaStorageError.code(),
                    message: err.to_string(),
                }
            }
        }
    }
}

impl RaftSnapshotBuilder<DataConfig> for ReplicaMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<DataConfig>, StorageError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.current_snapshot())
            .await
            .ok()
            .flatten()
            .ok_or_else(nothing_to_snapshot)
    }
}

impl RaftStateMachine<DataConfig> for ReplicaMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<NodeId, EmptyNode>), StorageError> {
        let applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        Ok((applied.last, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut outcomes = Vec::new();
        let mut last = None;
        for entry in entries {
            let outcome = match &entry.payload {
                EntryPayload::Normal(batch) => match BatchHeader::parse(&batch.bytes) {
                    Ok(header) => match entry::delete_records_offset(&batch.bytes, &header) {
                        Some(offset) => self.delete_records(entry.log_id.index, offset).await,
                        None => entry::outcome(&batch.bytes, &header),
                    },
                    Err(_) => Outcome::Control,
                },
                EntryPayload::Membership(membership) => {
                    self.applied
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .membership = StoredMembership::new(Some(entry.log_id), membership.clone());
                    Outcome::Control
                }
                EntryPayload::Blank => Outcome::Control,
            };
            self.applied
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .last = Some(entry.log_id);
            last = Some(entry.log_id.index);
            outcomes.push(outcome);
        }
        if let Some(index) = last {
            let after = self.store.map().offset_after(index);
            if let Some(after) = after {
                self.store
                    .partition()
                    .log()
                    .set_high_watermark(Offset(after));
                // Only after a snapshot install that cut a batch (rare): no blocking hop on
                // the produce path otherwise.
                if self.store.map().pending_start.is_some() {
                    let store = self.store.clone();
                    tokio::task::spawn_blocking(move || store.apply_pending_start())
                        .await
                        .unwrap_or_else(|join| {
                            Err(io_error(
                                ErrorSubject::StateMachine,
                                ErrorVerb::Write,
                                &join,
                            ))
                        })?;
                }
                (self.on_commit)();
            }
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, EmptyNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let store = self.store.clone();
        let owned = meta.clone();
        tokio::task::spawn_blocking(move || store.install_blocking(&owned, snapshot.get_ref()))
            .await
            .unwrap_or_else(|join| {
                Err(io_error(
                    ErrorSubject::Snapshot(None),
                    ErrorVerb::Write,
                    &join,
                ))
            })?;
        {
            let mut applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
            if meta.last_log_id > applied.last {
                applied.last = meta.last_log_id;
                applied.membership = meta.last_membership.clone();
            }
        }
        (self.on_commit)();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<DataConfig>>, StorageError> {
        let store = self.store.clone();
        Ok(
            tokio::task::spawn_blocking(move || store.current_snapshot())
                .await
                .ok()
                .flatten(),
        )
    }
}
