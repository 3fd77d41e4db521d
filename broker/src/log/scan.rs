//! Walking the batches of a segment's bytes: the header-only walk used by reads, the careful
//! walk that finds where intact batches resume after a damaged one, and the full validating
//! scan used by recovery and index rebuilds. Pure functions over `&[u8]`.
//!
//! Offsets are counted, not read: a walk starts at an anchor (the segment's start, an index
//! entry, or a batch whose offset was confirmed) and adds each batch's `LastOffsetDelta + 1`,
//! which lies inside the CRC, to know which base offset the next batch must have. The stored
//! `BaseOffset` and `PartitionLeaderEpoch` lie outside the CRC and are compared against what
//! the walk expects, never followed.

use weir_protocol::record_batch::{
    BatchHeader, HEADER_LEN, batch_len_prefix, field, validate_stored_batch,
};

use super::index::{
    CursorState, FilePosition, IndexCursor, OffsetEntry, RelativeOffset, TimeEntry,
};

/// A batch that failed its check, or bytes where no intact batch could be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    /// Byte position of the batch (or damaged bytes) in the segment.
    pub(crate) position: usize,
    /// What is wrong with it.
    pub(crate) reason: String,
}

/// A known batch boundary: a position in the segment and the base offset of the batch there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Anchor {
    pub(crate) position: usize,
    pub(crate) offset: i64,
}

/// What a walk must know about the log around the bytes it walks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The first offset that does not belong to this segment, as far as the caller knows: the
    /// next segment's base offset, or the end snapshot of a read in the last segment. A batch
    /// found after damage must end at or before it.
    pub(crate) segment_end: i64,
    /// The highest leader epoch this log has written. A batch carrying a larger one, or one
    /// below -1, holds bytes this log never wrote there: damage.
    pub(crate) max_epoch: i32,
}

/// Whether `epoch` is one this log could have written (see [`Limits::max_epoch`]).
pub(crate) fn epoch_is_possible(epoch: i32, max_epoch: i32) -> bool {
    (-1..=max_epoch).contains(&epoch)
}

/// A batch found in a segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchAt {
    /// Where it starts in the segment.
    pub(crate) position: usize,
    /// Its total size in bytes.
    pub(crate) len: usize,
    /// Its decoded header.
    pub(crate) header: BatchHeader,
}

/// The batch whose header starts at `position`, if its length prefix and header parse and its
/// declared length fits in `data`. Checks no CRC.
pub(crate) fn batch_at(data: &[u8], position: usize) -> Option<BatchAt> {
    let rest = data.get(position..)?;
    let len = batch_len_prefix(rest).ok()??;
    if len > rest.len() {
        return None;
    }
    let header = BatchHeader::parse(rest).ok()?;
    Some(BatchAt {
        position,
        len,
        header,
    })
}

/// Iterates over batch headers of already-validated bytes (published segment data), starting
/// at `position`. Stops quietly at the end or at anything unparsable; it does not check CRCs.
pub(crate) fn batches(data: &[u8], position: usize) -> impl Iterator<Item = BatchAt> + '_ {
    let mut pos = position;
    std::iter::from_fn(move || {
        let at = batch_at(data, pos)?;
        pos += at.len;
        Some(at)
    })
}

/// `RecordsCount == LastOffsetDelta + 1 > 0`: two header fields that a flipped bit in either
/// makes disagree, checked without a CRC pass. A batch the cleaner compacted holds fewer
/// records than its span and fails this too: the fast walk then hands over to the careful
/// one, which trusts such a batch once its CRC holds.
fn counts_agree(header: &BatchHeader) -> bool {
    header.records_count > 0
        && i64::from(header.records_count) == i64::from(header.last_offset_delta) + 1
}

/// `0 <= RecordsCount <= LastOffsetDelta + 1`: what any stored batch, compacted or not,
/// satisfies (`docs/storage-format.md`, "Log compaction"); a cheap filter for candidates
/// after damage, whose CRC is checked next.
fn counts_plausible(header: &BatchHeader) -> bool {
    header.records_count >= 0
        && header.last_offset_delta >= 0
        && i64::from(header.records_count) <= i64::from(header.last_offset_delta) + 1
}

