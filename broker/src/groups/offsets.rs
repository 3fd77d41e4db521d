//! Committed offsets of consumer groups, durable across crashes.
//!
//! Owns the directory `<data-dir>/__consumer_offsets`: an append-only log of commits and
//! tombstones, and snapshots of the live offsets that keep start-up fast however many commits
//! were made. Fetches are answered from memory. It does not know members, generations or the
//! wire protocol: the coordinator decides whether a commit is allowed, this module only makes
//! it durable.
//!
//! Invariants:
//! - a commit is one record: after a crash all of its entries are there or none;
//! - the state after a restart is the state after some prefix of the records written, and
//!   that prefix holds every record reported durable by [`OffsetStore::wait_durable`];
//! - nothing read from disk is trusted before its length is bounded and its CRC checked; a
//!   torn or garbled tail is cut, never misread;
//! - after a write or sync error the store accepts no more writes ([`OffsetStoreError::Failed`])
//!   and never touches what it already acknowledged (fail-stop); running out of space is the
//!   exception: the partial record is cut off, that commit is refused
//!   ([`OffsetStoreError::DiskFull`]) and later commits succeed once there is space.
//!
//! A fetch sees a commit as soon as [`OffsetStore::commit`] returns, before it is durable: the
//! caller answers the client only after [`OffsetStore::wait_durable`], and a commit never
//! acknowledged may be missing after a crash.
//!
//! Layout: `live.rs` the in-memory map, `codec.rs` the bytes of records and snapshots,
//! `recovery.rs` opening the directory; this file the store (appends, group commit,
//! compaction).
//!
//! # Files
//!
//! ```text
//! <dir>/00000000000000000007.snapshot   the live offsets at the start of 7.log
//! <dir>/00000000000000000007.log        commits and tombstones since that snapshot
//! <dir>/<name>.tmp                      a snapshot being written; deleted at open
//! ```
//!
//! Generations are 20-digit numbers. The state is the newest valid snapshot (generation `s`;
//! none means empty and `s = 0`), then the logs `s, s+1, ...` replayed in order.
//!
//! # Log records
//!
//! Big-endian. A `str` is a u16 length and that many bytes of UTF-8 (at most 32 KiB).
//!
//! ```text
//! length   u32   bytes of body, 1 ..= 16 MiB
//! crc      u32   CRC-32 (IEEE, crc32fast) of the 4 length bytes, then the body
//! body:
//!   kind   u8    1 = commit, 2 = delete group, 3 = delete topic
//!   kind 1: group str, count u32, count x entry   (one record per commit)
//!   kind 2: group str                             (every offset of the group)
//!   kind 3: topic str                             (the topic's offsets in every group)
//! entry:
//!   topic str, partition i32, offset i64, leader_epoch i32, commit_timestamp_ms i64,
//!   metadata: i16 length (-1: null) and that many bytes of UTF-8 (at most 4096)
//! ```
//!
//! # Snapshots
//!
//! Written atomically (temporary file, sync, rename, directory sync):
//!
//! ```text
//! magic        4 bytes  "WCO1"
//! generation   u64      equals the file name's
//! groups       u32
//! groups x { group str, count u32, count x entry }   groups and entries sorted
//! crc          u32      CRC-32 of everything before it
//! ```
//!
//! Assumed of the disk, as for the partition logs: `fdatasync` makes a file's data and size
//! durable, a directory `fsync` makes its entries (creations, renames, deletions) durable, and
//! `rename` replaces a file atomically.
//!
//! # Opening
//!
//! 1. `*.tmp` files are deleted.
//! 2. The newest snapshot that decodes is loaded; damaged ones are skipped with a warning.
//! 3. Logs `s, s+1, ..., newest` must all be there. A gap means the snapshot that covered the
//!    missing logs is damaged: opening fails ([`OffsetStoreError::Corrupt`]) rather than
//!    silently forgetting offsets (a consumer would then reset and skip or reread data).
//! 4. The logs are replayed. The first record that is short, has an impossible length or a
//!    wrong CRC ends the history: its log is truncated there and later logs are emptied (with
//!    a warning), then synced. A record with a valid CRC that does not decode (a newer version
//!    or a bug) fails the open: cutting it could drop acknowledged commits.
//! 5. Everything kept is synced, then files older than `s` are deleted.
//!
//! # Compaction, step by step, with what a crash after each step leaves
//!
//! From generation `g` (active log `g.log`):
//!
//! 1. Create `(g+1).log` and sync the directory. Crash: an empty newer log, replayed as nothing.
//! 2. Under the append lock, switch appends to `(g+1).log` and encode the live map. `g.log` is
//!    kept for the next group sync, which syncs it before reporting anything durable. Crash:
//!    `g.log` then `(g+1).log` replayed in write order.
//! 3. Write `(g+1).snapshot` atomically. Crash before its rename is durable: the `.tmp` is
//!    deleted, state as in 2. After: the snapshot plus `(g+1).log`; the older files are ignored.
//! 4. Delete the files of generations up to `g`, sync the directory. Crash: leftovers are
//!    deleted at the next open.
//!
//! A failed step leaves the store usable and returns the error: no acknowledged record
//! depends on the files of an unfinished compaction. Compaction runs only when called
//! ([`OffsetStore::compact`], typically from maintenance when
//! [`OffsetStore::needs_compaction`]), never inside a commit.
//!
//! # Durability and group commit
//!
//! [`OffsetStore::commit`] writes the record (`pwrite`, no sync) and returns a [`Ticket`],
//! the record's sequence number in this process. [`OffsetStore::wait_durable`] queues the store
//! on the broker's shared [`Flusher`] (the same sync threads as the partition logs; at most one
//! sync of the store queued at a time) and awaits the store's durable watermark, a
//! `storage::Durability` counted in tickets. The flusher thread takes the highest
//! ticket written, then syncs: one `fdatasync` covers every waiter whose record was written
//! before it started, across groups, and a record written during a sync waits for the next
//! one. At most one sync runs at a time (the store's sync lock), and never on the async
//! runtime. A failed sync stops the store through that watermark (fail-stop): every waiter
//! whose record it did not cover gets [`OffsetStoreError::Failed`].
//!
//! What this module keeps for itself: what a sync covers (the active log and the logs retired
//! by a compaction) and the disk-full rule above. The sync threads and the watermark are
//! shared machinery from [`crate::storage`].
//!
//! # Kafka error codes
//!
//! [`OffsetStoreError::MetadataTooLarge`] is OFFSET_METADATA_TOO_LARGE;
//! [`OffsetStoreError::NameTooLong`] and [`OffsetStoreError::CommitTooLarge`] are
//! INVALID_COMMIT_OFFSET_SIZE; the rest are storage failures (Kafka's coordinator answers
//! those with NOT_COORDINATOR).

