//! Reading a partition log: whole, verified batches from an offset, bounded by one end
//! snapshot (never a batch at or past the high watermark the read reports), damage refused
//! and reported once, and lookups by timestamp. Readers take no lock.
use bytes::Bytes;

use super::{EndSnapshot, MAX_DAMAGE_REPORTS, PartitionLog, ReadResult, lock};
use crate::log::Offset;
use crate::log::error::LogError;
use crate::log::scan::{Limits, Located};
use crate::log::segment::{Bounds, Damage};

impl PartitionLog {
    /// Whole batches starting with the one that contains `offset`: always at least one batch
    /// (even larger than `max_bytes`) unless `offset` is the high watermark; never a partial
    /// batch, and never a batch at or beyond the high watermark this read reports. Zero-copy.
    ///
    /// Every batch is verified before it is handed out: its base offset against the record
    /// counts walked from the index, its leader epoch against the epochs this log wrote, and
    /// length, magic and CRC-32C unless this process validated those bytes itself (on append
    /// or in its recovery scan). A damaged batch is never served: a read that would start
    /// with one fails with [`LogError::Corrupt`] (and the damage is logged once), a read that
    /// reaches one stops before it; its intact neighbours stay readable.
    pub fn read(&self, offset: Offset, max_bytes: usize) -> Result<ReadResult, LogError> {
        self.read_inner(offset, max_bytes, true, false)
    }

    /// [`Self::read`] up to the log end rather than the high watermark: a replicated log's
    /// leader reads its uncommitted batches this way to send them to followers. Consumers
    /// never read this way.
    pub(crate) fn read_to_end(
        &self,
        offset: Offset,
        max_bytes: usize,
    ) -> Result<ReadResult, LogError> {
        self.read_inner(offset, max_bytes, true, true)
    }

    /// [`Self::read`] without the CRC check, for callers that only look at batch headers and
    /// cope with damage themselves (the producer-state replay at open, which must not stop a
    /// partition from opening because of one damaged batch).
    pub(crate) fn read_headers(
        &self,
        offset: Offset,
        max_bytes: usize,
    ) -> Result<ReadResult, LogError> {
        // The producer table describes every appended batch, committed or not.
        self.read_inner(offset, max_bytes, false, true)
    }

    /// The end snapshot one read is bounded by, taken before the segment list (a segment
    /// holding offsets below it was published before it, so the list taken next has it). A
    /// segment's published length moves before the log end does (and a roll puts the new
    /// segment in the list first), so the bytes a read can see may run ahead of the log end:
    /// every read is cut at [`EndSnapshot::high_watermark`], never at what the bytes hold.
    fn end_snapshot(&self, to_end: bool) -> EndSnapshot {
        let log_end = self.log_end_offset();
        // One replica: everything appended is committed. A replicated log's commit point is
        // loaded after the end, and clamped to it.
        let high_watermark = if to_end {
            log_end
        } else {
            self.high_watermark().min(log_end)
        };
        EndSnapshot {
            log_end,
            high_watermark,
        }
    }

