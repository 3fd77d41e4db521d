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
//! `recovery.rs` opening the directory, `writer.rs` the write side (appends in ticket order,
//! group commit on the shared flusher, fail-stop, compaction), `error.rs` the errors; this
//! file the store's public face and its file format. In a cluster the offsets live in the
//! replicated topic `__consumer_offsets` instead: `kafka_format.rs` its records (Kafka's),
//! `replicated.rs` the offsets of the partitions this broker leads.
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
//!   kind 4: group str, count u32, count x (topic str, partition i32)
//!                                                 (OffsetDelete: those partitions' offsets)
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
mod error;
pub mod kafka_format;
mod live;
mod recovery;
pub mod replicated;
mod writer;

use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};

use self::codec::{
    KIND_DELETE_GROUP, KIND_DELETE_TOPIC, encode_commit, encode_delete, encode_delete_offsets,
};
pub use self::error::OffsetStoreError;
use self::error::io_error;
use self::recovery::recover;
use self::writer::{Inner, Writer, lock, read};
use crate::storage::{Disk, Durability, Flusher, Unreached};

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

/// The durable committed offsets of every consumer group. Share it behind an `Arc`.
#[derive(Debug)]
pub struct OffsetStore {
    inner: Arc<Inner>,
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

    /// Forgets the offsets of the given partitions of `group` (one tombstone record for all of
    /// them, so after a crash all are gone or none), for OffsetDelete. Snapshot compaction
    /// keeps the deletion: a snapshot holds only the offsets still live.
    ///
    /// # Errors
    /// As [`Self::commit`] (a name too long; a record larger than the limit).
    pub fn delete_offsets(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<Ticket, OffsetStoreError> {
        check_name("group", group)?;
        for (topic, _) in partitions {
            check_name("topic", topic)?;
        }
        let size = partitions
            .iter()
            .map(|(t, _)| 6 + t.len())
            .fold(group.len() + 7, usize::saturating_add);
        if size > MAX_RECORD_BYTES {
            return Err(OffsetStoreError::CommitTooLarge {
                size,
                max: MAX_RECORD_BYTES,
            });
        }
        let record = encode_delete_offsets(group, partitions);
        self.inner.append(Some(&record), |offsets| {
            offsets.delete_offsets(group, partitions);
        })
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
