//! Broker configuration: command-line flags, each with a `WEIR_*` environment variable.
//!
//! Defaults give a broker that works out of the box for one developer: `127.0.0.1:9092`, data
//! in `./weir-data`, topics auto-created with one partition, every append synced before it is
//! acknowledged. `docs/configuration.md` lists every setting.
//!
//! Every value is checked at start-up ([`BrokerConfig::validate`], called by `main` and by
//! [`crate::Broker::start`]): a setting the broker cannot honour (zero partitions, a segment
//! too small for a batch, no connections) stops it before it touches the data directory, with
//! the flag and the accepted range in the message, instead of failing on first use.

use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::groups::coordinator::GroupConfig;
use crate::log::{CleanupPolicy, FlushPolicy, LogConfig};
use crate::topics::CatalogOptions;

/// Weir: a Kafka-compatible message broker in one binary.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "weir-broker",
    version,
    about,
    after_help = "Examples:\n  weir-broker                                  # 127.0.0.1:9092, data in ./weir-data\n  weir-broker --data-dir /var/lib/weir --listen 0.0.0.0:9092 --advertised-host broker1.example\n  WEIR_FLUSH=interval:100 weir-broker          # acknowledge before syncing; sync every 100 ms"
)]
pub struct BrokerConfig {
    /// Address to accept Kafka clients on.
    #[arg(long, env = "WEIR_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,

    /// Directory holding the topic catalog and one directory per partition.
    #[arg(long, env = "WEIR_DATA_DIR", default_value = "./weir-data")]
    pub data_dir: PathBuf,

    /// Host name given to clients in metadata responses (default: the listen address's IP).
    /// Clients connect to this name, so it must resolve to this broker from where they run.
    #[arg(long, env = "WEIR_ADVERTISED_HOST")]
    pub advertised_host: Option<String>,

    /// Create a topic the first time a client asks for its metadata (as Kafka does; producers
    /// ask for metadata before producing).
    #[arg(long, env = "WEIR_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_topics: bool,

    /// Partitions of an auto-created topic (and of CreateTopics requests that ask for -1).
    #[arg(long, env = "WEIR_DEFAULT_PARTITIONS", default_value_t = 1)]
    pub default_partitions: u32,

    /// Size each segment file is preallocated to, in bytes (Kafka's `segment.bytes`).
    #[arg(long, env = "WEIR_SEGMENT_BYTES", default_value_t = 128 << 20)]
    pub segment_bytes: u32,

    /// Bytes of log between two entries of the sparse offset and time indexes (Kafka's
    /// `index.interval.bytes`).
    #[arg(long, env = "WEIR_INDEX_INTERVAL_BYTES", default_value_t = 4096)]
    pub index_interval_bytes: u32,

    /// Roll the active segment after this many milliseconds (`segment.ms`).
    #[arg(long, env = "WEIR_SEGMENT_MS", default_value_t = 7 * 24 * 3_600_000)]
    pub segment_ms: i64,

    /// Delete sealed segments whose newest record is older than this, in milliseconds
    /// (`retention.ms`); -1 keeps them forever.
    #[arg(long, env = "WEIR_RETENTION_MS", default_value_t = 7 * 24 * 3_600_000, allow_negative_numbers = true)]
    pub retention_ms: i64,

    /// Delete the oldest sealed segments while a partition is larger than this many bytes
    /// (`retention.bytes`); -1 means no size limit.
    #[arg(long, env = "WEIR_RETENTION_BYTES", default_value_t = -1, allow_negative_numbers = true)]
    pub retention_bytes: i64,

    /// How often retention is applied and producer state snapshotted, in milliseconds
    /// (Kafka's `log.retention.check.interval.ms`).
    #[arg(long, env = "WEIR_RETENTION_CHECK_MS", default_value_t = 300_000)]
    pub retention_check_ms: u64,

