//! Aggregate snapshots: one partition's accounts at an events offset, and rebuilding a
//! partition's state from the latest snapshot plus the events after it.
//!
//! A snapshot is written by the partition's one writer after the events it covers were
//! acknowledged, so it always equals the fold of `events[0..events_offset)`; the latest one is
//! the last record of its snapshots partition. Snapshots are a cache: losing them only makes
//! the next rebuild read more events ([`rebuild`] with `use_snapshots: false` is the proof).

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::log;
use crate::model::{Event, Ledger};
use crate::topics::{EVENTS, SNAPSHOTS};

/// The state of one partition's accounts, covering its events below `events_offset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The partition.
    pub partition: i32,
    /// The first events offset not folded in.
    pub events_offset: i64,
    /// The accounts.
    pub ledger: Ledger,
}

/// A partition's state, rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// The fold of the partition's events below `events_offset`.
    pub ledger: Ledger,
    /// The events end offset when the rebuild read it.
    pub events_offset: i64,
    /// Where the snapshot started the rebuild (0 without one).
    pub snapshot_offset: i64,
}

/// Rebuilds partition `partition`: from its latest snapshot (with `use_snapshots`) or from
/// offset 0, then every event up to the current end.
///
/// # Errors
/// The client's failure, an undecodable record, or events that do not fold.
pub async fn rebuild(bootstrap: &str, partition: i32, use_snapshots: bool) -> Result<Rebuilt> {
    let mut start = Snapshot {
        partition,
        events_offset: 0,
        ledger: Ledger::default(),
    };
    if use_snapshots {
        let ends = log::end_offsets(bootstrap, SNAPSHOTS, partition + 1).await?;
        let end = ends.last().copied().unwrap_or(0);
        if end > 0 {
            if let Some(record) = log::read(bootstrap, SNAPSHOTS, partition, end - 1, end)
                .await?
                .first()
            {
                start = log::decode(record)?;
            }
        }
    }
    let ends = log::end_offsets(bootstrap, EVENTS, partition + 1).await?;
    let end = ends.last().copied().unwrap_or(0);
    let mut ledger = start.ledger;
    for record in log::read(bootstrap, EVENTS, partition, start.events_offset, end).await? {
        let event: Event = log::decode(&record)?;
        ledger.apply(&event)?;
    }
    Ok(Rebuilt {
        ledger,
        events_offset: end,
        snapshot_offset: start.events_offset,
    })
}
