//! Idempotent producers: id allocation, per-partition sequence state, and its persistence.
//!
//! Owns the rules that make a retried produce safe (see [`state`]), the durable producer-id
//! allocator behind InitProducerId ([`ids`]), and how a partition's table survives restarts:
//! a snapshot written at clean shutdown and periodically ([`snapshot`]), plus a replay of the
//! batch headers after the snapshot's offset ([`PartitionProducers::load`]).
//!
//! Invariant: every append from the network goes through `topics::Partition`, which calls
//! `PartitionProducers::append` (crate-private); that holds the table's lock across check,
//! append and record. So the table always describes exactly the batches below the log end
//! offset, and a snapshot taken under the lock is consistent with the log.

pub mod ids;
mod replica;
pub mod snapshot;
pub mod state;

use std::sync::{Mutex, PoisonError};

use weir_protocol::record_batch::{BatchHeader, ProducedBatch};

pub use ids::{ProducerIdError, ProducerIds};
pub use replica::{ReplicaAppend, ReplicaVerdict, sequence_error_code};
pub use state::{BatchMeta, ProducerBatch, ProducerStates, SequenceError, Verdict};

use crate::log::{AppendInfo, LogError, Offset, PartitionLog};

/// Bytes read per step while replaying the log into the table.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// Why an append was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The log refused it (bad batch, failed log, ...).
    #[error(transparent)]
    Log(#[from] LogError),
    /// The producer's sequence rules refused it.
    #[error(transparent)]
    Sequence(#[from] SequenceError),
}

/// Where a produced batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Offset of its first record.
    pub base_offset: Offset,
    /// The offset to wait for before it is durable.
    pub next_offset: Offset,
    /// Broker time of the append (-1 for a duplicate: the original's is not kept).
    pub log_append_time_ms: i64,
    /// It was a retry of a batch already in the log; nothing was appended.
    pub duplicate: bool,
}

#[derive(Debug)]
struct Table {
    states: ProducerStates,
    /// Log end offset of the last snapshot written (or loaded).
    snapshot_offset: Option<i64>,
}

/// The producer table of one partition.
#[derive(Debug)]
pub struct PartitionProducers {
    table: Mutex<Table>,
}

impl PartitionProducers {
    /// Loads the table of `log`: its snapshot, then the batches after it.
    ///
    /// # Errors
    /// When the log cannot be read.
    pub fn load(log: &PartitionLog) -> Result<Self, LogError> {
        let end = log.log_end_offset().0;
        let (from, mut states, snapshot_offset) = match snapshot::read(log.dir()) {
            Some((offset, states)) if offset <= end => (
                offset.max(log.oldest_retained_offset().0),
                states,
                Some(offset),
            ),
            Some((offset, _)) => {
                tracing::info!(dir = %log.dir().display(), snapshot = offset, log_end = end, "producer-state snapshot is past the recovered log end; rebuilding");
                (log.oldest_retained_offset().0, ProducerStates::new(), None)
            }
            None => (log.oldest_retained_offset().0, ProducerStates::new(), None),
        };
        replay(log, from, end, &mut states)?;
        Ok(Self {
            table: Mutex::new(Table {
                states,
                snapshot_offset,
            }),
        })
    }

    /// Checks `batch` against the table and appends it to `log` unless it is refused or a
    /// duplicate. The batch is readable at once; durability is the caller's to wait for.
    /// Crate-private: `topics::Partition` is the door, pairing each log with its table.
    ///
    /// # Errors
    /// [`AppendError`] when nothing was appended.
    pub(crate) fn append(
        &self,
        log: &PartitionLog,
        batch: &ProducedBatch<'_>,
    ) -> Result<Appended, AppendError> {
        let producer = ProducerBatch::of(batch.header());
        let mut table = self.lock();
        match table.states.check(&producer)? {
            Verdict::Duplicate(original) => Ok(Appended {
                base_offset: Offset(original.base_offset),
                next_offset: Offset(original.last_offset.saturating_add(1)),
                log_append_time_ms: -1,
                duplicate: true,
            }),
            Verdict::Append => {
                let AppendInfo {
                    base_offset,
                    last_offset,
                    log_append_time_ms,
                } = log.append_produced(batch)?;
                table.states.record(&producer, base_offset.0, last_offset.0);
                Ok(Appended {
                    base_offset,
                    next_offset: last_offset.plus(1),
                    log_append_time_ms,
                    duplicate: false,
                })
            }
        }
    }

    /// Writes a snapshot as of the log end, unless nothing was appended since the last one.
    ///
    /// # Errors
    /// Any I/O error (the previous snapshot stays, so only restart time suffers).
    pub fn snapshot(&self, log: &PartitionLog) -> std::io::Result<()> {
        let mut table = self.lock();
        let end = log.log_end_offset().0;
        if table.snapshot_offset == Some(end) {
            return Ok(());
        }
        snapshot::write(log.dir(), end, &table.states, log.disk())?;
        table.snapshot_offset = Some(end);
        Ok(())
    }

