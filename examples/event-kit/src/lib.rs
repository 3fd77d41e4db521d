//! `event-kit`: the pieces the event-sourcing demos (`bank-ledger`, `stock-history`) share,
//! kept in one place so that each demo's own code is only its domain.
//!
//! - [`log`]: a partition's end offsets, offsets by timestamp, the records of an offset range,
//!   and decoding a record's JSON value: how a service rebuilds state from the event log.
//! - [`embedded`]: the in-process broker a demo runs on when no `--bootstrap` is given.
//! - [`Error`]: what those can fail with; each demo's error type wraps it.

pub mod embedded;
pub mod log;

/// What reading the log or running the embedded broker can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Kafka client failed (after its own retries).
    #[error(transparent)]
    Client(#[from] weir_client::Error),
    /// A record's value is not the JSON the demo writes.
    #[error("undecodable record {topic}-{partition}@{offset}: {source}")]
    Decode {
        /// Where.
        topic: String,
        /// Where.
        partition: i32,
        /// Where.
        offset: i64,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The embedded broker failed.
    #[error("embedded broker: {0}")]
    Broker(#[from] weir_broker::BrokerError),
    /// The embedded broker's temporary data directory could not be made.
    #[error("temporary directory: {0}")]
    TempDir(#[source] std::io::Error),
    /// Waiting for something took longer than allowed.
    #[error("timed out: {0}")]
    Timeout(String),
}

/// The kit's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
