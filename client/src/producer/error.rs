//! How producing fails: [`SendError`] (the record was not accepted and is handed back),
//! [`DeliveryError`] (an accepted record was not written) and [`FlushError`] (the failures
//! a flush or close reports).

use std::sync::Arc;
use std::time::Duration;

use super::record::ProducerRecord;
use crate::error::Error;

/// `send` refused a record; it is handed back untouched in [`SendError::record`].
#[derive(Debug, thiserror::Error)]
#[error("record for {} not sent: {reason}", record.topic)]
pub struct SendError {
    /// The record, to retry, store or drop as the caller sees fit (boxed to keep the error
    /// small on the success path).
    pub record: Box<ProducerRecord>,
    /// Why.
    #[source]
    pub reason: SendFailure,
}

impl SendError {
    /// The record handed back.
    pub fn into_record(self) -> ProducerRecord {
        *self.record
    }
}

/// Why `send` refused a record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendFailure {
    /// The buffer stayed full for `max_block`: the brokers are slower than the sends.
    #[error("the producer's buffer stayed full for {0:?} (max_block)")]
    BufferFull(Duration),
    /// The topic's metadata could not be had (within `max_block`, or not at all).
    #[error("no metadata for the topic: {0}")]
    Metadata(#[source] Error),
    /// The topic does not exist (within `max_block`), and was not created: either this
    /// producer does not ask for it (`auto_create` false: its
    /// [`super::ProducerConfig::allow_auto_create_topics`] is off) or the broker does not
    /// create topics when asked.
    #[error("{}", unknown_topic(*auto_create))]
    UnknownTopic {
        /// The producer's `allow_auto_create_topics`.
        auto_create: bool,
    },
    /// The record alone is larger than `max_request_size` or `buffer_memory`.
    #[error("the record needs up to {size} bytes, more than the limit of {limit}")]
    RecordTooLarge {
        /// Its size bound.
        size: usize,
        /// The smaller of `max_request_size` and `buffer_memory`.
        limit: usize,
    },
    /// The explicit partition does not exist.
    #[error("partition {partition} does not exist (the topic has {count})")]
    UnknownPartition {
        /// The partition asked for.
        partition: i32,
        /// How many the topic has.
        count: usize,
    },
    /// The producer is closing or closed.
    #[error("the producer is closed")]
    Closed,
}

/// Why a topic was not created, naming the setting that would change it.
fn unknown_topic(auto_create: bool) -> &'static str {
    if auto_create {
        "the topic does not exist and the broker did not create it: its automatic topic \
         creation is off (auto_create_topics in Weir, auto.create.topics.enable in Kafka); \
         create the topic first"
    } else {
        "the topic does not exist, and this producer does not ask the broker to create it \
         (ProducerConfig::allow_auto_create_topics is false); create the topic first or set \
         allow_auto_create_topics(true)"
    }
}

/// An accepted record was not written. Cloneable: one failure is reported to every record of
/// a batch, so the cause is shared.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The broker refused the batch with an error retrying cannot fix, or the request could
    /// not be built.
    #[error("delivery failed: {0}")]
    Failed(#[source] Arc<Error>),
    /// `delivery_timeout` passed before an acknowledgement; the last failure, if any, says
    /// why. The record may or may not have been written.
    #[error("delivery timed out{}", last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    TimedOut {
        /// The last failure of the retries.
        last_error: Option<Arc<Error>>,
    },
    /// The producer's task ended without answering (it panicked or the runtime stopped).
    #[error("the producer stopped before answering")]
    Aborted,
}

/// One failed batch, as reported by flush and close.
#[derive(Debug, Clone)]
pub struct FailedBatch {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// How many records the batch held.
    pub records: usize,
    /// Why it failed.
    pub error: DeliveryError,
}

/// Most failed batches a report lists; beyond that they are only counted.
pub const FAILED_BATCHES_LISTED: usize = 1_000;

/// The deliveries that failed since the previous flush or close (whether or not their
/// [`super::DeliveryFuture`]s were awaited).
#[derive(Debug, Clone, Default, thiserror::Error)]
#[error("{failed_records} records in {failed_batches} batches were not delivered")]
pub struct FlushError {
    /// Exact count of records that failed.
    pub failed_records: u64,
    /// Exact count of batches that failed.
    pub failed_batches: u64,
    /// The first [`FAILED_BATCHES_LISTED`] failed batches, oldest first.
    pub batches: Vec<FailedBatch>,
}

impl FlushError {
    /// Notes a failed batch.
    pub(crate) fn record(&mut self, failed: FailedBatch) {
        self.failed_records = self
            .failed_records
            .saturating_add(u64::try_from(failed.records).unwrap_or(u64::MAX));
        self.failed_batches = self.failed_batches.saturating_add(1);
        if self.batches.len() < FAILED_BATCHES_LISTED {
            self.batches.push(failed);
        }
    }

    /// `Ok` when nothing failed, else the report.
    pub(crate) fn into_result(self) -> Result<(), Self> {
        if self.failed_batches == 0 {
            Ok(())
        } else {
            Err(self)
        }
    }
}
