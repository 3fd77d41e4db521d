//! The projection service: a read model of balances and histories, kept by its own consumer
//! group from the events topic, checkpointed to a file together with the offsets it covers.
//!
//! Exactly consistent across crashes: the file holds the model and, per partition, the next
//! events offset it has not folded, written atomically (temporary file, fsync, rename). The
//! group's committed offsets are written after the file and only serve monitoring (`weir
//! groups describe ledger-projection` shows the lag): whenever the group assigns partitions,
//! the service seeks each to the file's offset, and it skips any record below it. Deleting
//! the file rebuilds the model from offset 0.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use weir_client::{ClientConfig, Consumer, ConsumerConfig, OffsetReset, TopicPartition};

use crate::error::{Error, Result};
use crate::log;
use crate::model::{Amount, Event, EventKind};
use crate::topics::{EVENTS, PROJECTION_GROUP};

/// One line of an account's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The event's offset in its partition.
    pub offset: i64,
    /// The command that caused it.
    pub command_id: String,
    /// What happened, in words.
    pub what: String,
    /// The change of balance.
    pub delta: Amount,
}

/// One account as the read side shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// Its owner, once opened.
    pub owner: Option<String>,
    /// Its balance.
    pub balance: Amount,
    /// Every event, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// The read model and the events it covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadModel {
    /// Per partition, the first events offset not folded in.
    pub offsets: BTreeMap<i32, i64>,
    /// By account id.
    pub accounts: BTreeMap<String, AccountView>,
}

impl ReadModel {
    /// Folds the event at `partition`@`offset`, which must be the next one.
    pub fn apply(&mut self, partition: i32, offset: i64, event: &Event) {
        let view = self.accounts.entry(event.account.clone()).or_default();
        view.balance += event.kind.delta();
        if let EventKind::Opened { owner } = &event.kind {
            view.owner = Some(owner.clone());
        }
        view.history.push(HistoryEntry {
            offset,
            command_id: event.command_id.clone(),
            what: describe(&event.kind),
            delta: event.kind.delta(),
        });
        self.offsets.insert(partition, offset + 1);
    }

    /// Loads a checkpoint, or an empty model when there is none.
    ///
    /// # Errors
    /// The file cannot be read or is not a model.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| file_error(path, err.into())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(err) => Err(file_error(path, err)),
        }
    }

    /// Writes the checkpoint atomically: a reader (or a restart) sees the old file or the
    /// new one, never a mix.
    ///
    /// # Errors
    /// The file system's.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec(self).map_err(Error::Encode)?;
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)?;
            // The rename is durable once the directory is synced.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|err| file_error(path, err))
    }
}

fn file_error(path: &Path, source: std::io::Error) -> Error {
    Error::File {
        path: path.display().to_string(),
        source,
    }
}

/// An event in words, for histories.
pub fn describe(kind: &EventKind) -> String {
    match kind {
        EventKind::Opened { owner } => format!("opened for {owner}"),
        EventKind::Deposited { amount } => format!("deposit {amount}"),
        EventKind::Withdrawn { amount } => format!("withdrawal {amount}"),
        EventKind::TransferDebited { to, amount, .. } => format!("transfer {amount} to {to}"),
        EventKind::TransferCredited { from, amount, .. } => {
            format!("transfer {amount} from {from}")
        }
        EventKind::TransferCreditRefused { from, reason, .. } => {
            format!("refused transfer from {from}: {reason}")
        }
        EventKind::TransferRefunded { to, amount, .. } => {
            format!("refund {amount}: {to} refused the transfer")
        }
        EventKind::Rejected { reason } => format!("rejected: {reason}"),
    }
}

/// How the projection runs.
#[derive(Debug, Clone)]
pub struct ProjectionConfig {
    /// Broker address.
    pub bootstrap: String,
    /// The checkpoint file.
    pub state: PathBuf,
    /// The group session timeout.
    pub session_timeout: Duration,
    /// How often a changed model is checkpointed.
    pub checkpoint_interval: Duration,
}

/// Runs the projection until an error.
///
/// # Errors
/// The client's, an undecodable event, or the checkpoint file's.
pub async fn run(config: ProjectionConfig) -> Result<()> {
    let mut model = ReadModel::load(&config.state)?;
    let mut consumer = Consumer::new(
        ConsumerConfig::new(
            ClientConfig::new([config.bootstrap.as_str()]).client_id("bank-ledger-projection"),
        )
        .group_id(PROJECTION_GROUP)
        .auto_offset_reset(OffsetReset::Earliest)
        .enable_auto_commit(false)
        .fetch_wait(Duration::from_millis(100), 1)
        .session(config.session_timeout, config.session_timeout / 4),
    );
    consumer.subscribe([EVENTS])?;
    let mut assignment = BTreeSet::new();
    let mut dirty = false;
    let mut next_checkpoint = Instant::now() + config.checkpoint_interval;
    loop {
        let records = consumer.poll(Duration::from_millis(200)).await?;
        let now: BTreeSet<TopicPartition> = consumer.assignment().into_iter().collect();
        if now != assignment {
            // The file, not the group, says where each partition resumes: the group's
            // offsets may be ahead (a rebuild) or behind (a crash after the checkpoint).
            for tp in &now {
                let resume = model.offsets.get(&tp.partition).copied().unwrap_or(0);
                if let Err(err) = consumer.seek(tp, resume) {
                    tracing::info!(error = %err, "cannot seek; the partition moved");
                }
            }
            assignment = now;
            continue;
        }
        let mut rewound = Vec::new();
        for record in &records {
            if rewound.contains(&record.partition) {
                continue;
            }
            let expected = model.offsets.get(&record.partition).copied().unwrap_or(0);
            if record.offset < expected {
                continue; // Folded before the last restart; the group was behind the file.
            }
            if record.offset > expected {
                // The group is ahead of the file (a rebuild, or a crash between the two).
                let tp = TopicPartition::new(EVENTS, record.partition);
                if let Err(err) = consumer.seek(&tp, expected) {
                    tracing::info!(error = %err, "cannot seek; the partition moved");
                }
                rewound.push(record.partition);
                continue;
            }
            let event: Event = log::decode(record)?;
            model.apply(record.partition, record.offset, &event);
            dirty = true;
        }
        if dirty && Instant::now() >= next_checkpoint {
            model.save(&config.state)?;
            dirty = false;
            next_checkpoint = Instant::now() + config.checkpoint_interval;
            let offsets = model
                .offsets
                .iter()
                .map(|(&p, &o)| (TopicPartition::new(EVENTS, p), o))
                .filter(|(tp, _)| consumer.assignment().contains(tp));
            if let Err(err) = consumer.commit_offsets(offsets.collect::<Vec<_>>()).await {
                tracing::info!(error = %err, "committing the projection's offsets failed");
            }
        }
    }
}