mod codec;
mod live;
mod recovery;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{
    Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak,
};
use std::time::Duration;

use self::codec::{
    KIND_DELETE_GROUP, KIND_DELETE_TOPIC, encode_commit, encode_delete, encode_snapshot,
};
use self::live::Offsets;
use self::recovery::{list_dir, log_name, recover, remove_older, snapshot_name};
use crate::storage::files::write_atomically;
use crate::storage::{Disk, Durability, Flusher, Syncable, Unreached, is_disk_full};

/// Longest metadata string of a committed offset, in bytes (Kafka's
/// `offset.metadata.max.bytes`).
pub const MAX_METADATA_BYTES: usize = 4096;
/// Longest group or topic name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 32 * 1024;
/// Largest record body: bounds what one commit may write and what is allocated at open.
pub const MAX_RECORD_BYTES: usize = 16 << 20;

/// One partition's committed position for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record, -1 when unknown (fencing after truncation).
    pub leader_epoch: i32,
    /// The client's string, returned as committed (at most [`MAX_METADATA_BYTES`]).
    pub metadata: Option<String>,
    /// When the broker accepted the commit; used by offset retention.
    pub commit_timestamp_ms: i64,
}

/// Tunables of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetStoreConfig {
    /// Compact once the logs since the last snapshot exceed this many bytes (and twice the
    /// live offsets' size, so a large live state is not rewritten over and over).
    pub compact_after_bytes: u64,
}

