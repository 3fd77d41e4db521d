//! Broker liveness on the controller, pure: when each broker last heartbeated, and which
//! sessions expired. Kept in memory only (as in KRaft): a new controller starts every
//! broker's session afresh, so a controller change never fences a live broker.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::node_id::NodeId;

/// Last heartbeats and the session timeout.
#[derive(Debug)]
pub struct Liveness {
    timeout: Duration,
    last_seen: HashMap<NodeId, Instant>,
    /// When this node last became the controller: brokers not heard from since count from it.
    since: Option<Instant>,
}

impl Liveness {
    /// No broker heard from yet.
    #[must_use]
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            last_seen: HashMap::new(),
            since: None,
        }
    }

    /// This node became the controller at `now`.
    pub fn restart(&mut self, now: Instant) {
        self.last_seen.clear();
        self.since = Some(now);
    }

    /// `node` heartbeated at `now`.
    pub fn heard(&mut self, node: NodeId, now: Instant) {
        self.last_seen.insert(node, now);
    }

    /// Which of the `live` (unfenced) brokers have not been heard from for a whole session.
    #[must_use]
    pub fn expired(&self, live: &[NodeId], now: Instant) -> Vec<NodeId> {
        live.iter()
            .copied()
            .filter(|node| {
                let last = self.last_seen.get(node).copied().or(self.since);
                last.is_some_and(|at| now.saturating_duration_since(at) > self.timeout)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_expires_only_after_the_timeout_from_the_last_heartbeat() {
        let t0 = Instant::now();
        let mut live = Liveness::new(Duration::from_secs(6));
        live.restart(t0);
        live.heard(1, t0 + Duration::from_secs(4));
        let at = |s| t0 + Duration::from_secs(s);
        assert!(live.expired(&[1, 2], at(5)).is_empty());
        assert_eq!(live.expired(&[1, 2], at(7)), vec![2], "2 never heard from");
        assert_eq!(live.expired(&[1, 2], at(11)), vec![1, 2]);
        live.restart(at(11));
        assert!(
            live.expired(&[1, 2], at(12)).is_empty(),
            "a new controller grants a fresh session"
        );
    }
}
