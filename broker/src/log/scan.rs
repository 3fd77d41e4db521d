//! Walking the batches of a segment's bytes: the header-only walk used by reads, and the full
//! validating scan used by recovery and index rebuilds. Pure functions over `&[u8]`.

use weir_protocol::record_batch::{BatchHeader, HEADER_LEN, batch_len_prefix, validate_batch};

use super::index::{
    CursorState, FilePosition, IndexCursor, OffsetEntry, RelativeOffset, TimeEntry,
};

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

/// Iterates over batch headers of already-validated bytes (published segment data), starting
/// at `position`. Stops quietly at the end or at anything unparsable; it does not check CRCs.
pub(crate) fn batches(data: &[u8], position: usize) -> impl Iterator<Item = BatchAt> + '_ {
    let mut pos = position;
    std::iter::from_fn(move || {
        let rest = data.get(pos..)?;
        let len = batch_len_prefix(rest).ok()??;
        if len > rest.len() {
            return None;
        }
        let header = BatchHeader::parse(rest).ok()?;
        let at = BatchAt {
            position: pos,
            len,
            header,
        };
        pos += len;
        Some(at)
    })
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

/// The result of a validating scan of one segment.
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    /// Bytes of valid batches from the start.
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
    /// Set when invalid bytes follow the valid prefix.
    pub(crate) stop: Option<Stop>,
}

/// Validates every batch of a segment whose first offset is `base_offset`: length, magic,
/// CRC-32C, record count, and offsets dense from `base_offset` on. Stops at the first invalid
/// byte and rebuilds both indexes for the valid prefix.
pub(crate) fn scan_segment(data: &[u8], base_offset: i64, index_interval_bytes: u32) -> Scan {
    let mut cursor = IndexCursor::new(index_interval_bytes);
    let mut scan = Scan {
        valid_len: 0,
        next_offset: base_offset,
        batches: 0,
        offset_entries: Vec::new(),
        time_entries: Vec::new(),
        cursor: cursor.state(),
        stop: None,
    };
    let mut pos = 0usize;
    while pos < data.len() {
        match check_batch_at(data, pos, scan.next_offset, base_offset) {
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
            }
            Err(reason) => {
                let probe = &data[pos..data.len().min(pos + HEADER_LEN)];
                scan.stop = Some(Stop {
                    position: pos,
                    reason,
                    zeroed: probe.iter().all(|&b| b == 0),
                });
                break;
            }
        }
    }
    scan.valid_len = pos;
    scan.cursor = cursor.state();
    scan
}

/// Checks the batch at `pos`; returns its header, length and relative offset.
fn check_batch_at(
    data: &[u8],
    pos: usize,
    expected_offset: i64,
    base_offset: i64,
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
    let header = validate_batch(&rest[..len]).map_err(|e| e.to_string())?;
    if header.base_offset != expected_offset {
        return Err(format!(
            "batch base offset {} where {expected_offset} was expected",
            header.base_offset
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
        let scan = scan_segment(&data, 10, 4096);
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
        let scan = scan_segment(&data, 0, 4096);
        assert_eq!(scan.valid_len, first);
        let stop = scan.stop.unwrap();
        assert!(!stop.zeroed);
        assert!(stop.reason.contains("expected"), "{}", stop.reason);

        let mut data = batch(0, 1);
        let last = data.len() - 1;
        data[last] ^= 1;
        let scan = scan_segment(&data, 0, 4096);
        assert_eq!(scan.valid_len, 0);
        assert!(scan.stop.unwrap().reason.contains("CRC"));
    }
}
