//! `weir perf consume`: reads a topic from its beginning as fast as the client goes. One
//! consumer is assigned every partition; several (`--consumers`) join one new group and
//! share them, and the run then includes the group's first rebalance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use weir_client::{Admin, Consumer, ConsumerConfig, OffsetReset, TopicPartition};

use super::progress::{Counters, Progress};
use super::report::Report;
use crate::args::PerfConsumeArgs;
use crate::commands::Context;
use crate::commands::topics::offsets;
use crate::error::{CliError, CliResult};
use crate::shutdown::Shutdown;

/// Records one poll may return: large, so that the loop costs little per record.
const POLL_RECORDS: usize = 5_000;
/// How long a run may see no record at all before it gives up (records missing).
const IDLE_MAX: Duration = Duration::from_secs(30);

/// Runs `weir perf consume`.
///
/// # Errors
/// Unreachable broker, unknown topic, or a consumer failure.
pub(crate) async fn run(ctx: &Context, args: &PerfConsumeArgs) -> CliResult<Report> {
    if args.consumers == 0 {
        return Err(CliError::Usage("--consumers must be at least 1".to_owned()));
    }
    let cluster = ctx.cluster();
    let admin = Admin::with_cluster(cluster.clone());
    let topic = admin
        .describe_topics(&[&args.topic])
        .await
        .map_err(|e| ctx.err(e))?;
    let partitions: Vec<(String, i32)> = topic
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.partition)))
        .collect();
    let starts = offsets(&cluster, &partitions, -2)
        .await
        .map_err(|e| ctx.err(e))?;
    let ends = offsets(&cluster, &partitions, -1)
        .await
        .map_err(|e| ctx.err(e))?;
    let available: i64 = ends
        .iter()
        .map(|(k, end)| end - starts.get(k).copied().unwrap_or(0))
        .sum();
    let target = args
        .records
        .unwrap_or(u64::try_from(available).unwrap_or(0));
    let group = (args.consumers > 1).then(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("weir-perf-{}-{nanos}", std::process::id())
    });
    let counters = Arc::new(Counters::default());
    let progress = Progress::start("consume", target, Arc::clone(&counters));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.consumers {
        let mut config = ConsumerConfig::new(ctx.client_config())
            .auto_offset_reset(OffsetReset::Earliest)
            .max_poll_records(POLL_RECORDS);
        let mut consumer = if let Some(g) = &group {
            config = config.group_id(g.as_str()).enable_auto_commit(false);
            let mut c = Consumer::new(config);
            c.subscribe([args.topic.clone()]).map_err(|e| ctx.err(e))?;
            c
        } else {
            let mut c = Consumer::new(config);
            let tps: Vec<TopicPartition> = partitions
                .iter()
                .map(|(t, p)| TopicPartition::new(t, *p))
                .collect();
            c.assign(tps.clone()).map_err(|e| ctx.err(e))?;
            for tp in &tps {
                c.seek_to_beginning(tp).map_err(|e| ctx.err(e))?;
            }
            c
        };
        let counters = Arc::clone(&counters);
        let shutdown = ctx.shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let outcome = read(&mut consumer, target, &counters, &shutdown).await;
            drop(consumer.close().await);
            outcome
        }));
    }
    let mut failure = None;
    for task in tasks {
        if let Ok(Err(err)) = task.await {
            failure.get_or_insert(err);
        }
    }
    let elapsed = started.elapsed();
    progress.finish();
    if let Some(g) = &group {
        // The throwaway group's offsets are of no use to anyone.
        drop(admin.delete_groups(&[g]).await);
    }
    if let Some(err) = failure {
        return Err(ctx.err(err));
    }
    let records = counters.records();
    Ok(Report {
        scenario: "consume",
        settings: vec![
            ("topic", json!(args.topic)),
            ("partitions", json!(partitions.len())),
            ("consumers", json!(args.consumers)),
        ],
        records,
        failed: target.saturating_sub(records),
        bytes: counters.bytes.load(std::sync::atomic::Ordering::Relaxed),
        elapsed,
        latency: None,
    })
}

/// Polls until the consumers together have `target` records, a stop, or a long silence.
async fn read(
    consumer: &mut Consumer,
    target: u64,
    counters: &Counters,
    shutdown: &Shutdown,
) -> weir_client::Result<()> {
    let mut last_record = Instant::now();
    while counters.records() < target && !shutdown.is_requested() {
        let records = consumer.poll(Duration::from_millis(200)).await?;
        if records.is_empty() {
            if last_record.elapsed() > IDLE_MAX {
                break;
            }
            continue;
        }
        last_record = Instant::now();
        let bytes: usize = records
            .iter()
            .map(|r| {
                r.value.as_ref().map_or(0, bytes::Bytes::len)
                    + r.key.as_ref().map_or(0, bytes::Bytes::len)
            })
            .sum();
        counters.add(records.len() as u64, bytes as u64);
    }
    Ok(())
}
