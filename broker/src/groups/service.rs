//! The async shell around the pure group coordinator ([`crate::groups::coordinator`]).
//!
//! Owns the clock and the parked replies: a JoinGroup or SyncGroup that must wait gets a
//! oneshot channel, registered under a [`ReplyTo`] id before the state machine sees the
//! request, and answered whenever an [`Output`] names it (from this request, another
//! member's, or a timer). One task sleeps until [`Coordinator::next_deadline`] and ticks the
//! machine; it is woken whenever a request may have moved the deadline.
//!
//! A parked request also ends when its connection's cancellation token fires (the client
//! went away, or the broker is stopping): it is answered NOT_COORDINATOR (Kafka's answer from
//! a coordinator that is unloading) and its channel removed, so nothing waits for a client
//! that is gone and a shutdown never waits for a rebalance.
//!
//! Does not decide anything about groups (the coordinator does) and does no network I/O
//! (the handlers in `crate::server` translate wire messages and call it).
//!
//! Invariants: the coordinator is only reached through one lock, and every [`ReplyTo`] it
//! is given names a registered waiter at the time of the call; a waiter leaves the table
//! when it is answered, cancelled or dropped, whichever comes first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;
use weir_protocol::error_code::ErrorCode;

use crate::clock::Clock;
use crate::groups::coordinator::{
    Coordinator, GroupConfig, GroupDescription, GroupState, JoinRequest, JoinResult, Output,
    ReplyTo, SyncRequest, SyncResult,
};

enum Waiter {
    Join(oneshot::Sender<JoinResult>),
    Sync(oneshot::Sender<SyncResult>),
}

struct Inner {
    coordinator: Coordinator,
    waiting: HashMap<ReplyTo, Waiter>,
    next_reply: ReplyTo,
}

impl Inner {
    fn park(&mut self, waiter: Waiter) -> ReplyTo {
        self.next_reply += 1;
        self.waiting.insert(self.next_reply, waiter);
        self.next_reply
    }

    fn deliver(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            // A receiver may be gone (the client disconnected): nothing to do then.
            match (output, &mut self.waiting) {
                (Output::Join(to, result), waiting) => {
                    if let Some(Waiter::Join(tx)) = waiting.remove(&to) {
                        let _gone = tx.send(result);
                    }
                }
                (Output::Sync(to, result), waiting) => {
                    if let Some(Waiter::Sync(tx)) = waiting.remove(&to) {
                        let _gone = tx.send(result);
                    }
                }
            }
        }
    }
}

/// A parked reply, released when the request stops waiting for it: answered, cancelled, or
/// its task dropped. The member stays in the group (it expires by the coordinator's rules, as
/// in Kafka); only the channel to a request nobody waits for any more is removed.
struct Parked<'a> {
    service: &'a GroupService,
    to: ReplyTo,
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.service.lock().waiting.remove(&self.to);
    }
}

/// The broker's group coordinator, shared by all connections.
pub(crate) struct GroupService {
    inner: Mutex<Inner>,
    clock: Arc<dyn Clock>,
    /// Wakes the timer task when a request may have moved the next deadline.
    changed: Notify,
}

impl std::fmt::Debug for GroupService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupService").finish_non_exhaustive()
    }
}