/// Where a walk found an offset.
#[derive(Debug)]
pub(crate) enum Located {
    /// The batch holding the offset, and the base offset it must have (counted). If its
    /// stored base offset or epoch disagrees, the batch is damaged and reads refuse it.
    Batch(BatchAt, i64),
    /// The offset lies in damaged bytes: no intact batch holds it.
    Damaged(Damage),
    /// The bytes end before the offset.
    Beyond,
}

/// A segment's published bytes, as walks see them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Walk<'a> {
    pub(crate) data: &'a [u8],
    /// Bytes from the start that this process validated batch by batch: trusted without a
    /// CRC pass.
    pub(crate) checked: usize,
    pub(crate) limits: Limits,
}

impl Walk<'_> {
    /// The batch holding `offset`, walking from `start` (at or before it). `next_anchor(p)`
    /// gives the first trusted boundary after position `p` (the next index entry), where a
    /// search for intact batches after damage can stop.
    ///
    /// The fast walk reads headers only and trusts them while their stored base offset and
    /// record count agree with the count. At the first disagreement (a damaged length, delta,
    /// base offset, or an unparsable header) it starts again from `start` carefully: a batch
    /// whose CRC holds is trusted for its length and delta whatever its stored base offset
    /// says; bytes that hold no intact batch are skipped up to the next intact batch whose
    /// offsets are confirmed ([`Self::resync`]). So one damaged batch hides nothing around it.
    pub(crate) fn locate(
        &self,
        start: Anchor,
        offset: i64,
        next_anchor: impl Fn(usize) -> Option<Anchor>,
    ) -> Located {
        self.fast(start, offset)
            .unwrap_or_else(|| self.careful(start, offset, next_anchor))
    }

    /// `None` when the headers disagree with the count before `offset` is reached.
    fn fast(&self, start: Anchor, offset: i64) -> Option<Located> {
        let (mut pos, mut expected) = (start.position, start.offset);
        loop {
            if pos == self.data.len() {
                return Some(Located::Beyond);
            }
            let b = batch_at(self.data, pos)?;
            if b.header.base_offset != expected || !counts_agree(&b.header) {
                return None;
            }
            if b.header.last_offset() >= offset {
                return Some(Located::Batch(b, expected));
            }
            expected = b.header.next_offset();
            pos += b.len;
        }
    }

    fn careful(
        &self,
        start: Anchor,
        offset: i64,
        next_anchor: impl Fn(usize) -> Option<Anchor>,
    ) -> Located {
        let (mut pos, mut expected) = (start.position, start.offset);
        loop {
            if pos == self.data.len() {
                return Located::Beyond;
            }
            if let Some(b) = batch_at(self.data, pos).filter(|b| self.intact(b)) {
                let last = expected.saturating_add(i64::from(b.header.last_offset_delta));
                if last >= offset {
                    return Located::Batch(b, expected);
                }
                expected = last.saturating_add(1);
                pos += b.len;
                continue;
            }
            match self.resync(pos, expected, next_anchor(pos)) {
                Some(next) if next.offset <= offset => {
                    pos = next.position;
                    expected = next.offset;
                }
                Some(next) => {
                    return Located::Damaged(Damage {
                        position: pos,
                        reason: format!(
                            "offsets {expected} to {} lie in damaged bytes (positions {pos} to {})",
                            next.offset - 1,
                            next.position
                        ),
                    });
                }
                None => {
                    return Located::Damaged(Damage {
                        position: pos,
                        reason: format!(
                            "damaged bytes at position {pos} (offsets from {expected}) and no intact batch after them"
                        ),
                    });
                }
            }
        }
    }

    /// Whether the batch's bytes are as written: its length, delta and records can be
    /// trusted (its base offset and epoch, outside the CRC, are checked separately).
    fn intact(&self, b: &BatchAt) -> bool {
        b.position + b.len <= self.checked
            || validate_stored_batch(&self.data[b.position..b.position + b.len]).is_ok()
    }

    /// After damaged bytes at `from` whose first offset would be `after`: the next intact
    /// batch and its base offset, searching the bytes up to `next` (the next index entry,
    /// which is itself the answer when nothing intact comes before it) or the end.
    ///
    /// A candidate must have the magic byte, a header that parses, agreeing record counts, a
    /// base offset at or after `after` whose batch ends by the next anchor (or
    /// [`Limits::segment_end`]), and a valid CRC-32C. Its stored base offset lies outside the
    /// CRC, so it is taken only when confirmed by what follows: the next batch's stored base
    /// offset, the next index entry, or the segment's end offset.
    ///
    /// Cost: a few byte comparisons per position searched, and a CRC pass only for the rare
    /// candidates that pass the header checks. It runs only where damage was found.
    pub(crate) fn resync(&self, from: usize, after: i64, next: Option<Anchor>) -> Option<Anchor> {
        let data = self.data;
        let stop = next.map_or(data.len(), |a| a.position);
        let bound = next.map_or(self.limits.segment_end, |a| a.offset);
        for q in from + 1..stop {
            if q + HEADER_LEN > data.len() {
                break;
            }
            if data[q + field::MAGIC] != 2 {
                continue;
            }
            let Some(b) = batch_at(data, q) else {
                continue;
            };
            let h = &b.header;
            if h.base_offset < after || !counts_plausible(h) {
                continue;
            }
            let next_offset = h.next_offset();
            if next_offset > bound
                || validate_stored_batch(&data[q..q + b.len]).is_err()
                || !self.confirms(q + b.len, next_offset, next)
            {
                continue;
            }
            return Some(Anchor {
                position: q,
                offset: h.base_offset,
            });
        }
        next
    }

    /// Whether what lies at `end` agrees that the batch before it ends at `next_offset`.
    fn confirms(&self, end: usize, next_offset: i64, next: Option<Anchor>) -> bool {
        if let Some(anchor) = next.filter(|a| a.position == end) {
            return anchor.offset == next_offset;
        }
        match batch_at(self.data, end) {
            Some(following) => following.header.base_offset == next_offset,
            None => end == self.data.len() && next_offset == self.limits.segment_end,
        }
    }
}

