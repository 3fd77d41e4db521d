//! The command line: every command, flag and default, with the examples `--help` shows.
//! Owns parsing only; the commands interpret these values (`commands/`, `perf/`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub(crate) use crate::start::{Start, parse_start};

/// Most bytes one record read by `weir produce` may hold (a longer line is an input error,
/// not an allocation the input decides).
pub(crate) const RECORD_BYTES_MAX: usize = 64 << 20;

const ROOT_EXAMPLES: &str = "\
Examples:
  seq 1 10 | weir produce -t numbers
  weir consume -t numbers --offset beginning --exit-at-end
  weir topics create orders --partitions 6
  weir groups describe billing
  weir perf produce -t perf --records 100000 --record-size 1024

Exit codes: 0 ok, 1 the broker refused, 2 bad usage or input, 3 no broker reachable,
4 records not delivered, 130 interrupted. See docs/cli.md.";

/// The Weir command-line tool: produce, consume, administer and benchmark.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, after_help = ROOT_EXAMPLES)]
pub(crate) struct Cli {
    /// Broker address(es), comma-separated `host:port`; any one reachable suffices.
    #[arg(
        short,
        long,
        visible_alias = "bootstrap-server",
        global = true,
        env = "WEIR_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        value_delimiter = ','
    )]
    pub(crate) bootstrap: Vec<String>,
    /// The command.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write records read from stdin or a file, one per line.
    #[command(after_help = "\
Examples:
  seq 1 100000 | weir produce -t numbers
  printf 'user-1:clicked\\n' | weir produce -t events --key-separator :
  weir produce -t events -H source=import -H trace=42 --file events.txt --acks 1 --compression zstd")]
    Produce(ProduceArgs),
    /// Read records and print them, one per line.
    #[command(after_help = "\
Examples:
  weir consume -t numbers --offset beginning --count 100
  weir consume -t events --format json --exit-at-end
  weir consume -t events -g billing          # in a group; Ctrl-C commits and leaves
  weir consume -t events -p 0 --offset 42    # partition 0 from offset 42
  weir consume -t events --offset @1700000000000   # from a timestamp (ms)
  weir consume -t events -o -5 -e                  # the last 5 records of each partition
  weir consume -t events -o @-1h                   # from an hour ago
  weir consume -t events -o @2024-05-01T12:00:00Z  # from a date (RFC 3339)")]
    Consume(ConsumeArgs),
    /// List, create, describe and delete topics.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// List, describe and delete consumer groups; reset their offsets.
    #[command(subcommand)]
    Groups(GroupsCommand),
    /// Measure throughput and latency.
    #[command(subcommand)]
    Perf(PerfCommand),
    /// Describe the cluster: its id, controller and brokers.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  weir completions bash > ~/.local/share/bash-completion/completions/weir"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `acks` as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AcksArg {
    /// No acknowledgement.
    #[value(name = "0")]
    Zero,
    /// The leader appended.
    #[value(name = "1")]
    One,
    /// Durable on the leader (synced).
    #[value(name = "all", alias = "-1")]
    All,
}

/// Batch compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CompressionArg {
    /// None.
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

/// `weir produce`.
#[derive(Debug, Args)]
pub(crate) struct ProduceArgs {
    /// Topic to write to (created if the broker auto-creates topics).
    #[arg(short, long)]
    pub(crate) topic: String,
    /// Read records from this file instead of stdin.
    #[arg(short, long)]
    pub(crate) file: Option<PathBuf>,
    /// Split each line at the first occurrence of this string into key and value (a line
    /// without it is sent without a key).
    #[arg(short = 'K', long)]
    pub(crate) key_separator: Option<String>,
    /// Write every record to this partition (default: by key, else sticky).
    #[arg(short, long)]
    pub(crate) partition: Option<i32>,
    /// A header `key=value` added to every record (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    pub(crate) headers: Vec<String>,
    /// Acknowledgements to wait for.
    #[arg(long, value_enum, default_value = "all")]
    pub(crate) acks: AcksArg,
    /// Batch compression.
    #[arg(long, value_enum, default_value = "none")]
    pub(crate) compression: CompressionArg,
    /// The largest produce request in bytes (the producer's max.request.size), and so the
    /// largest record: a record may use this less about 100 bytes of framing. Larger records
    /// are counted as not delivered. The broker has its own limit.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_RECORD_BYTES)]
    pub(crate) max_record_bytes: usize,
    /// Send an empty value as a null value (a tombstone, which deletes the key from a
    /// compacted topic), as kcat's `-Z`.
    #[arg(short = 'Z', long)]
    pub(crate) null_empty: bool,
}

/// `--max-record-bytes` by default: the Java producer's `max.request.size` (1 MiB).
pub(crate) const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// Record output formats of `weir consume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// The value alone.
    Value,
    /// Key, separator, value.
    Kv,
    /// One JSON object per record: topic, partition, offset, timestamp, key, value, headers.
    Json,
}

