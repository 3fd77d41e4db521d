//! The command handler: a consumer-group member that owns command partitions, and for each
//! owned partition is the one writer of its events and snapshots.
//!
//! For each batch of commands: rebuild any partition not yet in memory (latest snapshot +
//! events after it), decide each command against the state, send its event, wait until
//! every event is acknowledged (acks=all), only then send the saga's follow-up commands
//! (credit, refund) and wait for those, write the snapshots that are due, and only then
//! commit the command offsets. A crash anywhere in between leaves the commands uncommitted;
//! they come back to whoever owns the partition next, who finds their ids in the rebuilt
//! state and only re-sends the follow-ups ([`Decision::Duplicate`]). No command takes effect
//! twice, and no saga step is lost.
//!
//! Ownership: the group gives each partition to one member. The client's eager rebalance
//! drops all partitions at once; the handler checks before every command that its partition
//! is still assigned, stops the batch when it is not, and forgets the state of every
//! partition whenever the assignment changed, so state is always rebuilt after the log may
//! have been written by someone else. What the client cannot give (no rebalance listener, no
//! transactional fencing) is a guarantee that a member stalled for longer than its session
//! timeout stops writing before the next owner starts: see the README.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use weir_client::backoff::{JitterSource, SplitMix64};
use weir_client::{
    ClientConfig, Consumer, ConsumerConfig, DeliveryFuture, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};

use crate::error::{Error, Result};
use crate::log;
use crate::model::{Command, Decision, Event};
use crate::snapshot::{self, Snapshot};
use crate::topics::{COMMANDS, EVENTS, HANDLER_GROUP, SNAPSHOTS};

/// How the handler runs.
#[derive(Debug, Clone)]
pub struct HandlerConfig {
    /// Broker address.
    pub bootstrap: String,
    /// The group session timeout: how soon a dead handler's partitions move.
    pub session_timeout: Duration,
    /// A partition is snapshotted after this many new events.
    pub snapshot_every: u32,
    /// Crashes injected between the steps of a batch, for the crash test.
    pub crashes: Option<CrashInjection>,
}

/// Exits the process (no cleanup, as a SIGKILL would) at a step boundary, with probability
/// `1 / one_in` at each, from a seeded generator: the crash test's way of landing crashes
/// in every window of the table in the README, which kills from outside rarely hit.
#[derive(Debug, Clone)]
pub struct CrashInjection {
    /// One crash per this many step boundaries, on average.
    pub one_in: u64,
    /// The generator.
    pub rng: SplitMix64,
}

impl CrashInjection {
    fn maybe_crash(crashes: Option<&mut Self>, step: &str) {
        if let Some(c) = crashes {
            if c.rng.next_u64() % c.one_in.max(1) == 0 {
                eprintln!("bank-ledger handler: crash injected {step}");
                std::process::exit(CRASH_EXIT_CODE);
            }
        }
    }
}

/// The exit code of an injected crash.
pub const CRASH_EXIT_CODE: i32 = 86;

/// One owned partition's state.
#[derive(Debug)]
struct Owned {
    /// The fold of the events below `events_offset`, plus events sent in this batch.
    ledger: crate::model::Ledger,
    /// The first events offset not yet known to be folded in.
    events_offset: i64,
    /// Events since the last snapshot.
    since_snapshot: u32,
}

