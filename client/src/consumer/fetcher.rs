//! The fetch task: resolves positions (committed offset, else the reset policy) and keeps
//! one long-polling fetch in flight per leader for the partitions that have room to buffer.
//!
//! Owns the prefetch bound. A fetch is sent only while the consumer's buffered plus reserved
//! bytes are below `max_prefetch_bytes`; it asks for at most what is left, and reserves that
//! much until it is answered. A partition is fetched only while its own buffer is below
//! `max_partition_fetch_bytes`. So when the application stops polling, fetching stops.
//!
//! Answers are applied only if the partition's epoch is unchanged since the request (no
//! seek, reset or reassignment in between), so a late answer never moves a position.
//!
//! Which partitions go in which fetch to which leader, in what order and for how many bytes
//! is decided by the pure planner in [`super::fetch_plan`], on a snapshot taken under the
//! state lock; this task looks up leaders, builds and sends the requests, applies the
//! answers, and tells the planner which partitions returned data (its rotation).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use tokio::task::JoinSet;
use tokio::time::Instant;
use weir_protocol::error_code::ErrorCode;

use super::config::{ConsumerConfig, OffsetReset, millis_i32};
use super::fetch_plan::{self, Fetch, FetchPlanner, Fetchable, PartitionView};
use super::offsets::{self, s};
use super::record::{TopicPartition, decode};
use super::state::{Chunk, PartitionState, Shared, State};
use crate::error::{Error, Result};

/// A partition in a request, with what the answer is checked against.
#[derive(Debug)]
struct Sent {
    tp: TopicPartition,
    epoch: u64,
    fetch_offset: i64,
}

/// What a finished background request reports.
#[derive(Debug)]
enum Done {
    Fetched {
        node: i32,
        sent: Vec<Sent>,
        reserved: usize,
        result: Result<FetchResponse>,
    },
    Resolved {
        wanted: Vec<(TopicPartition, u64)>,
        result: Result<Resolution>,
    },
}

/// Each partition's position and the committed offset when that was used, or why its lookup
/// failed; a partition left out has no committed offset and the `none` reset policy.
type Resolution = HashMap<TopicPartition, Result<(i64, Option<i64>)>>;

/// Runs until aborted (when the consumer is dropped or closed).
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut tasks: JoinSet<Done> = JoinSet::new();
    let mut busy: HashSet<i32> = HashSet::new();
    let mut planner = FetchPlanner::default();
    loop {
        let woken = shared.fetch_wake.notified();
        start_resolving(&shared, &mut tasks);
        let retry_at = start_fetches(&shared, &mut tasks, &mut busy, &mut planner).await;
        let sleep = tokio::time::sleep_until(
            retry_at.unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(3600)),
        );
        tokio::select! {
            Some(done) = tasks.join_next(), if !tasks.is_empty() => match done {
                Ok(Done::Fetched { node, sent, reserved, result }) => {
                    busy.remove(&node);
                    for tp in apply_fetch(&shared, sent, reserved, result).await {
                        planner.served(&tp);
                    }
                }
                Ok(Done::Resolved { wanted, result }) => apply_resolved(&shared, wanted, result),
                Err(err) => tracing::error!(error = %err, "consumer fetch task failed"),
            },
            () = woken => {}
            () = sleep => {}
        }
    }
}

/// Starts one lookup for every partition without a position.
fn start_resolving(shared: &Arc<Shared>, tasks: &mut JoinSet<Done>) {
    let now = Instant::now();
    let mut wanted = Vec::new();
    let mut reset = Vec::new();
    {
        let mut state = shared.lock();
        for (tp, p) in &mut state.partitions {
            if p.position.is_some() || p.resolving || p.stalled || p.retry_at > Some(now) {
                continue;
            }
            p.resolving = true;
            wanted.push((tp.clone(), p.epoch));
            reset.push((tp.clone(), p.reset));
        }
    }
    if wanted.is_empty() {
        return;
    }
    let shared = Arc::clone(shared);
    tasks.spawn(async move {
        let result = resolve(&shared, reset).await;
        Done::Resolved { wanted, result }
    });
}

