//! The demo's one error type: the client's failures, undecodable records, bad arguments.

/// Everything the stock history's services can fail with.
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
    /// Creating the embedded broker's data directory.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The topics exist with different partition counts, so a movements partition would
    /// not have its own snapshots partition.
    #[error("topic {topic} has {found} partitions, expected {expected}")]
    Partitions {
        /// The topic.
        topic: String,
        /// Its partition count.
        found: usize,
        /// What the demo needs.
        expected: usize,
    },
    /// A time given on the command line is not one this demo reads.
    #[error("bad time {0:?}: expected milliseconds since the epoch or YYYY-MM-DDTHH:MM[:SS]Z")]
    Time(String),
    /// Waiting for something took longer than allowed.
    #[error("timed out: {0}")]
    Timeout(String),
}

/// The demo's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