impl Default for OffsetStoreConfig {
    fn default() -> Self {
        Self {
            compact_after_bytes: 64 << 20,
        }
    }
}

/// What the store needs from its surroundings.
#[derive(Debug, Clone)]
pub struct OffsetStoreOptions {
    /// Writes and syncs; [`crate::storage::OsDisk`] except in failure-injection tests.
    pub disk: Arc<dyn Disk>,
    /// The sync threads; a broker passes the one its partition logs use.
    pub flusher: Arc<Flusher>,
    /// Tunables.
    pub config: OffsetStoreConfig,
}

/// Names a written record, to wait until it is durable. Only meaningful for the store that
/// returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

/// A failed offset-store operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OffsetStoreError {
    /// A metadata string is too long; nothing was written. OFFSET_METADATA_TOO_LARGE.
    #[error("metadata of {topic}-{partition} is {size} bytes, more than {max}")]
    MetadataTooLarge {
        /// The topic of the offending entry.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Size of the metadata.
        size: usize,
        /// Largest allowed.
        max: usize,
    },
    /// A group or topic name is too long; nothing was written. INVALID_COMMIT_OFFSET_SIZE.
    #[error("{what} name of {size} bytes is longer than {max}")]
    NameTooLong {
        /// "group" or "topic".
        what: &'static str,
        /// Size of the name.
        size: usize,
        /// Largest allowed.
        max: usize,
    },
    /// The whole commit does not fit one record; nothing was written.
    /// INVALID_COMMIT_OFFSET_SIZE.
    #[error("commit of {size} bytes is larger than {max}")]
    CommitTooLarge {
        /// Size of the encoded commit.
        size: usize,
        /// Largest record.
        max: usize,
    },
    /// An earlier write or sync failed: the store accepts no writes until it is reopened.
    /// Acknowledged commits are untouched.
    #[error("offset store {dir} is failed after an I/O error and accepts no writes: {cause}")]
    Failed {
        /// The store's directory.
        dir: PathBuf,
        /// The error that stopped the store.
        #[source]
        cause: Arc<io::Error>,
    },
    /// No space for the record. Nothing was kept (a partial write is cut off again) and the
    /// store stays usable: the commit can be retried once space is freed.
    #[error("no space left to write to the offset store {dir}: {source}")]
    DiskFull {
        /// The store's directory.
        dir: PathBuf,
        /// The underlying error (ENOSPC or EDQUOT).
        #[source]
        source: io::Error,
    },
    /// The store was closed.
    #[error("offset store {0} is closed")]
    Closed(PathBuf),
    /// The files cannot be trusted and guessing could lose commits (see the module docs).
    #[error("offset store file {path} is damaged: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O error while opening or compacting.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> OffsetStoreError {
    let path = path.to_path_buf();
    move |source| OffsetStoreError::Io { op, path, source }
}

/// The durable committed offsets of every consumer group. Share it behind an `Arc`.
#[derive(Debug)]
pub struct OffsetStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    disk: Arc<dyn Disk>,
    config: OffsetStoreConfig,
    /// The sync threads that run queued syncs.
    flusher: Arc<Flusher>,
    /// Handle to ourselves, for queueing on the flusher.
    me: Weak<Inner>,
    /// Appends one at a time, in ticket order.
    writer: Mutex<Writer>,
    /// The live offsets, changed under `writer` right after the record is written.
    offsets: RwLock<Offsets>,
    /// Highest ticket known durable, and the error that stopped the store (once there is
    /// one): waiters watch it.
    durable: Durability<u64>,
    /// One sync at a time, between flusher threads and blocking callers.
    sync_lock: Mutex<()>,
    /// Set while a sync of the store is queued on the flusher.
    sync_queued: AtomicBool,
    /// One compaction at a time.
    compact_lock: Mutex<()>,
}