    /// Smallest session timeout a consumer may ask for, in milliseconds
    /// (`group.min.session.timeout.ms`).
    #[arg(
        long,
        env = "WEIR_GROUP_MIN_SESSION_TIMEOUT_MS",
        default_value_t = 6_000
    )]
    pub group_min_session_timeout_ms: i32,

    /// Largest session timeout a consumer may ask for, in milliseconds
    /// (`group.max.session.timeout.ms`).
    #[arg(
        long,
        env = "WEIR_GROUP_MAX_SESSION_TIMEOUT_MS",
        default_value_t = 1_800_000
    )]
    pub group_max_session_timeout_ms: i32,

    /// How long the first rebalance of an empty group waits for more members, in milliseconds
    /// (`group.initial.rebalance.delay.ms`).
    #[arg(
        long,
        env = "WEIR_GROUP_INITIAL_REBALANCE_DELAY_MS",
        default_value_t = 3_000
    )]
    pub group_initial_rebalance_delay_ms: i64,

    /// When appended records are synced to disk: `always` (before every acknowledgement, with
    /// group commit), `interval:<ms>` (in the background; acks=all still waits), or `os`.
    #[arg(long, env = "WEIR_FLUSH", default_value = "always", value_parser = parse_flush)]
    pub flush: FlushPolicy,

    /// Largest request frame accepted, in bytes; larger ones close the connection before any
    /// memory is set aside for them.
    #[arg(long, env = "WEIR_MAX_FRAME_BYTES", default_value_t = 100 << 20)]
    pub max_frame_bytes: usize,

    /// Most client connections served at once; further ones wait in the accept queue.
    #[arg(long, env = "WEIR_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Close a connection that sends nothing for this many seconds, or that leaves a
    /// response unread this long (Kafka's `connections.max.idle.ms`, in seconds here).
    #[arg(long, env = "WEIR_IDLE_TIMEOUT_SECS", default_value_t = 600)]
    pub idle_timeout_secs: u64,

    /// Close a connection whose request has started arriving but is not complete this many
    /// seconds later (a client stalled or trickling inside a frame).
    #[arg(long, env = "WEIR_FRAME_TIMEOUT_SECS", default_value_t = 60)]
    pub frame_timeout_secs: u64,

    /// The broker-wide budget of request bytes (Kafka's `queued.max.request.bytes`): a frame
    /// larger than 64 KiB takes its size from it as soon as its size prefix is read, before its
    /// body is buffered, and gives it back once decoded; a produce holds it until appended
    /// (and, for acks=all, synced). When it is spent, connections waiting for it are not read:
    /// senders faster than the broker are slowed down instead of growing its memory. A single
    /// larger request takes the whole budget.
    #[arg(long, env = "WEIR_MAX_PRODUCE_BYTES_IN_FLIGHT", default_value_t = 256 << 20)]
    pub max_produce_bytes_in_flight: usize,

    /// Close a connection whose first request has not fully arrived this many milliseconds
    /// after it was accepted (like a TLS handshake timeout): a client that connects and stays
    /// silent holds a connection slot for this long, not for the idle timeout.
    #[arg(long, env = "WEIR_FIRST_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub first_request_timeout_ms: u64,

    /// Most connections from one IP address at once (Kafka's `max.connections.per.ip`); a
    /// connection over it is closed as soon as it is accepted, so one host cannot take every
    /// slot of `--max-connections`.
    #[arg(long, env = "WEIR_MAX_CONNECTIONS_PER_IP", default_value_t = 1_000)]
    pub max_connections_per_ip: usize,

    /// On SIGTERM, how long connections get to deliver their last responses, in milliseconds,
    /// before they are closed regardless (parked fetches and group joins are answered at
    /// once; this bounds clients that do not read).
    #[arg(long, env = "WEIR_SHUTDOWN_GRACE_MS", default_value_t = 5_000)]
    pub shutdown_grace_ms: u64,
    /// Threads opening (and, after a crash, recovering) partition logs at start-up (Kafka's
    /// `num.recovery.threads.per.data.dir`). Default: 4 per CPU, between 4 and 32.
    #[arg(long, env = "WEIR_RECOVERY_THREADS")]
    pub recovery_threads: Option<usize>,

    /// Most record bytes in one fetch response, whatever the request asks for (Kafka's
    /// `fetch.max.bytes`); the first batch is returned even when larger, as in Kafka.
    #[arg(long, env = "WEIR_MAX_FETCH_BYTES", default_value_t = 55 << 20)]
    pub max_fetch_bytes: usize,

    /// Where the HTTP listener (`/metrics`, `/health`, `/ready`) binds, or `off`. Default
    /// 127.0.0.1:9644; when that is taken (another broker on this machine) the broker warns
    /// and runs without it, while an address given here that cannot be bound stops the start.
    #[arg(long, env = "WEIR_HTTP_LISTEN", value_parser = parse_http_listen)]
    pub http_listen: Option<HttpListen>,

    /// Largest record batch a producer may send, in bytes (Kafka's `message.max.bytes`; a
    /// topic's `max.message.bytes` overrides it). A larger one gets MESSAGE_TOO_LARGE.
    #[arg(long, env = "WEIR_MESSAGE_MAX_BYTES", default_value_t = 1_048_588)]
    pub message_max_bytes: u32,

    /// Log lines as human-readable text, or as JSON objects (one per line: timestamp, level,
    /// target, message and fields) for log shippers.
    #[arg(long, env = "WEIR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Cluster membership (`--node-id`, `--cluster-listen`, `--peers`); all absent for a
    /// single broker.
    #[command(flatten)]
    pub cluster: crate::cluster::peers::ClusterArgs,

    /// What happens to old records of a topic that does not say (Kafka's `log.cleanup.policy`):
    /// `delete` (retention deletes old segments), `compact` (the cleaner keeps the last record
    /// of each key), or `compact,delete` (both).
    #[arg(long, env = "WEIR_LOG_CLEANUP_POLICY", default_value = "delete", value_parser = parse_cleanup_policy)]
    pub log_cleanup_policy: CleanupPolicy,

    /// How often the log cleaner looks for logs to compact, in ms (Kafka's
    /// `log.cleaner.backoff.ms`).
    #[arg(long, env = "WEIR_LOG_CLEANER_BACKOFF_MS", default_value_t = 15_000)]
    pub log_cleaner_backoff_ms: u64,

    /// Threads compacting logs (Kafka's `log.cleaner.threads`).
    #[arg(long, env = "WEIR_LOG_CLEANER_THREADS", default_value_t = 1)]
    pub log_cleaner_threads: usize,

    /// Most bytes per second the cleaner threads read and write together (Kafka's
    /// `log.cleaner.io.max.bytes.per.second`); no limit when unset.
    #[arg(long, env = "WEIR_LOG_CLEANER_IO_MAX_BYTES_PER_SECOND")]
    pub log_cleaner_io_max_bytes_per_second: Option<u64>,

    /// Memory for the cleaner's key→offset maps, shared by its threads, in bytes (Kafka's
    /// `log.cleaner.dedupe.buffer.size`): 24 bytes a key; a log with more distinct keys in its
    /// dirty part is cleaned in several passes.
    #[arg(long, env = "WEIR_LOG_CLEANER_DEDUPE_BUFFER_SIZE", default_value_t = crate::log::cleaner::DEFAULT_DEDUPE_BUFFER_BYTES)]
    pub log_cleaner_dedupe_buffer_size: usize,

    /// Share of a compacted log not yet cleaned above which it is cleaned, between 0 and 1
    /// (Kafka's `log.cleaner.min.cleanable.ratio`, the default of `min.cleanable.dirty.ratio`).
    #[arg(
        long,
        env = "WEIR_LOG_CLEANER_MIN_CLEANABLE_RATIO",
        default_value_t = 0.5
    )]
    pub log_cleaner_min_cleanable_ratio: f64,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The HTTP listener's address when `--http-listen` is not given.
