//! The Rust side of the partition campaign's workload: clients that write and read a topic of
//! a real cluster and record a [`crate::jepsen`] history of what they saw.
//!
//! Owns the [`Recorder`] (the history, shared by the workload's tasks), the idempotent
//! `acks=all` producers ([`produce`]), the group consumer that commits as it goes
//! ([`consume_group`]), the final reads (every broker directly, [`read_each_broker`]; a
//! `weir-client` consumer in assign mode, [`read_assigned`]) and the topic's creation and
//! leaders. It does not inject faults nor judge the history ([`crate::jepsen::check`] does).
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
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use weir_client::connection::Connection;
use weir_client::producer::Acks;
use weir_client::{
    Admin, ClientConfig, Consumer, ConsumerConfig, NewTopic, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::{BatchHeader, Records, validate_batch};

use crate::jepsen::{Commit, History, Op, Outcome, Read, Send};

/// The replication factor of the campaign's topics: `$WEIR_CAMPAIGN_RF`, else 1 (what a
/// cluster accepts before partitions are replicated).
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
        Err(_) => 1,
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
    let admin = Admin::new(w.client_config());
    let names = [w.topic.as_str()];
    let asked = admin.describe_topics(&names);
    let topics = tokio::time::timeout(Duration::from_secs(5), asked)
        .await
        .ok()?
        .ok()?;
    let topic = topics.into_iter().find(|t| t.name == w.topic)?;
    Some(
        topic
            .partitions
            .iter()
            .map(|p| (p.partition, p.leader))
            .collect(),
    )
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

fn value_text(value: Option<&[u8]>) -> String {
    String::from_utf8_lossy(value.unwrap_or_default()).into_owned()
}

/// Why one broker's copy of a partition could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("{0}")]
    Client(#[from] weir_client::Error),
    #[error("fetch at {offset}: error {code}")]
    Code { offset: i64, code: i16 },
    #[error("fetch at {offset}: nothing returned below the high watermark {high_watermark}")]
    Empty { offset: i64, high_watermark: i64 },
    #[error("fetch at {offset}: a damaged batch: {detail}")]
    Batch { offset: i64, detail: String },
}

/// Every record of `partition` that broker `addr` serves, from offset 0 to its high
/// watermark: `Ok(None)` when it does not serve it (NOT_LEADER_OR_FOLLOWER, or
/// REPLICA_NOT_AVAILABLE from a replica that cannot answer yet).
///
/// # Errors
/// The connection, an error code or a damaged batch.
pub async fn read_broker_partition(
    addr: SocketAddr,
    topic: &str,
    partition: i32,
) -> Result<Option<Vec<(i64, String)>>, ReadError> {
    let connection = Connection::connect(addr, "jepsen-reader", Duration::from_secs(5)).await?;
    let mut out = Vec::new();
    Ok(read_from(&connection, topic, partition, 0, &mut out)
        .await?
        .map(|_| out))
}

/// Appends the records of `partition` from `from` up to the high watermark to `out`; the
/// offset reached, or `None` when the broker does not serve the partition.
async fn read_from(
    connection: &Connection,
    topic: &str,
    partition: i32,
    from: i64,
    out: &mut Vec<(i64, String)>,
) -> Result<Option<i64>, ReadError> {
    let mut offset = from;
    loop {
        let response = connection
            .call(crate::req::fetch(topic, partition, offset, 0, 0))
            .await?;
        let Some(p) = response
            .responses
            .first()
            .and_then(|t| t.partitions.first())
        else {
            return Err(ReadError::Code { offset, code: -1 });
        };
        if p.error_code == ErrorCode::NotLeaderOrFollower.code()
            || p.error_code == ErrorCode::ReplicaNotAvailable.code()
        {
            return Ok(None);
        }
        if p.error_code != 0 {
            return Err(ReadError::Code {
                offset,
                code: p.error_code,
            });
        }
        if offset >= p.high_watermark {
            return Ok(Some(offset));
        }
        let bytes = p.records.clone().unwrap_or_default();
        if bytes.is_empty() {
            return Err(ReadError::Empty {
                offset,
                high_watermark: p.high_watermark,
            });
        }
        offset = decode(&bytes, offset, out)?;
    }
}

/// Reads every partition from broker `id` at `addr` over and over until `stop`, each from
/// where the last read of it ended, recording the records as read by `live-node-<id>` (not
/// final): what a broker served during the faults, so that a deposed leader's records count
/// among the observations of their offsets. Errors (the node is down, paused, cut off, or
/// truncated below the position: OFFSET_OUT_OF_RANGE) are skipped, the position kept.
/// Returns how many records it read.
pub async fn poll_broker(
    w: Workload,
    id: u64,
    addr: SocketAddr,
    rec: Recorder,
    stop: Arc<AtomicBool>,
) -> u64 {
    let reader = format!("live-node-{id}");
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut count = 0;
    let mut connection: Option<Connection> = None;
    while !stop.load(Ordering::Relaxed) {
        if connection.as_ref().is_none_or(Connection::is_dead) {
            let connecting = Connection::connect(addr, "jepsen-poller", Duration::from_secs(1));
            connection = connecting.await.ok();
        }
        if let Some(conn) = &connection {
            for partition in 0..w.partitions {
                let from = next.get(&partition).copied().unwrap_or(0);
                let mut out = Vec::new();
                let reading = read_from(conn, &w.topic, partition, from, &mut out);
                let reached = match tokio::time::timeout(Duration::from_secs(2), reading).await {
                    Ok(Ok(reached)) => reached,
                    // A paused node: start afresh on a new connection next round.
                    Err(_) => {
                        connection = None;
                        break;
                    }
                    Ok(Err(_)) => None,
                };
                for (offset, value) in out {
                    count += 1;
                    rec.push(Op::Read(Read {
                        reader: reader.clone(),
                        partition,
                        offset,
                        value,
                        final_read: false,
                    }));
                }
                if let Some(reached) = reached {
                    next.insert(partition, reached);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    count
}

/// Appends the records at or after `from` in `bytes` (whole batches) to `out`; returns the
/// offset after the last batch.
fn decode(bytes: &[u8], from: i64, out: &mut Vec<(i64, String)>) -> Result<i64, ReadError> {
    let bad = |detail: String| ReadError::Batch {
        offset: from,
        detail,
    };
    let mut at = 0;
    let mut next = from;
    while at < bytes.len() {
        let header = BatchHeader::parse(&bytes[at..]).map_err(|e| bad(e.to_string()))?;
        let len = header.total_len().map_err(|e| bad(e.to_string()))?;
        let whole = bytes
            .get(at..at + len)
            .ok_or_else(|| bad("cut short".into()))?;
        validate_batch(whole).map_err(|e| bad(e.to_string()))?;
        for record in Records::new(whole).map_err(|e| bad(e.to_string()))? {
            let record = record.map_err(|e| bad(e.to_string()))?;
            let o = record.offset(header.base_offset);
            if o >= from {
                out.push((o, value_text(record.value)));
            }
        }
        at += len;
        next = header.next_offset();
    }
    Ok(next)
}

/// Reads every partition from every node in `nodes` (`(id, Kafka address)`), recording each
/// record as read by `node-<id>`; returns, per partition, the nodes that served it.
///
/// # Errors
/// The first read that failed otherwise than by NOT_LEADER_OR_FOLLOWER.
pub async fn read_each_broker(
    w: &Workload,
    nodes: &[(u64, SocketAddr)],
    rec: &Recorder,
) -> Result<BTreeMap<i32, Vec<u64>>, (u64, i32, ReadError)> {
    let mut served: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    for partition in 0..w.partitions {
        for &(id, addr) in nodes {
            let records = read_broker_partition(addr, &w.topic, partition)
                .await
                .map_err(|err| (id, partition, err))?;
            if let Some(records) = records {
                served.entry(partition).or_default().push(id);
                for (offset, value) in records {
                    rec.push(Op::Read(Read {
                        reader: format!("node-{id}"),
                        partition,
                        offset,
                        value,
                        final_read: true,
                    }));
                }
            }
        }
    }
    Ok(served)
}

/// Reads the whole topic from offset 0 with a `weir-client` consumer in assign mode until it
/// reaches `ends` (partition -> offset to reach), recording the records as `assign`.
///
/// # Errors
/// A poll error that is not retriable, or `limit` passed before the ends were reached.
pub async fn read_assigned(
    w: &Workload,
    ends: &BTreeMap<i32, i64>,
    rec: &Recorder,
    limit: Duration,
) -> Result<usize, String> {
    let mut consumer = Consumer::new(
        ConsumerConfig::new(w.client_config())
            .auto_offset_reset(OffsetReset::Earliest)
            .fetch_wait(Duration::from_millis(100), 1),
    );
    consumer.assign(w.partitions()).map_err(|e| e.to_string())?;
    for tp in w.partitions() {
        consumer.seek(&tp, 0).map_err(|e| e.to_string())?;
    }
    let mut reached: BTreeMap<i32, i64> = BTreeMap::new();
    let mut count = 0;
    let deadline = Instant::now() + limit;
    let done = |reached: &BTreeMap<i32, i64>| {
        ends.iter()
            .all(|(p, end)| *end <= 0 || reached.get(p).is_some_and(|r| r >= end))
    };
    while !done(&reached) {
        if Instant::now() > deadline {
            return Err(format!("assign-mode read reached {reached:?} of {ends:?}"));
        }
        let records = match consumer.poll(Duration::from_millis(200)).await {
            Ok(records) => records,
            Err(err) if err.is_retriable() => continue,
            Err(err) => return Err(err.to_string()),
        };
        for r in records {
            count += 1;
            reached.insert(r.partition, r.offset + 1);
            rec.push(Op::Read(Read {
                reader: "assign".into(),
                partition: r.partition,
                offset: r.offset,
                value: value_text(r.value.as_deref()),
                final_read: true,
            }));
        }
    }
    let _closed = consumer.close().await;
    Ok(count)
}
