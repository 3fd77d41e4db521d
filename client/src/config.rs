//! Client configuration: a builder with documented defaults.
//!
//! ```
//! use std::time::Duration;
//! use weir_client::ClientConfig;
//!
//! let config = ClientConfig::new(["127.0.0.1:9092"])
//!     .client_id("billing")
//!     .request_timeout(Duration::from_secs(10));
//! assert_eq!(config.client_id, "billing");
//! ```

use std::time::Duration;

/// Settings shared by the producer, consumer and admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `host:port` addresses to learn the cluster from (any broker will do).
    pub bootstrap: Vec<String>,
    /// Sent with every request; shows in broker logs and DescribeGroups. Default `weir-client`.
    pub client_id: String,
    /// Connecting (TCP and the ApiVersions handshake). Default 10 s.
    pub connect_timeout: Duration,
    /// One request's round trip. Default 30 s (Kafka's `request.timeout.ms`).
    pub request_timeout: Duration,
    /// Cached metadata older than this is fetched again. Default 5 min (Kafka's
    /// `metadata.max.age.ms`).
    pub metadata_max_age: Duration,
    /// First delay before reconnecting to a broker that failed. Default 50 ms
    /// (`reconnect.backoff.ms`).
    pub reconnect_backoff: Duration,
    /// Largest delay between reconnection attempts. Default 1 s (`reconnect.backoff.max.ms`).
    pub reconnect_backoff_max: Duration,
    /// Whether metadata requests may create topics on brokers that auto-create. Default false:
    /// a typo in a topic name should be an error, not a new topic.
    pub allow_auto_create_topics: bool,
}

impl ClientConfig {
    /// Defaults, with these bootstrap addresses.
    pub fn new<I, S>(bootstrap: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            bootstrap: bootstrap.into_iter().map(Into::into).collect(),
            client_id: "weir-client".to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            metadata_max_age: Duration::from_secs(300),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            allow_auto_create_topics: false,
        }
    }

    /// Sets [`Self::client_id`].
    #[must_use]
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// Sets [`Self::connect_timeout`].
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`Self::request_timeout`].
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`Self::metadata_max_age`].
    #[must_use]
    pub fn metadata_max_age(mut self, age: Duration) -> Self {
        self.metadata_max_age = age;
        self
    }

    /// Sets [`Self::reconnect_backoff`] and [`Self::reconnect_backoff_max`].
    #[must_use]
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.reconnect_backoff = initial;
        self.reconnect_backoff_max = max.max(initial);
        self
    }

    /// Sets [`Self::allow_auto_create_topics`].
    #[must_use]
    pub fn allow_auto_create_topics(mut self, allow: bool) -> Self {
        self.allow_auto_create_topics = allow;
        self
    }
}