/// Where and why a validating scan stopped before the end of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stop {
    /// Byte position of the first invalid byte; everything from here is cut.
    pub(crate) position: usize,
    /// What was wrong there.
    pub(crate) reason: String,
    /// True when the bytes there are zero: the normal end of a preallocated segment after a
    /// crash, rather than damage.
    pub(crate) zeroed: bool,
}

/// Damaged bytes a scan skipped to reach the intact batches after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    /// Where the damage starts.
    pub(crate) position: usize,
    /// Where the next intact batch starts.
    pub(crate) resumed_at: usize,
    /// Offsets `[first_offset, resumed_offset)` are lost with the damaged bytes.
    pub(crate) first_offset: i64,
    pub(crate) resumed_offset: i64,
    /// What was wrong at `position`.
    pub(crate) reason: String,
}

/// What a validating scan does at damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDamage {
    /// Stop at the first invalid byte: the last segment, where a crash tears writes.
    Stop,
    /// Skip to the next intact batch and go on ([`Walk::resync`]): a sealed segment, whose
    /// batches were written whole before the next segment was started. Its batches end at or
    /// before `segment_end` (the next segment's base offset).
    Resync { segment_end: i64 },
}

/// The result of a validating scan of one segment.
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    /// End of the last valid batch (with [`OnDamage::Stop`], the length of the valid prefix).
    pub(crate) valid_len: usize,
    /// Offset after the last valid batch (the segment's base offset when there is none).
    pub(crate) next_offset: i64,
    /// Number of valid batches.
    pub(crate) batches: usize,
    /// Offset index rebuilt from the valid batches.
    pub(crate) offset_entries: Vec<OffsetEntry>,
    /// Time index rebuilt from the valid batches.
    pub(crate) time_entries: Vec<TimeEntry>,
    /// Index cursor state after the last valid batch, to continue appending.
    pub(crate) cursor: CursorState,
    /// Damaged bytes skipped inside the segment ([`OnDamage::Resync`] only).
    pub(crate) skipped: Vec<Skipped>,
    /// Set when invalid bytes follow the last valid batch.
    pub(crate) stop: Option<Stop>,
    /// Whether any non-zero byte follows the last valid batch.
    pub(crate) garbage_after: bool,
}

impl Scan {
    /// Bytes from the start that hold only batches this scan validated: reads need no CRC
    /// pass below it.
    pub(crate) fn checked_len(&self) -> usize {
        self.skipped.first().map_or(self.valid_len, |s| s.position)
    }
}

