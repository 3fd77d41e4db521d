//! The table of topic configs Weir knows: Kafka's name and type, the range accepted here, the
//! documentation string, the broker-level synonym, and the [`LogConfig`] field each sets.
//!
//! Pure data. Invariants: names are unique and sorted (a test checks); every config's
//! default (`base` of [`LogConfig::default`]) parses under its own kind.

use super::value::{Kind, Value};
use crate::config::{MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES};
use crate::log::{CleanupPolicy, FlushPolicy, LogConfig, TimestampType};

/// One topic config.
#[derive(Debug)]
pub struct TopicConfigDef {
    /// Kafka's topic-level name.
    pub name: &'static str,
    /// Type and accepted range.
    pub kind: Kind,
    /// Kafka's documentation, with what Weir does differently.
    pub doc: &'static str,
    /// Kafka's broker-level synonym (`log.retention.ms` for `retention.ms`), if any.
    pub broker_name: Option<&'static str>,
    /// Whether the broker-level synonym may be changed at run time (IncrementalAlterConfigs
    /// on the broker); `false` for settings fixed when the logs open (flush).
    pub broker_dynamic: bool,
    /// The `weir-broker` flag that sets the static broker-wide value; `None` when the value
    /// without overrides is Kafka's default.
    pub flag: Option<&'static str>,
    /// The value in force without any override, read from the broker's static [`LogConfig`]
    /// (which its flags built) or Kafka's default.
    pub base: fn(&LogConfig) -> String,
    /// Writes a value into the log's settings; `None` for configs accepted and reported but
    /// not applied by the log (see their `doc`).
    pub apply: Option<fn(&mut LogConfig, &Value)>,
}

const MAX: i64 = i64::MAX;
const I32: i64 = i32::MAX as i64;

fn long(v: &Value) -> Option<i64> {
    v.as_long()
}

fn u32_of(v: &Value) -> Option<u32> {
    long(v).and_then(|n| u32::try_from(n).ok())
}

fn flush_messages(c: &LogConfig) -> String {
    match c.flush {
        FlushPolicy::EveryAppend => "1".to_owned(),
        FlushPolicy::Interval(_) | FlushPolicy::Os => MAX.to_string(),
    }
}

fn flush_ms(c: &LogConfig) -> String {
    match c.flush {
        FlushPolicy::Interval(every) => i64::try_from(every.as_millis()).unwrap_or(MAX).to_string(),
        FlushPolicy::EveryAppend | FlushPolicy::Os => MAX.to_string(),
    }
}

fn cleanup_policy(c: &LogConfig) -> String {
    match (c.cleanup_policy.compact, c.cleanup_policy.delete) {
        (true, true) => "compact,delete",
        (true, false) => "compact",
        _ => "delete",
    }
    .to_owned()
}

fn timestamp_type(c: &LogConfig) -> String {
    match c.rules.timestamp_type {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    }
    .to_owned()
}

