//! `weir perf e2e`: a consumer tails the topic (positioned at its end before the first send)
//! while the producers send at `--throughput`; each value carries its send time, and the
//! latency is from `send` to the consumer's `poll` returning it. Producer and consumer share
//! this process, so one clock times both ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use weir_client::{Consumer, ConsumerConfig, TopicPartition};

use super::ensure_topic;
use super::histogram::Histogram;
use super::produce::{Plan, check, send_all, settings, stamp_of};
use super::progress::{Counters, Progress};
use super::report::Report;
use crate::args::PerfProduceArgs;
use crate::commands::Context;
use crate::error::{CliError, CliResult};

/// How long the consumer waits for the last records after the producers are done.
const DRAIN_MAX: Duration = Duration::from_secs(30);

/// Runs `weir perf e2e`.
///
/// # Errors
/// Bad settings, unreachable broker, or a consumer failure.
pub(crate) async fn run(ctx: &Context, args: &PerfProduceArgs) -> CliResult<Report> {
    check(args)?;
    if args.record_size < 8 {
        return Err(CliError::Usage(
            "e2e needs --record-size of at least 8 (the send time travels in the value)".to_owned(),
        ));
    }
    let partitions = ensure_topic(ctx, &args.topic, args.partitions).await?;
    let mut consumer =
        Consumer::new(ConsumerConfig::new(ctx.client_config()).max_poll_records(5_000));
    let tps: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(&args.topic, p))
        .collect();
    consumer.assign(tps.clone()).map_err(|e| ctx.err(e))?;
    for tp in &tps {
        consumer.seek_to_end(tp).map_err(|e| ctx.err(e))?;
    }
    for tp in &tps {
        consumer.position(tp).await.map_err(|e| ctx.err(e))?;
    }

    let epoch = Instant::now();
    let counters = Arc::new(Counters::default());
    let produced = Arc::new(Counters::default());
    let progress = Progress::start("e2e", args.records, Arc::clone(&counters));
    let target = args.records;
    let shutdown = ctx.shutdown.clone();
    let received = Arc::clone(&counters);
    let producers_done = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&producers_done);
    let reader = tokio::spawn(async move {
        let mut latency = Histogram::default();
        let mut drain_deadline: Option<Instant> = None;
        while received.records() < target && !shutdown.is_requested() {
            if drain_deadline.is_none() && done.load(Ordering::Acquire) {
                drain_deadline = Some(Instant::now() + DRAIN_MAX);
            }
            if drain_deadline.is_some_and(|d| Instant::now() > d) {
                break;
            }
            let records = consumer.poll(Duration::from_millis(100)).await?;
            let now = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
            let mut bytes = 0;
            for r in &records {
                let value = r.value.as_deref().unwrap_or_default();
                if let Some(sent) = stamp_of(value) {
                    latency.record(now.saturating_sub(sent));
                }
                bytes += value.len() as u64;
            }
            received.add(records.len() as u64, bytes);
        }
        drop(consumer.close().await);
        Ok::<_, weir_client::Error>((latency, Instant::now()))
    });
    let plan = Plan {
        topic: args.topic.clone(),
        records: args.records,
        record_size: args.record_size,
        throughput: args.throughput as f64,
        partitions,
        stamp: Some(epoch),
    };
    let sent = send_all(ctx, args, &plan, &produced).await;
    producers_done.store(true, Ordering::Release);
    let read = reader.await;
    progress.finish();
    let sent = sent?;
    let (latency, finished) = match read {
        Ok(Ok(out)) => out,
        Ok(Err(err)) => return Err(ctx.err(err)),
        Err(join) => {
            return Err(CliError::Refused(format!(
                "the consumer task failed: {join}"
            )));
        }
    };
    let records = counters.records();
    Ok(Report {
        scenario: "e2e",
        settings: settings(args, partitions),
        records,
        failed: sent.failed + sent.acked.saturating_sub(records),
        bytes: counters.bytes.load(Ordering::Relaxed),
        elapsed: finished.duration_since(epoch),
        latency: Some(latency),
    })
}