impl GroupService {
    pub(crate) fn new(config: GroupConfig, clock: Arc<dyn Clock>) -> Self {
        // Member ids must not repeat across restarts: the start time makes them unique.
        let nonce = format!("{:x}", clock.now_ms());
        Self {
            inner: Mutex::new(Inner {
                coordinator: Coordinator::new(config, nonce),
                waiting: HashMap::new(),
                next_reply: 0,
            }),
            clock,
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Joins, waiting (parked) until the rebalance completes, or until `cancel` fires (the
    /// connection closed or the broker is stopping): then NOT_COORDINATOR, and the parked
    /// reply is released.
    pub(crate) async fn join(
        &self,
        request: JoinRequest,
        cancel: &CancellationToken,
    ) -> JoinResult {
        let member_id = request.member_id.clone();
        let failed = |error| JoinResult {
            error,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.clone(),
            members: Vec::new(),
        };
        self.park(
            Waiter::Join,
            |coordinator, now, to| coordinator.join(now, request, to),
            cancel,
            failed,
        )
        .await
    }

    /// Syncs, parked like [`Self::join`] and cancelled the same way.
    pub(crate) async fn sync(
        &self,
        request: SyncRequest,
        cancel: &CancellationToken,
    ) -> SyncResult {
        let failed = |error| SyncResult {
            error,
            assignment: bytes::Bytes::new(),
        };
        self.park(
            Waiter::Sync,
            |coordinator, now, to| coordinator.sync(now, request, to),
            cancel,
            failed,
        )
        .await
    }

    /// What every parked group request shares: a reply slot parked for the coordinator's
    /// answer, `call` run under the lock with it, then the answer or `cancel` (answered with
    /// `failed(NOT_COORDINATOR)`); the slot is released either way ([`Parked`]'s drop).
    async fn park<T>(
        &self,
        waiter: impl FnOnce(oneshot::Sender<T>) -> Waiter,
        call: impl FnOnce(&mut Coordinator, i64, ReplyTo) -> Vec<Output>,
        cancel: &CancellationToken,
        failed: impl Fn(ErrorCode) -> T,
    ) -> T {
        let (tx, rx) = oneshot::channel();
        let parked = {
            let mut inner = self.lock();
            let to = inner.park(waiter(tx));
            let outputs = call(&mut inner.coordinator, self.now(), to);
            inner.deliver(outputs);
            Parked { service: self, to }
        };
        self.changed.notify_one();
        let result = tokio::select! {
            biased;
            result = rx => result.unwrap_or_else(|_| failed(ErrorCode::CoordinatorNotAvailable)),
            () = cancel.cancelled() => failed(ErrorCode::NotCoordinator),
        };
        drop(parked);
        result
    }

    pub(crate) fn heartbeat(
        &self,
        group: &str,
        member: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> ErrorCode {
        let now = self.now();
        let error = self
            .lock()
            .coordinator
            .heartbeat(now, group, member, instance, generation);
        self.changed.notify_one();
        error
    }

    pub(crate) fn leave(&self, group: &str, member: &str, instance: Option<&str>) -> ErrorCode {
        let now = self.now();
        let mut inner = self.lock();
        let (error, outputs) = inner.coordinator.leave(now, group, member, instance);
        inner.deliver(outputs);
        drop(inner);
        self.changed.notify_one();
        error
    }

    pub(crate) fn check_commit(
        &self,
        group: &str,
        member: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), ErrorCode> {
        let now = self.now();
        self.lock()
            .coordinator
            .check_commit(now, group, member, instance, generation)
    }

    pub(crate) fn describe(&self, group: &str) -> Option<GroupDescription> {
        self.lock().coordinator.describe(group)
    }

    pub(crate) fn list(&self) -> Vec<(String, GroupState, String)> {
        self.lock().coordinator.list()
    }

    pub(crate) fn delete(&self, group: &str) -> Result<(), ErrorCode> {
        self.lock().coordinator.delete(group)
    }

    /// Forgets the groups `unloaded` names (their coordinator moved): see
    /// [`Coordinator::unload`].
    pub(crate) fn unload(&self, unloaded: impl Fn(&str) -> bool) -> usize {
        let mut inner = self.lock();
        let (gone, outputs) = inner.coordinator.unload(unloaded);
        inner.deliver(outputs);
        drop(inner);
        self.changed.notify_one();
        gone
    }

    /// Ticks the state machine at its deadlines until `stop`.
    pub(crate) async fn run_timers(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let deadline = self.lock().coordinator.next_deadline();
            let wait = deadline.map_or(Duration::from_secs(3600), |d| {
                Duration::from_millis(u64::try_from(d.saturating_sub(self.now())).unwrap_or(0))
            });
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.changed.notified() => continue,
                () = tokio::time::sleep(wait) => {}
            }
            let now = self.now();
            let mut inner = self.lock();
            let outputs = inner.coordinator.tick(now);
            inner.deliver(outputs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn join_request(group: &str) -> JoinRequest {
        JoinRequest {
            group_id: group.to_owned(),
            member_id: String::new(),
            group_instance_id: None,
            session_timeout_ms: 30_000,
            rebalance_timeout_ms: i32::MAX,
            protocol_type: "consumer".to_owned(),
            protocols: vec![("range".to_owned(), bytes::Bytes::new())],
            client_id: "test".to_owned(),
            client_host: "/127.0.0.1".to_owned(),
            version: 3,
        }
    }

    #[tokio::test]
    async fn a_cancelled_join_is_answered_and_releases_its_parked_reply() {
        // The first rebalance waits ten minutes of a clock that does not move.
        let config = GroupConfig {
            initial_rebalance_delay_ms: 600_000,
            ..GroupConfig::default()
        };
        let service = Arc::new(GroupService::new(config, Arc::new(ManualClock::new(1_000))));
        let cancel = CancellationToken::new();
        let joining = {
            let (service, cancel) = (Arc::clone(&service), cancel.clone());
            tokio::spawn(async move { service.join(join_request("g"), &cancel).await })
        };
        while service.lock().waiting.is_empty() {
            tokio::task::yield_now().await;
        }
        cancel.cancel();
        let result = joining.await.unwrap();
        assert_eq!(result.error, ErrorCode::NotCoordinator);
        assert!(
            service.lock().waiting.is_empty(),
            "the parked reply is kept"
        );
        // A join whose task is dropped while parked releases its reply too.
        let never = CancellationToken::new();
        let dropped = {
            let service = Arc::clone(&service);
            tokio::spawn(async move { service.join(join_request("h"), &never).await })
        };
        while service.lock().waiting.is_empty() {
            tokio::task::yield_now().await;
        }
        dropped.abort();
        assert!(dropped.await.unwrap_err().is_cancelled());
        assert!(
            service.lock().waiting.is_empty(),
            "an aborted join's reply is kept"
        );
        // After cancellation, a join answers at once.
        let result = service.join(join_request("g"), &cancel).await;
        assert_eq!(result.error, ErrorCode::NotCoordinator);
    }
}