#[derive(Debug)]
struct Writer {
    /// The active log, appended at `position`.
    file: Arc<File>,
    /// The active log's generation; the next compaction writes `generation + 1`.
    generation: u64,
    /// Bytes of whole records in the active log: where the next record goes.
    position: u64,
    /// Ticket of the last record written.
    written: u64,
    /// Logs switched away from by compaction whose last records the next sync must cover.
    retired: Vec<Arc<File>>,
    /// Bytes in the logs since the newest durable snapshot.
    log_bytes: u64,
    /// Set by `close`: writes are refused from then on.
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

fn check_name(what: &'static str, name: &str) -> Result<(), OffsetStoreError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(OffsetStoreError::NameTooLong {
            what,
            size: name.len(),
            max: MAX_NAME_BYTES,
        });
    }
    Ok(())
}

impl OffsetStore {
    /// Opens (creating if needed) the store in `dir`, `<data-dir>/__consumer_offsets`, with
    /// the default configuration and a sync thread of its own (a broker shares its logs' with
    /// [`Self::open_with`]). Recovers after a crash: see the module docs. Blocking (it reads
    /// every log since the last snapshot and syncs).
    ///
    /// # Errors
    /// I/O errors, and [`OffsetStoreError::Corrupt`] when the files cannot be trusted.
    pub fn open(dir: &Path, disk: Arc<dyn Disk>) -> Result<Self, OffsetStoreError> {
        Self::open_with_config(dir, disk, OffsetStoreConfig::default())
    }

    /// [`Self::open`] with a configuration.
    ///
    /// # Errors
    /// As [`Self::open`].
    pub fn open_with_config(
        dir: &Path,
        disk: Arc<dyn Disk>,
        config: OffsetStoreConfig,
    ) -> Result<Self, OffsetStoreError> {
        Self::open_with(
            dir,
            OffsetStoreOptions {
                disk,
                flusher: Flusher::new(1),
                config,
            },
        )
    }