/// `weir consume`.
#[derive(Debug, Args)]
pub(crate) struct ConsumeArgs {
    /// Topic(s) to read (repeatable).
    #[arg(short, long, required = true)]
    pub(crate) topic: Vec<String>,
    /// Consume in this group: partitions are shared with its other members and positions
    /// committed.
    #[arg(short, long)]
    pub(crate) group: Option<String>,
    /// Only these partitions (repeatable; not with --group).
    #[arg(short, long, conflicts_with = "group")]
    pub(crate) partition: Vec<i32>,
    /// Where to start: beginning, end, an offset N, +N (N after the start), -N (the last N),
    /// @MS (ms since 1970), @2024-05-01T12:00:00Z (RFC 3339) or @-1h (that long ago). In a
    /// group, where a partition without a committed offset starts (beginning or end).
    #[arg(short, long, default_value = "end", value_parser = parse_start, allow_hyphen_values = true)]
    pub(crate) offset: Start,
    /// Stop after this many records.
    #[arg(short = 'c', long)]
    pub(crate) count: Option<u64>,
    /// Stop at the end of the partitions (as they were when the command started).
    #[arg(short, long)]
    pub(crate) exit_at_end: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "value")]
    pub(crate) format: Format,
    /// Separator between key and value in the kv format.
    #[arg(short = 'K', long, default_value = "\t")]
    pub(crate) key_separator: String,
}

/// `weir topics ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TopicsCommand {
    /// Every topic with its partition count.
    List,
    /// Create a topic.
    #[command(
        after_help = "Example:\n  weir topics create orders --partitions 6 --config retention.ms=86400000"
    )]
    Create {
        /// Its name.
        name: String,
        /// Partitions (default: the broker's).
        #[arg(short, long)]
        partitions: Option<i32>,
        /// A topic configuration `key=value` (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// Partitions of topics with their leaders and start and end offsets (or, with
    /// --configs, their configuration).
    Describe {
        /// The topics.
        #[arg(required = true)]
        names: Vec<String>,
        /// Show each topic's configs with their values and where each comes from instead.
        #[arg(long)]
        configs: bool,
    },
    /// Change a topic's configuration: set or remove overrides, applied at once.
    #[command(
        name = "alter-config",
        after_help = "Example:\n  weir topics alter-config orders --set retention.ms=3600000 --delete segment.ms"
    )]
    AlterConfig {
        /// The topic.
        name: String,
        /// Override `key=value` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Remove the override of `key`, back to the broker's value (repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
        /// Only check the change with the broker; change nothing.
        #[arg(long)]
        validate_only: bool,
    },
    /// Delete topics and their data.
    Delete {
        /// The topics.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Grow a topic to a total number of partitions (partitions are never removed).
    #[command(after_help = "Example:\n  weir topics add-partitions orders --total 12")]
    AddPartitions {
        /// The topic.
        name: String,
        /// The number of partitions the topic will have.
        #[arg(long)]
        total: i32,
    },
    /// Delete the records of partitions below an offset (they are gone for every consumer).
    #[command(after_help = "\
Examples:
  weir topics trim orders -p 0 --before 1000   # records 0..999 of partition 0 are deleted
  weir topics trim orders --before end         # every partition emptied up to its end")]
    Trim(TrimArgs),
}

/// `weir topics trim`.
#[derive(Debug, Args)]
pub(crate) struct TrimArgs {
    /// The topic.
    pub(crate) name: String,
    /// Only these partitions (repeatable; default all).
    #[arg(short, long)]
    pub(crate) partition: Vec<i32>,
    /// The new first offset: an offset N, or `end` (the high watermark).
    #[arg(long, value_parser = parse_trim_offset)]
    pub(crate) before: i64,
}

/// `--before`: `end` is DeleteRecords' -1 (the high watermark); otherwise an offset >= 0.
fn parse_trim_offset(value: &str) -> Result<i64, String> {
    if value == "end" {
        return Ok(-1);
    }
    match value.parse::<i64>() {
        Ok(offset) if offset >= 0 => Ok(offset),
        _ => Err(format!(
            "`{value}`: expected an offset (0 or more) or `end`"
        )),
    }
}

/// `weir groups ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum GroupsCommand {
    /// Every consumer group.
    List,
    /// Members, assignments, committed offsets and lag of a group.
    Describe {
        /// The group.
        group: String,
    },
    /// Delete groups that have no members, with their committed offsets.
    Delete {
        /// The groups.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Set a group's committed offsets (the group must have no members).
    #[command(after_help = "\
Examples:
  weir groups reset-offsets billing -t orders --to earliest
  weir groups reset-offsets billing -t orders -p 0 --to 42
  weir groups reset-offsets billing -t orders --to @1700000000000")]
    ResetOffsets(ResetOffsetsArgs),
    /// Delete a group's committed offsets of a topic (a consumer in the group then starts as
    /// one without a committed offset).
    #[command(after_help = "\
Examples:
  weir groups delete-offsets billing --topic orders        # every partition
  weir groups delete-offsets billing --topic orders -p 3")]
    DeleteOffsets {
        /// The group.
        group: String,
        /// The topic.
        #[arg(short, long)]
        topic: String,
        /// Only these partitions (repeatable; default all).
        #[arg(short, long)]
        partition: Vec<i32>,
    },
}

