//! Per-partition idempotent-producer state: the sequence rules Kafka applies before an append.
//!
//! For each producer id the table keeps the current epoch and the last
//! [`CACHED_BATCHES`] batches appended (sequence range and offsets). Before an append:
//!
//! - a batch without a producer id (-1) is not checked;
//! - an epoch lower than the current one is fenced (INVALID_PRODUCER_EPOCH);
//! - a batch whose sequence range equals a cached batch of the same epoch is a duplicate (a
//!   retry): answered with the original offsets, not appended again;
//! - otherwise, in the current epoch the first sequence must follow the last one (wrapping
//!   after `i32::MAX`), and a new epoch must start at 0 — else OUT_OF_ORDER_SEQUENCE_NUMBER;
//! - a producer the table has never seen may start at any sequence, as in Kafka since 2.5
//!   (KIP-360): its earlier batches may have been removed by retention.
//!
//! The table is rebuilt from batch headers ([`ProducerStates::observe`]) after a crash, and
//! saved in snapshots ([`super::snapshot`]) so that a restart scans only the log's tail.

use std::collections::{HashMap, VecDeque};

use weir_protocol::record_batch::BatchHeader;

/// How many recent batches per producer are remembered for duplicate detection. Kafka keeps
/// 5, matching the largest `max.in.flight.requests.per.connection` idempotence allows.
pub const CACHED_BATCHES: usize = 5;

/// One appended batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    /// Sequence of the first record.
    pub first_seq: i32,
    /// Sequence of the last record.
    pub last_seq: i32,
    /// Offset of the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
}

/// What the table knows of one producer in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// The producer's current epoch.
    pub epoch: i16,
    /// The most recent batches, oldest first, at most [`CACHED_BATCHES`].
    pub batches: VecDeque<BatchMeta>,
}

/// The identity and sequence range of a batch, taken from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    /// Producer id (-1: not idempotent).
    pub producer_id: i64,
    /// Producer epoch.
    pub epoch: i16,
    /// Sequence of the first record.
    pub first_seq: i32,
    /// Sequence of the last record.
    pub last_seq: i32,
}

impl ProducerBatch {
    /// The producer fields of a batch header.
    pub fn of(header: &BatchHeader) -> Self {
        Self {
            producer_id: header.producer_id,
            epoch: header.producer_epoch,
            first_seq: header.base_sequence,
            last_seq: add_seq(header.base_sequence, header.last_offset_delta),
        }
    }

    /// Whether the batch comes from an idempotent producer (and is therefore checked).
    pub fn is_idempotent(&self) -> bool {
        self.producer_id >= 0
    }
}

/// Why a batch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    /// The batch does not follow the producer's last sequence (Kafka:
    /// OUT_OF_ORDER_SEQUENCE_NUMBER).
    #[error("producer {producer_id} epoch {epoch}: expected sequence {expected}, got {got}")]
    OutOfOrder {
        /// The producer.
        producer_id: i64,
        /// Its epoch.
        epoch: i16,
        /// The sequence that would have been accepted.
        expected: i32,
        /// The batch's first sequence.
        got: i32,
    },
    /// The producer was fenced by a newer epoch (Kafka: INVALID_PRODUCER_EPOCH).
    #[error("producer {producer_id}: epoch {got} is older than the current epoch {current}")]
    StaleEpoch {
        /// The producer.
        producer_id: i64,
        /// The current epoch.
        current: i16,
        /// The batch's epoch.
        got: i16,
    },
}

/// What to do with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Append it, then [`ProducerStates::record`] where it landed.
    Append,
    /// A retry of a batch already in the log: answer with its offsets, append nothing.
    Duplicate(BatchMeta),
}

/// The producer table of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStates {
    entries: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// A table holding these entries (from a snapshot).
    pub fn from_entries(entries: HashMap<i64, ProducerEntry>) -> Self {
        Self { entries }
    }

    /// The entries, for snapshots and tests.
    pub fn entries(&self) -> &HashMap<i64, ProducerEntry> {
        &self.entries
    }

    /// Applies the sequence rules to `batch` (see the module docs).
    ///
    /// # Errors
    /// [`SequenceError`] when the batch must be refused.
    pub fn check(&self, batch: &ProducerBatch) -> Result<Verdict, SequenceError> {
        if !batch.is_idempotent() {
            return Ok(Verdict::Append);
        }
        let Some(entry) = self.entries.get(&batch.producer_id) else {
            return Ok(Verdict::Append);
        };
        if batch.epoch < entry.epoch {
            return Err(SequenceError::StaleEpoch {
                producer_id: batch.producer_id,
                current: entry.epoch,
                got: batch.epoch,
            });
        }
        if batch.epoch > entry.epoch {
            return if batch.first_seq == 0 {
                Ok(Verdict::Append)
            } else {
                Err(SequenceError::OutOfOrder {
                    producer_id: batch.producer_id,
                    epoch: batch.epoch,
                    expected: 0,
                    got: batch.first_seq,
                })
            };
        }
        if let Some(original) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == batch.first_seq && b.last_seq == batch.last_seq)
        {
            return Ok(Verdict::Duplicate(*original));
        }
        match entry.batches.back() {
            Some(last) if batch.first_seq != add_seq(last.last_seq, 1) => {
                Err(SequenceError::OutOfOrder {
                    producer_id: batch.producer_id,
                    epoch: batch.epoch,
                    expected: add_seq(last.last_seq, 1),
                    got: batch.first_seq,
                })
            }
            _ => Ok(Verdict::Append),
        }
    }

    /// Records that `batch` was appended at `base_offset..=last_offset`.
    pub fn record(&mut self, batch: &ProducerBatch, base_offset: i64, last_offset: i64) {
        if !batch.is_idempotent() {
            return;
        }
        let entry = self
            .entries
            .entry(batch.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: batch.epoch,
                batches: VecDeque::with_capacity(CACHED_BATCHES),
            });
        if batch.epoch != entry.epoch {
            entry.epoch = batch.epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == CACHED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMeta {
            first_seq: batch.first_seq,
            last_seq: batch.last_seq,
            base_offset,
            last_offset,
        });
    }

    /// Replays a batch found in the log (recovery): the log is the truth, so no checks.
    pub fn observe(&mut self, header: &BatchHeader) {
        let last_offset = header
            .base_offset
            .saturating_add(i64::from(header.last_offset_delta));
        self.record(&ProducerBatch::of(header), header.base_offset, last_offset);
    }
}

