//! "What was in stock at time T?", answered from the log without scanning it all.
//!
//! For each partition, two ListOffsets-by-timestamp lookups (the broker's time index):
//! on the movements topic, the first movement stamped at or after T is where history stops
//! (the cut); on the snapshots topic, the first snapshot stamped at or after T, so the one
//! before it is the latest snapshot of a state before T. The answer is that snapshot plus
//! the movements from the offset it covers up to the cut. With movements stamped in
//! non-decreasing order per partition (one recorder per partition, or a recorder's clock),
//! the result is exactly the fold of every movement stamped before T. If stamps go
//! backwards, it is the fold of the log up to the first movement stamped at or after T,
//! which is what the log knew in that order; the snapshot is then walked back until it
//! lies below the cut.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::log;
use crate::model::{Snapshot, Stock};
use crate::snapshotter::{at, movement};
use crate::topics::{MOVEMENTS, PARTITIONS, SNAPSHOTS};

/// How one partition's part of an answer was computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionAsOf {
    /// The partition.
    pub partition: i32,
    /// The snapshot record used, if any.
    pub snapshot: Option<i64>,
    /// The first movement replayed on top of the snapshot.
    pub from: i64,
    /// The first movement left out (stamped at or after the time).
    pub cut: i64,
}

/// Stock as of a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsOf {
    /// The time asked for, ms since the epoch: movements stamped before it count.
    pub time: i64,
    /// The levels.
    pub stock: Stock,
    /// Per partition: what was read.
    pub partitions: Vec<PartitionAsOf>,
}

/// Stock as of `time` (ms since the epoch).
///
/// # Errors
/// [`Error::Time`] for a negative time (Kafka reserves those), the client's failure, or an
/// undecodable snapshot.
pub async fn as_of(bootstrap: &str, time: i64) -> Result<AsOf> {
    if time < 0 {
        return Err(Error::Time(time.to_string()));
    }
    let ends = log::end_offsets(bootstrap, MOVEMENTS, PARTITIONS).await?;
    let cuts = log::offsets_for(bootstrap, MOVEMENTS, PARTITIONS, time).await?;
    let snapshot_ends = log::end_offsets(bootstrap, SNAPSHOTS, PARTITIONS).await?;
    let snapshot_cuts = log::offsets_for(bootstrap, SNAPSHOTS, PARTITIONS, time).await?;
    let mut answer = AsOf {
        time,
        stock: Stock::default(),
        partitions: Vec::new(),
    };
    for p in 0..PARTITIONS {
        let i = usize::try_from(p).unwrap_or(0);
        // -1: nothing stamped at or after the time, so all of it counts.
        let cut = if cuts[i] < 0 { ends[i] } else { cuts[i] };
        let mut candidate = if snapshot_cuts[i] < 0 {
            snapshot_ends[i]
        } else {
            snapshot_cuts[i]
        } - 1;
        let mut start: Option<(i64, Snapshot)> = None;
        while candidate >= 0 {
            match at(bootstrap, p, candidate).await? {
                Some((offset, snapshot)) if snapshot.next_offset <= cut => {
                    start = Some((offset, snapshot));
                    break;
                }
                _ => candidate -= 1,
            }
        }
        let (snapshot, mut stock, from) = match start {
            Some((offset, s)) => (Some(offset), s.stock, s.next_offset),
            None => (None, Stock::default(), 0),
        };
        for record in log::read(bootstrap, MOVEMENTS, p, from, cut).await? {
            if let Some(movement) = movement(&record) {
                stock.apply(&movement);
            }
        }
        answer.stock.merge(&stock);
        answer.partitions.push(PartitionAsOf {
            partition: p,
            snapshot,
            from,
            cut,
        });
    }
    Ok(answer)
}