/// Committed offsets first (with a group id, unless a reset was asked for), then the reset
/// policy. Answers position and the committed offset when it was used.
async fn resolve(
    shared: &Shared,
    partitions: Vec<(TopicPartition, Option<OffsetReset>)>,
) -> Result<Resolution> {
    let mut out = HashMap::new();
    let ask: Vec<TopicPartition> = partitions
        .iter()
        .filter(|(_, r)| r.is_none())
        .map(|(tp, _)| tp.clone())
        .collect();
    if shared.config.group_id.is_some() && !ask.is_empty() {
        for (tp, offset) in offsets::committed(shared, &ask).await? {
            out.insert(tp, Ok((offset, Some(offset))));
        }
    }
    let policy = shared.config.auto_offset_reset;
    // Partitions under the `none` policy stay unresolved (and are reported) without
    // failing the lookup of the others.
    let rest: Vec<(TopicPartition, OffsetReset)> = partitions
        .into_iter()
        .filter(|(tp, _)| !out.contains_key(tp))
        .map(|(tp, r)| (tp, r.unwrap_or(policy)))
        .filter(|(_, r)| *r != OffsetReset::Fail)
        .collect();
    for (tp, outcome) in offsets::reset_offsets(shared, &rest).await? {
        out.insert(tp, outcome.map(|offset| (offset, None)));
    }
    Ok(out)
}

fn apply_resolved(
    shared: &Shared,
    wanted: Vec<(TopicPartition, u64)>,
    mut result: Result<Resolution>,
) {
    let mut state = shared.lock();
    let retry_at = Instant::now() + shared.config.retry_backoff;
    let failed = result
        .as_ref()
        .err()
        .map(|e| (e.is_retriable(), e.to_string()));
    let mut resolved = result.as_mut().ok();
    let mut no_policy = Vec::new();
    let mut failed_partitions = Vec::new();
    for (tp, epoch) in wanted {
        let Some(p) = state.partitions.get_mut(&tp) else {
            continue;
        };
        if p.epoch != epoch {
            continue;
        }
        p.resolving = false;
        match resolved.as_mut().and_then(|r| r.remove(&tp)) {
            Some(Err(err)) => {
                // This partition only (no leader, its leader down): retried after backoff.
                tracing::debug!(%tp, error = %err, "resolving the position failed");
                p.retry_at = Some(retry_at);
                if !err.is_retriable() {
                    p.stalled = true;
                    failed_partitions.push(err);
                }
            }
            Some(Ok((position, committed))) => {
                p.position = Some(position);
                p.fetch_offset = position;
                p.reset = None;
                if committed.is_some() {
                    p.committed = committed;
                }
            }
            None if resolved.is_some() => {
                p.stalled = true;
                no_policy.push(tp);
            }
            None => {
                p.retry_at = Some(retry_at);
                if let Some((false, _)) = failed {
                    p.stalled = true;
                }
            }
        }
    }
    for err in failed_partitions {
        state.report(err);
    }
    for tp in no_policy {
        state.report(Error::InvalidArgument(format!(
            "no committed offset for {tp} and auto.offset.reset is none; seek it"
        )));
    }
    if let Err(err) = result {
        tracing::debug!(error = %err, "resolving positions failed");
        if !err.is_retriable() {
            state.report(err);
        }
    }
    drop(state);
    shared.data_wake.notify_one();
    shared.fetch_wake.notify_one();
}

