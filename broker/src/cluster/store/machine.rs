//! The applied metadata: openraft's `RaftStateMachine` over [`MetadataState`], shared with
//! the broker's readers.
//!
//! The state lives in memory; its durable form is the snapshot file `<data>/cluster/snapshot`
//! (replaced atomically) plus the log entries after it, which openraft applies again at
//! start-up up to the committed index. Every applied entry extends a digest chain (CRC-32C of
//! the previous digest, the entry's index and term, and its encoded payload); the last
//! [`DIGESTS_KEPT`] digests are kept so that tests can check that every node's applied
//! history is a prefix of the leader's, and the snapshot carries the digest it ends at.

#![allow(
    clippy::result_large_err,
    reason = "openraft's StorageError is what its storage traits take and return"
)]

use std::collections::VecDeque;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    EmptyNode, EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder,
    StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::records::{encode, read_single};
use crate::cluster::command::Reply;
use crate::cluster::state::MetadataState;
use crate::cluster::types::{Entry, LogId, NodeId, StorageError, TypeConfig};
use crate::storage::Disk;
use crate::storage::files::write_atomically;

const SNAPSHOT_FILE: &str = "snapshot";
/// Digests of the most recent applied entries kept for the divergence check.
pub const DIGESTS_KEPT: usize = 1024;

/// What the broker reads of the applied metadata.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The state after the last applied entry.
    pub state: Arc<MetadataState>,
    /// The last applied entry.
    pub last_applied: Option<LogId>,
    /// The membership as of the last applied entry.
    pub membership: StoredMembership<NodeId, EmptyNode>,
    /// The digest chain's value after the last applied entry.
    pub digest: u32,
    /// (index, digest) of the most recent entries, oldest first.
    pub digests: VecDeque<(u64, u32)>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SnapshotBody {
    state: MetadataState,
    digest: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, EmptyNode>,
    data: Vec<u8>,
}

/// The state machine store.
#[derive(Debug, Clone)]
pub struct MachineStore {
    dir: PathBuf,
    disk: Arc<dyn Disk>,
    applied: Arc<RwLock<Applied>>,
    /// The last applied index, for waiters (0 before any).
    notify: watch::Sender<u64>,
}

fn io_error(verb: ErrorVerb, err: &dyn std::error::Error) -> StorageError {
    super::storage_error(ErrorSubject::StateMachine, verb, err)
}

impl MachineStore {
    /// Opens the state machine of `dir`, starting from its snapshot if there is one.
    ///
    /// # Errors
    /// When the snapshot file cannot be read or is damaged.
    pub fn open(dir: &Path, disk: Arc<dyn Disk>) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error(ErrorVerb::Read, &e))?;
        let (notify, _) = watch::channel(0);
        let store = Self {
            dir: dir.to_path_buf(),
            disk,
            applied: Arc::new(RwLock::new(Applied::default())),
            notify,
        };
        if let Some(stored) = store.read_snapshot()? {
            store.install(&stored.meta, &stored.data)?;
        }
        Ok(store)
    }

    /// The applied metadata, shared with readers.
    #[must_use]
    pub fn applied(&self) -> Arc<RwLock<Applied>> {
        Arc::clone(&self.applied)
    }

    /// Watches the last applied index.
    #[must_use]
    pub fn watch_applied(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }

    fn read_snapshot(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        read_single(&self.dir.join(SNAPSHOT_FILE)).map_err(|e| io_error(ErrorVerb::Read, &e))
    }

    fn install(
        &self,
        meta: &SnapshotMeta<NodeId, EmptyNode>,
        data: &[u8],
    ) -> Result<(), StorageError> {
        let body: SnapshotBody =
            postcard::from_bytes(data).map_err(|e| io_error(ErrorVerb::Read, &e))?;
        let index = meta.last_log_id.map_or(0, |id| id.index);
        {
            let mut applied = self.applied.write().unwrap_or_else(PoisonError::into_inner);
            *applied = Applied {
                state: Arc::new(body.state),
                last_applied: meta.last_log_id,
                membership: meta.last_membership.clone(),
                digest: body.digest,
                digests: VecDeque::from([(index, body.digest)]),
            };
        }
        self.notify.send_replace(index);
        Ok(())
    }

    fn write_snapshot(&self, stored: &StoredSnapshot) -> Result<(), StorageError> {
        let bytes = encode(stored).map_err(|e| io_error(ErrorVerb::Write, &e))?;
        write_atomically(&self.dir, SNAPSHOT_FILE, &bytes, &*self.disk)
            .map_err(|e| io_error(ErrorVerb::Write, &e))
    }
}