    fn read_inner(
        &self,
        offset: Offset,
        max_bytes: usize,
        verify: bool,
        to_end: bool,
    ) -> Result<ReadResult, LogError> {
        let EndSnapshot {
            log_end: end,
            high_watermark: visible,
        } = self.end_snapshot(to_end);
        // The start comes from the same snapshot of segments, so retention racing this read
        // cannot make a missing segment look like damage.
        let segments = self.snapshot();
        let oldest = segments
            .first()
            .map_or_else(|| self.log_start_offset(), |s| Offset(s.base_offset()));
        // Records below a start that DeleteRecords moved are gone for consumers, though their
        // segment may remain; the header-only replay of producer state still reads them. The
        // start is loaded after the segment list: it is stored before segments go, so a list
        // without a segment comes with a start past it.
        let start = if verify && !to_end {
            oldest.max(self.log_start_offset())
        } else {
            oldest
        };
        if offset < start || offset > end {
            return Err(LogError::OffsetOutOfRange {
                requested: offset,
                start,
                end,
            });
        }
        let result = |records| ReadResult {
            records,
            high_watermark: visible,
            log_start_offset: start,
        };
        if offset >= visible {
            return Ok(result(Bytes::new()));
        }
        let first = segments
            .partition_point(|s| s.base_offset() <= offset.0)
            .saturating_sub(1);
        for (i, segment) in segments.iter().enumerate().skip(first) {
            let bounds = Bounds {
                below: visible.0,
                limits: Limits {
                    segment_end: segments
                        .get(i + 1)
                        .map_or(visible.0, |next| next.base_offset().min(visible.0)),
                    max_epoch: self.epochs.max_epoch(),
                },
            };
            let read = if verify {
                match segment.locate(offset.0, bounds.limits) {
                    Located::Batch(batch, base) => {
                        segment.read_from(batch.position, max_bytes, base, true, bounds)
                    }
                    Located::Damaged(damage) => Err(damage),
                    Located::Beyond => continue,
                }
            } else {
                match segment.find(offset.0) {
                    Some(batch) => segment.read_from(
                        batch.position,
                        max_bytes,
                        batch.header.base_offset,
                        false,
                        bounds,
                    ),
                    None => continue,
                }
            };
            let records =
                read.map_err(|damage| self.damaged(offset, segment.base_offset(), damage))?;
            return Ok(result(records));
        }
        if verify {
            // Below the high watermark but past every segment's readable batches: a damaged
            // length or a lost tail stopped the walk.
            let segment = &segments[first];
            let damage = Damage {
                position: 0,
                reason: format!("no readable batch holds offset {offset} (log end {end})"),
            };
            return Err(self.damaged(offset, segment.base_offset(), damage));
        }
        Ok(result(Bytes::new()))
    }

    /// Reports a damaged batch (once per batch, up to a bound) and builds the error.
    fn damaged(&self, offset: Offset, segment: i64, damage: Damage) -> LogError {
        let first_report = {
            let mut reported = lock(&self.damage_reported);
            reported.len() < MAX_DAMAGE_REPORTS && reported.insert((segment, damage.position))
        };
        if first_report {
            tracing::error!(dir = %self.dir.display(), segment, position = damage.position, %offset,
                reason = %damage.reason, "damaged batch on disk; refusing to serve it");
        } else {
            tracing::debug!(dir = %self.dir.display(), segment, position = damage.position, %offset,
                reason = %damage.reason, "damaged batch on disk; refusing to serve it");
        }
        LogError::Corrupt {
            dir: self.dir.clone(),
            offset,
            segment,
            position: damage.position,
            reason: damage.reason,
        }
    }

    /// The earliest offset whose record timestamp is at or after `timestamp_ms`, or `None` if
    /// every record is older (Kafka then answers with the log end offset or -1).
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Option<Offset> {
        self.lookup_timestamp(timestamp_ms)
            .map(|(offset, _)| offset)
    }

    /// Like [`Self::offset_for_timestamp`], with the timestamp of the record at the returned
    /// offset (what ListOffsets answers).
    pub fn lookup_timestamp(&self, timestamp_ms: i64) -> Option<(Offset, i64)> {
        let segments = self.snapshot();
        let start = self.log_start_offset();
        segments
            .iter()
            .filter(|s| s.max_timestamp() >= timestamp_ms)
            .find_map(|s| s.lookup_timestamp(timestamp_ms))
            // A record below the log start offset is gone: the answer is the first offset
            // still readable (as Kafka searches from the log start offset).
            .map(|(offset, timestamp)| (Offset(offset).max(start), timestamp))
    }

    /// The first record with the largest timestamp in the log, and that timestamp
    /// (ListOffsets' MAX_TIMESTAMP, KIP-734); `None` for a log without records.
    pub fn max_timestamp_offset(&self) -> Option<(Offset, i64)> {
        let max = self.snapshot().iter().map(|s| s.max_timestamp()).max()?;
        // Every segment's max is -1 until it holds a record with a timestamp.
        if max < 0 {
            return None;
        }
        self.lookup_timestamp(max)
    }
}
