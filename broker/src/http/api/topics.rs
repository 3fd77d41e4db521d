//! `/v1/topics` and `/v1/topics/{topic}`: topics with their partitions' offsets, sizes and
//! traffic, and the log settings each topic's partitions run with.
//!
//! The settings come from the log itself ([`crate::log::PartitionLog::config`]), so they are
//! what the broker applies, under Kafka's config names; they do not say which were set per
//! topic and which are broker defaults.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use super::{ApiError, ApiState, MAX_LISTED, as_i64};
use crate::log::{CleanupPolicy, FlushPolicy, LogConfig, TimestampType};
use crate::topics::{Partition, Topic};

/// One topic in the list, its partitions summed.
#[derive(Debug, Serialize)]
pub(crate) struct TopicSummary {
    name: String,
    partitions: usize,
    /// Records between the log start offsets and the high watermarks.
    records: i64,
    size_bytes: i64,
    segments: i64,
    records_in_total: i64,
    bytes_in_total: i64,
    records_out_total: i64,
    bytes_out_total: i64,
}

/// Every topic, by name.
#[derive(Debug, Serialize)]
pub(crate) struct TopicList {
    topics: Vec<TopicSummary>,
    /// More topics exist than [`MAX_LISTED`].
    truncated: bool,
}

/// One partition's offsets, size and traffic.
#[derive(Debug, Serialize)]
pub(crate) struct PartitionInfo {
    partition: i32,
    leader: i32,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    size_bytes: i64,
    segments: i64,
    records_in_total: i64,
    bytes_in_total: i64,
    records_out_total: i64,
    bytes_out_total: i64,
}

/// One topic in full.
#[derive(Debug, Serialize)]
pub(crate) struct TopicDetail {
    name: String,
    partitions: Vec<PartitionInfo>,
    /// The topic has more partitions than [`MAX_LISTED`]; the first are listed.
    truncated: bool,
    /// The log settings in force, under Kafka's config names.
    configs: BTreeMap<&'static str, String>,
}

/// A partition held here: this broker leads it (one replica per partition).
fn partition_info(leader: i32, index: i32, partition: &Partition) -> PartitionInfo {
    let log = partition.log();
    let counts = partition.traffic().counts();
    PartitionInfo {
        partition: index,
        leader,
        log_start_offset: log.log_start_offset().0,
        log_end_offset: log.log_end_offset().0,
        high_watermark: log.high_watermark().0,
        size_bytes: as_i64(log.size_bytes()),
        segments: as_i64(log.segment_count() as u64),
        records_in_total: as_i64(counts.records_in),
        bytes_in_total: as_i64(counts.bytes_in),
        records_out_total: as_i64(counts.records_out),
        bytes_out_total: as_i64(counts.bytes_out),
    }
}

fn summary(topic: &Topic) -> TopicSummary {
    let mut s = TopicSummary {
        name: topic.name().to_owned(),
        // The topic's count; the sums below are of the partitions this broker holds.
        partitions: usize::try_from(topic.partition_count()).unwrap_or(0),
        records: 0,
        size_bytes: 0,
        segments: 0,
        records_in_total: 0,
        bytes_in_total: 0,
        records_out_total: 0,
        bytes_out_total: 0,
    };
    for (index, partition) in topic.local_partitions() {
        // Only the sums are kept: the leader does not matter here.
        let p = partition_info(0, index, partition);
        s.records += (p.high_watermark - p.log_start_offset).max(0);
        s.size_bytes += p.size_bytes;
        s.segments += p.segments;
        s.records_in_total += p.records_in_total;
        s.bytes_in_total += p.bytes_in_total;
        s.records_out_total += p.records_out_total;
        s.bytes_out_total += p.bytes_out_total;
    }
    s
}

/// The settings of `config` under Kafka's topic-config names.
fn configs(config: &LogConfig) -> BTreeMap<&'static str, String> {
    let optional = |v: Option<String>| v.unwrap_or_else(|| "-1".to_owned());
    let cleanup = match config.cleanup_policy {
        CleanupPolicy {
            delete: true,
            compact: true,
        } => "compact,delete",
        CleanupPolicy { compact: true, .. } => "compact",
        CleanupPolicy { delete: true, .. } => "delete",
        CleanupPolicy { .. } => "",
    };
    let timestamp_type = match config.rules.timestamp_type {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    };
    let flush = match config.flush {
        FlushPolicy::EveryAppend => "every append".to_owned(),
        FlushPolicy::Interval(every) => format!("every {} ms", every.as_millis()),
        FlushPolicy::Os => "by the operating system".to_owned(),
    };
    BTreeMap::from([
        ("cleanup.policy", cleanup.to_owned()),
        ("segment.bytes", config.segment_bytes.to_string()),
        ("segment.ms", config.segment_ms.to_string()),
        (
            "index.interval.bytes",
            config.index_interval_bytes.to_string(),
        ),
        (
            "retention.bytes",
            optional(config.retention_bytes.map(|b| b.to_string())),
        ),
        (
            "retention.ms",
            optional(config.retention_ms.map(|m| m.to_string())),
        ),
        (
            "max.message.bytes",
            config.rules.max_message_bytes.to_string(),
        ),
        ("message.timestamp.type", timestamp_type.to_owned()),
        (
            "min.insync.replicas",
            config.rules.min_insync_replicas.to_string(),
        ),
        (
            "delete.retention.ms",
            config.compaction.delete_retention_ms.to_string(),
        ),
        (
            "min.compaction.lag.ms",
            config.compaction.min_compaction_lag_ms.to_string(),
        ),
        (
            "min.cleanable.dirty.ratio",
            config.compaction.min_cleanable_dirty_ratio.to_string(),
        ),
        ("flush", flush),
    ])
}

pub(super) async fn list(State(state): State<ApiState>) -> Result<Json<TopicList>, ApiError> {
    state
        .read(|ctx| {
            let mut all = ctx.catalog.list();
            all.sort_by(|a, b| a.name().cmp(b.name()));
            let truncated = all.len() > MAX_LISTED;
            let topics = all.iter().take(MAX_LISTED).map(|t| summary(t)).collect();
            Ok(TopicList { topics, truncated })
        })
        .await
}

pub(super) async fn one(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<TopicDetail>, ApiError> {
    state
        .read(move |ctx| {
            let topic = ctx.catalog.get(&name).ok_or(ApiError::NoTopic(name))?;
            let partitions = topic
                .local_partitions()
                .take(MAX_LISTED)
                .map(|(index, p)| partition_info(ctx.node_id(), index, p))
                .collect();
            // A topic with no partition here (in a cluster) has the settings its logs would get.
            let configs = match topic.local_partitions().next() {
                Some((_, p)) => configs(&p.log().config()),
                None => configs(
                    &ctx.catalog
                        .config_snapshot()
                        .layers()
                        .log_config(&topic.overrides()),
                ),
            };
            Ok(TopicDetail {
                name: topic.name().to_owned(),
                partitions,
                truncated: topic.local_partitions().nth(MAX_LISTED).is_some(),
                configs,
            })
        })
        .await
}