/// `weir groups reset-offsets`.
#[derive(Debug, Args)]
pub(crate) struct ResetOffsetsArgs {
    /// The group.
    pub(crate) group: String,
    /// Topic(s) whose offsets to set (repeatable).
    #[arg(short, long, required = true)]
    pub(crate) topic: Vec<String>,
    /// Only these partitions (repeatable; default all).
    #[arg(short, long)]
    pub(crate) partition: Vec<i32>,
    /// earliest, latest, an offset N (kept within the log), +N (N after the start), -N (N
    /// before the end), @MS, @RFC-3339-DATE or @-1h (the first offset at or after that time).
    #[arg(long, value_parser = parse_start, allow_hyphen_values = true)]
    pub(crate) to: Start,
    /// Show the new offsets without committing them.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

/// `weir cluster ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// The cluster id, the controller and each broker's address.
    Describe,
}

/// `weir perf ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum PerfCommand {
    /// Produce records as fast as allowed; latency is from send to acknowledgement.
    #[command(after_help = "\
Examples:
  weir perf produce -t perf --records 200000 --record-size 1024 --acks all
  weir perf produce -t perf8 --partitions 8 --producers 2 --throughput 50000 --json")]
    Produce(PerfProduceArgs),
    /// Read records from the beginning of a topic as fast as possible.
    #[command(after_help = "\
Examples:
  weir perf consume -t perf --records 200000
  weir perf consume -t perf12 --consumers 3 --json   # three members of one group")]
    Consume(PerfConsumeArgs),
    /// Produce at a fixed rate while a consumer tails the topic; latency is from send to
    /// receipt.
    #[command(
        after_help = "Example:\n  weir perf e2e -t e2e --records 50000 --record-size 1024 --throughput 10000"
    )]
    E2e(PerfProduceArgs),
}

/// Producing side of `weir perf produce` and `weir perf e2e`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PerfProduceArgs {
    /// Topic (created with --partitions when missing).
    #[arg(short, long, default_value = "weir-perf")]
    pub(crate) topic: String,
    /// Records to send in all.
    #[arg(short = 'n', long, default_value_t = 100_000)]
    pub(crate) records: u64,
    /// Bytes of each record's value.
    #[arg(short = 's', long, default_value_t = 1024)]
    pub(crate) record_size: usize,
    /// Records per second in all (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub(crate) throughput: u64,
    /// Acknowledgements to wait for.
    #[arg(long, value_enum, default_value = "all")]
    pub(crate) acks: AcksArg,
    /// Partitions of the topic when it is created; records are spread over them.
    #[arg(long, default_value_t = 1)]
    pub(crate) partitions: i32,
    /// Producers sending in parallel, each its share of the records.
    #[arg(long, default_value_t = 1)]
    pub(crate) producers: u32,
    /// Batch compression.
    #[arg(long, value_enum, default_value = "none")]
    pub(crate) compression: CompressionArg,
    /// Producer batch size in bytes (the default fills a 1 MiB produce request: one batch
    /// per partition is in flight, so larger batches mean fewer syncs per byte).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) batch_size: usize,
    /// Producer linger in milliseconds.
    #[arg(long, default_value_t = 5)]
    pub(crate) linger_ms: u64,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `weir perf consume`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PerfConsumeArgs {
    /// Topic to read from its beginning.
    #[arg(short, long, default_value = "weir-perf")]
    pub(crate) topic: String,
    /// Records to read in all (default: everything up to the end offsets at the start).
    #[arg(short = 'n', long)]
    pub(crate) records: Option<u64>,
    /// Consumers reading in parallel; more than one makes them members of one new group.
    #[arg(long, default_value_t = 1)]
    pub(crate) consumers: u32,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn start_positions_parse_from_the_command_line() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["weir", "consume", "-t", "t"].iter().chain(args)).map(|cli| {
                match cli.command {
                    Command::Consume(c) => c.offset,
                    _ => unreachable!("a consume command"),
                }
            })
        };
        assert_eq!(parse(&[]).expect("default"), Start::End);
        assert_eq!(parse(&["-o", "-5"]).expect("-5"), Start::BeforeEnd(5));
        assert_eq!(parse(&["--offset", "+2"]).expect("+2"), Start::Skip(2));
        assert_eq!(parse(&["-o", "42"]).expect("42"), Start::Offset(42));
        assert!(matches!(parse(&["-o", "@-1h"]), Ok(Start::Timestamp(_))));
        assert!(parse(&["-o", "soon"]).is_err());
    }
}
