//! The snapshotter: a consumer-group member that folds the movements partitions it owns and
//! writes their snapshots, stamped with the time of the last movement they cover.
//!
//! The snapshots are also its checkpoint: whenever the group assigns it partitions, it
//! resumes each from the latest snapshot (the last record of that snapshots partition) and
//! seeks to the offset that snapshot covers, so a SIGKILL between any two steps loses no
//! movement and folds none twice; the group's committed offsets, written after each
//! snapshot, only show progress (`weir groups describe stock-snapshotter`). A partition is
//! snapshotted every `snapshot_every` movements and whenever it is idle with movements not
//! yet covered, so a caught-up snapshotter's snapshots cover the whole log.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use weir_client::backoff::{JitterSource, SplitMix64};
use weir_client::{
    ClientConfig, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};

use crate::error::{Error, Result};
use crate::log;
use crate::model::{Movement, Snapshot};
use crate::topics::{MOVEMENTS, SNAPSHOTS, SNAPSHOTTER_GROUP};

/// How the snapshotter runs.
#[derive(Debug, Clone)]
pub struct SnapshotterConfig {
    /// Broker address.
    pub bootstrap: String,
    /// The group session timeout: how soon a dead snapshotter's partitions move.
    pub session_timeout: Duration,
    /// Snapshot a partition after this many movements.
    pub snapshot_every: u32,
    /// Crashes injected between the steps of a batch, for the crash test.
    pub crashes: Option<CrashInjection>,
}

/// Exits the process (no cleanup, as a SIGKILL would) at a step boundary of a batch, with
/// probability `1 / one_in` at each, from a seeded generator: lands crashes between folding,
/// writing a snapshot and its acknowledgement, which kills from outside rarely hit.
#[derive(Debug, Clone)]
pub struct CrashInjection {
    /// One crash per this many step boundaries, on average.
    pub one_in: u64,
    /// The generator.
    pub rng: SplitMix64,
}

impl CrashInjection {
    fn maybe_crash(crashes: Option<&mut Self>, step: &str) {
        if let Some(c) = crashes {
            if c.rng.next_u64() % c.one_in.max(1) == 0 {
                eprintln!("stock-history snapshotter: crash injected {step}");
                std::process::exit(CRASH_EXIT_CODE);
            }
        }
    }
}

/// The exit code of an injected crash.
pub const CRASH_EXIT_CODE: i32 = 86;

/// The latest snapshot of `partition`, if there is one.
///
/// # Errors
/// The client's failure or an undecodable snapshot.
pub async fn latest(bootstrap: &str, partition: i32) -> Result<Option<(i64, Snapshot)>> {
    let end = log::end_offsets(bootstrap, SNAPSHOTS, partition + 1).await?;
    let end = end.last().copied().unwrap_or(0);
    if end == 0 {
        return Ok(None);
    }
    at(bootstrap, partition, end - 1).await
}

/// The snapshot record at `offset` of snapshots partition `partition`.
///
/// # Errors
/// The client's failure or an undecodable snapshot.
pub async fn at(bootstrap: &str, partition: i32, offset: i64) -> Result<Option<(i64, Snapshot)>> {
    match log::read(bootstrap, SNAPSHOTS, partition, offset, offset + 1)
        .await?
        .first()
    {
        Some(record) => Ok(Some((record.offset, log::decode(record)?))),
        None => Ok(None),
    }
}

/// A movement, or `None` (with a warning) for a record that is not one: every reader skips
/// the same records, so the snapshotter and the as-of query still agree.
pub fn movement(record: &ConsumerRecord) -> Option<Movement> {
    match log::decode(record) {
        Ok(movement) => Some(movement),
        Err(err) => {
            tracing::warn!(error = %err, "skipping a record that is not a movement");
            None
        }
    }
}

/// One owned partition.
#[derive(Debug)]
struct Part {
    /// The fold so far.
    snapshot: Snapshot,
    /// Movements folded since the last snapshot was written.
    pending: u32,
}

