//! One damaged batch in the middle of a sealed segment: whatever field a flipped bit lands
//! in (the length or the leader epoch, outside the CRC; the delta, inside it; the base
//! offset; the records), reads refuse that batch and serve every other one, byte for byte,
//! whether the damage is met by reads after a clean shutdown or by a recovery scan after a
//! crash that lost the recovery point. Recovery keeps the segments after the damaged one.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use weir_broker::log::{LogConfig, LogError, Offset, PartitionLog};
use weir_protocol::record_batch::{BatchHeader, HEADER_LEN};

/// About 40 batches per segment and 10 per index interval: a damaged batch has intact
/// neighbours both ways, before and after the next index entry.
fn config() -> LogConfig {
    LogConfig {
        index_interval_bytes: 1024,
        ..small_config(4096)
    }
}

/// One batch as stored: its first and last offsets and its bytes.
#[derive(Debug, Clone)]
struct Stored {
    base: i64,
    last: i64,
    bytes: Vec<u8>,
}

/// A closed log of several segments, and every batch in it.
fn closed_log() -> (tempfile::TempDir, Vec<Stored>) {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config());
    for i in 0..300 {
        log.append(&batch(&format!("d{i}"), 1 + i % 3, i as i64))
            .unwrap();
    }
    let mut stored = Vec::new();
    let mut at = Offset(0);
    while at < log.log_end_offset() {
        let bytes = log.read(at, 1).unwrap().records.to_vec();
        let header = BatchHeader::parse(&bytes).unwrap();
        stored.push(Stored {
            base: header.base_offset,
            last: header.last_offset(),
            bytes,
        });
        at = Offset(header.next_offset());
    }
    assert!(log.segment_count() >= 4, "{} segments", log.segment_count());
    log.close().unwrap();
    (dir, stored)
}

fn segment_logs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// `(position, base offset)` of every batch in a segment file.
fn positions(path: &Path) -> Vec<(usize, i64)> {
    let bytes = fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while at + HEADER_LEN <= bytes.len() {
        let header = BatchHeader::parse(&bytes[at..]).unwrap();
        out.push((at, header.base_offset));
        at += header.total_len().unwrap();
    }
    out
}

/// Copies `src` and flips `mask` in byte `field` of a batch in the middle of the second
/// segment (and of an index interval); returns the copy and the index (in `stored`) of the damaged batch.
fn damaged_copy(
    src: &Path,
    stored: &[Stored],
    field: usize,
    mask: u8,
) -> (tempfile::TempDir, usize) {
    let dir = tempfile::tempdir().unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    let segment = &segment_logs(dir.path())[1];
    let batches = positions(segment);
    assert!(
        batches.len() >= 20,
        "{} batches in the segment",
        batches.len()
    );
    // A little after the first index entry (due after 1024 bytes), so that several intact
    // batches follow the damaged one before the next entry: a walk from the entry must get
    // past the damage to reach them.
    let (position, base) = *batches.iter().find(|(p, _)| *p >= 1200).unwrap();
    let mut bytes = fs::read(segment).unwrap();
    bytes[position + field] ^= mask;
    fs::write(segment, &bytes).unwrap();
    let index = stored.iter().position(|s| s.base == base).unwrap();
    (dir, index)
}

/// Every intact batch is served byte for byte at its first and last offset, the damaged one
/// is refused at both, and a read from before it stops just before it.
fn check_isolated(log: &PartitionLog, stored: &[Stored], damaged: usize, what: &str) {
    for (i, s) in stored.iter().enumerate() {
        for offset in [s.base, s.last] {
            let read = log.read(Offset(offset), 1);
            if i == damaged {
                assert!(
                    matches!(read, Err(LogError::Corrupt { .. })),
                    "{what}: damaged batch at {offset} must be refused: {read:?}"
                );
            } else {
                let read = read
                    .unwrap_or_else(|e| panic!("{what}: intact batch {i} at offset {offset}: {e}"));
                assert_eq!(
                    read.records.to_vec(),
                    s.bytes,
                    "{what}: intact batch {i} at offset {offset}"
                );
            }
        }
    }
    let before = &stored[damaged - 3];
    let read = log.read(Offset(before.base), 1 << 20).unwrap();
    let mut at = 0;
    let mut served = Vec::new();
    while at < read.records.len() {
        let header = BatchHeader::parse(&read.records[at..]).unwrap();
        served.push(header.base_offset);
        at += header.total_len().unwrap();
    }
    assert_eq!(
        served,
        stored[damaged - 3..damaged]
            .iter()
            .map(|s| s.base)
            .collect::<Vec<_>>(),
        "{what}: a read from before the damage stops just before it"
    );
}

/// Byte positions (within a batch) and bit masks to damage, with what they hit.
const FLIPS: &[(usize, u8, &str)] = &[
    (7, 0x01, "base offset"),
    (11, 0x10, "batch length, +16"),
    (9, 0x40, "batch length, far past the segment end"),
    (15, 0x01, "leader epoch, 1"),
    (12, 0x80, "leader epoch, negative"),
    (26, 0x01, "last offset delta, low bit"),
    (24, 0x10, "last offset delta, high bits"),
    (HEADER_LEN + 3, 0x08, "records"),
];

#[test]
fn a_damaged_batch_is_refused_and_its_neighbours_served_after_a_clean_shutdown() {
    let (src, stored) = closed_log();
    for &(field, mask, what) in FLIPS {
        let (dir, damaged) = damaged_copy(src.path(), &stored, field, mask);
        let log = open(dir.path(), config());
        // Nothing was rescanned: the reads alone isolate the damage.
        let report = log.recovery_report();
        assert!(
            report.clean && report.indexes_rebuilt == 0,
            "{what}: {report:?}"
        );
        check_isolated(&log, &stored, damaged, what);
        // Writes go on at the same end.
        let end = stored.last().unwrap().last + 1;
        assert_eq!(
            log.append(&batch("after", 1, 0)).unwrap().base_offset,
            Offset(end),
            "{what}"
        );
    }
}

#[test]
fn recovery_without_a_recovery_point_keeps_the_segments_after_a_damaged_batch() {
    let (src, stored) = closed_log();
    let segments = segment_logs(src.path()).len();
    for &(field, mask, what) in FLIPS {
        let (dir, damaged) = damaged_copy(src.path(), &stored, field, mask);
        // A crash (no clean-shutdown marker) that also lost the recovery point: every
        // segment is scanned.
        fs::remove_file(dir.path().join("clean-shutdown")).unwrap();
        fs::remove_file(dir.path().join("recovery-point")).unwrap();
        let log = open(dir.path(), config());
        let report = log.recovery_report().clone();
        assert_eq!(report.segments_scanned, segments, "{what}: {report:?}");
        assert!(report.truncated.is_empty(), "{what}: {report:?}");
        assert!(report.removed.is_empty(), "{what}: {report:?}");
        assert_eq!(report.damaged.len(), 1, "{what}: {report:?}");
        assert_eq!(log.segment_count(), segments, "{what}");
        let end = stored.last().unwrap().last + 1;
        assert_eq!(log.log_end_offset(), Offset(end), "{what}");
        check_isolated(&log, &stored, damaged, what);
        assert_eq!(
            log.append(&batch("after", 1, 0)).unwrap().base_offset,
            Offset(end),
            "{what}"
        );
        // And the same after another crash, now with a recovery point past the damage.
        drop(log);
        let log = open(dir.path(), config());
        check_isolated(&log, &stored, damaged, what);
    }
}
