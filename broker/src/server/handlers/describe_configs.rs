//! DescribeConfigs (key 32), v1-2: the configuration in force for topics and the broker.
//!
//! Weir has no per-topic overrides: every topic runs with the broker-wide settings, so a
//! topic's entries are the values the broker's flags give (source STATIC_BROKER_CONFIG, with
//! the broker-level name as a synonym when asked) or fixed Kafka defaults that Weir honours
//! (source DEFAULT_CONFIG). Every value reported is one the broker really applies.

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use weir_protocol::error_code::ErrorCode;

use super::{Context, wire_str};
use crate::log::{CleanupPolicy, FlushPolicy};
use crate::server::context::NODE_ID;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// One configuration entry: topic-level name, value, and the broker flag it comes from.
struct Entry {
    name: &'static str,
    value: String,
    /// The broker-level name when a broker flag sets it; `None` for fixed defaults.
    broker_name: Option<&'static str>,
}

fn entry(name: &'static str, value: impl ToString, broker_name: Option<&'static str>) -> Entry {
    Entry {
        name,
        value: value.to_string(),
        broker_name,
    }
}

/// The settings every topic runs with.
fn topic_entries(ctx: &Context) -> Vec<Entry> {
    let c = &ctx.config;
    let log = c.log_config();
    let (flush_messages, flush_ms) = match log.flush {
        FlushPolicy::EveryAppend => (1, i64::MAX),
        FlushPolicy::Interval(every) => (
            i64::MAX,
            i64::try_from(every.as_millis()).unwrap_or(i64::MAX),
        ),
        FlushPolicy::Os => (i64::MAX, i64::MAX),
    };
    vec![
        entry(
            "cleanup.policy",
            cleanup_policy_name(log.cleanup_policy),
            // Kafka's default (DEFAULT_CONFIG) unless `--log-cleanup-policy` changed it.
            (log.cleanup_policy != CleanupPolicy::DELETE).then_some("log.cleanup.policy"),
        ),
        entry("compression.type", "producer", None),
        entry(
            "flush.messages",
            flush_messages,
            Some("log.flush.interval.messages"),
        ),
        entry("flush.ms", flush_ms, Some("log.flush.interval.ms")),
        entry("index.interval.bytes", log.index_interval_bytes, None),
        entry(
            "max.message.bytes",
            max_message_bytes(ctx),
            Some("message.max.bytes"),
        ),
        entry("message.timestamp.type", "CreateTime", None),
        entry("min.insync.replicas", 1, None),
        entry(
            "retention.bytes",
            c.retention_bytes,
            Some("log.retention.bytes"),
        ),
        entry("retention.ms", c.retention_ms, Some("log.retention.ms")),
        entry("segment.bytes", c.segment_bytes, Some("log.segment.bytes")),
        entry("segment.ms", c.segment_ms, Some("log.roll.ms")),
        entry("unclean.leader.election.enable", false, None),
    ]
}

/// The broker's own settings (resource name "0").
fn broker_entries(ctx: &Context) -> Vec<Entry> {
    let c = &ctx.config;
    let mut entries = vec![
        entry(
            "advertised.listeners",
            format!(
                "PLAINTEXT://{}:{}",
                ctx.advertised_host, ctx.advertised_port
            ),
            Some("advertised.listeners"),
        ),
        entry(
            "auto.create.topics.enable",
            c.auto_create_topics,
            Some("auto.create.topics.enable"),
        ),
        entry("broker.id", NODE_ID, None),
        entry(
            "connections.max.idle.ms",
            c.idle_timeout_secs.saturating_mul(1000),
            Some("connections.max.idle.ms"),
        ),
        entry(
            "listeners",
            format!("PLAINTEXT://{}", c.listen),
            Some("listeners"),
        ),
        entry("log.dirs", c.data_dir.display(), Some("log.dirs")),
        entry(
            "max.connections",
            c.max_connections,
            Some("max.connections"),
        ),
        entry(
            "num.partitions",
            c.default_partitions,
            Some("num.partitions"),
        ),
        entry(
            "socket.request.max.bytes",
            c.max_frame_bytes,
            Some("socket.request.max.bytes"),
        ),
        entry(
            "log.cleaner.backoff.ms",
            c.log_cleaner_backoff_ms,
            Some("log.cleaner.backoff.ms"),
        ),
        entry(
            "log.cleaner.dedupe.buffer.size",
            c.log_cleaner_dedupe_buffer_size,
            Some("log.cleaner.dedupe.buffer.size"),
        ),
        entry(
            "log.cleaner.io.max.bytes.per.second",
            // Kafka's default, a double's maximum, means no limit.
            c.log_cleaner_io_max_bytes_per_second
                .map_or_else(|| f64::MAX.to_string(), |r| r.to_string()),
            Some("log.cleaner.io.max.bytes.per.second"),
        ),
        entry(
            "log.cleaner.min.cleanable.ratio",
            c.log_cleaner_min_cleanable_ratio,
            Some("log.cleaner.min.cleanable.ratio"),
        ),
        entry(
            "log.cleaner.threads",
            c.log_cleaner_threads,
            Some("log.cleaner.threads"),
        ),
    ];
    // The topic-level settings under their broker-level names.
    for topic in topic_entries(ctx) {
        if let Some(name) = topic
            .broker_name
            .filter(|n| !entries.iter().any(|e| e.name == *n))
        {
            entries.push(entry(name, topic.value, Some(name)));
        }
    }
    entries.sort_by_key(|e| e.name);
    entries
}

