//! Committed offsets in a cluster of two or more voters: the internal topic
//! `__consumer_offsets`, which the cluster creates, and the coordinator of a group, which is
//! the leader of the topic's partition `abs(javaHashCode(group)) % partitions` (Kafka's
//! rule). An OffsetCommit, an OffsetDelete, a group's deletion and a deleted topic's offsets
//! become records of that partition ([`crate::groups::offsets::kafka_format`], Kafka's own
//! format), proposed through its data group exactly as an `acks=all` produce
//! ([`super::produce_replicated`]) and answered once committed (on disk on a majority).
//! The offsets served are the partition's committed records replayed in order
//! ([`ReplicatedOffsets`]): loaded when this broker becomes the partition's leader (after
//! its first entry commits, so everything earlier leaders committed is below the high
//! watermark), applied after each commit, dropped when it stops leading. An OffsetFetch
//! first confirms leadership with a majority ([`Offsets::confirm`]), so a paused or cut-off
//! old leader never answers offsets older than an acknowledged commit.
//!
//! Invariants: a group's records are only ever written by the current leader of its
//! partition, through Raft; what is served is a replay of committed records, in log order;
//! a commit is answered only once committed.
//!
//! Also owns the other side of every offsets call the handlers make ([`Offsets`]): a single
//! broker, or a one-voter cluster, keeps its local store ([`crate::groups::offsets::OffsetStore`])
//! exactly as before.
//!
//! Kafka's answers, kept here: a broker that does not lead the group's partition answers
//! NOT_COORDINATOR; one that leads it but has not loaded it yet COORDINATOR_LOAD_IN_PROGRESS;
//! FindCoordinator answers COORDINATOR_NOT_AVAILABLE while the partition has no leader (or
//! the topic does not exist yet). A failed append is normalised as Kafka's coordinator does
//! (`CoordinatorRuntime`): not leader or storage error → NOT_COORDINATOR; timeout or too few
//! in-sync replicas → COORDINATOR_NOT_AVAILABLE; too large → INVALID_COMMIT_OFFSET_SIZE.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use weir_protocol::error_code::ErrorCode;

use super::Context;
use crate::cluster::replica::Group;
use crate::cluster::state::MetadataState;
use crate::groups::offsets::OffsetStoreError;
use crate::groups::offsets::kafka_format::{Change, encode_batch};
use crate::groups::offsets::replicated::{OFFSETS_TOPIC, ReplicatedOffsets, Status, partition_for};
use crate::groups::offsets::{CommittedOffset, MAX_METADATA_BYTES, OffsetStore};

/// How long a commit waits for its records to be committed (Kafka's
/// `offsets.commit.timeout.ms`).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often leadership of the offsets partitions is checked here.
const WATCH_EVERY: Duration = Duration::from_millis(50);
/// The longest a new leader waits to see its first entry committed before loading.
const LOAD_BARRIER_TIMEOUT: Duration = Duration::from_secs(10);

/// The committed offsets the handlers use: the local store, or the replicated topic.
#[derive(Debug)]
pub(crate) enum Offsets<'a> {
    /// One broker (or a one-voter cluster): the local store.
    Local(&'a OffsetStore),
    /// A cluster: the offsets partitions this broker leads.
    Replicated(&'a Context, &'a ReplicatedOffsets),
}

/// The committed offsets of `ctx`, wherever its broker keeps them. (A free function rather
/// than a method of `Context`, which would make the context module depend on this one.)
pub(crate) fn committed(ctx: &Context) -> Offsets<'_> {
    match &ctx.replicated_offsets {
        Some(replicated) => Offsets::Replicated(ctx, replicated),
        None => Offsets::Local(&ctx.offsets),
    }
}

impl Context {
    /// In a cluster with replicated offsets: the offsets partition of `group`, once the
    /// cluster has created the topic.
    pub(crate) fn offsets_partition(&self, state: &MetadataState, group: &str) -> Option<i32> {
        let topic = state.topics.get(OFFSETS_TOPIC)?;
        let count = u32::try_from(topic.partitions.len()).ok()?;
        (count > 0).then(|| partition_for(group, count))
    }

    /// With replicated offsets: the broker leading `group`'s offsets partition, as the
    /// metadata says (`None`: no topic yet, no leader, or its broker is fenced).
    pub(crate) fn replicated_coordinator(&self, group: &str) -> Option<i32> {
        let state = self.metadata()?;
        let index = self.offsets_partition(&state, group)?;
        let record = state
            .topics
            .get(OFFSETS_TOPIC)?
            .partitions
            .get(usize::try_from(index).ok()?)?;
        state.leader(record).and_then(|id| i32::try_from(id).ok())
    }

