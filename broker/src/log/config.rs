//! Per-log settings, with Kafka's names and defaults where Kafka has one.

use std::time::Duration;

/// When appended data is forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Every append is synced before it is acknowledged (group commit shares the `fdatasync`).
    EveryAppend,
    /// Synced in the background at most this long after it was appended; acknowledged before.
    /// Producers asking for `acks=all` still wait for the sync.
    Interval(Duration),
    /// Left to the operating system's writeback; only `acks=all` waits for a sync.
    Os,
}

/// How appends reach the active segment. Reads are zero-copy from the memory map either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WritePath {
    /// `pwritev` into the preallocated file: no page faults on the append path, and an I/O error
    /// is an error rather than a signal. Measured fastest on ext4 (`docs/benchmarks.md`).
    #[default]
    Pwrite,
    /// Copy into the writable memory map. Each first touch of a page faults (on ext4 with
    /// `page_mkwrite` on an unwritten extent), which costs about 40% of durable throughput.
    Mmap,
}

/// What happens to old records (Kafka's `cleanup.policy`): deleted by retention, compacted to
/// the last record per key, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Sealed segments past `retention.ms` / `retention.bytes` are deleted.
    pub delete: bool,
    /// The cleaner keeps only the last record of each key (and drops old tombstones).
    pub compact: bool,
}

impl CleanupPolicy {
    /// `cleanup.policy=delete`, Kafka's default.
    pub const DELETE: Self = Self {
        delete: true,
        compact: false,
    };
    /// `cleanup.policy=compact`.
    pub const COMPACT: Self = Self {
        delete: false,
        compact: true,
    };
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        Self::DELETE
    }
}

/// Which timestamp a topic's records carry (`message.timestamp.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer's timestamps are kept, within the topic's allowed difference.
    #[default]
    CreateTime,
    /// The broker stamps each batch with its append time.
    LogAppendTime,
}

/// What the broker accepts from producers into a log: Kafka's message-format topic configs.
/// Checked by the produce path, not by the log (the log stores whatever it is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRules {
    /// Largest record batch accepted, in bytes as sent (`max.message.bytes`).
    pub max_message_bytes: u32,
    /// Producer's or broker's timestamps (`message.timestamp.type`).
    pub timestamp_type: TimestampType,
    /// With CreateTime, how far in the past a batch's timestamps may be
    /// (`message.timestamp.before.max.ms`, KIP-937).
    pub timestamp_before_max_ms: i64,
    /// With CreateTime, how far in the future (`message.timestamp.after.max.ms`).
    pub timestamp_after_max_ms: i64,
    /// Replicas that must have a batch before `acks=all` is answered
    /// (`min.insync.replicas`); a single broker is one replica.
    pub min_insync_replicas: u32,
}

impl Default for MessageRules {
    fn default() -> Self {
        Self {
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            min_insync_replicas: 1,
        }
    }
}

/// When and how the cleaner compacts a log whose policy includes `compact`; Kafka's names and
/// defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionConfig {
    /// Tombstones (null values) are kept this long after the segment holding them was cleaned,
    /// so consumers can see the delete (`delete.retention.ms`).
    pub delete_retention_ms: i64,
    /// A record is not compacted away until it is at least this old (`min.compaction.lag.ms`).
    pub min_compaction_lag_ms: i64,
    /// A record older than this makes its log eligible whatever its dirty ratio
    /// (`max.compaction.lag.ms`).
    pub max_compaction_lag_ms: i64,
    /// The share of the log not yet cleaned above which it is cleaned
    /// (`min.cleanable.dirty.ratio`), between 0 and 1.
    pub min_cleanable_dirty_ratio: f64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        Self {
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
        }
    }
}

/// Settings for one partition log.
///
/// Fixed for the life of an open log: `flush` and `write_path`. Everything else may change
/// while it is open ([`super::PartitionLog::set_config`]): a new `segment.bytes` applies from
/// the next roll, retention and compaction settings from the next pass.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Size a segment is preallocated to; it rolls when the next batch would not fit.
    /// Kafka's `segment.bytes`. At most `i32::MAX` (file positions are 32-bit in the index).
    pub segment_bytes: u32,
    /// Age after which the active segment rolls at the next append (`segment.ms`).
    pub segment_ms: i64,
    /// Bytes of log between two offset-index entries (`index.interval.bytes`).
    pub index_interval_bytes: u32,
    /// Sealed segments are deleted, oldest first, while the log is larger than this
    /// (`retention.bytes`); `None` keeps everything.
    pub retention_bytes: Option<u64>,
    /// Sealed segments whose newest record is older than this are deleted (`retention.ms`);
    /// `None` keeps everything.
    pub retention_ms: Option<i64>,
    /// Durability policy.
    pub flush: FlushPolicy,
    /// How appends are written into the active segment.
    pub write_path: WritePath,
    /// Delete by retention, compact, or both (`cleanup.policy`).
    pub cleanup_policy: CleanupPolicy,
    /// When the cleaner compacts this log (used when `cleanup_policy.compact`).
    pub compaction: CompactionConfig,
    /// What produce requests may append.
    pub rules: MessageRules,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 128 << 20,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            index_interval_bytes: 4096,
            retention_bytes: None,
            retention_ms: Some(7 * 24 * 60 * 60 * 1000),
            flush: FlushPolicy::EveryAppend,
            write_path: WritePath::default(),
            cleanup_policy: CleanupPolicy::default(),
            compaction: CompactionConfig::default(),
            rules: MessageRules::default(),
        }
    }
}
