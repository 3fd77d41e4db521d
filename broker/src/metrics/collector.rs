//! State read at each scrape: partitions (offsets, size, segments, records and bytes in and
//! out) and consumer groups (state, members, lag).
//!
//! Reads only: the catalog's list of topics, each log's published offsets and sizes, each
//! partition's traffic counters, the group service's descriptions and the offsets store's
//! commits. Nothing here takes a log's writer lock, so a scrape never delays an append.
//! Before the stores are open (the broker still recovering) it writes nothing.

use std::sync::{Arc, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::ScrapeSource;
use super::Sources;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NoLabels {}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: i32,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupOnly {
    group: String,
}

/// Groups by state with their member counts, their generations, and each committed
/// partition's lag.
struct GroupSamples {
    members: Samples<GroupLabels>,
    generations: Samples<GroupOnly>,
    lag: Samples<LagLabels>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LagLabels {
    group: String,
    topic: String,
    partition: i32,
}

/// One sample: its labels and value.
type Samples<L> = Vec<(L, i64)>;

/// Writes one metric family of samples.
fn family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric_type: MetricType,
    samples: &Samples<L>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in samples {
        let mut sample = metric.encode_family(labels)?;
        match metric_type {
            MetricType::Counter => sample.encode_counter::<NoLabelSet, u64, u64>(
                &u64::try_from(*value).unwrap_or(0),
                None,
            )?,
            _ => sample.encode_gauge(value)?,
        }
    }
    Ok(())
}

/// Reads the stores at each scrape.
#[derive(Debug)]
pub(crate) struct BrokerCollector {
    sources: Arc<OnceLock<Sources>>,
}

impl BrokerCollector {
    pub(crate) fn new(sources: Arc<OnceLock<Sources>>) -> Self {
        Self { sources }
    }
}

/// Per-topic traffic (summed over partitions) and per-partition state.
#[derive(Default)]
struct TopicSamples {
    records_in: Samples<TopicLabels>,
    bytes_in: Samples<TopicLabels>,
    records_out: Samples<TopicLabels>,
    bytes_out: Samples<TopicLabels>,
    log_start: Samples<PartitionLabels>,
    log_end: Samples<PartitionLabels>,
    high_watermark: Samples<PartitionLabels>,
    size: Samples<PartitionLabels>,
    segments: Samples<PartitionLabels>,
    unsynced: Samples<PartitionLabels>,
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn topic_samples(ctx: &dyn ScrapeSource) -> TopicSamples {
    let mut s = TopicSamples::default();
    for topic in ctx.catalog().list() {
        let name = topic.name().to_owned();
        let mut sums = crate::topics::TrafficCounts::default();
        for (index, partition) in topic.local_partitions() {
            let counts = partition.traffic().counts();
            sums.records_in += counts.records_in;
            sums.bytes_in += counts.bytes_in;
            sums.records_out += counts.records_out;
            sums.bytes_out += counts.bytes_out;
            let labels = PartitionLabels {
                topic: name.clone(),
                partition: index,
            };
            let log = partition.log();
            s.log_start.push((labels.clone(), log.log_start_offset().0));
            s.log_end.push((labels.clone(), log.log_end_offset().0));
            s.high_watermark
                .push((labels.clone(), log.high_watermark().0));
            s.size.push((labels.clone(), as_i64(log.size_bytes())));
            s.unsynced
                .push((labels.clone(), as_i64(log.unsynced_bytes())));
            s.segments
                .push((labels, as_i64(log.segment_count() as u64)));
        }
        let labels = TopicLabels { topic: name };
        s.records_in.push((labels.clone(), as_i64(sums.records_in)));
        s.bytes_in.push((labels.clone(), as_i64(sums.bytes_in)));
        s.records_out
            .push((labels.clone(), as_i64(sums.records_out)));
        s.bytes_out.push((labels, as_i64(sums.bytes_out)));
    }
    s
}

/// Groups by state with their member counts and generations, and each committed partition's lag.
fn group_samples(ctx: &dyn ScrapeSource) -> GroupSamples {
    let mut members = Vec::new();
    let mut generations = Vec::new();
    let mut known = std::collections::HashSet::new();
    for (group, state, _protocol_type) in ctx.groups().list() {
        let description = ctx.groups().describe(&group);
        let count = description.as_ref().map_or(0, |d| d.members.len());
        let generation = description.map_or(0, |d| i64::from(d.generation));
        generations.push((
            GroupOnly {
                group: group.clone(),
            },
            generation,
        ));
        known.insert(group.clone());
        members.push((
            GroupLabels {
                group,
                state: state.name().to_owned(),
            },
            as_i64(count as u64),
        ));
    }
    let mut lag = Vec::new();
    for group in ctx.offset_groups() {
        if known.insert(group.clone()) {
            // Offsets committed without a live group (simple consumers, or after a restart).
            members.push((
                GroupLabels {
                    group: group.clone(),
                    state: "Empty".to_owned(),
                },
                0,
            ));
        }
        for (topic, partition, committed) in ctx.group_offsets(&group) {
            let Some(log) = ctx
                .catalog()
                .get(&topic)
                .and_then(|t| t.log(partition).cloned())
            else {
                continue;
            };
            let behind = (log.high_watermark().0 - committed.offset).max(0);
            lag.push((
                LagLabels {
                    group: group.clone(),
                    topic,
                    partition,
                },
                behind,
            ));
        }
    }
    GroupSamples {
        members,
        generations,
        lag,
    }
}

impl Collector for BrokerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(ctx) = self.sources.get().and_then(|s| s.source.upgrade()) else {
            return Ok(());
        };
        let ctx: &dyn ScrapeSource = &*ctx;
        encode_topics(&mut encoder, &topic_samples(ctx))?;
        encode_server(&mut encoder, ctx)?;
        let GroupSamples {
            members,
            generations,
            lag,
        } = group_samples(ctx);
        family(
            &mut encoder,
            "weir_consumer_group_members",
            "Members of the consumer group, by its state",
            MetricType::Gauge,
            &members,
        )?;
        family(
            &mut encoder,
            "weir_consumer_group_generation",
            "The group's generation: one more per completed rebalance (rate() is the rebalance rate)",
            MetricType::Gauge,
            &generations,
        )?;
        family(
            &mut encoder,
            "weir_consumer_group_lag",
            "High watermark minus the group's committed offset",
            MetricType::Gauge,
            &lag,
        )
    }
}