/// The digest after `entry`, given the one before it.
fn chain(previous: u32, entry: &Entry) -> u32 {
    let payload = postcard::to_stdvec(&entry.payload).unwrap_or_default();
    let mut digest = crc32c::crc32c(&previous.to_be_bytes());
    digest = crc32c::crc32c_append(digest, &entry.log_id.index.to_be_bytes());
    digest = crc32c::crc32c_append(digest, &entry.log_id.leader_id.term.to_be_bytes());
    crc32c::crc32c_append(digest, &payload)
}

impl RaftSnapshotBuilder<TypeConfig> for MachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (meta, data) = {
            let applied = self.applied.read().unwrap_or_else(PoisonError::into_inner);
            let body = SnapshotBody {
                state: (*applied.state).clone(),
                digest: applied.digest,
            };
            let data = postcard::to_stdvec(&body).map_err(|e| io_error(ErrorVerb::Write, &e))?;
            let id = applied.last_applied.map_or_else(
                || "none".to_owned(),
                |l| format!("{}-{}", l.leader_id.term, l.index),
            );
            let meta = SnapshotMeta {
                last_log_id: applied.last_applied,
                last_membership: applied.membership.clone(),
                snapshot_id: id,
            };
            (meta, data)
        };
        let stored = StoredSnapshot { meta, data };
        let this = self.clone();
        let stored =
            tokio::task::spawn_blocking(move || this.write_snapshot(&stored).map(|()| stored))
                .await
                .map_err(|e| io_error(ErrorVerb::Write, &e))??;
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for MachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<NodeId, EmptyNode>), StorageError> {
        let applied = self.applied.read().unwrap_or_else(PoisonError::into_inner);
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Reply>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        let last = {
            let mut applied = self.applied.write().unwrap_or_else(PoisonError::into_inner);
            // Copy on write: readers holding the previous Arc keep a consistent view.
            let mut state = (*applied.state).clone();
            for entry in entries {
                let reply = match &entry.payload {
                    EntryPayload::Normal(command) => state.apply(command),
                    EntryPayload::Membership(membership) => {
                        applied.membership =
                            StoredMembership::new(Some(entry.log_id), membership.clone());
                        Reply::Done
                    }
                    EntryPayload::Blank => Reply::Done,
                };
                applied.digest = chain(applied.digest, &entry);
                let digest = applied.digest;
                applied.digests.push_back((entry.log_id.index, digest));
                while applied.digests.len() > DIGESTS_KEPT {
                    applied.digests.pop_front();
                }
                applied.last_applied = Some(entry.log_id);
                replies.push(reply);
            }
            applied.state = Arc::new(state);
            applied.last_applied.map_or(0, |id| id.index)
        };
        self.notify.send_replace(last);
        Ok(replies)
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
        let data = snapshot.into_inner();
        self.install(meta, &data)?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.write_snapshot(&stored))
            .await
            .map_err(|e| io_error(ErrorVerb::Write, &e))?
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let this = self.clone();
        let stored = tokio::task::spawn_blocking(move || this.read_snapshot())
            .await
            .map_err(|e| io_error(ErrorVerb::Read, &e))??;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
