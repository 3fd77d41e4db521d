//! Automatic leader balancing (Kafka's `auto.leader.rebalance.enable`): after a broker
//! restarts, the partitions it prefers to lead are led by other replicas; the controller
//! (the metadata leader) moves leadership back to each preferred replica that is alive and in
//! sync, every `--leader-balance-interval-ms`.
//!
//! A hand-over refuses produce on its partition for a moment ([`super::transfer`]), so the
//! balancer moves at most [`AT_ONCE`] partitions at a time and waits for them before the
//! next ones: produce is never stopped on many partitions at once. Unlike Kafka, there is no
//! imbalance ratio (`leader.imbalance.per.broker.percentage`): every partition whose
//! preferred replica can lead is moved back. Only the controller acts, so two brokers never
//! move the same partition at once.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::elect::{Preferred, elect_preferred, imbalanced};
use crate::cluster::node::ClusterNode;

/// How many partitions' leadership moves at the same time.
pub const AT_ONCE: usize = 2;

/// Balances every `interval` until `stop`.
pub async fn run(node: Arc<ClusterNode>, interval: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: skip it, a starting cluster has nothing to balance yet.
    tick.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if node.leader() != Some(node.id()) {
            continue;
        }
        let moves = imbalanced(&node.state());
        if moves.is_empty() {
            continue;
        }
        tracing::info!(
            partitions = moves.len(),
            "moving leadership back to preferred replicas"
        );
        for chunk in moves.chunks(AT_ONCE) {
            let elections = chunk.iter().map(|(topic, partition)| {
                let node = &node;
                async move {
                    (
                        topic,
                        *partition,
                        elect_preferred(node, topic, *partition).await,
                    )
                }
            });
            for (topic, partition, outcome) in futures_util::future::join_all(elections).await {
                match outcome {
                    Preferred::Elected => {
                        tracing::info!(topic, partition, "the preferred replica leads again");
                    }
                    other => {
                        tracing::info!(topic, partition, outcome = ?other, "leadership not moved back yet");
                    }
                }
            }
            if stop.is_cancelled() || node.leader() != Some(node.id()) {
                break;
            }
        }
    }
}