    /// With replicated offsets: `None` when this broker serves `group` now, else the answer
    /// (NOT_COORDINATOR, or COORDINATOR_LOAD_IN_PROGRESS while it loads).
    pub(crate) fn replicated_not_coordinator(
        &self,
        replicated: &ReplicatedOffsets,
        group: &str,
    ) -> Option<ErrorCode> {
        let Some(state) = self.metadata() else {
            return Some(ErrorCode::NotCoordinator);
        };
        let Some(index) = self.offsets_partition(&state, group) else {
            return Some(ErrorCode::CoordinatorNotAvailable);
        };
        match replicated.status(index) {
            Status::Loaded if self.offsets_group(index).is_some() => None,
            Status::Loading => Some(ErrorCode::CoordinatorLoadInProgress),
            _ => Some(ErrorCode::NotCoordinator),
        }
    }

    /// The data group of offsets partition `index` when this broker leads it.
    fn offsets_group(&self, index: i32) -> Option<Group> {
        self.replicated(OFFSETS_TOPIC, index)?.ok()
    }
}

fn store_error_code(err: &OffsetStoreError) -> ErrorCode {
    match err {
        OffsetStoreError::MetadataTooLarge { .. } => ErrorCode::OffsetMetadataTooLarge,
        OffsetStoreError::NameTooLong { .. } | OffsetStoreError::CommitTooLarge { .. } => {
            ErrorCode::InvalidCommitOffsetSize
        }
        // Kafka's answer when the offsets store cannot write: clients look for the
        // coordinator again and retry.
        other => {
            tracing::error!(error = %other, "offset store failed");
            ErrorCode::NotCoordinator
        }
    }
}

/// Maps a refused append of offsets records to the coordinator's answer.
fn normalise(code: ErrorCode) -> ErrorCode {
    match code {
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
        ErrorCode::RequestTimedOut
        | ErrorCode::NotEnoughReplicas
        | ErrorCode::NotEnoughReplicasAfterAppend
        | ErrorCode::UnknownTopicOrPartition => ErrorCode::CoordinatorNotAvailable,
        ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge => {
            ErrorCode::InvalidCommitOffsetSize
        }
        other => other,
    }
}