/// Validates every batch of a segment whose first offset is `base_offset`: length, magic,
/// CRC-32C, record count, a possible leader epoch (at most `max_epoch`), and offsets dense
/// from `base_offset` on. Rebuilds both indexes for the valid batches. At the first invalid
/// byte it stops, or with [`OnDamage::Resync`] skips to the next intact batch and goes on
/// (with an index entry at that batch, so reads start there).
pub(crate) fn scan_segment(
    data: &[u8],
    base_offset: i64,
    index_interval_bytes: u32,
    max_epoch: i32,
    on_damage: OnDamage,
) -> Scan {
    let mut cursor = IndexCursor::new(index_interval_bytes);
    let mut scan = Scan {
        valid_len: 0,
        next_offset: base_offset,
        batches: 0,
        offset_entries: Vec::new(),
        time_entries: Vec::new(),
        cursor: cursor.state(),
        skipped: Vec::new(),
        stop: None,
        garbage_after: false,
    };
    let mut pos = 0usize;
    while pos < data.len() {
        match check_batch_at(data, pos, scan.next_offset, base_offset, max_epoch) {
            Ok((header, len, relative)) => {
                let due = cursor.on_batch(
                    relative,
                    FilePosition(u32::try_from(pos).unwrap_or(u32::MAX)),
                    u32::try_from(len).unwrap_or(u32::MAX),
                    header.max_timestamp,
                );
                scan.offset_entries.extend(due.offset);
                scan.time_entries.extend(due.time);
                scan.next_offset = header.next_offset();
                scan.batches += 1;
                pos += len;
                scan.valid_len = pos;
            }
            Err(reason) => {
                let resumed = match on_damage {
                    OnDamage::Stop => None,
                    OnDamage::Resync { segment_end } => {
                        resume_after(data, pos, scan.next_offset, segment_end, max_epoch)
                    }
                };
                let Some(next) = resumed else {
                    let probe = &data[pos..data.len().min(pos + HEADER_LEN)];
                    scan.stop = Some(Stop {
                        position: pos,
                        reason,
                        zeroed: probe.iter().all(|&b| b == 0),
                    });
                    break;
                };
                scan.skipped.push(Skipped {
                    position: pos,
                    resumed_at: next.position,
                    first_offset: scan.next_offset,
                    resumed_offset: next.offset,
                    reason,
                });
                cursor.force_offset_entry();
                pos = next.position;
                scan.next_offset = next.offset;
            }
        }
    }
    scan.cursor = cursor.state();
    // Only a sealed segment keeps damage after its last intact batch. The last segment's
    // tail is its preallocated, unwritten space (up to `segment.bytes` of zeros): reading it
    // here would fault in every page of it at each recovery (a second for a dozen partitions).
    if matches!(on_damage, OnDamage::Resync { .. }) {
        scan.garbage_after = data[scan.valid_len..].iter().any(|&b| b != 0);
    }
    scan
}

/// Where intact batches resume after the invalid batch at `pos`: right after it when only
/// its fields outside the CRC are wrong (its length and delta are still good), else at the
/// next intact batch that [`Walk::resync`] finds.
fn resume_after(
    data: &[u8],
    pos: usize,
    expected: i64,
    segment_end: i64,
    max_epoch: i32,
) -> Option<Anchor> {
    let walk = Walk {
        data,
        checked: 0,
        limits: Limits {
            segment_end,
            max_epoch,
        },
    };
    if let Some(b) = batch_at(data, pos).filter(|b| walk.intact(b)) {
        let next = expected
            .saturating_add(i64::from(b.header.last_offset_delta))
            .saturating_add(1);
        return (next <= segment_end).then_some(Anchor {
            position: pos + b.len,
            offset: next,
        });
    }
    walk.resync(pos, expected, None)
}

