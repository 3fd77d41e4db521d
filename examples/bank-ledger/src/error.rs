//! The demo's one error type: the client's failures, undecodable records, and a log that does
//! not fold (which means a bug, reported rather than papered over).

use crate::model::FoldError;

/// Everything the ledger's services can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the log, or the embedded broker, failed.
    #[error(transparent)]
    Kit(#[from] event_kit::Error),
    /// The Kafka client failed (after its own retries).
    #[error(transparent)]
    Client(#[from] weir_client::Error),
    /// The producer refused a record (its buffer stayed full, or it is closed).
    #[error(transparent)]
    Send(#[from] Box<weir_client::producer::SendError>),
    /// Closing or flushing the producer found undelivered records.
    #[error(transparent)]
    Flush(#[from] weir_client::producer::FlushError),
    /// A record was not acknowledged.
    #[error("{what} was not written: {source}")]
    Delivery {
        /// Which record.
        what: String,
        /// Why.
        #[source]
        source: weir_client::producer::DeliveryError,
    },
    /// A value could not be encoded as JSON.
    #[error("encoding a record: {0}")]
    Encode(#[source] serde_json::Error),
    /// The events do not fold into a valid ledger.
    #[error(transparent)]
    Fold(#[from] FoldError),
    /// Reading or writing a local file (the projection's checkpoint, the broker's data).
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The topics exist with different partition counts, so an account's commands and
    /// events would not share a partition index.
    #[error("topic {topic} has {found} partitions, expected {expected}")]
    Partitions {
        /// The topic.
        topic: String,
        /// Its partition count.
        found: usize,
        /// What the demo needs.
        expected: usize,
    },
    /// Waiting for something took longer than allowed.
    #[error("timed out: {0}")]
    Timeout(String),
}

/// The demo's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
