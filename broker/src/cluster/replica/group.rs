//! One running data group on this broker: its Raft handle, its store, and the produce path
//! through it.
//!
//! A produce goes to the group's leader only. The batch is proposed as it came (checked for
//! shape and topic rules by the produce handler first); `acks=all` is answered once the
//! entry is committed (on disk on a majority) and applied here, `acks=1` once it is stored
//! in this replica's log (losable if this leader fails before a majority has it, as in
//! Kafka). Proposals are submitted in the order the handler makes them, so a connection's
//! batches keep their order.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use openraft::ServerState;
use openraft::error::ClientWriteError;

use super::network::Contacts;
use super::store::ReplicaStore;
use super::types::{Batch, DataRaft, GroupId, NodeId, Outcome};

/// Tokens of proposed batches (unique per broker run; 0 is "none").
static TOKENS: AtomicU64 = AtomicU64::new(1);

/// Why a produce through a data group did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaProduceError {
    /// This broker does not lead the partition (any more).
    #[error("broker {me} does not lead {group} (leader: {leader:?})")]
    NotLeader {
        /// This broker.
        me: NodeId,
        /// The group.
        group: GroupId,
        /// The leader it knows of.
        leader: Option<NodeId>,
    },
    /// Not committed in time (no quorum): the outcome is unknown.
    #[error("{group}: not committed within {0:?}", group = .1)]
    TimedOut(Duration, GroupId),
    /// The group stopped (the broker is shutting down or its storage failed).
    #[error("{group}: the replica stopped: {why}")]
    Stopped {
        /// The group.
        group: GroupId,
        /// Why.
        why: String,
    },
}

/// A data group running on this broker.
pub struct ReplicaGroup {
    pub(crate) id: GroupId,
    pub(crate) raft: DataRaft,
    pub(crate) store: ReplicaStore,
    pub(crate) me: NodeId,
    pub(crate) replicas: Vec<NodeId>,
    /// When each follower last answered (on the leader).
    pub(crate) contacts: Arc<Contacts>,
    /// A follower silent for longer is out of sync (Kafka's `replica.lag.time.max.ms`).
    pub(crate) lag_time: Duration,
    /// Set while this leader hands leadership to another replica ([`super::transfer`]):
    /// new produce is refused so that the target can catch up with a log that stops
    /// growing.
    pub(crate) handing_over: AtomicBool,
}

impl std::fmt::Debug for ReplicaGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaGroup")
            .field("id", &self.id)
            .field("replicas", &self.replicas)
            .finish_non_exhaustive()
    }
}

