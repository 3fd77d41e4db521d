//! The log cleaner task: compacts every log whose policy includes `compact`, when it is due.
//!
//! Every `--log-cleaner-backoff-ms` (Kafka's `log.cleaner.backoff.ms`) one round over every
//! partition, on `--log-cleaner-threads` blocking threads, each with its own key map (an
//! equal share of `--log-cleaner-dedupe-buffer-size`) and one shared I/O throttle
//! (`--log-cleaner-io-max-bytes-per-second`). What is due and how a log is cleaned is the
//! log's business ([`crate::log::cleaner`]); this owns the schedule and the threads only.
//!
//! Started and awaited by the broker's assembly beside the server. Invariants: one round at a
//! time, each log cleaned by at most one thread in it; a failure in one log is logged and the
//! round goes on to the others; a log deleted meanwhile is skipped (its cleaning is abandoned
//! before its commit, see [`CleanOutcome::Abandoned`]); a stop request is honoured between
//! two logs.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::log::PartitionLog;
use crate::log::cleaner::{CleanOutcome, Cleaner, CleanerOptions, Throttle};
use crate::server::Context;
use crate::topics::TopicCatalog;
use crate::topics::config::CleanerSettings;

/// The cleaner threads' state, one [`Cleaner`] (and key map) per thread, kept across rounds
/// while the settings stay the same.
fn cleaners(settings: &CleanerSettings) -> Vec<Cleaner> {
    let threads = settings.threads.max(1);
    // f64::MAX (Kafka's default) and anything past u64 is no limit; the check above the
    // cast keeps it in range (a fraction of a byte per second is rounded down, at least 1).
    let throttle = (settings.io_max_bytes_per_second < u64::MAX as f64).then(|| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked to be below u64::MAX above; negative rates are refused by the config"
        )]
        let rate = settings.io_max_bytes_per_second.max(1.0) as u64;
        Arc::new(Throttle::new(rate))
    });
    let dedupe = usize::try_from(settings.dedupe_buffer_size).unwrap_or(usize::MAX);
    (0..threads)
        .map(|_| {
            Cleaner::new(CleanerOptions {
                dedupe_buffer_bytes: dedupe / threads,
                throttle: throttle.clone(),
                ..CleanerOptions::default()
            })
        })
        .collect()
}

/// Runs rounds until `stop` is cancelled.
///
/// The settings are read again before each round: a dynamic broker config
/// (`log.cleaner.threads`, `.io.max.bytes.per.second`, `.dedupe.buffer.size`,
/// `.backoff.ms`) applies from the next round without a restart.
pub(crate) async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    let mut settings = ctx.cleaner_settings();
    let mut idle = cleaners(&settings);
    loop {
        let every = Duration::from_millis(settings.backoff_ms.max(1));
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let now = ctx.cleaner_settings();
        if now != settings {
            tracing::info!(?now, "log cleaner settings changed");
            settings = now;
            idle = cleaners(&settings);
        }
        let catalog = Arc::clone(&ctx.catalog);
        let round_stop = stop.clone();
        let working = std::mem::take(&mut idle);
        match tokio::task::spawn_blocking(move || round(&catalog, working, &round_stop)).await {
            Ok(back) => idle = back,
            Err(join) => {
                tracing::error!(error = %join, "log cleaner round panicked");
                idle = cleaners(&settings);
            }
        }
    }
}

/// One round: every partition's log offered to the threads, each cleaned if due.
pub(crate) fn round(
    catalog: &TopicCatalog,
    cleaners: Vec<Cleaner>,
    stop: &CancellationToken,
) -> Vec<Cleaner> {
    let logs: Vec<(String, i32, Arc<PartitionLog>)> = catalog
        .list()
        .iter()
        .flat_map(|topic| {
            topic
                .local_partitions()
                .map(|(i, p)| (topic.name().to_owned(), i, Arc::clone(p.log())))
                .collect::<Vec<_>>()
        })
        // A replica's batches are its Raft log's entries, one per index: compaction waits
        // for the data groups' snapshots (docs/cluster.md).
        .filter(|(_, _, log)| log.config().cleanup_policy.compact && !log.is_replicated())
        .collect();
    let queue = Mutex::new(logs);
    std::thread::scope(|scope| {
        let workers: Vec<_> = cleaners
            .into_iter()
            .map(|mut cleaner| {
                let queue = &queue;
                scope.spawn(move || {
                    loop {
                        if stop.is_cancelled() {
                            break;
                        }
                        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).pop();
                        let Some((topic, partition, log)) = next else {
                            break;
                        };
                        clean_one(&mut cleaner, &topic, partition, &log);
                    }
                    cleaner
                })
            })
            .collect();
        workers.into_iter().filter_map(|w| w.join().ok()).collect()
    })
}

fn clean_one(cleaner: &mut Cleaner, topic: &str, partition: i32, log: &PartitionLog) {
    match cleaner.clean(log) {
        Ok(CleanOutcome::Cleaned(stats)) => {
            tracing::info!(
                topic,
                partition,
                passes = stats.passes,
                segments = stats.segments,
                bytes_read = stats.bytes_read,
                bytes_written = stats.bytes_written,
                records_dropped = stats.records_dropped,
                "compacted log"
            );
        }
        Ok(CleanOutcome::Abandoned) => {
            tracing::debug!(
                topic,
                partition,
                "log changed or was deleted during its cleaning; skipped"
            )
        }
        Ok(_) => {}
        // A topic deleted meanwhile loses its directory under the cleaner.
        Err(err) if !log.dir().exists() => {
            tracing::debug!(topic, partition, error = %err, "log deleted during its cleaning; skipped")
        }
        Err(err) => tracing::error!(topic, partition, error = %err, "compacting log failed"),
    }
}