/// Sends a fetch to every idle leader with fetchable partitions, as the planner says.
/// Returns when the loop must look again for partitions now backing off.
async fn start_fetches(
    shared: &Arc<Shared>,
    tasks: &mut JoinSet<Done>,
    busy: &mut HashSet<i32>,
    planner: &mut FetchPlanner,
) -> Option<Instant> {
    let config = &shared.config;
    let limits = fetch_plan::Limits {
        fetch_max_bytes: config.fetch_max_bytes,
        max_partition_fetch_bytes: config.max_partition_fetch_bytes,
        max_prefetch_bytes: config.max_prefetch_bytes,
    };
    let now = Instant::now();
    let mut retry_at: Option<Instant> = None;
    let candidates: Vec<TopicPartition> = {
        let state = shared.lock();
        state
            .partitions
            .iter()
            .filter(
                |(_, p)| match fetch_plan::fetchable(&view(p), &limits, now) {
                    Fetchable::Yes => true,
                    Fetchable::BackingOff(at) => {
                        retry_at = Some(retry_at.map_or(at, |r| r.min(at)));
                        false
                    }
                    Fetchable::No => false,
                },
            )
            .map(|(tp, _)| tp.clone())
            .collect()
    };
    if candidates.is_empty() {
        return retry_at;
    }
    let asked: Vec<(&str, i32)> = candidates
        .iter()
        .map(|tp| (tp.topic.as_str(), tp.partition))
        .collect();
    // One lookup per topic, however many of its partitions lack a leader.
    let mut found = shared.cluster.leaders(&asked).await;
    let mut leaders = Vec::new();
    for tp in candidates {
        let Some(outcome) = found.remove(&(tp.topic.clone(), tp.partition)) else {
            continue;
        };
        match outcome {
            Ok(node) => leaders.push((tp, node)),
            Err(err) => {
                tracing::debug!(%tp, error = %err, "no leader to fetch from");
                let at = now + config.retry_backoff;
                if let Some(p) = shared.lock().partitions.get_mut(&tp) {
                    p.retry_at = Some(at);
                }
                retry_at = Some(retry_at.map_or(at, |r| r.min(at)));
            }
        }
    }
    let mut requests = Vec::new();
    {
        let mut state = shared.lock();
        planner.retain(|tp| state.partitions.contains_key(tp));
        // Planned on the state as it is now, under the lock: a poll or seek may have run
        // since the candidates were picked.
        let snapshot = leaders.into_iter().filter_map(|(tp, node)| {
            let view = view(state.partitions.get(&tp)?);
            Some((tp, node, view))
        });
        let used = state.buffered_bytes + state.reserved_bytes;
        let fetches = planner.plan(snapshot, busy, used, &limits, now);
        for fetch in fetches {
            state.reserved_bytes += fetch.max_bytes;
            let (request, sent) = request(config, &mut state, &fetch);
            requests.push((fetch.node, request, sent, fetch.max_bytes));
        }
    }
    for (node, request, sent, reserved) in requests {
        busy.insert(node);
        spawn_fetch(shared, tasks, node, request, Planned { sent, reserved });
    }
    retry_at
}

/// What a fetch request carries besides its wire form: what its answer is checked against,
/// and the prefetch budget it holds until answered.
#[derive(Debug)]
struct Planned {
    sent: Vec<Sent>,
    reserved: usize,
}

/// Sends one fetch in the background; its outcome comes back as [`Done::Fetched`].
fn spawn_fetch(
    shared: &Arc<Shared>,
    tasks: &mut JoinSet<Done>,
    node: i32,
    request: FetchRequest,
    planned: Planned,
) {
    let shared = Arc::clone(shared);
    tasks.spawn(async move {
        // The broker holds the request up to max_wait: allow for it on top of the timeout.
        let result = match shared.cluster.node(node).await {
            Ok(connection) => tokio::time::timeout(
                shared.config.client.request_timeout + shared.config.fetch_max_wait,
                connection.call(request),
            )
            .await
            .unwrap_or_else(|_elapsed| Err(Error::Timeout(format!("Fetch to broker {node}")))),
            Err(err) => Err(err),
        };
        let Planned { sent, reserved } = planned;
        Done::Fetched {
            node,
            sent,
            reserved,
            result,
        }
    });
}

/// What the fetch planner needs to know of a partition.
fn view(p: &PartitionState) -> PartitionView {
    PartitionView {
        has_position: p.position.is_some(),
        paused: p.paused,
        in_flight: p.in_flight,
        stalled: p.stalled,
        retry_at: p.retry_at,
        buffered_bytes: p.buffered_bytes,
    }
}

/// The wire request for a planned fetch, partitions in the planned order (topics in the order
/// of their first partition); marks its partitions in flight.
fn request(config: &ConsumerConfig, state: &mut State, fetch: &Fetch) -> (FetchRequest, Vec<Sent>) {
    let mut sent = Vec::new();
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (tp, room) in &fetch.partitions {
        let Some(p) = state.partitions.get_mut(tp) else {
            continue; // Not reached: planned from this state under the same lock.
        };
        p.in_flight = true;
        let partition = FetchPartition::default()
            .with_partition(tp.partition)
            .with_fetch_offset(p.fetch_offset)
            .with_partition_max_bytes(i32::try_from(*room).unwrap_or(i32::MAX));
        match topics.iter_mut().find(|t| *t.topic.0 == *tp.topic) {
            Some(topic) => topic.partitions.push(partition),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(s(&tp.topic)))
                    .with_partitions(vec![partition]),
            ),
        }
        sent.push(Sent {
            epoch: p.epoch,
            fetch_offset: p.fetch_offset,
            tp: tp.clone(),
        });
    }
    let request = FetchRequest::default()
        .with_max_wait_ms(millis_i32(config.fetch_max_wait))
        .with_min_bytes(config.fetch_min_bytes)
        .with_max_bytes(i32::try_from(fetch.max_bytes).unwrap_or(i32::MAX))
        .with_topics(topics);
    (request, sent)
}