impl Offsets<'_> {
    /// Stores one commit of `group` (all of it or none) and returns once it is durable: on
    /// this broker's disk, or committed in the offsets partition.
    ///
    /// # Errors
    /// The Kafka error code for every entry of the commit.
    pub(crate) async fn commit(
        &self,
        group: &str,
        entries: &[(String, i32, CommittedOffset)],
    ) -> Result<(), ErrorCode> {
        match self {
            Self::Local(store) => {
                let stored = match store.commit(group, entries) {
                    Ok(ticket) => store.wait_durable(ticket).await,
                    Err(err) => Err(err),
                };
                stored.map_err(|e| store_error_code(&e))
            }
            Self::Replicated(ctx, replicated) => {
                if entries.iter().any(|(_, _, v)| {
                    v.metadata
                        .as_ref()
                        .is_some_and(|m| m.len() > MAX_METADATA_BYTES)
                }) {
                    return Err(ErrorCode::OffsetMetadataTooLarge);
                }
                let changes: Vec<Change> = entries
                    .iter()
                    .map(|(topic, partition, value)| Change {
                        topic: topic.clone(),
                        partition: *partition,
                        value: Some(value.clone()),
                    })
                    .collect();
                append(ctx, replicated, group, &changes).await
            }
        }
    }

    /// Forgets every offset of `group` (tombstones for each, in one batch).
    ///
    /// # Errors
    /// The Kafka error code.
    pub(crate) async fn delete_group(&self, group: &str) -> Result<(), ErrorCode> {
        match self {
            Self::Local(store) => {
                let stored = match store.delete_group(group) {
                    Ok(ticket) => store.wait_durable(ticket).await,
                    Err(err) => Err(err),
                };
                stored.map_err(|e| store_error_code(&e))
            }
            Self::Replicated(..) => {
                let partitions: Vec<(String, i32)> = self
                    .group_offsets(group)
                    .into_iter()
                    .map(|(t, p, _)| (t, p))
                    .collect();
                self.delete_offsets(group, &partitions).await
            }
        }
    }

    /// Forgets the offsets of `partitions` of `group` (one batch: all or none).
    ///
    /// # Errors
    /// The Kafka error code.
    pub(crate) async fn delete_offsets(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<(), ErrorCode> {
        match self {
            Self::Local(store) => {
                let stored = match store.delete_offsets(group, partitions) {
                    Ok(ticket) => store.wait_durable(ticket).await,
                    Err(err) => Err(err),
                };
                stored.map_err(|e| store_error_code(&e))
            }
            Self::Replicated(ctx, replicated) => {
                let changes: Vec<Change> = partitions
                    .iter()
                    .map(|(topic, partition)| Change {
                        topic: topic.clone(),
                        partition: *partition,
                        value: None,
                    })
                    .collect();
                append(ctx, replicated, group, &changes).await
            }
        }
    }

    /// Before answering a read of `group`'s offsets: with replicated offsets, confirms with a
    /// majority of the partition's replicas that this broker still leads it (a paused or
    /// cut-off old leader must not answer from what it loaded: a newer leader may have
    /// taken commits since), and applies every record committed so far. A no-op for the
    /// local store.
    ///
    /// # Errors
    /// NOT_COORDINATOR when leadership cannot be confirmed.
    pub(crate) async fn confirm(&self, group: &str) -> Result<(), ErrorCode> {
        let Self::Replicated(ctx, replicated) = self else {
            return Ok(());
        };
        if let Some(code) = ctx.replicated_not_coordinator(replicated, group) {
            return Err(code);
        }
        let state = ctx.metadata().ok_or(ErrorCode::NotCoordinator)?;
        let index = ctx
            .offsets_partition(&state, group)
            .ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let leader = ctx.offsets_group(index).ok_or(ErrorCode::NotCoordinator)?;
        if let Err(err) = barrier(&leader, COMMIT_TIMEOUT).await {
            tracing::debug!(%group, partition = index, error = %err, "offsets read refused: leadership not confirmed");
            return Err(ErrorCode::NotCoordinator);
        }
        let partition = ctx
            .catalog
            .get(OFFSETS_TOPIC)
            .and_then(|t| t.partition(index).cloned())
            .ok_or(ErrorCode::NotCoordinator)?;
        replicated.catch_up(index, partition.log()).map_err(|err| {
            tracing::error!(error = %err, "cannot apply committed offsets");
            ErrorCode::NotCoordinator
        })
    }

    /// The committed offset of `group` for `topic`-`partition`.
    pub(crate) fn fetch(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Option<CommittedOffset> {
        match self {
            Self::Local(store) => store.fetch(group, topic, partition),
            Self::Replicated(ctx, replicated) => {
                let index = ctx.offsets_partition(&*ctx.metadata()?, group)?;
                replicated.fetch(index, group, topic, partition)
            }
        }
    }

    /// Every committed offset of `group`, sorted by topic and partition.
    pub(crate) fn group_offsets(&self, group: &str) -> Vec<(String, i32, CommittedOffset)> {
        match self {
            Self::Local(store) => store.group_offsets(group),
            Self::Replicated(ctx, replicated) => ctx
                .metadata()
                .and_then(|state| ctx.offsets_partition(&state, group))
                .map(|index| replicated.group_offsets(index, group))
                .unwrap_or_default(),
        }
    }

    /// Whether `group` has committed offsets.
    pub(crate) fn has_group(&self, group: &str) -> bool {
        match self {
            Self::Local(store) => store.has_group(group),
            Self::Replicated(ctx, replicated) => ctx
                .metadata()
                .and_then(|state| ctx.offsets_partition(&state, group))
                .is_some_and(|index| replicated.has_group(index, group)),
        }
    }

    /// The groups with committed offsets served here, sorted.
    pub(crate) fn groups(&self) -> Vec<String> {
        match self {
            Self::Local(store) => store.groups(),
            Self::Replicated(_, replicated) => replicated.groups(),
        }
    }
}

/// Appends `changes` of `group` to its offsets partition as one batch, through its data
/// group like an `acks=all` produce, then applies the partition's newly committed records.
async fn append(
    ctx: &Context,
    replicated: &ReplicatedOffsets,
    group: &str,
    changes: &[Change],
) -> Result<(), ErrorCode> {
    if let Some(code) = ctx.replicated_not_coordinator(replicated, group) {
        return Err(code);
    }
    let state = ctx.metadata().ok_or(ErrorCode::NotCoordinator)?;
    let index = ctx
        .offsets_partition(&state, group)
        .ok_or(ErrorCode::CoordinatorNotAvailable)?;
    let Some(batch) = encode_batch(group, changes, ctx.clock.now_ms()) else {
        return Ok(());
    };
    let leader = ctx.offsets_group(index).ok_or(ErrorCode::NotCoordinator)?;
    let topic = ctx
        .catalog
        .get(OFFSETS_TOPIC)
        .ok_or(ErrorCode::CoordinatorNotAvailable)?;
    let partition = topic
        .partition(index)
        .ok_or(ErrorCode::NotCoordinator)?
        .clone();
    let records: Option<Bytes> = Some(batch);
    let proposed = super::produce_replicated::propose(ctx, leader, &partition, &records, -1)
        .await
        .map_err(|(code, message)| {
            tracing::debug!(%group, partition = index, %message, "offsets append refused");
            normalise(code)
        })?;
    super::produce_replicated::answer(proposed, COMMIT_TIMEOUT)
        .await
        .map_err(|(code, message)| {
            tracing::debug!(%group, partition = index, %message, "offsets append not committed");
            normalise(code)
        })?;
    replicated.catch_up(index, partition.log()).map_err(|err| {
        tracing::error!(error = %err, "cannot apply committed offsets");
        ErrorCode::NotCoordinator
    })
}

/// Keeps the offsets partitions led here loaded, the others unloaded, and the topic
/// created, until `stop`.
pub(crate) async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    let (Some(node), Some(replicated)) = (ctx.cluster.clone(), ctx.replicated_offsets.clone())
    else {
        return;
    };
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut creating: Option<tokio::task::JoinHandle<()>> = None;
    // Topics seen by id, so a deletion's tombstones can name them.
    let mut seen: std::collections::HashMap<uuid::Uuid, String> = std::collections::HashMap::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let state = node.state();
        let Some(topic) = state.topics.get(OFFSETS_TOPIC) else {
            if creating
                .as_ref()
                .is_none_or(tokio::task::JoinHandle::is_finished)
            {
                creating = Some(tokio::spawn(create_topic(Arc::clone(&ctx))));
            }
            continue;
        };
        for index in 0..topic.partitions.len() {
            let Ok(index) = i32::try_from(index) else {
                continue;
            };
            follow(&ctx, &replicated, index);
        }
        forget_deleted_topics(&ctx, &state, &mut seen).await;
    }
}

