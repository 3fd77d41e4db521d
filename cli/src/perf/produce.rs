//! The sending side of `weir perf produce` and `weir perf e2e`: `--producers` producers, each
//! sending its share of the records round-robin over the partitions, at most `--throughput`
//! records per second in all. Latency is from `send` to the acknowledgement: one collector
//! per partition awaits the deliveries in order, which is the order the broker acknowledges
//! them within a partition, so each is timed when its batch is answered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use weir_client::{DeliveryFuture, Producer, ProducerRecord};

use super::ensure_topic;
use super::histogram::Histogram;
use super::progress::{Counters, Progress};
use super::report::Report;
use crate::args::{AcksArg, PerfProduceArgs};
use crate::commands::Context;
use crate::commands::produce::producer_config;
use crate::error::{CliError, CliResult};
use crate::shutdown::Shutdown;

/// Deliveries awaited per partition; the producer's buffer bounds the bytes anyway.
const QUEUED_PER_PARTITION: usize = 1 << 15;

/// What the producers send.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The topic.
    pub(crate) topic: String,
    /// Records in all.
    pub(crate) records: u64,
    /// Value size.
    pub(crate) record_size: usize,
    /// Records per second (0: unlimited); per producer once split by `send_all`.
    pub(crate) throughput: f64,
    /// Partitions to spread over.
    pub(crate) partitions: i32,
    /// When set, each value starts with the µs since this instant at send time (e2e).
    pub(crate) stamp: Option<Instant>,
}

/// What the producers measured.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    /// Send-to-acknowledgement latency, µs.
    pub(crate) latency: Histogram,
    /// Records acknowledged.
    pub(crate) acked: u64,
    /// Records that failed.
    pub(crate) failed: u64,
}

/// Runs `weir perf produce`.
///
/// # Errors
/// Bad settings or an unreachable broker.
pub(crate) async fn run(ctx: &Context, args: &PerfProduceArgs) -> CliResult<Report> {
    check(args)?;
    let partitions = ensure_topic(ctx, &args.topic, args.partitions).await?;
    let plan = Plan {
        topic: args.topic.clone(),
        records: args.records,
        record_size: args.record_size,
        throughput: args.throughput as f64,
        partitions,
        stamp: None,
    };
    let counters = Arc::new(Counters::default());
    let progress = Progress::start("produce", args.records, Arc::clone(&counters));
    let started = Instant::now();
    let sent = send_all(ctx, args, &plan, &counters).await?;
    let elapsed = started.elapsed();
    progress.finish();
    Ok(Report {
        scenario: "produce",
        settings: settings(args, partitions),
        records: sent.acked,
        failed: sent.failed,
        bytes: sent.acked * args.record_size as u64,
        elapsed,
        latency: Some(sent.latency),
    })
}

/// Refuses settings that cannot run.
///
/// # Errors
/// [`CliError::Usage`].
pub(crate) fn check(args: &PerfProduceArgs) -> CliResult {
    if args.producers == 0 || args.partitions <= 0 {
        return Err(CliError::Usage(
            "--producers and --partitions must be at least 1".to_owned(),
        ));
    }
    if args.record_size > crate::args::RECORD_BYTES_MAX {
        return Err(CliError::Usage(format!(
            "--record-size is at most {} bytes",
            crate::args::RECORD_BYTES_MAX
        )));
    }
    Ok(())
}

/// The settings as a report prints them.
pub(crate) fn settings(
    args: &PerfProduceArgs,
    partitions: i32,
) -> Vec<(&'static str, serde_json::Value)> {
    let acks = match args.acks {
        AcksArg::Zero => "0",
        AcksArg::One => "1",
        AcksArg::All => "all",
    };
    vec![
        ("topic", json!(args.topic)),
        ("record_size", json!(args.record_size)),
        ("acks", json!(acks)),
        ("partitions", json!(partitions)),
        ("producers", json!(args.producers)),
        ("batch_size", json!(args.batch_size)),
        ("linger_ms", json!(args.linger_ms)),
        ("throughput_limit", json!(args.throughput)),
        (
            "compression",
            json!(format!("{:?}", args.compression).to_lowercase()),
        ),
    ]
}

