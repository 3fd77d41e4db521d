//! Producer settings: [`ProducerConfig`], a builder over [`ClientConfig`] with documented
//! defaults, and the checks [`super::Producer::new`] applies to it.
//!
//! ```
//! use std::time::Duration;
//! use weir_client::producer::{Acks, ProducerConfig};
//!
//! let config = ProducerConfig::new(["127.0.0.1:9092"])
//!     .linger(Duration::from_millis(20))
//!     .batch_size(64 << 10);
//! assert_eq!(config.acks, Acks::All);
//! assert!(config.idempotence);
//! ```

use std::time::Duration;

use crate::config::ClientConfig;
use crate::error::{Error, Result};

/// Most requests in flight per broker that idempotence allows: the broker remembers the last
/// five batches of each producer and partition for duplicate detection.
pub const IDEMPOTENT_IN_FLIGHT_MAX: usize = 5;

/// How many replicas must have a batch before the broker acknowledges it (Kafka's `acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: no response at all; a delivery resolves once the request is written, with
    /// offset -1. Nothing is retried after that point, and idempotence is impossible.
    None,
    /// `acks=1`: the leader has appended the batch.
    Leader,
    /// `acks=all` (-1): the batch is durable on the leader (Weir waits for the sync).
    All,
}

impl Acks {
    /// The wire value.
    pub fn code(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Leader => 1,
            Self::All => -1,
        }
    }
}

/// How batches are compressed (Kafka's `compression.type`). The records section of each
/// batch is compressed; a batch that compression would not make smaller is sent
/// uncompressed, as librdkafka does. See [`crate::compression`] for the formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Batches are sent as built.
    #[default]
    None,
    /// gzip (deflate), default level.
    Gzip,
    /// Snappy, in the xerial framing the Java client writes.
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// Zstandard, default level (3).
    Zstd,
}

impl Compression {
    /// The codec as the batch attributes name it.
    pub fn codec(self) -> weir_protocol::record_batch::Compression {
        use weir_protocol::record_batch::Compression as Codec;
        match self {
            Self::None => Codec::None,
            Self::Gzip => Codec::Gzip,
            Self::Snappy => Codec::Snappy,
            Self::Lz4 => Codec::Lz4,
            Self::Zstd => Codec::Zstd,
        }
    }
}

/// Producer settings. Every field is public; the setters exist for chaining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// Bootstrap addresses, client id, timeouts and reconnection shared with other clients.
    /// Its `request_timeout` bounds each produce request.
    pub client: ClientConfig,
    /// Acknowledgement level. Default [`Acks::All`].
    pub acks: Acks,
    /// Whether batches carry a producer id and sequence numbers, so that the broker drops
    /// retried duplicates and refuses gaps. Default true; requires [`Acks::All`] and at most
    /// [`IDEMPOTENT_IN_FLIGHT_MAX`] requests in flight.
    pub idempotence: bool,
    /// Bytes of records held by the producer (waiting, batched or in flight) before `send`
    /// waits for room. Default 32 MiB (Kafka's `buffer.memory`). Counted per record as an
    /// upper bound of its encoded size; the 61-byte batch headers come on top.
    pub buffer_memory: usize,
    /// A batch is sent once it holds this many bytes, without waiting for `linger`. Default
    /// 16 KiB (Kafka's `batch.size`); a larger record gets a batch of its own. While the
    /// partition's previous batch is still unanswered the open batch keeps growing, up to
    /// `max_request_size`, since it could not go earlier anyway: a busy partition sends fewer,
    /// larger batches.
    pub batch_size: usize,
    /// How long a batch that is not full waits for more records. Default 5 ms (Kafka's
    /// `linger.ms` since 3.x): a little latency for much larger batches.
    pub linger: Duration,
    /// How long `send` may wait for metadata and buffer room before it fails and hands the
    /// record back. Default 60 s (`max.block.ms`).
    pub max_block: Duration,
    /// How long a record may take from `send` returning to its acknowledgement, retries
    /// included; then it fails. Default 120 s (`delivery.timeout.ms`). Must be at least
    /// `linger + request_timeout`.
    pub delivery_timeout: Duration,
    /// Produce requests in flight per broker, and batches in flight per partition. Default 5
    /// (`max.in.flight.requests.per.connection`). With idempotence the broker's sequence
    /// checks keep each partition in order through retries; without it a retried batch can
    /// land after newer ones (as in Kafka), and 1 keeps the order.
    pub max_in_flight: usize,
    /// First delay before retrying a failed batch. Default 100 ms (`retry.backoff.ms`).
    pub retry_backoff: Duration,
    /// Largest delay between retries. Default 1 s (`retry.backoff.max.ms`).
    pub retry_backoff_max: Duration,
    /// Largest produce request, and so the largest record. Default 1 MiB (`max.request.size`).
    pub max_request_size: usize,
    /// Batch compression. Default [`Compression::None`].
    pub compression: Compression,
    /// Whether the producer's metadata requests ask the broker to create a topic that does
    /// not exist (Kafka's `allow.auto.create.topics`). Default true, as in the Java producer
    /// and librdkafka: producing to a new topic creates it on a broker that auto-creates
    /// topics. Consumers and [`crate::Admin`] never create topics by asking about them
    /// ([`ClientConfig::allow_auto_create_topics`], default false); this setting replaces
    /// that one for the producer's own lookups.
    pub allow_auto_create_topics: bool,
}

