//! The producer table of a replica of a replicated partition: every replica appends the same
//! Raft entries in the same order, so every replica's table is rebuilt from the same log and
//! a new leader deduplicates retries sent to the old one.
//!
//! The sequence check runs where an entry is proposed (the leader's own produce requests):
//! a batch it refuses, or finds a duplicate of, still holds its Raft index, so it is stored
//! as a small control batch saying so (the caller builds it), which consumers skip and every
//! replica stores as is. Entries a replica receives from its leader are stored as they come
//! and only observed, as a recovery replay does: the leader's log is the truth.

use bytes::Bytes;
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::{BatchHeader, validate_batch};

use super::state::{BatchMeta, ProducerBatch, SequenceError, Verdict};
use super::{PartitionProducers, Table};
use crate::log::{AppendInfo, LogError, PartitionLog};

/// Kafka's error code for a batch the sequence rules refused.
#[must_use]
pub fn sequence_error_code(err: &SequenceError) -> ErrorCode {
    match err {
        SequenceError::OutOfOrder { .. } => ErrorCode::OutOfOrderSequenceNumber,
        SequenceError::StaleEpoch { .. } => ErrorCode::InvalidProducerEpoch,
    }
}

/// What the table decided for a proposed batch.
#[derive(Debug, Clone)]
pub enum ReplicaVerdict {
    /// Stored as sent.
    Stored,
    /// A retry of a batch already in the log at these offsets; a marker was stored instead.
    Duplicate(BatchMeta),
    /// Refused by the sequence rules; a marker was stored instead.
    Refused(SequenceError),
}

/// Where a replica's entry landed, and what the table decided for it.
#[derive(Debug, Clone)]
pub struct ReplicaAppend {
    /// The batch stored (the producer's, or the marker standing for it).
    pub info: AppendInfo,
    /// The table's decision (always [`ReplicaVerdict::Stored`] for unchecked entries).
    pub verdict: ReplicaVerdict,
}

impl PartitionProducers {
    /// Appends one Raft entry's batch at `epoch`. With `check` (a batch this replica's
    /// leader proposed from a produce request) the sequence rules decide whether the batch
    /// or the marker `marker(verdict)` is stored; without, the batch is stored and observed.
    ///
    /// # Errors
    /// The log's (nothing appended).
    pub(crate) fn append_replica(
        &self,
        log: &PartitionLog,
        batch: &[u8],
        epoch: i32,
        check: bool,
        marker: impl FnOnce(&ReplicaVerdict) -> Bytes,
    ) -> Result<ReplicaAppend, LogError> {
        let header = validate_batch(batch)?;
        let mut table = self.lock();
        if !check || header.attributes.is_control() {
            let info = log.append_at_epoch(batch, epoch)?;
            observe_at(&mut table, &header, info);
            return Ok(ReplicaAppend {
                info,
                verdict: ReplicaVerdict::Stored,
            });
        }
        let producer = ProducerBatch::of(&header);
        let verdict = match table.states.check(&producer) {
            Ok(Verdict::Append) => {
                let info = log.append_at_epoch(batch, epoch)?;
                table
                    .states
                    .record(&producer, info.base_offset.0, info.last_offset.0);
                return Ok(ReplicaAppend {
                    info,
                    verdict: ReplicaVerdict::Stored,
                });
            }
            Ok(Verdict::Duplicate(original)) => ReplicaVerdict::Duplicate(original),
            Err(refused) => ReplicaVerdict::Refused(refused),
        };
        let info = log.append_at_epoch(&marker(&verdict), epoch)?;
        Ok(ReplicaAppend { info, verdict })
    }

    /// Rebuilds the table from `log` (its snapshot if still valid, then a replay), after the
    /// replica cut an uncommitted tail.
    ///
    /// # Errors
    /// When the log cannot be read.
    pub(crate) fn reload(&self, log: &PartitionLog) -> Result<(), LogError> {
        let fresh = Self::load(log)?;
        let states = fresh.lock().states.clone();
        let mut table = self.lock();
        table.states = states;
        table.snapshot_offset = None;
        Ok(())
    }
}

/// Records a batch the leader's log holds (its stored offsets, not the header's).
fn observe_at(table: &mut Table, header: &BatchHeader, info: AppendInfo) {
    table.states.record(
        &ProducerBatch::of(header),
        info.base_offset.0,
        info.last_offset.0,
    );
}