impl ReplicaGroup {
    /// Whether openraft says this broker is the group's leader now (serving reads and
    /// reports); a produce also needs [`Self::confirm_lease`].
    pub fn is_leader(&self) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.me)
    }

    /// Whether a majority of the voters (this broker included) accepted its leadership in
    /// the current term, of AppendEntries sent within the last election timeout: the
    /// leader's lease.
    ///
    /// A follower that accepted an AppendEntries refuses to vote for anyone else for the
    /// leader lease (openraft's is twice the election timeout) from when it received it,
    /// after it was sent; so while a majority accepted requests sent within one election
    /// timeout, no other leader can have been elected, with an election timeout to spare for
    /// clocks. Without it, a leader that was paused (SIGSTOP, a long stall) or cut off, and
    /// one that openraft restores as leader at start-up from its own persisted vote, took
    /// `acks=1` writes (cut when it learns of the newer term) until a follower's answer told
    /// it otherwise.
    fn holds_lease(&self) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let lease = Duration::from_millis(self.raft.config().election_timeout_min);
        let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
        let accepted = voters
            .iter()
            .filter(|id| **id == self.me || self.contacts.recent_in(**id, m.current_term, lease))
            .count();
        accepted * 2 > voters.len()
    }

    /// Whether this broker leads and holds its lease ([`Self::holds_lease`]), waiting at
    /// most an election timeout for it: a leader just elected holds it after its first round
    /// of AppendEntries (milliseconds); one cut off or paused does not get it back.
    pub async fn confirm_lease(&self) -> bool {
        let lease = Duration::from_millis(self.raft.config().election_timeout_min);
        let deadline = tokio::time::Instant::now() + lease;
        loop {
            if !self.is_leader() {
                return false;
            }
            if self.holds_lease() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The leader this replica knows of, and the current term.
    pub fn leader(&self) -> (Option<NodeId>, u64) {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        (m.current_leader, m.current_term)
    }

    /// On the leader: the replicas caught up with it (matched its last log entry, or within
    /// `lag` entries of it, and answered within the lag time), itself first. Empty elsewhere.
    pub fn in_sync(&self, lag: u64) -> Vec<NodeId> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let Some(replication) = &m.replication else {
            return Vec::new();
        };
        let last = m.last_log_index.unwrap_or(0);
        let mut isr = vec![self.me];
        let caught_up: BTreeSet<NodeId> = replication
            .iter()
            .filter(|(id, matched)| {
                **id != self.me
                    && matched.is_some_and(|l| l.index.saturating_add(lag) >= last)
                    && self.contacts.recent(**id, self.lag_time)
            })
            .map(|(id, _)| *id)
            .collect();
        isr.extend(self.replicas.iter().filter(|r| caught_up.contains(r)));
        isr
    }

    /// Proposes `batch` (submitted in call order: a connection's batches keep their order)
    /// and returns what to wait on for the answer `acks` asks for.
    ///
    /// # Errors
    /// [`ReplicaProduceError`]: not the leader, or the group stopped.
    pub async fn submit(&self, batch: Bytes, acks: i16) -> Result<Submitted, ReplicaProduceError> {
        if self.handing_over.load(Ordering::Acquire) || !self.confirm_lease().await {
            return Err(self.not_leader());
        }
        let token = TOKENS.fetch_add(1, Ordering::Relaxed);
        let stored_here = (acks != -1).then(|| self.store.on_local_append(token));
        let committed = match self
            .raft
            .client_write_ff(Batch {
                bytes: batch,
                token,
            })
            .await
        {
            Ok(committed) => committed,
            Err(fatal) => {
                self.store.forget_local(token);
                return Err(self.stopped(&fatal));
            }
        };
        Ok(Submitted {
            token,
            stored_here,
            committed,
        })
    }

    /// Waits at most `timeout` for a submitted batch's answer: stored here for `acks` 0 and
    /// 1, committed for `acks=all`.
    ///
    /// # Errors
    /// [`ReplicaProduceError`]: leadership lost before the answer, no answer in time (the
    /// outcome is then unknown), or the group stopped.
    pub async fn wait(
        &self,
        submitted: Submitted,
        timeout: Duration,
    ) -> Result<Outcome, ReplicaProduceError> {
        let Submitted {
            token,
            stored_here,
            committed,
        } = submitted;
        let answer = async {
            if let Some(stored_here) = stored_here {
                return tokio::select! {
                    stored = stored_here => stored.map_err(|_dropped| self.not_leader()),
                    // Refused before it was stored (this replica lost leadership).
                    answered = committed => match answered {
                        Ok(Ok(done)) => Ok(done.data),
                        Ok(Err(err)) => Err(self.write_error(&err)),
                        Err(_) => Err(self.not_leader()),
                    },
                };
            }
            match committed.await {
                Ok(Ok(done)) => Ok(done.data),
                Ok(Err(err)) => Err(self.write_error(&err)),
                Err(_) => Err(self.not_leader()),
            }
        };
        let result = tokio::time::timeout(timeout, answer).await;
        self.store.forget_local(token);
        result.unwrap_or(Err(ReplicaProduceError::TimedOut(timeout, self.id)))
    }

    pub(crate) fn not_leader(&self) -> ReplicaProduceError {
        ReplicaProduceError::NotLeader {
            me: self.me,
            group: self.id,
            leader: self.leader().0.filter(|l| *l != self.me),
        }
    }

    fn stopped(&self, why: &dyn std::fmt::Display) -> ReplicaProduceError {
        ReplicaProduceError::Stopped {
            group: self.id,
            why: why.to_string(),
        }
    }

    fn write_error(
        &self,
        err: &ClientWriteError<NodeId, openraft::EmptyNode>,
    ) -> ReplicaProduceError {
        match err {
            ClientWriteError::ForwardToLeader(_) => self.not_leader(),
            ClientWriteError::ChangeMembershipError(e) => self.stopped(e),
        }
    }
}

/// A batch proposed to a data group, not yet answered.
pub struct Submitted {
    token: u64,
    stored_here: Option<tokio::sync::oneshot::Receiver<Outcome>>,
    committed: <<super::types::DataConfig as openraft::RaftTypeConfig>::Responder as openraft::raft::responder::Responder<super::types::DataConfig>>::Receiver,
}

impl std::fmt::Debug for Submitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitted")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// Shared so that the produce path can hold a group while the manager replaces its map.
pub type Group = Arc<ReplicaGroup>;
