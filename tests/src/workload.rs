//! The Rust side of the partition campaign's workload: clients that write and read a topic of
//! a real cluster and record a [`crate::jepsen`] history of what they saw.
//!
//! Owns the [`Recorder`] (the history, shared by the workload's tasks), the idempotent
//! `acks=all` producers ([`produce`]), the group consumer that commits as it goes
//! ([`consume_group`]), the reads (`reads`: every broker directly all along,
//! [`poll_broker`], and after healing, [`read_each_broker`]; a `weir-client` consumer in
//! assign mode, [`read_assigned`]) and the topic's creation, leaders and coordinator. It does not inject faults nor judge the history ([`crate::jepsen::check`] does).
//!
//! # Recording rules
//!
//! - A value is `<producer>-<seq>`, sent to partition `seq % partitions`.
//! - `send` refusing a record (it is handed back, never sent): `fail`. A delivery that
//!   fails or times out: `info` (an attempt may have been written). An acknowledgement: `ok`
//!   at its offset.
//! - Reads are recorded as returned, the final ones ([`read_each_broker`],
//!   [`read_assigned`]) marked final; a commit once acknowledged, and every committed offset
//!   read back ([`observe_commits`]) once answered, with the commits acknowledged while it
//!   was under way ([`Commit::overlaps`]): those may have landed after the read, and a
//!   correct broker would otherwise seem to go backwards.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use weir_client::producer::Acks;
use weir_client::{
    Admin, ClientConfig, Consumer, ConsumerConfig, NewTopic, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};
use weir_protocol::error_code::ErrorCode;

use crate::jepsen::{Commit, History, Op, Outcome, Read, Send};

mod reads;

pub use reads::{ReadError, poll_broker, read_assigned, read_broker_partition, read_each_broker};

/// The replication factor of the campaign's topics: `$WEIR_CAMPAIGN_RF`, else 3 (replicated
/// partitions; 1 runs the same campaign on unreplicated ones).
///
/// # Panics
/// If the variable is set and not a small positive number.
pub fn campaign_rf() -> i16 {
    match std::env::var("WEIR_CAMPAIGN_RF") {
        Ok(text) => text
            .trim()
            .parse()
            .ok()
            .filter(|rf| *rf >= 1)
            .unwrap_or_else(|| panic!("WEIR_CAMPAIGN_RF must be 1, 3, ..., got {text:?}")),
        // Replicated partitions are what the campaign is for (issue 17).
        Err(_) => 3,
    }
}

/// The history being recorded, shared by every task of a workload.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<History>>);

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, History> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records one operation.
    pub fn push(&self, op: Op) {
        self.lock().push(op);
    }

    /// A copy of everything recorded so far.
    pub fn history(&self) -> History {
        self.lock().clone()
    }

    /// How many commits are recorded so far.
    fn commits_len(&self) -> usize {
        self.lock().commits.len()
    }

    /// Records committed offsets read back by a request sent when [`Self::commits_len`] was
    /// `sent_at`, each marked with the commits recorded since ([`Commit::overlaps`]).
    fn push_read_back(&self, sent_at: usize, commits: Vec<Commit>) {
        let mut history = self.lock();
        for mut commit in commits {
            commit.overlaps = history.commits.len().saturating_sub(sent_at);
            history.commits.push(commit);
        }
    }

    /// How many sends were acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        self.lock()
            .sends
            .iter()
            .filter(|s| s.outcome == Outcome::Ok)
            .count()
    }
}

/// What the clients of a workload need to know.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Every node's Kafka address, comma-separated.
    pub bootstrap: String,
    pub topic: String,
    pub partitions: i32,
    pub group: String,
    /// How long a produce may take, retries included, before it counts as indeterminate.
    pub delivery_timeout: Duration,
}

impl Workload {
    /// Short timeouts and quick reconnection: brokers come and go all the time here.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::new(self.bootstrap.split(',').map(str::to_owned))
            .client_id("jepsen")
            .connect_timeout(Duration::from_secs(2))
            .request_timeout(Duration::from_secs(5))
            .metadata_max_age(Duration::from_secs(2))
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(250))
    }

    fn partitions(&self) -> Vec<TopicPartition> {
        (0..self.partitions)
            .map(|p| TopicPartition::new(self.topic.as_str(), p))
            .collect()
    }
}