pub const DEFAULT_HTTP_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9644);

/// Where the HTTP listener binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpListen {
    /// No HTTP listener.
    Off,
    /// [`DEFAULT_HTTP_LISTEN`], skipped with a warning when taken.
    Default,
    /// This address; failing to bind it fails the start.
    At(SocketAddr),
}

fn parse_http_listen(s: &str) -> Result<HttpListen, String> {
    if s == "off" {
        return Ok(HttpListen::Off);
    }
    s.parse()
        .map(HttpListen::At)
        .map_err(|err| format!("expected host:port or off, got {s:?}: {err}"))
}

fn parse_cleanup_policy(s: &str) -> Result<CleanupPolicy, String> {
    let mut policy = CleanupPolicy {
        delete: false,
        compact: false,
    };
    for part in s.split(',').map(str::trim) {
        match part {
            "delete" => policy.delete = true,
            "compact" => policy.compact = true,
            other => {
                return Err(format!(
                    "expected delete, compact or compact,delete, got {other:?}"
                ));
            }
        }
    }
    Ok(policy)
}

fn parse_flush(s: &str) -> Result<FlushPolicy, String> {
    match s {
        "always" => Ok(FlushPolicy::EveryAppend),
        "os" => Ok(FlushPolicy::Os),
        other => other
            .strip_prefix("interval:")
            .and_then(|ms| ms.parse::<u64>().ok())
            .filter(|&ms| ms > 0)
            .map(|ms| FlushPolicy::Interval(Duration::from_millis(ms)))
            .ok_or_else(|| format!("expected always, os or interval:<ms>, got {other:?}")),
    }
}