    /// [`Self::open`] with everything given: the disk, the (shared) sync threads and the
    /// configuration.
    ///
    /// # Errors
    /// As [`Self::open`].
    pub fn open_with(dir: &Path, options: OffsetStoreOptions) -> Result<Self, OffsetStoreError> {
        let OffsetStoreOptions {
            disk,
            flusher,
            config,
        } = options;
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
            if let Some(parent) = dir.parent() {
                disk.sync_dir(parent).map_err(io_error("sync", parent))?;
            }
        }
        let recovered = recover(dir, disk.as_ref())?;
        tracing::info!(dir = %dir.display(), groups = recovered.offsets.groups.len(),
            generation = recovered.generation, log_bytes = recovered.log_bytes, "opened the offsets store");
        let inner = Arc::new_cyclic(|me| Inner {
            dir: dir.to_path_buf(),
            disk,
            config,
            flusher,
            me: me.clone(),
            writer: Mutex::new(Writer {
                file: Arc::new(recovered.file),
                generation: recovered.generation,
                position: recovered.position,
                written: 0,
                retired: Vec::new(),
                log_bytes: recovered.log_bytes,
                closed: false,
            }),
            offsets: RwLock::new(recovered.offsets),
            // Recovery synced everything it kept; no ticket of this process is written yet.
            durable: Durability::new(0),
            sync_lock: Mutex::new(()),
            sync_queued: AtomicBool::new(false),
            compact_lock: Mutex::new(()),
        });
        Ok(Self { inner })
    }

    /// Stores the offsets of one commit as one record (after a crash all of them are there or
    /// none) and makes them visible to [`Self::fetch`]. Durable after [`Self::wait_durable`].
    ///
    /// # Errors
    /// Size limits (nothing written), [`OffsetStoreError::Failed`] after an I/O error,
    /// [`OffsetStoreError::Closed`].
    pub fn commit(
        &self,
        group: &str,
        entries: &[(String, i32, CommittedOffset)],
    ) -> Result<Ticket, OffsetStoreError> {
        check_name("group", group)?;
        for (topic, partition, value) in entries {
            check_name("topic", topic)?;
            if let Some(metadata) = &value.metadata {
                if metadata.len() > MAX_METADATA_BYTES {
                    return Err(OffsetStoreError::MetadataTooLarge {
                        topic: topic.clone(),
                        partition: *partition,
                        size: metadata.len(),
                        max: MAX_METADATA_BYTES,
                    });
                }
            }
        }
        if entries.is_empty() {
            return self.inner.append(None, |_| {});
        }
        let record = encode_commit(group, entries)?;
        self.inner.append(Some(&record), |offsets| {
            offsets.commit(group, entries.iter().cloned());
        })
    }

    /// Forgets every offset of `group` (a tombstone record).
    ///
    /// # Errors
    /// As [`Self::commit`].
    pub fn delete_group(&self, group: &str) -> Result<Ticket, OffsetStoreError> {
        check_name("group", group)?;
        let record = encode_delete(KIND_DELETE_GROUP, group);
        self.inner
            .append(Some(&record), |offsets| offsets.delete_group(group))
    }

    /// Forgets the offsets of `topic` in every group (a tombstone record), for a deleted
    /// topic.
    ///
    /// # Errors
    /// As [`Self::commit`].
    pub fn delete_topic(&self, topic: &str) -> Result<Ticket, OffsetStoreError> {
        check_name("topic", topic)?;
        let record = encode_delete(KIND_DELETE_TOPIC, topic);
        self.inner
            .append(Some(&record), |offsets| offsets.delete_topic(topic))
    }

    /// Waits until the record of `ticket` (and every earlier one) is on disk: an `fdatasync`
    /// that started after it was written has completed. Concurrent waiters share syncs.
    ///
    /// # Errors
    /// [`OffsetStoreError::Failed`] when the store fails before that.
    pub async fn wait_durable(&self, ticket: Ticket) -> Result<(), OffsetStoreError> {
        let inner = &self.inner;
        inner
            .durable
            .wait(ticket.0, || inner.request_sync())
            .await
            .map_err(|unreached| match unreached {
                Unreached::Failed(cause) => OffsetStoreError::Failed {
                    dir: inner.dir.clone(),
                    cause,
                },
                Unreached::Closed => OffsetStoreError::Closed(inner.dir.clone()),
            })
    }

    /// Syncs everything written so far, on the calling thread (blocking; async callers use
    /// [`Self::wait_durable`]).
    ///
    /// # Errors
    /// [`OffsetStoreError::Failed`] when the sync fails or failed before.
    pub fn sync(&self) -> Result<(), OffsetStoreError> {
        self.inner.sync()
    }

    /// The committed offset of `group` for a partition.
    pub fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        read(&self.inner.offsets)
            .groups
            .get(group)?
            .get(topic)?
            .get(&partition)
            .cloned()
    }

    /// Every committed offset of `group`, sorted by topic and partition.
    pub fn group_offsets(&self, group: &str) -> Vec<(String, i32, CommittedOffset)> {
        let offsets = read(&self.inner.offsets);
        let Some(topics) = offsets.groups.get(group) else {
            return Vec::new();
        };
        topics
            .iter()
            .flat_map(|(topic, partitions)| {
                partitions
                    .iter()
                    .map(|(partition, value)| (topic.clone(), *partition, value.clone()))
            })
            .collect()
    }

    /// Whether `group` has committed offsets.
    pub fn has_group(&self, group: &str) -> bool {
        read(&self.inner.offsets).groups.contains_key(group)
    }

    /// The groups that have committed offsets, sorted.
    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = read(&self.inner.offsets).groups.keys().cloned().collect();
        groups.sort_unstable();
        groups
    }

    /// Whether the logs have grown enough that [`Self::compact`] pays: past
    /// [`OffsetStoreConfig::compact_after_bytes`] and twice the size of the live offsets.
    pub fn needs_compaction(&self) -> bool {
        let log_bytes = lock(&self.inner.writer).log_bytes;
        let live_bytes = read(&self.inner.offsets).live_bytes;
        log_bytes > self.inner.config.compact_after_bytes
            && log_bytes >= live_bytes.saturating_mul(2)
    }

    /// Writes a snapshot of the live offsets and starts a new log, then deletes the files it
    /// replaces (steps and crash analysis in the module docs). Blocking: it writes and syncs
    /// files; run it on a blocking thread. Commits wait while the live offsets are encoded.
    ///
    /// # Errors
    /// I/O errors (the store stays usable, the old files stay in force), or the store is
    /// failed or closed.
    pub fn compact(&self) -> Result<(), OffsetStoreError> {
        self.inner.compact()
    }

    /// Refuses further writes, then syncs what was written. Blocking (it syncs).
    ///
    /// # Errors
    /// When the final sync fails.
    pub fn close(&self) -> Result<(), OffsetStoreError> {
        lock(&self.inner.writer).closed = true;
        self.inner.sync()
    }
}