/// Every topic config, sorted by name.
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        kind: Kind::List(&["compact", "delete"]),
        doc: "What happens to old log segments: \"delete\" removes them past retention.ms or \
              retention.bytes; \"compact\" keeps the last record of each key (log compaction); \
              both may be given (\"compact,delete\", in either order).",
        broker_name: Some("log.cleanup.policy"),
        broker_dynamic: true,
        flag: None,
        base: cleanup_policy,
        apply: Some(|c, v| {
            if let Value::List(items) = v {
                c.cleanup_policy = CleanupPolicy {
                    delete: items.contains(&"delete"),
                    compact: items.contains(&"compact"),
                };
            }
        }),
    },
    TopicConfigDef {
        name: "compression.type",
        kind: Kind::Choice(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        doc: "The compression of the topic's stored batches. Weir stores batches as the \
              producer sent them: only \"producer\" is honoured today; other values are \
              accepted, stored and reported but do not recompress.",
        broker_name: Some("compression.type"),
        broker_dynamic: true,
        flag: None,
        base: |_| "producer".to_owned(),
        apply: None,
    },
    TopicConfigDef {
        name: "delete.retention.ms",
        kind: Kind::Long { min: 0, max: MAX },
        doc: "How long tombstones (records with a null value) are kept after the cleaner \
              reached them in a compacted topic, so consumers can see the delete.",
        broker_name: Some("log.cleaner.delete.retention.ms"),
        broker_dynamic: true,
        flag: None,
        base: |c| c.compaction.delete_retention_ms.to_string(),
        apply: Some(|c, v| {
            if let Some(n) = long(v) {
                c.compaction.delete_retention_ms = n;
            }
        }),
    },
    TopicConfigDef {
        name: "flush.messages",
        kind: Kind::Long { min: 1, max: MAX },
        doc: "Records appended between two forced syncs. Weir's flush policy is broker-wide \
              (--flush): a topic value is accepted, stored and reported but the broker's \
              policy applies.",
        broker_name: Some("log.flush.interval.messages"),
        broker_dynamic: false,
        flag: Some("--flush"),
        base: flush_messages,
        apply: None,
    },
    TopicConfigDef {
        name: "flush.ms",
        kind: Kind::Long { min: 0, max: MAX },
        doc: "Milliseconds between two forced syncs. Weir's flush policy is broker-wide \
              (--flush): a topic value is accepted, stored and reported but the broker's \
              policy applies.",
        broker_name: Some("log.flush.interval.ms"),
        broker_dynamic: false,
        flag: Some("--flush"),
        base: flush_ms,
        apply: None,
    },
    TopicConfigDef {
        name: "index.interval.bytes",
        kind: Kind::Int { min: 1, max: I32 },
        doc: "Bytes of log between two entries of the sparse offset and time indexes.",
        broker_name: Some("log.index.interval.bytes"),
        broker_dynamic: true,
        flag: Some("--index-interval-bytes"),
        base: |c| c.index_interval_bytes.to_string(),
        apply: Some(|c, v| {
            if let Some(n) = u32_of(v) {
                c.index_interval_bytes = n;
            }
        }),
    },
    TopicConfigDef {
        name: "local.retention.bytes",
        kind: Kind::Long { min: -2, max: MAX },
        doc: "Tiered storage's local size limit; -2 follows retention.bytes. Weir has no \
              tiered storage: accepted, stored and reported, with no effect.",
        broker_name: Some("log.local.retention.bytes"),
        broker_dynamic: true,
        flag: None,
        base: |_| "-2".to_owned(),
        apply: None,
    },
    TopicConfigDef {
        name: "local.retention.ms",
        kind: Kind::Long { min: -2, max: MAX },
        doc: "Tiered storage's local age limit; -2 follows retention.ms. Weir has no tiered \
              storage: accepted, stored and reported, with no effect.",
        broker_name: Some("log.local.retention.ms"),
        broker_dynamic: true,
        flag: None,
        base: |_| "-2".to_owned(),
        apply: None,
    },
    TopicConfigDef {
        name: "max.compaction.lag.ms",
        kind: Kind::Long { min: 1, max: MAX },
        doc: "Longest time a record stays ineligible for compaction: a log holding an older \
              uncleaned record is cleaned whatever its dirty ratio.",
        broker_name: Some("log.cleaner.max.compaction.lag.ms"),
        broker_dynamic: true,
        flag: None,
        base: |c| c.compaction.max_compaction_lag_ms.to_string(),
        apply: Some(|c, v| {
            if let Some(n) = long(v) {
                c.compaction.max_compaction_lag_ms = n;
            }
        }),
    },
    TopicConfigDef {
        name: "max.message.bytes",
        kind: Kind::Int { min: 0, max: I32 },
        doc: "Largest record batch the broker accepts for this topic, in bytes as sent \
              (MESSAGE_TOO_LARGE above it).",
        broker_name: Some("message.max.bytes"),
        broker_dynamic: true,
        flag: None,
        base: |c| c.rules.max_message_bytes.to_string(),
        apply: Some(|c, v| {
            if let Some(n) = u32_of(v) {
                c.rules.max_message_bytes = n;
            }
        }),
    },
    TopicConfigDef {
        name: "message.timestamp.after.max.ms",
        kind: Kind::Long { min: 0, max: MAX },
        doc: "With CreateTime, how far in the future of the broker's clock a batch's \
              timestamps may be (KIP-937).",
        broker_name: Some("log.message.timestamp.after.max.ms"),
        broker_dynamic: true,
        flag: None,
        base: |c| c.rules.timestamp_after_max_ms.to_string(),
        apply: Some(|c, v| {
            if let Some(n) = long(v) {
                c.rules.timestamp_after_max_ms = n;
            }
        }),
    },
    TopicConfigDef {
        name: "message.timestamp.before.max.ms",
        kind: Kind::Long { min: 0, max: MAX },
        doc: "With CreateTime, how far in the past of the broker's clock a batch's timestamps \
              may be (KIP-937).",
        broker_name: Some("log.message.timestamp.before.max.ms"),
        broker_dynamic: true,
        flag: None,
        base: |c| c.rules.timestamp_before_max_ms.to_string(),
        apply: Some(|c, v| {
            if let Some(n) = long(v) {
                c.rules.timestamp_before_max_ms = n;
            }
        }),
    },
    TopicConfigDef {
        name: "message.timestamp.difference.max.ms",
        kind: Kind::Long { min: 0, max: MAX },
        doc: "Deprecated (KIP-937): the largest difference between a batch's timestamps and \
              the broker's clock. As in Kafka, it sets message.timestamp.before.max.ms and \
              message.timestamp.after.max.ms where those are left at their default.",
        broker_name: Some("log.message.timestamp.difference.max.ms"),
        broker_dynamic: true,
        flag: None,
        base: |_| MAX.to_string(),
        // Applied after the others (resolve.rs): it only fills bounds left unset.
        apply: None,
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        kind: Kind::Choice(&["CreateTime", "LogAppendTime"]),
        doc: "Whether records keep the producer's timestamps (CreateTime) or get the \
              broker's append time (LogAppendTime).",
        broker_name: Some("log.message.timestamp.type"),
        broker_dynamic: true,
        flag: None,
        base: timestamp_type,
        apply: Some(|c, v| {
            c.rules.timestamp_type = match v {
                Value::Text("LogAppendTime") => TimestampType::LogAppendTime,
                _ => TimestampType::CreateTime,
            };
        }),
    },
    TopicConfigDef {
        name: "min.cleanable.dirty.ratio",
        kind: Kind::Double { min: 0.0, max: 1.0 },
        doc: "Share of a compacted log not yet cleaned above which the cleaner cleans it.",
        broker_name: Some("log.cleaner.min.cleanable.ratio"),
        broker_dynamic: true,
        flag: None,
        base: |c| super::value::format_double(c.compaction.min_cleanable_dirty_ratio),
        apply: Some(|c, v| {
            if let Value::Double(x) = v {
                c.compaction.min_cleanable_dirty_ratio = *x;
            }
        }),
    },
    TopicConfigDef {
        name: "min.compaction.lag.ms",
        kind: Kind::Long { min: 0, max: MAX },
        doc: "Shortest time a record stays uncompacted after it was appended.",
        broker_name: Some("log.cleaner.min.compaction.lag.ms"),
        broker_dynamic: true,
        flag: None,
        base: |c| c.compaction.min_compaction_lag_ms.to_string(),
        apply: Some(|c, v| {
            if let Some(n) = long(v) {
                c.compaction.min_compaction_lag_ms = n;
            }
        }),
    },
    TopicConfigDef {
        name: "min.insync.replicas",
        kind: Kind::Int { min: 1, max: I32 },
        doc: "Replicas that must have a batch before an acks=all produce is answered. Weir is \
              one broker: its one replica is the only one in sync.",
        broker_name: Some("min.insync.replicas"),
        broker_dynamic: true,
        flag: None,
        base: |c| c.rules.min_insync_replicas.to_string(),
        apply: Some(|c, v| {
            if let Some(n) = u32_of(v) {
                c.rules.min_insync_replicas = n;
            }
        }),
    },
    TopicConfigDef {
        name: "retention.bytes",
        kind: Kind::Long { min: -1, max: MAX },
        doc: "Largest size of a partition before its oldest sealed segments are deleted \
              (with cleanup.policy delete); -1 means no size limit.",
        broker_name: Some("log.retention.bytes"),
        broker_dynamic: true,
        flag: Some("--retention-bytes"),
        base: |c| {
            c.retention_bytes
                .and_then(|n| i64::try_from(n).ok())
                .unwrap_or(-1)
                .to_string()
        },
        apply: Some(|c, v| {
            if let Some(n) = long(v) {
                c.retention_bytes = u64::try_from(n).ok();
            }
        }),
    },
    TopicConfigDef {
        name: "retention.ms",
        kind: Kind::Long { min: -1, max: MAX },
        doc: "Age after which a sealed segment is deleted, by its newest record (with \
              cleanup.policy delete); -1 keeps records forever.",
        broker_name: Some("log.retention.ms"),
        broker_dynamic: true,
        flag: Some("--retention-ms"),
        base: |c| c.retention_ms.unwrap_or(-1).to_string(),
        apply: Some(|c, v| {
            if let Some(n) = long(v) {
                c.retention_ms = (n >= 0).then_some(n);
            }
        }),
    },
    TopicConfigDef {
        name: "segment.bytes",
        kind: Kind::Int {
            min: MIN_SEGMENT_BYTES as i64,
            max: MAX_SEGMENT_BYTES as i64,
        },
        doc: "Size of a segment file (preallocated); the log rolls when the next batch would \
              not fit. Weir's minimum is 4096, the same as its --segment-bytes flag (Kafka's \
              topic minimum is 1 MiB).",
        broker_name: Some("log.segment.bytes"),
        broker_dynamic: true,
        flag: Some("--segment-bytes"),
        base: |c| c.segment_bytes.to_string(),
        apply: Some(|c, v| {
            if let Some(n) = u32_of(v) {
                c.segment_bytes = n;
            }
        }),
    },
    TopicConfigDef {
        name: "segment.index.bytes",
        kind: Kind::Int { min: 4, max: I32 },
        doc: "Size of a segment's offset index in Kafka. Weir sizes its indexes from \
              segment.bytes: accepted, stored and reported, with no effect.",
        broker_name: Some("log.index.size.max.bytes"),
        broker_dynamic: true,
        flag: None,
        base: |_| "10485760".to_owned(),
        apply: None,
    },
    TopicConfigDef {
        name: "segment.ms",
        kind: Kind::Long { min: 1, max: MAX },
        doc: "Age after which the active segment rolls at the next append, so retention can \
              delete it.",
        broker_name: Some("log.roll.ms"),
        broker_dynamic: true,
        flag: Some("--segment-ms"),
        base: |c| c.segment_ms.to_string(),
        apply: Some(|c, v| {
            if let Some(n) = long(v) {
                c.segment_ms = n;
            }
        }),
    },
    TopicConfigDef {
        name: "unclean.leader.election.enable",
        kind: Kind::Bool,
        doc: "Whether an out-of-sync replica may become leader. Weir has one replica: \
              accepted, stored and reported, with no effect.",
        broker_name: Some("unclean.leader.election.enable"),
        broker_dynamic: true,
        flag: None,
        base: |_| "false".to_owned(),
        apply: None,
    },
];