/// A setting outside the range the broker can work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --{flag} (WEIR_{env}) {value}: {expected}")]
pub struct ConfigError {
    /// The flag, without its dashes.
    pub flag: &'static str,
    /// The environment variable's name after `WEIR_`.
    pub env: String,
    /// The value given.
    pub value: String,
    /// What is accepted, with the range.
    pub expected: String,
}

/// Smallest segment: a page. Smaller ones hold hardly a batch and make every append a roll.
pub const MIN_SEGMENT_BYTES: u32 = 4096;
/// Largest segment: file positions in the index are 32-bit signed (as in Kafka).
pub const MAX_SEGMENT_BYTES: u32 = i32::MAX as u32;
/// Smallest request frame: ApiVersions, the first request of every client, takes some 50
/// bytes with a typical client id and software name; below this no client could even start.
/// (Real brokers want megabytes; tests use a few hundred bytes to probe the limit.)
pub const MIN_FRAME_BYTES: usize = 128;
/// Largest request frame: the size prefix on the wire is an `i32`.
pub const MAX_FRAME_BYTES: usize = i32::MAX as usize;
/// Most threads opening partitions at start-up: each holds a partition's files and maps.
pub const MAX_RECOVERY_THREADS: usize = 256;
/// Most log cleaner threads: each holds a key map and rewrites one log at a time.
pub const MAX_CLEANER_THREADS: usize = 64;
/// Smallest key map a cleaner thread gets (some 43,000 keys).
pub const MIN_DEDUPE_BYTES_PER_THREAD: usize = 1 << 20;
/// Largest total key-map memory, 64 GiB: larger is a unit mistake.
pub const MAX_DEDUPE_BYTES: usize = 64 << 30;
/// Longest idle or frame timeout, one year: longer ones are a unit mistake.
pub const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 3600;

fn in_range<T: PartialOrd + Display>(
    flag: &'static str,
    value: T,
    range: RangeInclusive<T>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(ConfigError {
        flag,
        env: flag.replace('-', "_").to_ascii_uppercase(),
        value: value.to_string(),
        expected: format!("must be between {} and {}", range.start(), range.end()),
    })
}