/// Starts loading partition `index` when this broker just became its leader, or unloads it
/// when it stopped leading.
fn follow(ctx: &Arc<Context>, replicated: &Arc<ReplicatedOffsets>, index: i32) {
    let leading = ctx.offsets_group(index).map(|g| (g.leader().1, g));
    match (leading, replicated.term(index)) {
        (Some((term, _)), Some(held)) if held == term => {}
        (Some((term, group)), held) => {
            if held.is_some() {
                // Led again in a newer term: whatever happened meanwhile, start afresh.
                unload_members(ctx, index);
            }
            replicated.begin_load(index, term);
            let (ctx, replicated) = (Arc::clone(ctx), Arc::clone(replicated));
            tokio::spawn(async move {
                if let Err(why) = load(&ctx, &replicated, index, term, group).await {
                    tracing::warn!(partition = index, term, error = %why, "cannot load an offsets partition; retrying");
                    if replicated.term(index) == Some(term) {
                        replicated.unload(index);
                    }
                }
            });
        }
        (None, Some(_)) => {
            let groups = replicated.unload(index);
            // The members of this partition's groups rejoin at its new coordinator.
            let gone = unload_members(ctx, index);
            tracing::info!(
                partition = index,
                groups = groups.len(),
                members_groups = gone,
                "unloaded an offsets partition: its leadership moved"
            );
        }
        (None, None) => {}
    }
}

/// Forgets the members of the groups of offsets partition `index` (they rejoin at its new
/// coordinator; parked joins and syncs are answered NOT_COORDINATOR). Returns how many
/// groups went.
fn unload_members(ctx: &Context, index: i32) -> usize {
    let count = ctx
        .metadata()
        .and_then(|s| u32::try_from(s.topics.get(OFFSETS_TOPIC)?.partitions.len()).ok());
    ctx.groups
        .unload(|g| count.is_some_and(|n| partition_for(g, n) == index))
}