/// Applies a fetch answer: records into the buffers, errors into resets, retries or reports.
/// Returns the partitions that got data (for the planner's rotation).
async fn apply_fetch(
    shared: &Shared,
    sent: Vec<Sent>,
    reserved: usize,
    result: Result<FetchResponse>,
) -> Vec<TopicPartition> {
    let mut stale_metadata = false;
    let mut served = Vec::new();
    {
        let mut state = shared.lock();
        state.reserved_bytes -= reserved;
        let retry_at = Instant::now() + shared.config.retry_backoff;
        let mut answers: HashMap<(String, i32), (i16, Option<bytes::Bytes>)> = HashMap::new();
        match result {
            Ok(response) => {
                for topic in response.responses {
                    for p in topic.partitions {
                        answers.insert(
                            (topic.topic.0.to_string(), p.partition_index),
                            (p.error_code, p.records),
                        );
                    }
                }
            }
            Err(err) => {
                tracing::debug!(error = %err, "fetch failed");
                stale_metadata = true;
            }
        }
        for sent in sent {
            let answer = answers.remove(&(sent.tp.topic.clone(), sent.tp.partition));
            match apply_partition(shared, &mut state, &sent, answer, retry_at) {
                Applied::Data => served.push(sent.tp),
                Applied::Stale => stale_metadata = true,
                Applied::Nothing => {}
            }
        }
        state.check_invariants();
    }
    if stale_metadata {
        shared.cluster.invalidate().await;
    }
    shared.data_wake.notify_one();
    served
}

/// What [`apply_partition`] made of one partition's answer.
#[derive(Debug, PartialEq, Eq)]
enum Applied {
    /// Records (bytes) came back.
    Data,
    /// A retriable error: metadata may be stale.
    Stale,
    Nothing,
}

/// Applies one partition's answer (`None`: the response left it out).
fn apply_partition(
    shared: &Shared,
    state: &mut State,
    sent: &Sent,
    answer: Option<(i16, Option<bytes::Bytes>)>,
    retry_at: Instant,
) -> Applied {
    let Some(p) = state.partitions.get_mut(&sent.tp) else {
        return Applied::Nothing;
    };
    p.in_flight = false;
    if p.epoch != sent.epoch || p.fetch_offset != sent.fetch_offset {
        return Applied::Nothing;
    }
    let Some((code, records)) = answer else {
        p.retry_at = Some(retry_at);
        return Applied::Nothing;
    };
    match code {
        0 => {}
        c if c == ErrorCode::OffsetOutOfRange.code() => {
            tracing::info!(tp = %sent.tp, offset = sent.fetch_offset, "offset out of range, resetting");
            state.buffered_bytes -= p.clear();
            p.position = None;
            p.reset = Some(shared.config.auto_offset_reset);
            return Applied::Nothing;
        }
        _ => {
            let err = Error::from_code(code, None, || format!("fetching {}", sent.tp))
                .unwrap_or(Error::Closed);
            p.retry_at = Some(retry_at);
            if err.is_retriable() {
                return Applied::Stale;
            }
            p.stalled = true;
            state.report(err);
            return Applied::Nothing;
        }
    }
    let bytes = records.unwrap_or_default();
    match decode(&sent.tp, &p.topic, &bytes, sent.fetch_offset) {
        Ok(decoded) => {
            p.fetch_offset = decoded.next_offset;
            if decoded.records.is_empty() {
                if p.chunks.is_empty() {
                    p.position = Some(p.fetch_offset);
                }
            } else {
                p.chunks.push_back(Chunk {
                    records: decoded.records.into(),
                    bytes: bytes.len(),
                });
                p.buffered_bytes += bytes.len();
                state.buffered_bytes += bytes.len();
            }
        }
        Err(err) => {
            p.stalled = true;
            state.report(err);
        }
    }
    if bytes.is_empty() {
        Applied::Nothing
    } else {
        Applied::Data
    }
}