/// Sequence arithmetic: sequences wrap from `i32::MAX` to 0.
fn add_seq(seq: i32, delta: i32) -> i32 {
    let sum = i64::from(seq) + i64::from(delta);
    // Both operands are non-negative for valid batches; rem_euclid keeps garbage in range too.
    i32::try_from(sum.rem_euclid(i64::from(i32::MAX) + 1)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(producer_id: i64, epoch: i16, first_seq: i32, count: i32) -> ProducerBatch {
        ProducerBatch {
            producer_id,
            epoch,
            first_seq,
            last_seq: add_seq(first_seq, count - 1),
        }
    }

    fn append(
        states: &mut ProducerStates,
        b: &ProducerBatch,
        next_offset: &mut i64,
    ) -> Result<Verdict, SequenceError> {
        let verdict = states.check(b)?;
        if verdict == Verdict::Append {
            let count = i64::from(add_seq(b.last_seq, -b.first_seq)) + 1;
            states.record(b, *next_offset, *next_offset + count - 1);
            *next_offset += count;
        }
        Ok(verdict)
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut states = ProducerStates::new();
        let mut next = 0;
        for i in 0..10 {
            assert_eq!(
                append(&mut states, &batch(7, 0, i * 3, 3), &mut next),
                Ok(Verdict::Append)
            );
        }
        assert_eq!(next, 30);
        // The last five batches are remembered with their offsets; older ones are not.
        let dup = append(&mut states, &batch(7, 0, 18, 3), &mut next);
        assert_eq!(
            dup,
            Ok(Verdict::Duplicate(BatchMeta {
                first_seq: 18,
                last_seq: 20,
                base_offset: 18,
                last_offset: 20
            }))
        );
        assert!(matches!(
            append(&mut states, &batch(7, 0, 12, 3), &mut next),
            Err(SequenceError::OutOfOrder {
                expected: 30,
                got: 12,
                ..
            })
        ));
        assert_eq!(next, 30, "nothing appended by a duplicate or a refusal");
    }

    #[test]
    fn gaps_are_out_of_order() {
        let mut states = ProducerStates::new();
        let mut next = 0;
        append(&mut states, &batch(1, 0, 0, 5), &mut next).unwrap();
        assert_eq!(
            append(&mut states, &batch(1, 0, 6, 1), &mut next),
            Err(SequenceError::OutOfOrder {
                producer_id: 1,
                epoch: 0,
                expected: 5,
                got: 6
            })
        );
        assert_eq!(
            append(&mut states, &batch(1, 0, 5, 1), &mut next),
            Ok(Verdict::Append)
        );
    }

    #[test]
    fn epochs_fence_and_restart_sequences() {
        let mut states = ProducerStates::new();
        let mut next = 0;
        append(&mut states, &batch(1, 3, 0, 2), &mut next).unwrap();
        assert_eq!(
            append(&mut states, &batch(1, 2, 2, 1), &mut next),
            Err(SequenceError::StaleEpoch {
                producer_id: 1,
                current: 3,
                got: 2
            })
        );
        assert!(matches!(
            append(&mut states, &batch(1, 4, 2, 1), &mut next),
            Err(SequenceError::OutOfOrder { expected: 0, .. })
        ));
        assert_eq!(
            append(&mut states, &batch(1, 4, 0, 1), &mut next),
            Ok(Verdict::Append)
        );
        assert_eq!(states.entries()[&1].epoch, 4);
        assert_eq!(states.entries()[&1].batches.len(), 1);
    }

    #[test]
    fn unknown_producers_and_plain_batches_are_accepted() {
        let mut states = ProducerStates::new();
        let mut next = 0;
        assert_eq!(
            append(&mut states, &batch(9, 0, 1234, 1), &mut next),
            Ok(Verdict::Append)
        );
        let plain = ProducerBatch {
            producer_id: -1,
            epoch: -1,
            first_seq: -1,
            last_seq: -1,
        };
        assert_eq!(append(&mut states, &plain, &mut next), Ok(Verdict::Append));
        assert_eq!(append(&mut states, &plain, &mut next), Ok(Verdict::Append));
        assert_eq!(states.entries().len(), 1);
    }

    #[test]
    fn sequences_wrap_after_i32_max() {
        let mut states = ProducerStates::new();
        let mut next = 0;
        let b = batch(1, 0, i32::MAX - 1, 4);
        assert_eq!(b.last_seq, 1);
        append(&mut states, &b, &mut next).unwrap();
        assert_eq!(
            append(&mut states, &batch(1, 0, 2, 1), &mut next),
            Ok(Verdict::Append)
        );
    }
}