/// Waits for [`barrier`] (everything committed before is then below the high watermark),
/// then reads the partition.
async fn load(
    ctx: &Context,
    replicated: &Arc<ReplicatedOffsets>,
    index: i32,
    term: u64,
    group: Group,
) -> Result<(), String> {
    barrier(&group, LOAD_BARRIER_TIMEOUT).await?;
    let partition = ctx
        .catalog
        .get(OFFSETS_TOPIC)
        .and_then(|t| t.partition(index).cloned())
        .ok_or_else(|| format!("{OFFSETS_TOPIC}-{index} is not held here"))?;
    let replicated = Arc::clone(replicated);
    tokio::task::spawn_blocking(move || replicated.load(index, term, partition.log()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Confirms with a majority that this broker still leads `group` (openraft's
/// `ensure_linearizable`), then waits until everything in its log at that moment is applied
/// here. The second half matters for a leader openraft restored at start-up from its own
/// persisted vote, in the same term: its high watermark restarts from what it had applied,
/// below what was committed (and acknowledged) before it stopped, and `ensure_linearizable`
/// waits only for the commit index it knows. Everything committed is in the leader's log
/// (Raft's leader completeness), so once its whole log is applied nothing acknowledged is
/// missing. (A rolling restart caught a coordinator answering offsets older than commits it
/// had acknowledged.)
async fn barrier(group: &Group, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, group.raft.ensure_linearizable()).await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => return Err(err.to_string()),
        Err(_) => return Err(format!("leadership not confirmed within {timeout:?}")),
    }
    let last = group.raft.metrics().borrow().last_log_index;
    group
        .raft
        .wait(Some(timeout))
        .applied_index_at_least(last, "offsets barrier")
        .await
        .map(|_| ())
        .map_err(|err| err.to_string())
}

/// Creates `__consumer_offsets` through the metadata quorum, from the controller only and
/// once enough brokers are live for its replication factor.
async fn create_topic(ctx: Arc<Context>) {
    let Some(node) = ctx.cluster.clone() else {
        return;
    };
    if node.leader() != Some(node.id()) {
        return;
    }
    let state = node.state();
    let replicas = offsets_replication_factor(&ctx);
    if state.live_brokers().count() < replicas {
        return;
    }
    let partitions = i64::from(ctx.config.cluster.offsets_topic_partitions.max(1));
    let configs = [("cleanup.policy".to_owned(), Some("compact".to_owned()))];
    let created = super::cluster_admin::create_topic(
        &ctx,
        &node,
        OFFSETS_TOPIC,
        partitions,
        super::cluster_admin::Spread {
            replicas,
            manual: None,
        },
        &configs,
        false,
    )
    .await;
    match created {
        Ok(()) => {
            tracing::info!(
                partitions,
                replicas,
                "created the internal topic {OFFSETS_TOPIC}"
            );
        }
        Err((ErrorCode::TopicAlreadyExists, _)) => {}
        Err((code, message)) => {
            tracing::debug!(?code, %message, "cannot create {OFFSETS_TOPIC} yet");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// The offsets topic's replication factor: the flag, else 3, never more than the voters.
pub(crate) fn offsets_replication_factor(ctx: &Context) -> usize {
    let voters = ctx
        .config
        .cluster
        .settings()
        .ok()
        .flatten()
        .map_or(1, |s| s.peers.len());
    ctx.config
        .cluster
        .offsets_topic_replication_factor
        .map_or(3, usize::from)
        .min(voters)
}

/// Writes tombstones for the offsets of topics the cluster deleted, in the offsets
/// partitions led here (a topic created again under the name must not inherit them).
async fn forget_deleted_topics(
    ctx: &Context,
    state: &MetadataState,
    seen: &mut std::collections::HashMap<uuid::Uuid, String>,
) {
    for (name, topic) in &state.topics {
        seen.entry(topic.id).or_insert_with(|| name.clone());
    }
    let deleted: Vec<(uuid::Uuid, String)> = seen
        .iter()
        .filter(|(id, _)| state.deleted.contains(id))
        .map(|(id, name)| (*id, name.clone()))
        .collect();
    for (id, name) in deleted {
        seen.remove(&id);
        let Some(replicated) = &ctx.replicated_offsets else {
            return;
        };
        for (_, group, partitions) in replicated.offsets_of_topic(&name) {
            let partitions: Vec<(String, i32)> =
                partitions.into_iter().map(|p| (name.clone(), p)).collect();
            if let Err(code) = committed(ctx).delete_offsets(&group, &partitions).await {
                tracing::warn!(topic = %name, %group, ?code, "cannot delete a deleted topic's committed offsets");
            }
        }
    }
}
