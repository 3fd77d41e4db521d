//! Moving a replicated partition's log start: retention and DeleteRecords.
//!
//! Each replica applies its topic's retention (`retention.ms`, `retention.bytes`) to its own
//! segments, as Kafka's replicas do, but only to those wholly below the high watermark
//! (committed) ([`crate::log::PartitionLog::replicated_retention_floor`]). DeleteRecords is
//! an entry in the group's log ([`super::entry::delete_records`]): the leader checks the
//! offset (OFFSET_OUT_OF_RANGE past the high watermark, as Kafka) and proposes it, and every
//! replica that applies it moves its log start there; the client is answered once it is
//! committed and applied on the leader, with the new low watermark.
//!
//! Neither deletes a segment itself: the segments are the Raft log, which openraft may still
//! read to catch a follower up. [`ReplicaGroup::retain`] asks openraft for a snapshot at the
//! last entry wholly below the new start; openraft then purges the entries up to it once no
//! replication reads them, and the purge deletes the segments (`store.rs`). A follower that
//! needs purged entries then receives the snapshot instead (`snapshot.rs`).

use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};

use super::entry;
use super::group::{ReplicaGroup, ReplicaProduceError};
use super::types::{Batch, NodeId, Outcome};
use crate::clock::{Clock, SystemClock};
use crate::log::{LogError, Offset};

/// The request offset that means "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

/// Why a DeleteRecords on a replicated partition did not move its start.
#[derive(Debug, thiserror::Error)]
pub enum DeleteRecordsError {
    /// Refused by the log's rules (out of range, cleanup policy without `delete`) or failed
    /// applying.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Not the leader, not committed in time, or the group stopped.
    #[error(transparent)]
    Replica(#[from] ReplicaProduceError),
    /// Applying the entry failed on the leader, with this Kafka error code.
    #[error("applying DeleteRecords failed: {message}")]
    Applied {
        /// The Kafka error code.
        code: i16,
        /// Why.
        message: String,
    },
}

impl ReplicaGroup {
    /// DeleteRecords on the leader: moves every replica's log start to `offset` (`-1`: the
    /// high watermark) through the group's log, and answers the leader's log start once the
    /// entry is committed and applied. An offset at or below the current start changes
    /// nothing (as in Kafka).
    ///
    /// # Errors
    /// [`DeleteRecordsError`].
    pub async fn delete_records(
        &self,
        offset: i64,
        timeout: Duration,
    ) -> Result<Offset, DeleteRecordsError> {
        if !self.is_leader() {
            return Err(self.not_leader_error().into());
        }
        let log = self.store.partition().log();
        if !log.config().cleanup_policy.delete {
            return Err(LogError::DeleteForbidden(log.dir().to_path_buf()).into());
        }
        let high_watermark = log.high_watermark();
        let start = log.log_start_offset();
        let target = if offset == HIGH_WATERMARK {
            high_watermark
        } else {
            Offset(offset)
        };
        if target.0 < 0 || target > high_watermark {
            return Err(LogError::OffsetOutOfRange {
                requested: Offset(offset),
                start,
                end: high_watermark,
            }
            .into());
        }
        if target <= start {
            return Ok(start);
        }
        let bytes = entry::delete_records(target.0, SystemClock.now_ms());
        let written =
            tokio::time::timeout(timeout, self.raft.client_write(Batch { bytes, token: 0 }))
                .await
                .map_err(|_elapsed| ReplicaProduceError::TimedOut(timeout, self.id))?;
        match written {
            Ok(answer) => match answer.data {
                Outcome::LogStart { offset } => Ok(Offset(offset)),
                Outcome::Refused { code, message } => {
                    Err(DeleteRecordsError::Applied { code, message })
                }
                other => Err(DeleteRecordsError::Applied {
                    code: weir_protocol::error_code::ErrorCode::UnknownServerError.code(),
                    message: format!("DeleteRecords answered {other:?}"),
                }),
            },
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(self.not_leader_error().into())
            }
            Err(err) => Err(ReplicaProduceError::Stopped {
                group: self.id,
                why: err.to_string(),
            }
            .into()),
        }
    }

    fn not_leader_error(&self) -> ReplicaProduceError {
        let (leader, _) = self.leader();
        ReplicaProduceError::NotLeader {
            me: self.me,
            group: self.id,
            leader: leader.filter(|l: &NodeId| *l != self.me),
        }
    }

    /// One retention step of this replica: when retention or DeleteRecords moved (or would
    /// move) the log start past whole entries, asks openraft for a snapshot there, after
    /// which it purges them and their segments go. Returns the purge point asked for.
    pub async fn retain(&self) -> Option<u64> {
        let store = self.store.clone();
        let point = tokio::task::spawn_blocking(move || {
            let floor = store.partition().log().replicated_retention_floor();
            store.map().purge_point(floor.0)
        })
        .await
        .ok()
        .flatten()?;
        let built = self.raft.metrics().borrow().snapshot;
        if Some(point) <= built {
            // Built already: openraft purges once no replication reads the entries.
            return None;
        }
        {
            let mut map = self.store.map_mut();
            map.wanted = map.wanted.max(Some(point));
        }
        if let Err(err) = self.raft.trigger().snapshot().await {
            tracing::warn!(group = %self.id, error = %err, "cannot ask for a snapshot");
            return None;
        }
        tracing::debug!(group = %self.id, index = point.index, "asked for a snapshot to purge up to");
        Some(point.index)
    }
}