/// Creates the workload's topic with replication factor `rf`, retrying (a node may still be
/// registering) for up to `limit`.
///
/// # Errors
/// The last error once `limit` has passed.
pub async fn create_topic(w: &Workload, rf: i16, limit: Duration) -> weir_client::Result<()> {
    let deadline = Instant::now() + limit;
    let mut topic = NewTopic::new(w.topic.as_str(), w.partitions);
    topic.replication_factor = rf;
    loop {
        match Admin::new(w.client_config())
            .create_topics(std::slice::from_ref(&topic))
            .await
        {
            Ok(()) => return Ok(()),
            Err(err) if err.code() == Some(ErrorCode::TopicAlreadyExists) => return Ok(()),
            Err(err) if Instant::now() > deadline => return Err(err),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Each partition's leader as Metadata says now (-1: none), or `None` if no broker answered.
pub async fn leaders(w: &Workload) -> Option<BTreeMap<i32, i32>> {
    Some(
        partitions(w)
            .await?
            .iter()
            .map(|p| (p.partition, p.leader))
            .collect(),
    )
}

/// The topic's partitions as Metadata describes them now, or `None` if no broker answered.
async fn partitions(w: &Workload) -> Option<Vec<weir_client::PartitionInfo>> {
    let admin = Admin::new(w.client_config());
    let names = [w.topic.as_str()];
    let asked = admin.describe_topics(&names);
    let topics = tokio::time::timeout(Duration::from_secs(5), asked)
        .await
        .ok()?
        .ok()?;
    Some(topics.into_iter().find(|t| t.name == w.topic)?.partitions)
}

/// Waits at most `limit` until every partition of the topic has all its replicas in sync
/// (a replica that was away, or wiped, has caught up); whether it happened.
pub async fn wait_in_sync(w: &Workload, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(partitions) = partitions(w).await {
            let full = partitions.len() == usize::try_from(w.partitions).unwrap_or(0)
                && partitions
                    .iter()
                    .all(|p| p.leader >= 0 && p.isr.len() == p.replicas.len());
            if full {
                return true;
            }
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The group's coordinator now, or `None` if no broker answered.
pub async fn coordinator(w: &Workload) -> Option<i32> {
    let admin = Admin::new(w.client_config());
    let asked = admin.coordinator(&w.group);
    tokio::time::timeout(Duration::from_secs(5), asked)
        .await
        .ok()?
        .ok()
}

/// The brokers Metadata lists as live now (an empty list if none answered).
pub async fn live_brokers(w: &Workload) -> Vec<i32> {
    let cluster = weir_client::Cluster::new(w.client_config());
    let asked = cluster.metadata(Some(&[]));
    match tokio::time::timeout(Duration::from_secs(5), asked).await {
        Ok(Ok(_)) => cluster
            .brokers()
            .await
            .into_iter()
            .map(|(id, _)| id)
            .collect(),
        _ => Vec::new(),
    }
}

/// Waits (up to `limit`) until every partition has a leader among `up`; returns them.
pub async fn wait_led(
    w: &Workload,
    up: &BTreeSet<i32>,
    limit: Duration,
) -> Option<BTreeMap<i32, i32>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(leaders) = leaders(w).await {
            let all = leaders.len() == usize::try_from(w.partitions).unwrap_or(0)
                && leaders.values().all(|l| up.contains(l));
            if all {
                return Some(leaders);
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a producer or consumer task saw go wrong (besides what the history holds).
#[derive(Debug, Default, Clone)]
pub struct Troubles {
    /// Errors a retry could not fix, with their text.
    pub fatal: Vec<String>,
    /// Retriable errors (a broker down, a leader moving), counted.
    pub retriable: u64,
    /// A group member's commit or heartbeat refused because its generation is gone
    /// (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS): it rejoins and reads
    /// again from the last commit. A coordinator restart does this, since Weir keeps group
    /// membership in memory only.
    pub rebalances: u64,
}

/// The errors that only mean "rejoin the group".
fn is_rebalance(err: &weir_client::Error) -> bool {
    matches!(
        err.code(),
        Some(
            ErrorCode::IllegalGeneration
                | ErrorCode::UnknownMemberId
                | ErrorCode::RebalanceInProgress
        )
    )
}

/// Sends `<name>-<seq>` to partition `seq % partitions` until `stop`, about `rate` a
/// second, keeping at most 200 deliveries outstanding; records every outcome. Returns what
/// went wrong besides (an error closing the producer).
pub async fn produce(
    w: Workload,
    name: String,
    rate: u32,
    rec: Recorder,
    stop: Arc<AtomicBool>,
) -> Troubles {
    let config = ProducerConfig::new(w.bootstrap.split(',').map(str::to_owned))
        .acks(Acks::All)
        .idempotence(true)
        .linger(Duration::from_millis(2))
        .max_block(Duration::from_secs(5))
        .delivery_timeout(w.delivery_timeout)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(250))
        .client(|_| w.client_config());
    let producer = Producer::new(config).expect("producer configuration");
    let mut troubles = Troubles::default();
    let mut pending = JoinSet::new();
    let pause = Duration::from_secs(1) / rate.max(1);
    let mut seq = 0_u64;
    let record = |seq: u64, partition: i32, outcome: Outcome, offset: Option<i64>| {
        rec.push(Op::Send(Send {
            producer: name.clone(),
            seq,
            partition,
            value: format!("{name}-{seq}"),
            outcome,
            offset,
        }));
    };
    let settle = |joined: Result<(u64, i32, Result<i64, String>), tokio::task::JoinError>| {
        let (seq, partition, result) = joined.expect("delivery task");
        match result {
            Ok(offset) => record(seq, partition, Outcome::Ok, Some(offset)),
            Err(_) => record(seq, partition, Outcome::Info, None),
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let partition = i32::try_from(seq % u64::try_from(w.partitions).unwrap_or(1)).unwrap_or(0);
        let value = format!("{name}-{seq}");
        let sent = producer
            .send(ProducerRecord::new(w.topic.as_str(), value).partition(partition))
            .await;
        match sent {
            Ok(delivery) => {
                pending.spawn(async move {
                    let result = delivery.await.map(|m| m.offset).map_err(|e| e.to_string());
                    (seq, partition, result)
                });
            }
            Err(_) => {
                troubles.retriable += 1;
                record(seq, partition, Outcome::Fail, None);
            }
        }
        seq += 1;
        while pending.len() >= 200 {
            if let Some(joined) = pending.join_next().await {
                settle(joined);
            }
        }
        while let Some(joined) = pending.try_join_next() {
            settle(joined);
        }
        tokio::time::sleep(pause).await;
    }
    while let Some(joined) = pending.join_next().await {
        settle(joined);
    }
    if let Err(err) = producer.close().await {
        troubles.fatal.push(format!("{name} close: {err}"));
    }
    troubles
}

/// A group member reading the topic until `stop`, committing after every poll that returned
/// records; records what it read (as `group`) and every acknowledged commit.
pub async fn consume_group(w: Workload, rec: Recorder, stop: Arc<AtomicBool>) -> Troubles {
    let mut consumer = Consumer::new(
        ConsumerConfig::new(w.client_config())
            .group_id(w.group.as_str())
            .auto_offset_reset(OffsetReset::Earliest)
            .enable_auto_commit(false)
            .session(Duration::from_secs(10), Duration::from_secs(1))
            .fetch_wait(Duration::from_millis(100), 1),
    );
    consumer.subscribe([w.topic.as_str()]).expect("subscribe");
    let mut troubles = Troubles::default();
    let note = |troubles: &mut Troubles, what: &str, err: weir_client::Error| {
        if err.is_retriable() {
            troubles.retriable += 1;
        } else if is_rebalance(&err) {
            troubles.rebalances += 1;
        } else if troubles.fatal.len() < 20 {
            troubles.fatal.push(format!("{what}: {err}"));
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let records = match consumer.poll(Duration::from_millis(200)).await {
            Ok(records) => records,
            Err(err) => {
                note(&mut troubles, "poll", err);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for r in &records {
            rec.push(Op::Read(Read {
                reader: "group".into(),
                partition: r.partition,
                offset: r.offset,
                value: value_text(r.value.as_deref()),
                final_read: false,
            }));
            let e = next.entry(r.partition).or_insert(r.offset + 1);
            *e = (*e).max(r.offset + 1);
        }
        if next.is_empty() {
            continue;
        }
        let offsets: Vec<(TopicPartition, i64)> = next
            .iter()
            .map(|(&p, &o)| (TopicPartition::new(w.topic.as_str(), p), o))
            .collect();
        match consumer.commit_offsets(offsets).await {
            Ok(()) => {
                for (partition, offset) in next {
                    rec.push(Op::Commit(Commit {
                        group: w.group.clone(),
                        partition,
                        offset,
                        by: "member".into(),
                        overlaps: 0,
                    }));
                }
            }
            Err(err) => note(&mut troubles, "commit", err),
        }
    }
    if let Err(err) = consumer.close().await {
        note(&mut troubles, "close", err);
    }
    troubles
}

/// Reads the group's committed offsets once (bounded) and records them; false if the
/// coordinator did not answer.
pub async fn observe_commits(w: &Workload, rec: &Recorder) -> bool {
    let reader = Consumer::new(ConsumerConfig::new(w.client_config()).group_id(w.group.as_str()));
    let tps = w.partitions();
    let sent_at = rec.commits_len();
    let asked = reader.committed(&tps);
    let Ok(Ok(map)) = tokio::time::timeout(Duration::from_secs(5), asked).await else {
        return false;
    };
    let mut committed: Vec<(i32, i64)> = map.into_iter().map(|(tp, o)| (tp.partition, o)).collect();
    committed.sort_unstable();
    let commits = committed
        .into_iter()
        .map(|(partition, offset)| Commit {
            group: w.group.clone(),
            partition,
            offset,
            by: "fetch".into(),
            overlaps: 0,
        })
        .collect();
    rec.push_read_back(sent_at, commits);
    true
}

/// A record's value as text (values are ASCII; anything else shows as replacement chars).
fn value_text(value: Option<&[u8]>) -> String {
    String::from_utf8_lossy(value.unwrap_or_default()).into_owned()
}