/// The topic config called `name`.
pub fn topic_config(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// The topic config whose broker-level synonym is `broker_name`.
pub fn by_broker_name(broker_name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS
        .iter()
        .find(|d| d.broker_name == Some(broker_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_unique_and_defaults_parse() {
        assert!(TOPIC_CONFIGS.windows(2).all(|w| w[0].name < w[1].name));
        let config = LogConfig::default();
        for def in TOPIC_CONFIGS {
            let base = (def.base)(&config);
            let value = def
                .kind
                .parse(def.name, &base)
                .unwrap_or_else(|e| panic!("{}: {e}", def.name));
            assert_eq!(value.to_text(), base, "{}", def.name);
            // Applying the default changes nothing.
            if let Some(apply) = def.apply {
                let mut applied = config.clone();
                apply(&mut applied, &value);
                assert_eq!(applied, config, "{}", def.name);
            }
        }
        let mut brokers: Vec<_> = TOPIC_CONFIGS.iter().filter_map(|d| d.broker_name).collect();
        brokers.sort_unstable();
        brokers.dedup();
        assert_eq!(brokers.len(), TOPIC_CONFIGS.len());
    }

    #[test]
    fn every_config_is_documented() {
        let docs = include_str!("../../../../docs/configuration.md");
        for def in TOPIC_CONFIGS {
            let row = format!("| `{}` |", def.name);
            assert!(
                docs.contains(&row),
                "docs/configuration.md has no row for {}",
                def.name
            );
        }
    }
}