    /// A copy of the table (tests, diagnostics).
    pub fn states(&self) -> ProducerStates {
        self.lock().states.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Feeds the headers of every batch in `[from, end)` to the table.
fn replay(
    log: &PartitionLog,
    from: i64,
    end: i64,
    states: &mut ProducerStates,
) -> Result<(), LogError> {
    let mut offset = from;
    while offset < end {
        let read = log.read_headers(Offset(offset), REPLAY_READ_BYTES)?;
        let mut rest = &read.records[..];
        if rest.is_empty() {
            break;
        }
        while !rest.is_empty() {
            let header = BatchHeader::parse(rest)?;
            // The first batch may start before `offset` (reads return whole batches): it was
            // already replayed or is in the snapshot.
            if header.base_offset >= offset {
                states.observe(&header);
            }
            offset = offset.max(header.next_offset());
            let len = header.total_len()?;
            rest = rest.get(len..).unwrap_or_default();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use weir_protocol::record_batch::{BatchBuilder, RecordInput};

    use super::*;
    use crate::log::{Flusher, LogConfig, LogOptions};

    fn open(dir: &std::path::Path) -> std::sync::Arc<PartitionLog> {
        let config = LogConfig {
            segment_bytes: 4096,
            ..LogConfig::default()
        };
        PartitionLog::open(dir, LogOptions::new(config, Flusher::new(1))).unwrap()
    }

    /// Appends through the table as the network path does: shape-checked first.
    fn append(
        producers: &PartitionProducers,
        log: &PartitionLog,
        bytes: &[u8],
    ) -> Result<Appended, AppendError> {
        producers.append(log, &ProducedBatch::check(bytes).unwrap())
    }

    fn batch(producer_id: i64, seq: i32, records: usize) -> bytes::Bytes {
        let mut b = BatchBuilder::new().with_producer(producer_id, 0, seq);
        for _ in 0..records {
            b.push(RecordInput {
                value: Some(&[7; 100]),
                ..RecordInput::default()
            });
        }
        b.build().unwrap()
    }

    #[test]
    fn retries_are_answered_with_the_original_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        let producers = PartitionProducers::load(&log).unwrap();
        let first = append(&producers, &log, &batch(5, 0, 3)).unwrap();
        assert!(!first.duplicate);
        let retry = append(&producers, &log, &batch(5, 0, 3)).unwrap();
        assert!(retry.duplicate);
        assert_eq!(
            (retry.base_offset, retry.next_offset),
            (Offset(0), Offset(3))
        );
        assert_eq!(log.log_end_offset(), Offset(3));
        assert!(matches!(
            append(&producers, &log, &batch(5, 4, 1)),
            Err(AppendError::Sequence(SequenceError::OutOfOrder {
                expected: 3,
                got: 4,
                ..
            }))
        ));
    }

    #[test]
    fn state_survives_clean_and_unclean_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        let producers = PartitionProducers::load(&log).unwrap();
        // Enough batches to roll several 4 KiB segments, from two producers and a plain one.
        for i in 0..30 {
            append(&producers, &log, &batch(1, i * 2, 2)).unwrap();
            append(&producers, &log, &batch(2, i, 1)).unwrap();
            append(&producers, &log, &batch(-1, -1, 1)).unwrap();
        }
        let expected = producers.states();
        // A snapshot halfway, then more appends: the restart replays only the tail.
        producers.snapshot(&log).unwrap();
        for i in 30..35 {
            append(&producers, &log, &batch(1, i * 2, 2)).unwrap();
        }
        let expected_after = producers.states();
        assert_ne!(expected, expected_after);
        log.sync().unwrap();
        drop(producers);
        drop(log); // no close: an unclean stop

        let log = open(dir.path());
        let reloaded = PartitionProducers::load(&log).unwrap();
        assert_eq!(reloaded.states(), expected_after);
        assert!(append(&reloaded, &log, &batch(1, 68, 2)).unwrap().duplicate);
        assert!(!append(&reloaded, &log, &batch(1, 70, 2)).unwrap().duplicate);

        // Without any snapshot, a full replay gives the same table.
        std::fs::remove_file(dir.path().join(snapshot::SNAPSHOT_FILE)).unwrap();
        let full = PartitionProducers::load(&log).unwrap();
        assert_eq!(full.states(), reloaded.states());
        log.close().unwrap();
    }

    /// DeleteRecords hides batches from readers, not from the producer table: a retry of a
    /// batch below the new log start offset is still a duplicate after an unclean restart
    /// without a snapshot (the replay reads headers from the first segment, not the start),
    /// as Kafka keeps producer state past its log start offset.
    #[test]
    fn producers_below_a_trimmed_start_keep_their_state_across_an_unclean_restart() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        let producers = PartitionProducers::load(&log).unwrap();
        append(&producers, &log, &batch(3, 0, 2)).unwrap();
        append(&producers, &log, &batch(3, 2, 2)).unwrap();
        let expected = producers.states();
        assert_eq!(log.delete_records_before(Offset(-1)).unwrap(), Offset(4));
        drop(producers);
        drop(log); // no close, no snapshot: an unclean stop

        let log = open(dir.path());
        assert_eq!(log.log_start_offset(), Offset(4));
        let reloaded = PartitionProducers::load(&log).unwrap();
        assert_eq!(reloaded.states(), expected);
        let retry = append(&reloaded, &log, &batch(3, 2, 2)).unwrap();
        assert!(retry.duplicate);
        assert_eq!(retry.base_offset, Offset(2));
        assert_eq!(log.log_end_offset(), Offset(4));
        assert!(matches!(
            append(&reloaded, &log, &batch(3, 9, 1)),
            Err(AppendError::Sequence(SequenceError::OutOfOrder { .. }))
        ));
        log.close().unwrap();
    }

    #[test]
    fn a_snapshot_past_the_log_end_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path());
        let producers = PartitionProducers::load(&log).unwrap();
        append(&producers, &log, &batch(1, 0, 1)).unwrap();
        let mut bogus = ProducerStates::new();
        bogus.record(
            &ProducerBatch {
                producer_id: 9,
                epoch: 0,
                first_seq: 0,
                last_seq: 0,
            },
            100,
            100,
        );
        snapshot::write(dir.path(), 1000, &bogus, &crate::log::OsDisk).unwrap();
        let reloaded = PartitionProducers::load(&log).unwrap();
        assert_eq!(reloaded.states(), producers.states());
        log.close().unwrap();
    }
}