impl ProducerConfig {
    /// Defaults, with these bootstrap addresses.
    pub fn new<I, S>(bootstrap: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::from(ClientConfig::new(bootstrap))
    }

    /// Checks the combination of settings.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the first problem.
    pub fn validate(&self) -> Result<()> {
        let invalid = |why: &str| Err(Error::InvalidArgument(why.to_owned()));
        if self.idempotence && self.acks != Acks::All {
            return invalid("idempotence requires acks=all (or set idempotence(false))");
        }
        if self.idempotence && self.max_in_flight > IDEMPOTENT_IN_FLIGHT_MAX {
            return invalid("idempotence allows at most 5 requests in flight per broker");
        }
        if self.max_in_flight == 0 {
            return invalid("max_in_flight must be at least 1");
        }
        if self.buffer_memory == 0 || self.batch_size == 0 || self.max_request_size == 0 {
            return invalid("buffer_memory, batch_size and max_request_size must be positive");
        }
        if self.delivery_timeout < self.linger.saturating_add(self.client.request_timeout) {
            return invalid("delivery_timeout must be at least linger + request_timeout");
        }
        Ok(())
    }

    /// Sets [`Self::acks`].
    #[must_use]
    pub fn acks(mut self, acks: Acks) -> Self {
        self.acks = acks;
        self
    }

    /// Sets [`Self::idempotence`].
    #[must_use]
    pub fn idempotence(mut self, enabled: bool) -> Self {
        self.idempotence = enabled;
        self
    }

    /// Sets [`Self::buffer_memory`].
    #[must_use]
    pub fn buffer_memory(mut self, bytes: usize) -> Self {
        self.buffer_memory = bytes;
        self
    }

    /// Sets [`Self::batch_size`].
    #[must_use]
    pub fn batch_size(mut self, bytes: usize) -> Self {
        self.batch_size = bytes;
        self
    }

    /// Sets [`Self::linger`].
    #[must_use]
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Sets [`Self::max_block`].
    #[must_use]
    pub fn max_block(mut self, max_block: Duration) -> Self {
        self.max_block = max_block;
        self
    }

    /// Sets [`Self::delivery_timeout`].
    #[must_use]
    pub fn delivery_timeout(mut self, timeout: Duration) -> Self {
        self.delivery_timeout = timeout;
        self
    }

    /// Sets [`Self::max_in_flight`].
    #[must_use]
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests;
        self
    }

    /// Sets [`Self::retry_backoff`] and [`Self::retry_backoff_max`].
    #[must_use]
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_backoff = initial;
        self.retry_backoff_max = max.max(initial);
        self
    }

    /// Sets [`Self::max_request_size`].
    #[must_use]
    pub fn max_request_size(mut self, bytes: usize) -> Self {
        self.max_request_size = bytes;
        self
    }

    /// Sets [`Self::compression`].
    #[must_use]
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets [`Self::allow_auto_create_topics`].
    #[must_use]
    pub fn allow_auto_create_topics(mut self, allow: bool) -> Self {
        self.allow_auto_create_topics = allow;
        self
    }

    /// Changes the shared client settings in place.
    #[must_use]
    pub fn client(mut self, change: impl FnOnce(ClientConfig) -> ClientConfig) -> Self {
        self.client = change(self.client);
        self
    }
}

impl From<ClientConfig> for ProducerConfig {
    /// The producer defaults over these client settings.
    fn from(client: ClientConfig) -> Self {
        Self {
            client,
            acks: Acks::All,
            idempotence: true,
            buffer_memory: 32 << 20,
            batch_size: 16 << 10,
            linger: Duration::from_millis(5),
            max_block: Duration::from_secs(60),
            delivery_timeout: Duration::from_secs(120),
            max_in_flight: IDEMPOTENT_IN_FLIGHT_MAX,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            max_request_size: 1 << 20,
            compression: Compression::None,
            allow_auto_create_topics: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_combinations_are_named() {
        let config = ProducerConfig::new(["localhost:9092"]);
        config.validate().unwrap();
        let acks_one = config.clone().acks(Acks::Leader).validate().unwrap_err();
        assert!(acks_one.to_string().contains("acks=all"), "{acks_one}");
        config
            .clone()
            .acks(Acks::None)
            .idempotence(false)
            .max_in_flight(10)
            .validate()
            .unwrap();
        assert!(config.clone().max_in_flight(6).validate().is_err());
        assert!(config.clone().max_in_flight(0).validate().is_err());
        assert!(config.clone().buffer_memory(0).validate().is_err());
        let short = config.delivery_timeout(Duration::from_secs(1));
        assert!(short.validate().is_err());
    }
}
