//! A data group's state machine. The records are already in the log (the log is the Raft
//! log), so applying an entry copies nothing: it moves the partition's high watermark past
//! the entry's batch, wakes fetches parked on the partition, and answers a data entry with
//! where it was stored (or what its marker says, `entry.rs`).
//!
//! Snapshots are not used: openraft is configured never to build one nor to purge the log,
//! so a lagging replica always catches up from the leader's log. `install_snapshot` refuses.

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

fn refused(what: &str) -> StorageError {
    let err = std::io::Error::other(format!("data groups do not use snapshots: {what}"));
    io_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, &err)
}

impl ReplicaMachine {
    /// The state machine over `store`'s partition.
    pub fn new(store: ReplicaStore, on_commit: OnCommit) -> Self {
        Self {
            store,
            applied: Arc::new(Mutex::new(Applied::default())),
            on_commit,
        }
    }
}

impl RaftSnapshotBuilder<DataConfig> for ReplicaMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<DataConfig>, StorageError> {
        Err(refused("build"))
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
        {
            let mut applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
            for entry in entries {
                let outcome = match &entry.payload {
                    EntryPayload::Normal(batch) => match BatchHeader::parse(&batch.bytes) {
                        Ok(header) => entry::outcome(&batch.bytes, &header),
                        Err(_) => Outcome::Control,
                    },
                    EntryPayload::Membership(membership) => {
                        applied.membership =
                            StoredMembership::new(Some(entry.log_id), membership.clone());
                        Outcome::Control
                    }
                    EntryPayload::Blank => Outcome::Control,
                };
                applied.last = Some(entry.log_id);
                last = Some(entry.log_id.index);
                outcomes.push(outcome);
            }
        }
        if let Some(index) = last {
            let after = self.store.map().offset_after(index);
            if let Some(after) = after {
                self.store
                    .partition()
                    .log()
                    .set_high_watermark(Offset(after));
                (self.on_commit)();
            }
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Err(refused("receive"))
    }

    async fn install_snapshot(
        &mut self,
        _meta: &SnapshotMeta<NodeId, EmptyNode>,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        Err(refused("install"))
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<DataConfig>>, StorageError> {
        Ok(None)
    }
}
