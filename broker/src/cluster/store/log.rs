//! The metadata log on disk: openraft's `RaftLogStorage` over one append-only file.
//!
//! Files in `<data>/cluster/`:
//! - `raft-log`: checksummed records ([`super::records`]), each an [`LogRecord`]: entries
//!   as they were appended, or the id of the last purged entry. Appends are synced before
//!   openraft is told they are durable (a vote or an acknowledgement to the leader counts
//!   on them). Truncation and purging rewrite the file atomically: the metadata log is
//!   small, since the state machine snapshots every [`super::SNAPSHOT_EVERY`] entries and
//!   openraft then purges what the snapshot covers.
//! - `raft-vote`: the vote, replaced atomically and synced before openraft acts on it.
//! - `raft-committed`: the last committed log id (a hint: losing it only means that the
//!   state machine applies less at start-up, until a leader says more is committed).

#![allow(
    clippy::result_large_err,
    reason = "openraft's StorageError is what its storage traits take and return"
)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, OptionalSend, RaftLogReader, Vote};
use serde::{Deserialize, Serialize};

use super::records::{decode_all, encode, read_single};
use super::storage_error as io_error;
use crate::cluster::types::{Entry, LogId, NodeId, StorageError, TypeConfig};
use crate::storage::Disk;
use crate::storage::files::write_atomically;

const LOG_FILE: &str = "raft-log";
const VOTE_FILE: &str = "raft-vote";
const COMMITTED_FILE: &str = "raft-committed";

/// One record of `raft-log`.
#[derive(Debug, Serialize, Deserialize)]
enum LogRecord {
    Entry(Entry),
    Purged(LogId),
}

#[derive(Debug, Default)]
struct Entries {
    by_index: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
}

/// The metadata log.
#[derive(Debug, Clone)]
pub struct LogStore {
    dir: PathBuf,
    disk: Arc<dyn Disk>,
    entries: Arc<RwLock<Entries>>,
    /// The append handle; replaced by a rewrite.
    file: Arc<Mutex<File>>,
}

impl LogStore {
    /// Opens (creating) the log in `dir`, dropping a torn tail left by a crash.
    ///
    /// # Errors
    /// When a file cannot be read or written, or is damaged.
    pub fn open(dir: &Path, disk: Arc<dyn Disk>) -> Result<Self, StorageError> {
        let read_err = |e: &dyn std::error::Error| {
            io_error(
                ErrorSubject::Logs,
                ErrorVerb::Read,
                &std::io::Error::other(e.to_string()),
            )
        };
        std::fs::create_dir_all(dir).map_err(|e| read_err(&e))?;
        let path = dir.join(LOG_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(err) => return Err(read_err(&err)),
        };
        let (records, good) = decode_all::<LogRecord>(&bytes).map_err(|e| read_err(&e))?;
        let mut entries = Entries::default();
        for record in records {
            match record {
                LogRecord::Entry(entry) => {
                    // A later append at an index replaces the earlier one (never happens
                    // after a rewrite-based truncate, but costs nothing to honour).
                    entries.by_index.split_off(&entry.log_id.index);
                    entries.by_index.insert(entry.log_id.index, entry);
                }
                LogRecord::Purged(id) => {
                    entries.by_index = entries.by_index.split_off(&(id.index + 1));
                    entries.last_purged = Some(id);
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| read_err(&e))?;
        if good < bytes.len() {
            tracing::warn!(path = %path.display(), kept = good, dropped = bytes.len() - good, "metadata log: dropping a torn tail");
            file.set_len(good as u64).map_err(|e| read_err(&e))?;
            disk.sync_data(&file).map_err(|e| read_err(&e))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            disk,
            entries: Arc::new(RwLock::new(entries)),
            file: Arc::new(Mutex::new(file)),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Entries> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Entries> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Rewrites `raft-log` from memory (truncate and purge), atomically, and reopens it.
    fn rewrite(&self) -> Result<(), StorageError> {
        let write_err = |e: &dyn std::error::Error| {
            io_error(
                ErrorSubject::Logs,
                ErrorVerb::Write,
                &std::io::Error::other(e.to_string()),
            )
        };
        let mut bytes = Vec::new();
        {
            let entries = self.read();
            if let Some(id) = entries.last_purged {
                bytes.extend(encode(&LogRecord::Purged(id)).map_err(|e| write_err(&e))?);
            }
            for entry in entries.by_index.values() {
                bytes.extend(encode(&LogRecord::Entry(entry.clone())).map_err(|e| write_err(&e))?);
            }
        }
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        write_atomically(&self.dir, LOG_FILE, &bytes, &*self.disk).map_err(|e| write_err(&e))?;
        *file = OpenOptions::new()
            .append(true)
            .open(self.dir.join(LOG_FILE))
            .map_err(|e| write_err(&e))?;
        Ok(())
    }

    fn write_small<T: Serialize>(
        &self,
        name: &str,
        value: &T,
        subject: ErrorSubject<NodeId>,
    ) -> Result<(), StorageError> {
        let bytes = encode(value).map_err(|e| io_error(subject.clone(), ErrorVerb::Write, &e))?;
        write_atomically(&self.dir, name, &bytes, &*self.disk)
            .map_err(|e| io_error(subject, ErrorVerb::Write, &e))
    }

    fn read_small<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        subject: ErrorSubject<NodeId>,
    ) -> Result<Option<T>, StorageError> {
        read_single(&self.dir.join(name)).map_err(|e| io_error(subject, ErrorVerb::Read, &e))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(self
            .read()
            .by_index
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let entries = self.read();
        let last = entries
            .by_index
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(entries.last_purged);
        Ok(LogState {
            last_purged_log_id: entries.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let this = self.clone();
        let vote = *vote;
        blocking(move || this.write_small(VOTE_FILE, &vote, ErrorSubject::Vote)).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_small(VOTE_FILE, ErrorSubject::Vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let this = self.clone();
        blocking(move || this.write_small(COMMITTED_FILE, &committed, ErrorSubject::Store)).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self
            .read_small::<Option<LogId>>(COMMITTED_FILE, ErrorSubject::Store)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut bytes = Vec::new();
        for entry in &entries {
            bytes.extend(
                encode(&LogRecord::Entry(entry.clone()))
                    .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, &e))?,
            );
        }
        {
            let mut map = self.write();
            for entry in entries {
                map.by_index.insert(entry.log_id.index, entry);
            }
        }
        let this = self.clone();
        let written = blocking(move || {
            let mut file = this.file.lock().unwrap_or_else(PoisonError::into_inner);
            file.write_all(&bytes)
                .and_then(|()| this.disk.sync_data(&file))
                .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Write, &e))
        })
        .await;
        // An append that did not reach the disk stops the node: openraft treats the error as
        // fatal, so nothing unsynced is ever acknowledged.
        callback.log_io_completed(match &written {
            Ok(()) => Ok(()),
            Err(e) => Err(std::io::Error::other(e.to_string())),
        });
        written
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.write().by_index.split_off(&log_id.index);
        let this = self.clone();
        blocking(move || this.rewrite()).await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut entries = self.write();
            entries.by_index = entries.by_index.split_off(&(log_id.index + 1));
            entries.last_purged = Some(log_id);
        }
        let this = self.clone();
        blocking(move || this.rewrite()).await
    }
}

/// Runs file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join| {
            Err(io_error(
                ErrorSubject::Store,
                ErrorVerb::Write,
                &std::io::Error::other(join.to_string()),
            ))
        })
}
