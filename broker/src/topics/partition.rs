//! [`Partition`]: one partition of a topic, the one door for appends from the network.
//!
//! Owns a partition's log together with its idempotent-producer table, so that nothing can
//! append to the log from the network without passing the table. It does not parse requests
//! (the produce handler turns a record set into a [`ProducedBatch`] first) and does not store
//! anything itself (the [`PartitionLog`] does; the table is [`PartitionProducers`]').
//!
//! Invariant: every append from the network goes through [`Partition::append`], which holds
//! the producer table's lock across the sequence check, the log append and the record of the
//! new sequence, with the header parsed once (by [`ProducedBatch::check`]). So the table always
//! describes exactly the batches below the log end offset, and a retried batch is answered with
//! its original offsets instead of being stored twice. Reads (fetch, list offsets, retention)
//! go to the log through [`Partition::log`].

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use weir_protocol::record_batch::ProducedBatch;

use crate::log::{LogError, LogOptions, PartitionLog};
use crate::producers::{
    AppendError, Appended, PartitionProducers, ProducerStates, ReplicaAppend, ReplicaVerdict,
};

/// One partition: its log and the producer table that guards appends to it.
#[derive(Debug)]
pub struct Partition {
    /// The records. Shared: the flusher and waiting produce requests hold it too.
    log: Arc<PartitionLog>,
    /// Sequence state of the idempotent producers writing here; describes `log` exactly.
    producers: PartitionProducers,
    /// Records and bytes in and out since the broker started, for the metrics.
    traffic: Traffic,
}

/// Records and bytes a partition took in and gave out since the broker started: counted
/// once per batch appended and once per fetch response, never per record, so that the hot
/// paths pay one relaxed atomic add each.
#[derive(Debug, Default)]
pub struct Traffic {
    records_in: AtomicU64,
    bytes_in: AtomicU64,
    records_out: AtomicU64,
    bytes_out: AtomicU64,
}

/// What [`Traffic`] has counted, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrafficCounts {
    /// Records appended by producers (duplicates of retried batches not counted).
    pub records_in: u64,
    /// Bytes of those batches, as stored.
    pub bytes_in: u64,
    /// Records returned to fetches (a batch's records count whole).
    pub records_out: u64,
    /// Record bytes returned to fetches.
    pub bytes_out: u64,
}

impl Traffic {
    /// Counts a batch of `records` records and `bytes` bytes appended.
    pub fn count_in(&self, records: u64, bytes: u64) {
        self.records_in.fetch_add(records, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `records` records in `bytes` bytes returned to a fetch.
    pub fn count_out(&self, records: u64, bytes: u64) {
        self.records_out.fetch_add(records, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn counts(&self) -> TrafficCounts {
        TrafficCounts {
            records_in: self.records_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            records_out: self.records_out.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }
}

impl Partition {
    /// Opens (recovering if needed) the log in `dir` and loads its producer table.
    ///
    /// # Errors
    /// When the log cannot be opened or read.
    pub fn open(dir: &Path, options: &LogOptions) -> Result<Self, LogError> {
        let log = PartitionLog::open(dir, options.clone())?;
        let producers = PartitionProducers::load(&log)?;
        Ok(Self {
            log,
            producers,
            traffic: Traffic::default(),
        })
    }

    /// The partition's log, for reads, syncs and retention. Appends go through
    /// [`Self::append`].
    pub fn log(&self) -> &Arc<PartitionLog> {
        &self.log
    }

    /// Records and bytes in and out, for the metrics.
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// Checks `batch` against the producer table and appends it unless it is refused or a
    /// duplicate. The batch is readable at once; durability is the caller's to wait for
    /// ([`PartitionLog::wait_durable`]).
    ///
    /// # Errors
    /// [`AppendError`] when nothing was appended.
    pub fn append(&self, batch: &ProducedBatch<'_>) -> Result<Appended, AppendError> {
        let appended = self.producers.append(&self.log, batch)?;
        if !appended.duplicate {
            let records = u64::try_from(batch.header().records_count).unwrap_or(0);
            self.traffic.count_in(records, batch.bytes().len() as u64);
        }
        Ok(appended)
    }

    /// Appends one Raft entry of a replicated partition (see
    /// [`PartitionProducers::append_replica`]): the replica's Raft log store is the only
    /// caller, in index order, so every replica's table follows the same log.
    ///
    /// # Errors
    /// The log's (nothing appended).
    pub fn append_replica(
        &self,
        batch: &[u8],
        epoch: i32,
        check: bool,
        marker: impl FnOnce(&ReplicaVerdict) -> bytes::Bytes,
    ) -> Result<ReplicaAppend, LogError> {
        let appended = self
            .producers
            .append_replica(&self.log, batch, epoch, check, marker)?;
        if matches!(appended.verdict, ReplicaVerdict::Stored) {
            let records = appended.info.last_offset.0 - appended.info.base_offset.0 + 1;
            self.traffic
                .count_in(u64::try_from(records).unwrap_or(0), batch.len() as u64);
        }
        Ok(appended)
    }

    /// Rebuilds the producer table from the log, after a replica cut an uncommitted tail.
    ///
    /// # Errors
    /// When the log cannot be read.
    pub fn reload_producers(&self) -> Result<(), LogError> {
        self.producers.reload(&self.log)
    }

    /// Writes the producer-state snapshot (if it changed); a failure is logged, since a missing
    /// snapshot only costs a longer replay at the next start.
    pub fn snapshot_producers(&self) {
        if let Err(err) = self.producers.snapshot(&self.log) {
            tracing::warn!(dir = %self.log.dir().display(), error = %err, "cannot write producer-state snapshot");
        }
    }

    /// A copy of the producer table (tests, diagnostics).
    pub fn producer_states(&self) -> ProducerStates {
        self.producers.states()
    }
}