/// Sends the plan's records with `args.producers` producers and waits for every delivery.
///
/// # Errors
/// A producer that cannot be built.
pub(crate) async fn send_all(
    ctx: &Context,
    args: &PerfProduceArgs,
    plan: &Plan,
    counters: &Arc<Counters>,
) -> CliResult<Sent> {
    let producers = u64::from(args.producers);
    let mut tasks = Vec::new();
    for k in 0..producers {
        let config = producer_config(ctx, args.acks, args.compression)
            .batch_size(args.batch_size)
            .linger(Duration::from_millis(args.linger_ms));
        let producer = Producer::new(config).map_err(|e| ctx.err(e))?;
        // Producer k sends records k, k + producers, ...: shares differ by at most one.
        let share = plan.records / producers + u64::from(k < plan.records % producers);
        let mut mine = plan.clone();
        mine.records = share;
        mine.throughput = plan.throughput / producers as f64;
        tasks.push(tokio::spawn(send(
            producer,
            mine,
            k,
            Arc::clone(counters),
            ctx.shutdown.clone(),
        )));
    }
    let mut total = Sent::default();
    for task in tasks {
        let sent = task.await.unwrap_or_default();
        total.latency.merge(&sent.latency);
        total.acked += sent.acked;
        total.failed += sent.failed;
    }
    Ok(total)
}

async fn send(
    producer: Producer,
    plan: Plan,
    first: u64,
    counters: Arc<Counters>,
    shutdown: Shutdown,
) -> Sent {
    let payload = Bytes::from(
        b"abcdefghijklmnopqrstuvwxyz"
            .iter()
            .copied()
            .cycle()
            .take(plan.record_size)
            .collect::<Vec<u8>>(),
    );
    let mut queues = Vec::new();
    let mut collectors: Vec<JoinHandle<Sent>> = Vec::new();
    for _ in 0..plan.partitions {
        let (tx, rx) = mpsc::channel(QUEUED_PER_PARTITION);
        queues.push(tx);
        collectors.push(tokio::spawn(collect(
            rx,
            plan.record_size as u64,
            Arc::clone(&counters),
        )));
    }
    let mut refused = 0u64;
    let started = tokio::time::Instant::now();
    let partitions = u64::try_from(plan.partitions).unwrap_or(1);
    for i in 0..plan.records {
        if i % 256 == 0 && shutdown.is_requested() {
            break;
        }
        if plan.throughput > 0.0 {
            let due = started + Duration::from_secs_f64(i as f64 / plan.throughput);
            tokio::time::sleep_until(due).await;
        }
        let value = match plan.stamp {
            Some(epoch) => stamped(&payload, epoch),
            None => payload.clone(),
        };
        let slot = usize::try_from((first + i) % partitions).unwrap_or(0);
        let partition = i32::try_from(slot).unwrap_or(0);
        let sent_at = Instant::now();
        match producer
            .send(ProducerRecord::new(plan.topic.as_str(), value).partition(partition))
            .await
        {
            Ok(delivery) => {
                if queues[slot].send((sent_at, delivery)).await.is_err() {
                    break;
                }
            }
            Err(_refused) => {
                refused += 1;
                counters
                    .failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
    drop(queues);
    // Failures are counted by the collectors, record by record; close only drains.
    drop(producer.close().await);
    let mut total = Sent {
        failed: refused,
        ..Sent::default()
    };
    for c in collectors {
        let sent = c.await.unwrap_or_default();
        total.latency.merge(&sent.latency);
        total.acked += sent.acked;
        total.failed += sent.failed;
    }
    total
}

/// The payload with its first 8 bytes replaced by the µs since `epoch` (big-endian).
fn stamped(payload: &Bytes, epoch: Instant) -> Bytes {
    let micros = u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
    let mut b = BytesMut::with_capacity(payload.len().max(8));
    b.put_u64(micros);
    if payload.len() > 8 {
        b.extend_from_slice(&payload[8..]);
    }
    b.freeze()
}

/// The µs stamp of an e2e value.
pub(crate) fn stamp_of(value: &[u8]) -> Option<u64> {
    value
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
}

async fn collect(
    mut deliveries: mpsc::Receiver<(Instant, DeliveryFuture)>,
    size: u64,
    counters: Arc<Counters>,
) -> Sent {
    let mut sent = Sent::default();
    while let Some((at, delivery)) = deliveries.recv().await {
        match delivery.await {
            Ok(_) => {
                sent.latency
                    .record(u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX));
                sent.acked += 1;
                counters.add(1, size);
            }
            Err(_failed) => {
                sent.failed += 1;
                counters
                    .failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_and_keeps_the_size() {
        let payload = Bytes::from(vec![7u8; 100]);
        let epoch = Instant::now();
        let v = stamped(&payload, epoch);
        assert_eq!(v.len(), 100);
        assert!(stamp_of(&v).is_some_and(|s| s < 60_000_000));
        assert_eq!(&v[8..], &payload[8..]);
        assert_eq!(stamped(&Bytes::new(), epoch).len(), 8);
        assert_eq!(stamp_of(b"short"), None);
    }
}