impl Inner {
    /// Writes `record` (if any) as the next record and applies it to the live offsets.
    fn append(
        &self,
        record: Option<&[u8]>,
        apply: impl FnOnce(&mut Offsets),
    ) -> Result<Ticket, OffsetStoreError> {
        let mut w = lock(&self.writer);
        if let Some(err) = self.refusal(&w) {
            return Err(err);
        }
        let Some(record) = record else {
            // Nothing to write: waiting on the last ticket is waiting on nothing new.
            return Ok(Ticket(w.written));
        };
        if let Err(err) = self.disk.write_all_at(&w.file, &[record], w.position) {
            if !is_disk_full(&err) {
                return Err(self.fail(err));
            }
            // Running out of space is not a device failure: the bytes before `position` are
            // as they were (unlike after a failed fsync). Cut whatever part of the record got
            // in, so the file ends at the last whole record, and refuse this commit only. If
            // the cut itself fails the tail is unknown: fail-stop.
            if let Err(cut) = w.file.set_len(w.position) {
                tracing::error!(dir = %self.dir.display(), error = %cut, "cannot cut a partial offsets record after a full disk");
                return Err(self.fail(err));
            }
            tracing::warn!(dir = %self.dir.display(), error = %err, "offset commit refused: disk full");
            return Err(OffsetStoreError::DiskFull {
                dir: self.dir.clone(),
                source: err,
            });
        }
        let len = record.len() as u64;
        w.position += len;
        w.log_bytes += len;
        w.written += 1;
        apply(&mut write(&self.offsets));
        Ok(Ticket(w.written))
    }

    /// Why writes are refused, if they are.
    fn refusal(&self, w: &Writer) -> Option<OffsetStoreError> {
        if let Some(cause) = self.durable.failure() {
            return Some(OffsetStoreError::Failed {
                dir: self.dir.clone(),
                cause: Arc::clone(cause),
            });
        }
        w.closed.then(|| OffsetStoreError::Closed(self.dir.clone()))
    }

    /// Puts the store in the failed state (fail-stop) and wakes every waiter.
    fn fail(&self, err: io::Error) -> OffsetStoreError {
        let cause = self.durable.fail(err);
        tracing::error!(dir = %self.dir.display(), error = %cause, "offsets store failed after an I/O error; refusing writes");
        OffsetStoreError::Failed {
            dir: self.dir.clone(),
            cause,
        }
    }