/// Runs until an error (the process is meant to be restarted on one).
///
/// # Errors
/// The client's failure; an unacknowledged snapshot.
pub async fn run(mut config: SnapshotterConfig) -> Result<()> {
    let bootstrap = config.bootstrap.as_str();
    let client = || ClientConfig::new([bootstrap]).client_id("stock-history-snapshotter");
    let mut consumer = Consumer::new(
        ConsumerConfig::new(client())
            .group_id(SNAPSHOTTER_GROUP)
            .auto_offset_reset(OffsetReset::Earliest)
            .enable_auto_commit(false)
            .fetch_wait(Duration::from_millis(100), 1)
            .session(config.session_timeout, config.session_timeout / 4),
    );
    consumer.subscribe([MOVEMENTS])?;
    let producer = Producer::new(ProducerConfig::new([bootstrap]).client(|_| client()))?;
    let mut parts: BTreeMap<i32, Part> = BTreeMap::new();
    let mut assignment = BTreeSet::new();
    loop {
        let records = consumer.poll(Duration::from_millis(200)).await?;
        let now: BTreeSet<TopicPartition> = consumer.assignment().into_iter().collect();
        if now != assignment {
            parts.clear();
            for tp in &now {
                let snapshot = match latest(bootstrap, tp.partition).await? {
                    Some((_, snapshot)) => snapshot,
                    None => Snapshot {
                        partition: tp.partition,
                        last_timestamp: -1,
                        ..Snapshot::default()
                    },
                };
                tracing::info!(
                    partition = tp.partition,
                    offset = snapshot.next_offset,
                    "resuming"
                );
                if let Err(err) = consumer.seek(tp, snapshot.next_offset) {
                    tracing::info!(error = %err, "cannot seek; the partition moved");
                }
                parts.insert(
                    tp.partition,
                    Part {
                        snapshot,
                        pending: 0,
                    },
                );
            }
            assignment = now;
            continue;
        }
        let mut rewound = BTreeSet::new();
        let mut due: Vec<Snapshot> = Vec::new();
        for record in &records {
            let Some(part) = parts.get_mut(&record.partition) else {
                continue;
            };
            let expected = part.snapshot.next_offset;
            if record.offset < expected || rewound.contains(&record.partition) {
                continue;
            }
            if record.offset > expected {
                if let Err(err) = consumer.seek(&record.topic_partition(), expected) {
                    tracing::info!(error = %err, "cannot seek; the partition moved");
                }
                rewound.insert(record.partition);
                continue;
            }
            if let Some(movement) = movement(record) {
                part.snapshot.stock.apply(&movement);
            }
            part.snapshot.next_offset = record.offset + 1;
            part.snapshot.last_timestamp = record.timestamp;
            part.pending += 1;
            if part.pending >= config.snapshot_every {
                part.pending = 0;
                due.push(part.snapshot.clone());
            }
        }
        if records.is_empty() {
            for part in parts.values_mut().filter(|p| p.pending > 0) {
                part.pending = 0;
                due.push(part.snapshot.clone());
            }
        }
        if due.is_empty() {
            continue;
        }
        CrashInjection::maybe_crash(config.crashes.as_mut(), "before writing snapshots");
        let mut written = Vec::new();
        let mut commits = BTreeMap::new();
        for snapshot in due {
            let value = serde_json::to_vec(&snapshot).map_err(Error::Encode)?;
            let record = ProducerRecord::new(SNAPSHOTS, value)
                .partition(snapshot.partition)
                .timestamp(snapshot.last_timestamp);
            let delivery = producer.send(record).await.map_err(Box::new)?;
            written.push(delivery);
            commits.insert(
                TopicPartition::new(MOVEMENTS, snapshot.partition),
                snapshot.next_offset,
            );
        }
        CrashInjection::maybe_crash(config.crashes.as_mut(), "with snapshots sent");
        for delivery in written {
            delivery.await.map_err(|source| Error::Delivery {
                what: "snapshot".to_owned(),
                source,
            })?;
        }
        CrashInjection::maybe_crash(config.crashes.as_mut(), "before the commit");
        if let Err(err) = consumer.commit_offsets(commits).await {
            tracing::info!(error = %err, "committing progress failed (a rebalance?)");
        }
    }
}

/// Waits until the latest snapshot of every partition covers the whole movements log.
///
/// # Errors
/// [`Error::Timeout`] after `timeout`, or the client's failure.
pub async fn wait_caught_up(bootstrap: &str, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let ends = log::end_offsets(bootstrap, MOVEMENTS, crate::topics::PARTITIONS).await?;
        let mut covered = Vec::new();
        for p in 0..crate::topics::PARTITIONS {
            covered.push(
                latest(bootstrap, p)
                    .await?
                    .map_or(0, |(_, s)| s.next_offset),
            );
        }
        if covered == ends {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::Timeout(format!(
                "snapshots cover {covered:?}, movements end at {ends:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
