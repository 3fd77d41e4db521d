//! Produce to a partition with more than one replica: the batch, checked as for any
//! partition ([`super::produce::ready`]), is proposed to the partition's data group on its
//! leader, and answered as `acks` asks: `acks=all` once committed (on disk on a majority of
//! the replicas), `acks=1` once stored in the leader's log, `acks=0` not at all.
//! `min.insync.replicas` counts the replicas the leader sees caught up.

use std::time::Duration;

use bytes::Bytes;
use weir_protocol::error_code::ErrorCode;

use super::Context;
use super::produce_rules::{Ready, Refusal, ready};
use crate::cluster::replica::group::Submitted;
use crate::cluster::replica::manager::{IN_SYNC_LAG, MAX_REPLICATED_BATCH};
use crate::cluster::replica::{Group, Outcome, ReplicaProduceError};
use crate::topics::Partition;

/// A batch proposed for one partition of the request.
#[derive(Debug)]
pub(super) struct Proposed {
    pub(super) group: Group,
    pub(super) submitted: Submitted,
    /// The time a `LogAppendTime` topic stamped into it.
    pub(super) stamped_at: Option<i64>,
}

/// The replicated path for one partition of a request: `replicated` is what
/// [`Context::replicated`] found for `(topic, index)`, `partition` the local replica.
/// Returns the proposal and the log start offset to answer with.
pub(super) async fn offer(
    ctx: &Context,
    replicated: Result<Group, Refusal>,
    partition: Option<&std::sync::Arc<Partition>>,
    (topic, index): (&str, i32),
    records: &Option<Bytes>,
    acks: i16,
) -> Result<(Proposed, i64), Refusal> {
    match (replicated, partition) {
        (Ok(group), Some(partition)) => propose(ctx, group, partition, records, acks)
            .await
            .map(|p| (p, partition.log().log_start_offset().0)),
        (Ok(_), None) => Err(ctx.missing_partition(topic, index)),
        (Err(refusal), _) => Err(refusal),
    }
}

/// Checks `records` and proposes them to `group` (this broker leads it).
pub(super) async fn propose(
    ctx: &Context,
    group: Group,
    partition: &Partition,
    records: &Option<Bytes>,
    acks: i16,
) -> Result<Proposed, Refusal> {
    let in_sync = u32::try_from(group.in_sync(IN_SYNC_LAG).len()).unwrap_or(u32::MAX);
    let (bytes, stamped_at) = match ready(partition, records, acks, ctx, in_sync)? {
        Ready::AsSent(_) => (records.clone().unwrap_or_default(), None),
        Ready::Stamped { bytes, at } => (Bytes::from(bytes), Some(at)),
    };
    if bytes.len() > MAX_REPLICATED_BATCH {
        return Err((
            ErrorCode::MessageTooLarge,
            format!(
                "the record batch is {} bytes; a replicated partition takes at most {MAX_REPLICATED_BATCH}",
                bytes.len()
            ),
        ));
    }
    let submitted = group
        .submit(bytes, acks)
        .await
        .map_err(|err| refusal(&err))?;
    Ok(Proposed {
        group,
        submitted,
        stamped_at,
    })
}

/// Waits for a proposed batch's answer: its base offset, or the refusal.
pub(super) async fn answer(proposed: Proposed, timeout: Duration) -> Result<i64, Refusal> {
    let Proposed {
        group, submitted, ..
    } = proposed;
    match group.wait(submitted, timeout).await {
        Ok(Outcome::Stored { base_offset, .. } | Outcome::Duplicate { base_offset, .. }) => {
            Ok(base_offset)
        }
        Ok(Outcome::Refused { code, message }) => Err((
            ErrorCode::from_code(code).unwrap_or(ErrorCode::UnknownServerError),
            message,
        )),
        Ok(Outcome::Control | Outcome::LogStart { .. }) => Err((
            ErrorCode::UnknownServerError,
            "the batch's entry answered as a control entry".to_owned(),
        )),
        Err(err) => Err(refusal(&err)),
    }
}

fn refusal(err: &ReplicaProduceError) -> Refusal {
    let code = match err {
        ReplicaProduceError::NotLeader { .. } => ErrorCode::NotLeaderOrFollower,
        ReplicaProduceError::TimedOut(..) => ErrorCode::RequestTimedOut,
        ReplicaProduceError::Stopped { .. } => ErrorCode::NotLeaderOrFollower,
    };
    (code, err.to_string())
}