/// Runs the handler until an error (the process is meant to be restarted on one).
///
/// # Errors
/// A failure the handler cannot continue after: an unacknowledged event or follow-up, a log
/// that does not fold. Restarting is always safe.
pub async fn run(mut config: HandlerConfig) -> Result<()> {
    let bootstrap = config.bootstrap.as_str();
    let client = || ClientConfig::new([bootstrap]).client_id("bank-ledger-handler");
    let mut consumer = Consumer::new(
        ConsumerConfig::new(client())
            .group_id(HANDLER_GROUP)
            .auto_offset_reset(OffsetReset::Earliest)
            .enable_auto_commit(false)
            .fetch_wait(Duration::from_millis(100), 1)
            .max_poll_records(200)
            .session(config.session_timeout, config.session_timeout / 4),
    );
    consumer.subscribe([COMMANDS])?;
    let producer = Producer::new(
        ProducerConfig::new([bootstrap])
            .linger(Duration::from_millis(2))
            .client(|_| client()),
    )?;
    let mut owned: BTreeMap<i32, Owned> = BTreeMap::new();
    let mut assignment = BTreeSet::new();
    loop {
        let records = consumer.poll(Duration::from_millis(200)).await?;
        let now: BTreeSet<TopicPartition> = consumer.assignment().into_iter().collect();
        if now != assignment {
            tracing::info!(partitions = ?now.iter().map(|tp| tp.partition).collect::<Vec<_>>(), "assignment changed");
            owned.clear();
            assignment = now;
        }
        if records.is_empty() {
            continue;
        }
        let mut events: Vec<(i32, Event, DeliveryFuture)> = Vec::new();
        let mut follow_ups: Vec<Command> = Vec::new();
        let mut processed: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for record in &records {
            let partition = record.partition;
            if !consumer.assignment().contains(&record.topic_partition()) {
                // A rebalance took the partition away while this batch was being handled:
                // stop writing at once; the new owner handles the rest.
                tracing::info!(partition, "partition revoked mid-batch");
                owned.clear();
                break;
            }
            let state = match owned.entry(partition) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => {
                    let rebuilt = snapshot::rebuild(bootstrap, partition, true).await?;
                    tracing::info!(
                        partition,
                        snapshot = rebuilt.snapshot_offset,
                        events = rebuilt.events_offset,
                        "rebuilt partition"
                    );
                    entry.insert(Owned {
                        ledger: rebuilt.ledger,
                        events_offset: rebuilt.events_offset,
                        since_snapshot: 0,
                    })
                }
            };
            processed.insert(record.topic_partition(), record.offset + 1);
            let command: Command = match log::decode(record) {
                Ok(command) => command,
                Err(err) => {
                    // A command nobody can read cannot be judged; skipping it (and saying so)
                    // is the only way the partition keeps moving.
                    tracing::warn!(error = %err, "skipping an undecodable command");
                    continue;
                }
            };
            match state.ledger.decide(&command) {
                Decision::Duplicate(follow_up) => follow_ups.extend(follow_up),
                Decision::New(event) => {
                    state.ledger.apply(&event)?;
                    follow_ups.extend(event.follow_up());
                    let delivery = producer
                        .send(event_record(&event)?)
                        .await
                        .map_err(Box::new)?;
                    state.since_snapshot += 1;
                    events.push((partition, event, delivery));
                }
            }
        }
        CrashInjection::maybe_crash(
            config.crashes.as_mut(),
            "with events sent, not acknowledged",
        );
        for (partition, event, delivery) in events {
            let written = delivery.await.map_err(|source| Error::Delivery {
                what: format!("event {}", event.command_id),
                source,
            })?;
            if written.partition != partition {
                return Err(Error::Partitions {
                    topic: EVENTS.to_owned(),
                    found: usize::try_from(written.partition).unwrap_or(0),
                    expected: usize::try_from(partition).unwrap_or(0),
                });
            }
            if let Some(state) = owned.get_mut(&partition) {
                state.events_offset = state.events_offset.max(written.offset + 1);
            }
        }
        CrashInjection::maybe_crash(config.crashes.as_mut(), "before the follow-ups");
        send_all(&producer, follow_ups.iter().map(command_record)).await?;
        CrashInjection::maybe_crash(config.crashes.as_mut(), "before the snapshots");
        let snapshots: Vec<Result<ProducerRecord>> = owned
            .iter_mut()
            .filter(|(_, s)| s.since_snapshot >= config.snapshot_every)
            .map(|(&partition, state)| {
                state.since_snapshot = 0;
                snapshot_record(&Snapshot {
                    partition,
                    events_offset: state.events_offset,
                    ledger: state.ledger.clone(),
                })
            })
            .collect();
        send_all(&producer, snapshots).await?;
        CrashInjection::maybe_crash(config.crashes.as_mut(), "before the commit");
        if let Err(err) = consumer.commit_offsets(processed).await {
            // Most likely a rebalance: these commands come back to the next owner, which
            // recognizes them. Our state may be stale by then, so forget it.
            tracing::warn!(error = %err, "commit failed; forgetting partition state");
            owned.clear();
        }
    }
}

/// Sends every record and waits for all acknowledgements.
async fn send_all(
    producer: &Producer,
    records: impl IntoIterator<Item = Result<ProducerRecord>>,
) -> Result<()> {
    let mut pending = Vec::new();
    for record in records {
        let record = record?;
        let what = format!("{} record", record.topic);
        let delivery = producer.send(record).await.map_err(Box::new)?;
        pending.push((what, delivery));
    }
    for (what, delivery) in pending {
        delivery
            .await
            .map_err(|source| Error::Delivery { what, source })?;
    }
    Ok(())
}

fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(Error::Encode)
}

/// An event as a record of the events topic, keyed by its account.
///
/// # Errors
/// Only if the event cannot be encoded (it always can).
pub fn event_record(event: &Event) -> Result<ProducerRecord> {
    Ok(ProducerRecord::new(EVENTS, json(event)?).key(event.account.clone()))
}

/// A command as a record of the commands topic, keyed by its account.
///
/// # Errors
/// Only if the command cannot be encoded (it always can).
pub fn command_record(command: &Command) -> Result<ProducerRecord> {
    Ok(ProducerRecord::new(COMMANDS, json(command)?).key(command.account.clone()))
}

fn snapshot_record(snapshot: &Snapshot) -> Result<ProducerRecord> {
    Ok(ProducerRecord::new(SNAPSHOTS, json(snapshot)?).partition(snapshot.partition))
}