/// Why a topic configuration given at creation cannot be honoured, if it cannot: Weir has
/// no per-topic overrides, so only the value already in force is accepted.
pub(crate) fn refuse_topic_config(
    ctx: &Context,
    name: &str,
    value: Option<&str>,
) -> Option<String> {
    let entries = topic_entries(ctx);
    let Some(current) = entries.iter().find(|e| e.name == name) else {
        return Some(format!("unknown or unsupported topic config {name}"));
    };
    match value {
        Some(v) if v == current.value => None,
        _ => Some(format!(
            "per-topic config overrides are not supported: {name} is {} for every topic{}",
            current.value,
            current
                .broker_name
                .map_or(String::new(), |b| format!(" (broker setting {b})"))
        )),
    }
}

/// `cleanup.policy` as Kafka writes it.
fn cleanup_policy_name(policy: CleanupPolicy) -> &'static str {
    match (policy.compact, policy.delete) {
        (true, true) => "compact,delete",
        (true, false) => "compact",
        _ => "delete",
    }
}

/// Largest batch the log accepts: it must fit in a segment and in a request frame.
fn max_message_bytes(ctx: &Context) -> u64 {
    u64::from(ctx.config.segment_bytes)
        .min(u64::try_from(ctx.config.max_frame_bytes).unwrap_or(u64::MAX))
}

#[allow(
    clippy::too_many_lines,
    reason = "one pass over the requested resources, each answered by kind with its entries and synonyms; to be split by resource kind with per-topic configs"
)]
pub(crate) fn handle(
    ctx: &Arc<Context>,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let refuse = |code: ErrorCode, message: String| {
                result
                    .clone()
                    .with_error_code(code.code())
                    .with_error_message(Some(wire_str(message)))
            };
            let entries = match resource.resource_type {
                RESOURCE_TOPIC => {
                    if ctx.catalog.get(&resource.resource_name).is_none() {
                        return refuse(
                            ErrorCode::UnknownTopicOrPartition,
                            format!("topic {} does not exist", &*resource.resource_name),
                        );
                    }
                    topic_entries(ctx)
                }
                RESOURCE_BROKER => {
                    if !resource.resource_name.is_empty()
                        && *resource.resource_name != *NODE_ID.to_string()
                    {
                        return refuse(
                            ErrorCode::InvalidRequest,
                            format!(
                                "there is no broker {}; this is broker {NODE_ID}",
                                &*resource.resource_name
                            ),
                        );
                    }
                    broker_entries(ctx)
                }
                other => {
                    return refuse(
                        ErrorCode::InvalidRequest,
                        format!("resource type {other} has no configuration here"),
                    );
                }
            };
            let source = |e: &Entry| {
                if e.broker_name.is_some() {
                    SOURCE_STATIC_BROKER
                } else {
                    SOURCE_DEFAULT
                }
            };
            let configs = entries
                .iter()
                .filter(|e| {
                    resource
                        .configuration_keys
                        .as_ref()
                        .is_none_or(|keys| keys.iter().any(|k| **k == *e.name))
                })
                .map(|e| {
                    let synonyms = match e.broker_name {
                        Some(broker_name) if request.include_synonyms => vec![
                            DescribeConfigsSynonym::default()
                                .with_name(wire_str(broker_name))
                                .with_value(Some(wire_str(e.value.clone())))
                                .with_source(SOURCE_STATIC_BROKER),
                        ],
                        _ => Vec::new(),
                    };
                    DescribeConfigsResourceResult::default()
                        .with_name(wire_str(e.name))
                        .with_value(Some(wire_str(e.value.clone())))
                        // No config can be altered at run time.
                        .with_read_only(true)
                        .with_config_source(source(e))
                        .with_is_sensitive(false)
                        .with_synonyms(synonyms)
                })
                .collect();
            result.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
