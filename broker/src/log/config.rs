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

/// Settings for one partition log.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        }
    }
}
