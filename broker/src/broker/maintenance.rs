//! Background upkeep of every partition: retention and producer-state snapshots.
//!
//! Every `--retention-check-ms` (Kafka's `log.retention.check.interval.ms`) one pass, on a
//! blocking thread since it deletes files and syncs: delete sealed segments past the
//! retention limits, then snapshot producer state that changed (so a restart after a crash
//! replays only what came after), then compact the committed-offsets log if it has grown;
//! then the retention step of every replicated partition's replica here.
//!
//! Started and awaited by the broker's assembly beside the server. Does not decide what is
//! past retention (the log's policy does, on the injected clock) and does not roll segments
//! (rolling by `segment.ms` happens on append). Invariant: one pass at a time; a failure in
//! one partition is logged and the pass goes on to the others.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::log::LogError;
use crate::server::Context;
use crate::topics::TopicCatalog;

/// Runs passes until `stop` is cancelled.
pub(crate) async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    let every = Duration::from_millis(ctx.config.retention_check_ms.max(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let catalog = Arc::clone(&ctx.catalog);
        let offsets = Arc::clone(&ctx.offsets);
        let work = move || {
            pass(&catalog);
            if offsets.needs_compaction() {
                if let Err(err) = offsets.compact() {
                    tracing::warn!(error = %err, "compacting the committed offsets failed");
                }
            }
        };
        if let Err(join) = tokio::task::spawn_blocking(work).await {
            tracing::error!(error = %join, "maintenance pass panicked");
        }
        retain_replicas(&ctx).await;
    }
}

/// Retention of the replicated partitions this broker holds a replica of: each replica
/// applies its topic's retention to its own committed segments, through its data group
/// (`cluster/replica/retain.rs`: a snapshot, then openraft's purge deletes the segments).
/// DeleteRecords moved starts are purged here too.
async fn retain_replicas(ctx: &Context) {
    let Some(node) = ctx.cluster.as_ref() else {
        return;
    };
    for (_, group) in node.replicas().all() {
        group.retain().await;
    }
}

/// One pass over every partition.
pub(crate) fn pass(catalog: &TopicCatalog) {
    for topic in catalog.list() {
        for (index, log) in topic.local_partitions().map(|(i, p)| (i, p.log())) {
            match log.apply_retention() {
                // Deletions are logged by the log itself.
                Ok(_) => {}
                // A topic deleted meanwhile has closed logs: nothing to do.
                Err(err @ LogError::Closed(_)) => {
                    tracing::debug!(error = %err, "retention skipped a closed log")
                }
                Err(err) => {
                    tracing::warn!(topic = topic.name(), partition = index, error = %err, "retention failed")
                }
            }
        }
        topic.snapshot_producers();
    }
}