    /// One sync covering every record written before it starts.
    fn sync(&self) -> Result<(), OffsetStoreError> {
        let _one_at_a_time = lock(&self.sync_lock);
        if let Some(cause) = self.durable.failure() {
            return Err(OffsetStoreError::Failed {
                dir: self.dir.clone(),
                cause: Arc::clone(cause),
            });
        }
        // Together, under the append lock: every record up to `target` is in `retired` or
        // `active`. A log retired after this holds later records too: the next sync covers it.
        let (target, retired, active) = {
            let mut w = lock(&self.writer);
            let retired = std::mem::take(&mut w.retired);
            (w.written, retired, Arc::clone(&w.file))
        };
        if target <= self.durable.durable() && retired.is_empty() {
            return Ok(());
        }
        for file in retired.iter().chain([&active]) {
            if let Err(err) = self.disk.sync_data(file) {
                return Err(self.fail(err));
            }
        }
        self.durable.advance(target);
        Ok(())
    }

    /// Queues a sync on the flusher unless one is queued already.
    fn request_sync(&self) {
        if !self.sync_queued.swap(true, Ordering::AcqRel) {
            if let Some(me) = self.me.upgrade() {
                self.flusher.schedule(me);
            }
        }
    }

    fn compact(&self) -> Result<(), OffsetStoreError> {
        let _one_at_a_time = lock(&self.compact_lock);
        let generation = {
            let w = lock(&self.writer);
            if let Some(err) = self.refusal(&w) {
                return Err(err);
            }
            w.generation
        };
        let next = generation + 1;

        // 1. The new log, with a durable directory entry before any record in it can be
        //    reported durable.
        let log_path = self.dir.join(log_name(next));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(io_error("create log", &log_path))?;
        if let Err(err) = self.disk.sync_dir(&self.dir) {
            if let Err(remove) = fs::remove_file(&log_path) {
                tracing::warn!(path = %log_path.display(), error = %remove, "cannot remove the log of a failed compaction");
            }
            return Err(io_error("sync", &self.dir)(err));
        }

        // 2. Switch appends; the snapshot is the state at the end of the old log.
        let (snapshot, covered) = {
            let mut w = lock(&self.writer);
            if let Some(err) = self.refusal(&w) {
                return Err(err);
            }
            let old = std::mem::replace(&mut w.file, Arc::new(file));
            w.retired.push(old);
            w.generation = next;
            w.position = 0;
            (encode_snapshot(next, &read(&self.offsets)), w.log_bytes)
        };

        // 3. The snapshot, atomically.
        let name = snapshot_name(next);
        write_atomically(&self.dir, &name, &snapshot, self.disk.as_ref())
            .map_err(io_error("write snapshot", &self.dir.join(&name)))?;
        {
            let mut w = lock(&self.writer);
            w.log_bytes = w.log_bytes.saturating_sub(covered);
        }

        // 4. What the snapshot replaces (including leftovers of failed compactions).
        match list_dir(&self.dir) {
            Ok((logs, snapshots)) => remove_older(&self.dir, &logs, &snapshots, next),
            Err(err) => {
                tracing::warn!(error = %err, "cannot list the offsets directory to remove superseded files");
            }
        }
        if let Err(err) = self.disk.sync_dir(&self.dir) {
            // Harmless: deletions that are lost are redone at the next open.
            tracing::warn!(dir = %self.dir.display(), error = %err, "cannot sync the offsets directory after compaction");
        }
        tracing::info!(dir = %self.dir.display(), generation = next, snapshot_bytes = snapshot.len(),
            compacted_log_bytes = covered, "compacted the offsets log");
        Ok(())
    }
}

impl Syncable for Inner {
    /// Called by a flusher thread for a queued sync.
    fn run_scheduled_sync(&self) {
        // Cleared before syncing: records written during the sync queue the next one.
        self.sync_queued.store(false, Ordering::Release);
        if let Err(err) = self.sync() {
            // Waiters get the error through the durable watermark.
            tracing::debug!(dir = %self.dir.display(), error = %err, "offsets sync failed");
        }
    }

    /// The store is never registered for interval sweeps (every commit is waited for before it
    /// is answered); were it swept, any record not yet durable counts as old enough.
    fn sync_if_older_than(&self, _every: Duration) {
        if lock(&self.writer).written > self.durable.durable() {
            self.request_sync();
        }
    }
}
