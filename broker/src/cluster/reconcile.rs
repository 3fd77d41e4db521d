//! Makes this broker's local topic catalog follow the cluster's metadata: every topic the
//! cluster has exists locally with the same id, partition count and config overrides, and
//! with logs for exactly the partitions placed on this broker; a topic the cluster deleted
//! is deleted here.
//!
//! Runs whenever the applied metadata moves (and once at start). Deletion is by topic id
//! and only for ids the metadata remembers as deleted (or a name now holding another id):
//! a broker whose metadata is behind never deletes a topic it simply has not heard of yet.
//! Each pass works on one snapshot of the state, on a blocking thread (it creates files);
//! a pass that fails is retried after a short pause.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::node::ClusterNode;
use super::state::MetadataState;
use super::types::NodeId;
use crate::groups::offsets::OffsetStore;
use crate::topics::{CatalogError, TopicCatalog};

/// Follows the metadata until `stop`. The committed offsets of a topic deleted here are
/// deleted from `offsets` too (this broker may coordinate groups that committed to it), so a
/// topic created again later does not inherit them.
pub async fn run(
    node: Arc<ClusterNode>,
    catalog: Arc<TopicCatalog>,
    offsets: Arc<OffsetStore>,
    stop: CancellationToken,
) {
    let mut applied = node.watch_applied();
    loop {
        let state = node.state();
        let (catalog_now, me) = (Arc::clone(&catalog), node.id());
        // Groups of topics the cluster deleted stop before their logs are deleted.
        node.replicas().follow(&state, &catalog).await;
        let pass = {
            let state = Arc::clone(&state);
            tokio::task::spawn_blocking(move || reconcile(&catalog_now, &state, me)).await
        };
        let retry = match pass {
            Ok(Ok(deleted)) => {
                // The replicated partitions now held here get their Raft groups (and those
                // of deleted topics stop).
                node.replicas().follow(&state, &catalog).await;
                for topic in deleted {
                    let forgotten = match offsets.delete_topic(&topic) {
                        Ok(ticket) => offsets.wait_durable(ticket).await,
                        Err(err) => Err(err),
                    };
                    if let Err(err) = forgotten {
                        tracing::error!(%topic, error = %err, "cannot delete a deleted topic's committed offsets");
                    }
                }
                false
            }
            Ok(Err(err)) => {
                tracing::error!(error = %err, "cannot make the local topics follow the cluster metadata; retrying");
                true
            }
            Err(join) => {
                tracing::error!(error = %join, "reconcile pass panicked; retrying");
                true
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            changed = applied.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(Duration::from_millis(500)), if retry => {}
        }
    }
}

/// One pass: the catalog made to match `state` for broker `me`. Returns the topics it
/// deleted.
///
/// # Errors
/// The first catalog change that failed (the pass stops there; the next one retries).
pub fn reconcile(
    catalog: &TopicCatalog,
    state: &MetadataState,
    me: NodeId,
) -> Result<Vec<String>, CatalogError> {
    let mut deleted = Vec::new();
    // Deleted in the cluster, or replaced by a topic of the same name with another id.
    for local in catalog.list() {
        let Some(id) = local.id() else { continue };
        let replaced = state.topics.get(local.name()).is_some_and(|t| t.id != id);
        if replaced || state.deleted.contains(&id) {
            tracing::info!(topic = local.name(), %id, "deleting a topic the cluster deleted");
            catalog.delete(local.name())?;
            deleted.push(local.name().to_owned());
        }
    }
    for (name, topic) in &state.topics {
        let mine = |range: std::ops::Range<usize>| -> Vec<i32> {
            range
                .filter(|p| topic.partitions[*p].replicas.contains(&me))
                .filter_map(|p| i32::try_from(p).ok())
                .collect()
        };
        let total = u32::try_from(topic.partitions.len()).unwrap_or(u32::MAX);
        let overrides: BTreeMap<String, String> = topic.configs.clone();
        match catalog.get(name) {
            None => {
                catalog.create_placed(
                    name,
                    topic.id,
                    total,
                    &mine(0..topic.partitions.len()),
                    overrides,
                )?;
                tracing::info!(topic = %name, partitions = total, "created a topic of the cluster");
            }
            Some(local) => {
                let had = usize::try_from(local.partition_count()).unwrap_or(0);
                if had < topic.partitions.len() {
                    catalog.add_partitions_placed(
                        name,
                        total,
                        &mine(had..topic.partitions.len()),
                    )?;
                }
                if *local.overrides() != overrides {
                    catalog.replace_overrides(name, overrides)?;
                }
            }
        }
    }
    Ok(deleted)
}