/// Server figures kept by the context: parked fetches, the request-bytes budget in use.
fn encode_server(
    e: &mut DescriptorEncoder<'_>,
    ctx: &dyn ScrapeSource,
) -> Result<(), std::fmt::Error> {
    let one = |v: u64| vec![(NoLabels {}, as_i64(v))];
    family(
        e,
        "weir_fetches_parked",
        "Long-polling fetches waiting for an append to one of their partitions",
        MetricType::Gauge,
        &one(ctx.parked_fetches()),
    )?;
    family(
        e,
        "weir_request_budget_used_bytes",
        "Request bytes held now out of --max-produce-bytes-in-flight",
        MetricType::Gauge,
        &one(ctx.request_budget_used()),
    )
}

/// The topic and partition families.
fn encode_topics(e: &mut DescriptorEncoder<'_>, t: &TopicSamples) -> Result<(), std::fmt::Error> {
    use MetricType::{Counter, Gauge};
    let topics = [
        (
            "weir_topic_records_in",
            "Records appended to the topic by producers",
            &t.records_in,
        ),
        (
            "weir_topic_bytes_in",
            "Bytes of record batches appended to the topic",
            &t.bytes_in,
        ),
        (
            "weir_topic_records_out",
            "Records returned to fetches from the topic",
            &t.records_out,
        ),
        (
            "weir_topic_bytes_out",
            "Record bytes returned to fetches from the topic",
            &t.bytes_out,
        ),
    ];
    for (name, help, samples) in topics {
        family(e, name, help, Counter, samples)?;
    }
    let partitions = [
        (
            "weir_partition_log_start_offset",
            "First offset a consumer can read",
            &t.log_start,
        ),
        (
            "weir_partition_log_end_offset",
            "Offset the next record will get",
            &t.log_end,
        ),
        (
            "weir_partition_high_watermark",
            "Offset below which records are readable",
            &t.high_watermark,
        ),
        (
            "weir_partition_size_bytes",
            "Bytes of the partition's segments",
            &t.size,
        ),
        (
            "weir_partition_segments",
            "Segments of the partition",
            &t.segments,
        ),
        (
            "weir_partition_unsynced_bytes",
            "Bytes appended but not yet synced to disk (acks=all waits for them)",
            &t.unsynced,
        ),
    ];
    for (name, help, samples) in partitions {
        family(e, name, help, Gauge, samples)?;
    }
    Ok(())
}