impl BrokerConfig {
    /// Checks every setting against the range the broker can work with; the error names the
    /// first flag that is out of range, its environment variable and the range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use crate::topics::MAX_PARTITIONS;
        in_range(
            "default-partitions",
            self.default_partitions,
            1..=MAX_PARTITIONS,
        )?;
        in_range(
            "segment-bytes",
            self.segment_bytes,
            MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES,
        )?;
        in_range(
            "index-interval-bytes",
            self.index_interval_bytes,
            1..=MAX_SEGMENT_BYTES,
        )?;
        in_range("segment-ms", self.segment_ms, 1..=i64::MAX)?;
        in_range("retention-ms", self.retention_ms, -1..=i64::MAX)?;
        in_range("retention-bytes", self.retention_bytes, -1..=i64::MAX)?;
        in_range(
            "retention-check-ms",
            self.retention_check_ms,
            1..=u64::try_from(i64::MAX).unwrap_or(u64::MAX),
        )?;
        in_range(
            "group-min-session-timeout-ms",
            self.group_min_session_timeout_ms,
            1..=i32::MAX,
        )?;
        // The largest session timeout must admit the smallest one, or no consumer can join.
        in_range(
            "group-max-session-timeout-ms",
            self.group_max_session_timeout_ms,
            self.group_min_session_timeout_ms..=i32::MAX,
        )?;
        in_range(
            "group-initial-rebalance-delay-ms",
            self.group_initial_rebalance_delay_ms,
            0..=i64::from(i32::MAX),
        )?;
        in_range(
            "max-frame-bytes",
            self.max_frame_bytes,
            MIN_FRAME_BYTES..=MAX_FRAME_BYTES,
        )?;
        in_range(
            "max-connections",
            self.max_connections,
            1..=tokio::sync::Semaphore::MAX_PERMITS,
        )?;
        in_range(
            "idle-timeout-secs",
            self.idle_timeout_secs,
            1..=MAX_TIMEOUT_SECS,
        )?;
        in_range(
            "frame-timeout-secs",
            self.frame_timeout_secs,
            1..=MAX_TIMEOUT_SECS,
        )?;
        in_range(
            "max-produce-bytes-in-flight",
            self.max_produce_bytes_in_flight,
            1..=u32::MAX as usize,
        )?;
        if let Some(threads) = self.recovery_threads {
            in_range("recovery-threads", threads, 1..=MAX_RECOVERY_THREADS)?;
        }
        in_range(
            "message-max-bytes",
            self.message_max_bytes,
            0..=i32::MAX as u32,
        )?;
        in_range(
            "max-fetch-bytes",
            self.max_fetch_bytes,
            1..=i32::MAX as usize,
        )?;
        self.cluster.settings()?;
        self.validate_cleaner()
    }

    /// The log cleaner's flags.
    fn validate_cleaner(&self) -> Result<(), ConfigError> {
        in_range(
            "log-cleaner-backoff-ms",
            self.log_cleaner_backoff_ms,
            1..=u64::try_from(i64::MAX).unwrap_or(u64::MAX),
        )?;
        in_range(
            "log-cleaner-threads",
            self.log_cleaner_threads,
            1..=MAX_CLEANER_THREADS,
        )?;
        if let Some(rate) = self.log_cleaner_io_max_bytes_per_second {
            in_range("log-cleaner-io-max-bytes-per-second", rate, 1..=u64::MAX)?;
        }
        // Each thread's share must hold a batch's keys: Kafka's floor is 1 MiB a thread too.
        in_range(
            "log-cleaner-dedupe-buffer-size",
            self.log_cleaner_dedupe_buffer_size,
            self.log_cleaner_threads
                .saturating_mul(MIN_DEDUPE_BYTES_PER_THREAD)..=MAX_DEDUPE_BYTES,
        )?;
        if !(0.0..=1.0).contains(&self.log_cleaner_min_cleanable_ratio) {
            return Err(ConfigError {
                flag: "log-cleaner-min-cleanable-ratio",
                env: "LOG_CLEANER_MIN_CLEANABLE_RATIO".to_owned(),
                value: self.log_cleaner_min_cleanable_ratio.to_string(),
                expected: "must be between 0 and 1".to_owned(),
            });
        }
        Ok(())
    }

    /// The defaults, with data in `data_dir` and an OS-chosen port on 127.0.0.1 (for tests and
    /// embedding).
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        let mut config = Self::parse_from(["weir-broker"]);
        config.data_dir = data_dir.into();
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.segment_bytes = 8 << 20;
        // Many test brokers run at once; a test that wants HTTP asks for port 0.
        config.http_listen = Some(HttpListen::Off);
        config
    }

    /// The HTTP listener asked for: `--http-listen`, or the default.
    pub fn http(&self) -> HttpListen {
        self.http_listen.unwrap_or(HttpListen::Default)
    }

    /// The per-partition log settings these flags describe.
    pub fn log_config(&self) -> LogConfig {
        LogConfig {
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms,
            index_interval_bytes: self.index_interval_bytes,
            retention_ms: (self.retention_ms >= 0).then_some(self.retention_ms),
            retention_bytes: u64::try_from(self.retention_bytes).ok(),
            flush: self.flush,
            rules: crate::log::MessageRules {
                max_message_bytes: self.message_max_bytes,
                ..crate::log::MessageRules::default()
            },
            cleanup_policy: self.log_cleanup_policy,
            compaction: crate::log::CompactionConfig {
                min_cleanable_dirty_ratio: self.log_cleaner_min_cleanable_ratio,
                ..crate::log::CompactionConfig::default()
            },
            ..LogConfig::default()
        }
    }

    /// The log cleaner's settings these flags describe (the static layer under the dynamic
    /// broker configs `log.cleaner.*`).
    pub fn cleaner_settings(&self) -> crate::topics::config::CleanerSettings {
        crate::topics::config::CleanerSettings {
            backoff_ms: self.log_cleaner_backoff_ms,
            threads: self.log_cleaner_threads,
            io_max_bytes_per_second: self
                .log_cleaner_io_max_bytes_per_second
                .map_or(f64::MAX, |rate| rate as f64),
            dedupe_buffer_size: self.log_cleaner_dedupe_buffer_size as u64,
        }
    }

    /// How the topic catalog opens partitions.
    pub fn catalog_options(&self) -> CatalogOptions {
        let mut options = CatalogOptions::default();
        if let Some(threads) = self.recovery_threads {
            options.open_threads = threads;
        }
        options
    }

    /// The group coordinator's limits.
    pub fn group_config(&self) -> GroupConfig {
        GroupConfig {
            min_session_timeout_ms: self.group_min_session_timeout_ms,
            max_session_timeout_ms: self.group_max_session_timeout_ms,
            initial_rebalance_delay_ms: self.group_initial_rebalance_delay_ms,
        }
    }

    /// How long an idle connection is kept.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// Produce payload bytes in flight across the broker (semaphore permits), at least 1.
    pub fn produce_budget(&self) -> u32 {
        u32::try_from(self.max_produce_bytes_in_flight.max(1))
            .unwrap_or(u32::MAX)
            .min(u32::try_from(tokio::sync::Semaphore::MAX_PERMITS).unwrap_or(u32::MAX))
    }

    /// How long a new connection has to deliver its first request.
    pub fn first_request_timeout(&self) -> Duration {
        Duration::from_millis(self.first_request_timeout_ms)
    }

    /// How long connections get to finish after a shutdown starts.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    /// How long a request may take to arrive once its first byte has.
    pub fn frame_timeout(&self) -> Duration {
        Duration::from_secs(self.frame_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_parsing() {
        let c = BrokerConfig::parse_from(["weir-broker"]);
        assert_eq!(c.listen, "127.0.0.1:9092".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("./weir-data"));
        assert!(c.auto_create_topics);
        assert_eq!(c.flush, FlushPolicy::EveryAppend);
        assert_eq!(c.log_config().retention_bytes, None);
        assert_eq!(c.frame_timeout(), Duration::from_secs(60));
        assert_eq!(c.produce_budget(), 256 << 20);
        let c = BrokerConfig::parse_from([
            "weir-broker",
            "--flush",
            "interval:50",
            "--auto-create-topics",
            "false",
            "--retention-ms",
            "-1",
        ]);
        assert_eq!(c.flush, FlushPolicy::Interval(Duration::from_millis(50)));
        assert!(!c.auto_create_topics);
        assert_eq!(c.log_config().retention_ms, None);
        assert!(BrokerConfig::try_parse_from(["weir-broker", "--flush", "sometimes"]).is_err());
    }

    fn refused(args: &[&str]) -> ConfigError {
        let config =
            BrokerConfig::parse_from(std::iter::once("weir-broker").chain(args.iter().copied()));
        config.validate().expect_err("out of range")
    }

    #[test]
    fn impossible_cleaner_values_are_refused_with_the_flag_and_range() {
        let cases: &[(&[&str], &str)] = &[
            (&["--log-cleaner-backoff-ms", "0"], "log-cleaner-backoff-ms"),
            (&["--log-cleaner-threads", "0"], "log-cleaner-threads"),
            (&["--log-cleaner-threads", "65"], "log-cleaner-threads"),
            (
                &["--log-cleaner-io-max-bytes-per-second", "0"],
                "log-cleaner-io-max-bytes-per-second",
            ),
            (
                &["--log-cleaner-dedupe-buffer-size", "1000"],
                "log-cleaner-dedupe-buffer-size",
            ),
            (
                &[
                    "--log-cleaner-threads",
                    "4",
                    "--log-cleaner-dedupe-buffer-size",
                    "3145728",
                ],
                "log-cleaner-dedupe-buffer-size",
            ),
            (
                &["--log-cleaner-min-cleanable-ratio", "1.5"],
                "log-cleaner-min-cleanable-ratio",
            ),
        ];
        for (args, flag) in cases {
            let e = refused(args);
            assert_eq!(e.flag, *flag, "{args:?}");
            assert!(e.to_string().contains("must be between"), "{e}");
        }
    }

    #[test]
    fn the_cleanup_policy_takes_kafkas_values() {
        let policy = |v: &str| parse_cleanup_policy(v);
        assert_eq!(policy("delete"), Ok(CleanupPolicy::DELETE));
        assert_eq!(policy("compact"), Ok(CleanupPolicy::COMPACT));
        let both = CleanupPolicy {
            delete: true,
            compact: true,
        };
        assert_eq!(policy("compact,delete"), Ok(both));
        assert_eq!(policy("delete, compact"), Ok(both));
        assert!(policy("compacted").is_err());
        let config = BrokerConfig::parse_from(["weir-broker", "--log-cleanup-policy", "compact"]);
        assert_eq!(config.log_config().cleanup_policy, CleanupPolicy::COMPACT);
        assert_eq!(
            BrokerConfig::parse_from(["weir-broker"])
                .log_config()
                .cleanup_policy,
            CleanupPolicy::DELETE
        );
    }

    #[test]
    fn impossible_values_are_refused_with_the_flag_and_range() {
        BrokerConfig::parse_from(["weir-broker"])
            .validate()
            .unwrap();
        BrokerConfig::for_tests("/tmp/x").validate().unwrap();
        let e = refused(&["--default-partitions", "0"]);
        assert_eq!(e.flag, "default-partitions");
        assert_eq!(
            e.to_string(),
            "invalid --default-partitions (WEIR_DEFAULT_PARTITIONS) 0: must be between 1 and 10000"
        );
        assert_eq!(
            refused(&["--default-partitions", "10001"]).flag,
            "default-partitions"
        );
        let cases: &[(&[&str], &str)] = &[
            (&["--segment-bytes", "100"], "segment-bytes"),
            (&["--segment-bytes", "3000000000"], "segment-bytes"),
            (&["--index-interval-bytes", "0"], "index-interval-bytes"),
            (&["--segment-ms", "0"], "segment-ms"),
            (&["--retention-ms", "-2"], "retention-ms"),
            (&["--retention-bytes", "-5"], "retention-bytes"),
            (&["--retention-check-ms", "0"], "retention-check-ms"),
            (
                &["--group-min-session-timeout-ms", "0"],
                "group-min-session-timeout-ms",
            ),
            (
                &[
                    "--group-min-session-timeout-ms",
                    "9000",
                    "--group-max-session-timeout-ms",
                    "8000",
                ],
                "group-max-session-timeout-ms",
            ),
            (
                &["--group-initial-rebalance-delay-ms=-1"],
                "group-initial-rebalance-delay-ms",
            ),
            (&["--max-frame-bytes", "100"], "max-frame-bytes"),
            (&["--max-frame-bytes", "4294967296"], "max-frame-bytes"),
            (&["--max-connections", "0"], "max-connections"),
            (&["--idle-timeout-secs", "0"], "idle-timeout-secs"),
            (&["--frame-timeout-secs", "0"], "frame-timeout-secs"),
            (
                &["--max-produce-bytes-in-flight", "0"],
                "max-produce-bytes-in-flight",
            ),
            (&["--max-fetch-bytes", "0"], "max-fetch-bytes"),
            (&["--recovery-threads", "0"], "recovery-threads"),
            (&["--recovery-threads", "257"], "recovery-threads"),
        ];
        for (args, flag) in cases {
            let e = refused(args);
            assert_eq!(e.flag, *flag, "{args:?}");
            assert!(e.to_string().contains("must be between"), "{e}");
        }
        // The edges themselves are accepted.
        let c = BrokerConfig::parse_from([
            "weir-broker",
            "--segment-bytes",
            "4096",
            "--max-frame-bytes",
            "128",
            "--retention-ms",
            "-1",
            "--index-interval-bytes",
            "1",
            "--default-partitions",
            "10000",
        ]);
        c.validate().unwrap();
        assert_eq!(c.log_config().index_interval_bytes, 1);
    }
}
