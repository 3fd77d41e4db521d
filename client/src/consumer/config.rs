//! [`ConsumerConfig`]: the consumer's settings, with Kafka's names and defaults where they
//! apply.

use std::time::Duration;

use super::assignor::Assignor;
use crate::config::ClientConfig;

/// Where to start when a partition has no committed offset, or when its position is out of
/// range (Kafka's `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OffsetReset {
    /// The log start offset: everything still retained.
    Earliest,
    /// The log end offset: only records produced from now on (Kafka's default).
    Latest,
    /// Kafka's `none`: report an error from `poll` and leave the partition stalled until
    /// the application seeks it.
    Fail,
}

/// Consumer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// Bootstrap addresses, client id, timeouts.
    pub client: ClientConfig,
    /// The consumer group: needed for committed offsets and for `subscribe`. Default none.
    pub group_id: Option<String>,
    /// `auto.offset.reset`. Default [`OffsetReset::Latest`].
    pub auto_offset_reset: OffsetReset,
    /// Commit the offsets of records returned by earlier polls every
    /// [`Self::auto_commit_interval`] (only with a group id). Default true.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`. Default 5 s.
    pub auto_commit_interval: Duration,
    /// How long the broker may hold a fetch waiting for [`Self::fetch_min_bytes`]
    /// (`fetch.max.wait.ms`). Default 500 ms.
    pub fetch_max_wait: Duration,
    /// Bytes the broker waits for before answering a fetch (`fetch.min.bytes`). Default 1.
    pub fetch_min_bytes: i32,
    /// Largest fetch response asked for (`fetch.max.bytes`). Default 50 MiB.
    pub fetch_max_bytes: usize,
    /// Largest amount fetched, and buffered, per partition (`max.partition.fetch.bytes`).
    /// Default 1 MiB.
    pub max_partition_fetch_bytes: usize,
    /// Bytes fetched ahead of the application, all partitions together. At the bound the
    /// consumer stops fetching until `poll` takes records. A single batch larger than what
    /// is left is still taken (as Kafka does, so a consumer never gets stuck), so the buffer
    /// can exceed the bound by at most one batch per broker. Default 64 MiB.
    pub max_prefetch_bytes: usize,
    /// Most records one `poll` returns (`max.poll.records`). Default 500.
    pub max_poll_records: usize,
    /// The group's session timeout (`session.timeout.ms`): a member silent this long is
    /// removed. Must lie within the broker's bounds (6 s to 30 min by default). Default 45 s.
    pub session_timeout: Duration,
    /// Time between heartbeats (`heartbeat.interval.ms`). Default 3 s.
    pub heartbeat_interval: Duration,
    /// How long the coordinator waits for members to rejoin during a rebalance. Membership
    /// runs in the background, so members rejoin promptly; default 60 s.
    pub rebalance_timeout: Duration,
    /// Assignors offered when joining, most preferred first. Default range, round-robin.
    pub assignors: Vec<Assignor>,
    /// Delay before retrying a failed fetch, offset lookup or coordinator request
    /// (`retry.backoff.ms`). Default 100 ms.
    pub retry_backoff: Duration,
}

impl ConsumerConfig {
    /// Defaults, with these client settings.
    pub fn new(client: ClientConfig) -> Self {
        Self {
            client,
            group_id: None,
            auto_offset_reset: OffsetReset::Latest,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            fetch_max_wait: Duration::from_millis(500),
            fetch_min_bytes: 1,
            fetch_max_bytes: 50 << 20,
            max_partition_fetch_bytes: 1 << 20,
            max_prefetch_bytes: 64 << 20,
            max_poll_records: 500,
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            rebalance_timeout: Duration::from_secs(60),
            assignors: vec![Assignor::Range, Assignor::RoundRobin],
            retry_backoff: Duration::from_millis(100),
        }
    }

    /// Sets [`Self::group_id`].
    #[must_use]
    pub fn group_id(mut self, group: impl Into<String>) -> Self {
        self.group_id = Some(group.into());
        self
    }

    /// Sets [`Self::auto_offset_reset`].
    #[must_use]
    pub fn auto_offset_reset(mut self, reset: OffsetReset) -> Self {
        self.auto_offset_reset = reset;
        self
    }

    /// Sets [`Self::enable_auto_commit`].
    #[must_use]
    pub fn enable_auto_commit(mut self, enable: bool) -> Self {
        self.enable_auto_commit = enable;
        self
    }

    /// Sets [`Self::auto_commit_interval`].
    #[must_use]
    pub fn auto_commit_interval(mut self, interval: Duration) -> Self {
        self.auto_commit_interval = interval;
        self
    }

    /// Sets [`Self::fetch_max_wait`] and [`Self::fetch_min_bytes`].
    #[must_use]
    pub fn fetch_wait(mut self, max_wait: Duration, min_bytes: i32) -> Self {
        self.fetch_max_wait = max_wait;
        self.fetch_min_bytes = min_bytes;
        self
    }

    /// Sets [`Self::max_partition_fetch_bytes`].
    #[must_use]
    pub fn max_partition_fetch_bytes(mut self, bytes: usize) -> Self {
        self.max_partition_fetch_bytes = bytes.max(1);
        self
    }

    /// Sets [`Self::max_prefetch_bytes`].
    #[must_use]
    pub fn max_prefetch_bytes(mut self, bytes: usize) -> Self {
        self.max_prefetch_bytes = bytes.max(1);
        self
    }

    /// Sets [`Self::max_poll_records`].
    #[must_use]
    pub fn max_poll_records(mut self, records: usize) -> Self {
        self.max_poll_records = records.max(1);
        self
    }

    /// Sets [`Self::session_timeout`] and [`Self::heartbeat_interval`].
    #[must_use]
    pub fn session(mut self, timeout: Duration, heartbeat_interval: Duration) -> Self {
        self.session_timeout = timeout;
        self.heartbeat_interval = heartbeat_interval;
        self
    }

    /// Sets [`Self::rebalance_timeout`].
    #[must_use]
    pub fn rebalance_timeout(mut self, timeout: Duration) -> Self {
        self.rebalance_timeout = timeout;
        self
    }

    /// Sets [`Self::assignors`] (most preferred first).
    #[must_use]
    pub fn assignors(mut self, assignors: Vec<Assignor>) -> Self {
        self.assignors = assignors;
        self
    }
}

/// Milliseconds as the wire's i32, saturating.
pub(crate) fn millis_i32(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