/// Checks the batch at `pos`; returns its header, length and relative offset.
fn check_batch_at(
    data: &[u8],
    pos: usize,
    expected_offset: i64,
    base_offset: i64,
    max_epoch: i32,
) -> Result<(BatchHeader, usize, RelativeOffset), String> {
    let rest = &data[pos..];
    let len = match batch_len_prefix(rest) {
        Ok(Some(len)) => len,
        Ok(None) => {
            return Err(format!(
                "{} bytes left, fewer than a batch length prefix",
                rest.len()
            ));
        }
        Err(err) => return Err(err.to_string()),
    };
    if len > rest.len() {
        return Err(format!(
            "batch of {len} bytes runs past the end of the file ({} bytes left)",
            rest.len()
        ));
    }
    let end = pos + len;
    if u32::try_from(end).is_err() {
        return Err("batch ends beyond the 4 GiB addressable by the index".to_owned());
    }
    let header = validate_stored_batch(&rest[..len]).map_err(|e| e.to_string())?;
    if header.base_offset != expected_offset {
        return Err(format!(
            "batch base offset {} where {expected_offset} was expected",
            header.base_offset
        ));
    }
    if !epoch_is_possible(header.partition_leader_epoch, max_epoch) {
        return Err(format!(
            "partition leader epoch {} outside -1..={max_epoch}, the epochs this log wrote",
            header.partition_leader_epoch
        ));
    }
    // `check_batch_at` refused batches ending beyond 4 GiB, so positions and lengths of
    // accepted batches fit in 32 bits.
    let relative = u32::try_from(header.last_offset() - base_offset).map_err(|_too_far| {
        format!(
            "offset {} too far from segment base {base_offset}",
            header.last_offset()
        )
    })?;
    let first = relative - header.last_offset_delta as u32;
    Ok((header, len, RelativeOffset(first)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_protocol::record_batch::{BatchBuilder, RecordInput, set_base_offset};

    fn batch(base: i64, n: usize) -> Vec<u8> {
        let mut b = BatchBuilder::new();
        for i in 0..n {
            b.push(RecordInput {
                value: Some(b"value"),
                timestamp: 1000 + i as i64,
                ..Default::default()
            });
        }
        let mut bytes = b.build().unwrap().to_vec();
        set_base_offset(&mut bytes, base);
        bytes
    }

    #[test]
    fn scan_accepts_dense_batches_and_stops_at_zeros() {
        let mut data = batch(10, 3);
        data.extend(batch(13, 2));
        let valid = data.len();
        data.extend(vec![0u8; 100]);
        let scan = scan_segment(&data, 10, 4096, 0, OnDamage::Stop);
        assert_eq!(scan.valid_len, valid);
        assert_eq!(scan.next_offset, 15);
        assert_eq!(scan.batches, 2);
        let stop = scan.stop.unwrap();
        assert!(stop.zeroed);
        assert_eq!(
            batches(&data, 0)
                .map(|b| b.header.base_offset)
                .collect::<Vec<_>>(),
            vec![10, 13]
        );
    }

    #[test]
    fn scan_stops_at_gap_and_at_garbage() {
        let mut data = batch(0, 1);
        let first = data.len();
        data.extend(batch(5, 1));
        let scan = scan_segment(&data, 0, 4096, 0, OnDamage::Stop);
        assert_eq!(scan.valid_len, first);
        let stop = scan.stop.unwrap();
        assert!(!stop.zeroed);
        assert!(stop.reason.contains("expected"), "{}", stop.reason);

        let mut data = batch(0, 1);
        let last = data.len() - 1;
        data[last] ^= 1;
        let scan = scan_segment(&data, 0, 4096, 0, OnDamage::Stop);
        assert_eq!(scan.valid_len, 0);
        assert!(scan.stop.unwrap().reason.contains("CRC"));
    }

    /// Batches at 0 (2 records), 2 (3), 5 (1), 6 (2); their positions.
    fn four_batches() -> (Vec<u8>, Vec<usize>) {
        let mut data = Vec::new();
        let mut positions = Vec::new();
        for (base, n) in [(0, 2), (2, 3), (5, 1), (6, 2)] {
            positions.push(data.len());
            data.extend(batch(base, n));
        }
        (data, positions)
    }

    fn walk(data: &[u8]) -> Walk<'_> {
        Walk {
            data,
            checked: 0,
            limits: Limits {
                segment_end: 8,
                max_epoch: 0,
            },
        }
    }

    fn located_at(found: Located) -> Option<(usize, i64)> {
        match found {
            Located::Batch(b, base) => Some((b.position, base)),
            _ => None,
        }
    }

    #[test]
    fn a_sealed_segment_scan_skips_a_damaged_length_and_goes_on() {
        let (mut data, positions) = four_batches();
        data[positions[1] + 11] ^= 0x10;
        let scan = scan_segment(&data, 0, 4096, 0, OnDamage::Resync { segment_end: 8 });
        assert_eq!(scan.batches, 3);
        assert_eq!(scan.next_offset, 8);
        assert_eq!(scan.valid_len, data.len());
        assert_eq!(scan.checked_len(), positions[1]);
        assert_eq!(scan.skipped.len(), 1);
        let skipped = &scan.skipped[0];
        assert_eq!(
            (skipped.position, skipped.resumed_at),
            (positions[1], positions[2])
        );
        assert_eq!((skipped.first_offset, skipped.resumed_offset), (2, 5));
        // Reads can start right where the scan resumed.
        assert_eq!(
            scan.offset_entries
                .first()
                .map(|e| (e.relative_offset.0, e.position.0)),
            Some((5, u32::try_from(positions[2]).unwrap()))
        );
        assert!(scan.stop.is_none() && !scan.garbage_after);
        // The last segment stops there instead.
        let scan = scan_segment(&data, 0, 4096, 0, OnDamage::Stop);
        assert_eq!((scan.valid_len, scan.next_offset), (positions[1], 2));
    }

    #[test]
    fn only_a_sealed_segment_looks_past_its_last_batch() {
        // The last segment's tail is preallocated space: a scan of it stops at the first zero
        // header and reads nothing beyond (a byte far in the tail stays unseen), while a
        // sealed segment keeps non-zero bytes after its last intact batch.
        let (mut data, _) = four_batches();
        let end = data.len();
        data.resize(end + (1 << 20), 0);
        *data.last_mut().unwrap() = 0x5a;
        let last = scan_segment(&data, 0, 4096, 0, OnDamage::Stop);
        assert_eq!(last.valid_len, end);
        assert!(last.stop.as_ref().is_some_and(|s| s.zeroed));
        assert!(!last.garbage_after);
        let sealed = scan_segment(&data, 0, 4096, 0, OnDamage::Resync { segment_end: 8 });
        assert_eq!(sealed.valid_len, end);
        assert!(sealed.garbage_after);
    }

    #[test]
    fn a_walk_gets_past_a_damaged_delta_and_refuses_only_that_batch() {
        let (mut data, positions) = four_batches();
        let start = Anchor {
            position: 0,
            offset: 0,
        };
        assert_eq!(
            located_at(walk(&data).locate(start, 6, |_| None)),
            Some((positions[3], 6))
        );
        // LastOffsetDelta of the second batch 2 -> 3: its CRC fails, so its length is
        // distrusted too, and the walk resynchronises on the third batch.
        data[positions[1] + 26] ^= 0x01;
        for offset in [0, 1] {
            assert_eq!(
                located_at(walk(&data).locate(start, offset, |_| None)),
                Some((0, 0))
            );
        }
        for offset in [2, 3, 4] {
            assert!(matches!(
                walk(&data).locate(start, offset, |_| None),
                Located::Damaged(_)
            ));
        }
        assert_eq!(
            located_at(walk(&data).locate(start, 5, |_| None)),
            Some((positions[2], 5))
        );
        assert_eq!(
            located_at(walk(&data).locate(start, 7, |_| None)),
            Some((positions[3], 6))
        );
        assert!(matches!(
            walk(&data).locate(start, 8, |_| None),
            Located::Beyond
        ));
    }

    #[test]
    fn a_candidate_after_damage_needs_its_offsets_confirmed() {
        let (mut data, positions) = four_batches();
        data[positions[1] + 11] ^= 0x10;
        // The third batch's stored base offset is 5 and the fourth's is 6: confirmed.
        let found = walk(&data).resync(positions[1], 2, None);
        assert_eq!(
            found,
            Some(Anchor {
                position: positions[2],
                offset: 5
            })
        );
        // Damage the fourth batch's stored base offset as well: the third can no longer be
        // confirmed, and the fourth is confirmed by the segment's end offset only if its own
        // base offset is right, which it is not: nothing is trusted.
        data[positions[3] + 7] ^= 0x01;
        assert_eq!(walk(&data).resync(positions[1], 2, None), None);
    }
}
