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

use weir_protocol::record_batch::ProducedBatch;

use crate::log::{LogError, LogOptions, PartitionLog};
use crate::producers::{AppendError, Appended, PartitionProducers, ProducerStates};

/// One partition: its log and the producer table that guards appends to it.
#[derive(Debug)]
pub struct Partition {
    /// The records. Shared: the flusher and waiting produce requests hold it too.
    log: Arc<PartitionLog>,
    /// Sequence state of the idempotent producers writing here; describes `log` exactly.
    producers: PartitionProducers,
}

impl Partition {
    /// Opens (recovering if needed) the log in `dir` and loads its producer table.
    ///
    /// # Errors
    /// When the log cannot be opened or read.
    pub fn open(dir: &Path, options: &LogOptions) -> Result<Self, LogError> {
        let log = PartitionLog::open(dir, options.clone())?;
        let producers = PartitionProducers::load(&log)?;
        Ok(Self { log, producers })
    }

    /// The partition's log, for reads, syncs and retention. Appends go through
    /// [`Self::append`].
    pub fn log(&self) -> &Arc<PartitionLog> {
        &self.log
    }

    /// Checks `batch` against the producer table and appends it unless it is refused or a
    /// duplicate. The batch is readable at once; durability is the caller's to wait for
    /// ([`PartitionLog::wait_durable`]).
    ///
    /// # Errors
    /// [`AppendError`] when nothing was appended.
    pub fn append(&self, batch: &ProducedBatch<'_>) -> Result<Appended, AppendError> {
        self.producers.append(&self.log, batch)
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
