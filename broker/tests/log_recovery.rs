//! Crash recovery: torn and garbled tails at every byte of the last batch, damaged indexes,
//! segments after a cut, and the clean-shutdown fast path.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use weir_broker::log::Offset;

const SEGMENT: u32 = 64 * 1024;

fn segment_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

type Records = Vec<(i64, Vec<u8>)>;

/// A log "crashed" (dropped without close) after five batches.
struct Crashed {
    dir: tempfile::TempDir,
    /// Records of the first four batches.
    prefix: Records,
    /// All records.
    all: Records,
    /// Byte range of the last batch in the segment.
    last: std::ops::Range<usize>,
}

fn crashed_log() -> Crashed {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(SEGMENT));
    for i in 0..4 {
        log.append(&batch(&format!("b{i}"), 3, 100 * i)).unwrap();
    }
    let prefix = read_all(&log);
    let before = usize::try_from(log.size_bytes()).unwrap();
    log.append(&batch("last", 4, 999)).unwrap();
    let after = usize::try_from(log.size_bytes()).unwrap();
    let all = read_all(&log);
    drop(log);
    Crashed {
        dir,
        prefix,
        all,
        last: before..after,
    }
}

fn recover_and_read(dir: &Path) -> (Records, weir_broker::log::RecoveryReport) {
    let log = open(dir, small_config(SEGMENT));
    let records = read_all(&log);
    let report = log.recovery_report().clone();
    // The log must accept appends right after the recovered prefix.
    let next = log.log_end_offset();
    assert_eq!(log.append(&batch("again", 1, 0)).unwrap().base_offset, next);
    (records, report)
}

#[test]
fn a_torn_last_batch_is_cut_at_every_byte() {
    let Crashed {
        dir: src,
        prefix,
        all,
        last,
    } = crashed_log();
    let seg = segment_files(src.path(), "log").pop().unwrap();
    let name = seg.file_name().unwrap().to_owned();
    for k in 0..=last.len() {
        // The file ends inside the batch (as when a size change was persisted but not data).
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        let f = fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join(&name))
            .unwrap();
        f.set_len((last.start + k) as u64).unwrap();
        drop(f);
        let (records, _) = recover_and_read(dir.path());
        let expected = if k == last.len() { &all } else { &prefix };
        assert_eq!(&records, expected, "file cut at byte {k} of the last batch");

        // The batch's later bytes never reached the disk (zeros in the preallocated file).
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        let path = dir.path().join(&name);
        let mut bytes = fs::read(&path).unwrap();
        // Zeroing bytes that already are zero (the batch's last varints) changes nothing.
        let intact = bytes[last.start + k..last.end].iter().all(|&b| b == 0);
        bytes[last.start + k..last.end].fill(0);
        fs::write(&path, &bytes).unwrap();
        let (records, report) = recover_and_read(dir.path());
        let expected = if intact { &all } else { &prefix };
        assert_eq!(&records, expected, "zeros from byte {k} of the last batch");
        if !intact && k >= 12 {
            assert_eq!(
                report.truncated.len(),
                1,
                "cut reported for zeros from byte {k}"
            );
            assert_eq!(report.truncated[0].position, last.start as u64);
        }
    }
}

#[test]
fn a_garbled_last_batch_is_cut_at_every_byte() {
    let Crashed {
        dir: src,
        prefix,
        last,
        ..
    } = crashed_log();
    let seg = segment_files(src.path(), "log").pop().unwrap();
    let name = seg.file_name().unwrap().to_owned();
    for k in 0..last.len() {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        let path = dir.path().join(&name);
        let mut bytes = fs::read(&path).unwrap();
        bytes[last.start + k] ^= 0x5a;
        fs::write(&path, &bytes).unwrap();
        let (records, report) = recover_and_read(dir.path());
        // Every byte invalidates it, PartitionLeaderEpoch (bytes 12..16, outside the CRC)
        // included: the log writes epoch 0, so any other value is damage.
        assert_eq!(records, prefix, "garbled byte {k}");
        assert_eq!(report.truncated.len(), 1, "byte {k}: {report:?}");
        assert_eq!(report.truncated[0].position, last.start as u64);
    }
}

#[test]
fn damage_in_a_sealed_segment_keeps_the_segments_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1024));
    for i in 0..30 {
        log.append(&batch(&format!("s{i}"), 2, i)).unwrap();
    }
    assert!(log.segment_count() >= 3);
    let all = read_all(&log);
    let end = log.log_end_offset();
    drop(log);
    // Damage the middle of the second segment. Without a recovery point (no sync happened)
    // every segment is scanned.
    let logs = segment_files(dir.path(), "log");
    assert!(!dir.path().join("recovery-point").exists());
    let mut bytes = fs::read(&logs[1]).unwrap();
    bytes[200] ^= 0xff;
    fs::write(&logs[1], &bytes).unwrap();
    let log = open(dir.path(), small_config(1024));
    let report = log.recovery_report().clone();
    // Nothing is cut or removed: the damaged batch is isolated, later segments are kept.
    assert!(report.truncated.is_empty(), "{report:?}");
    assert!(report.removed.is_empty(), "{report:?}");
    assert_eq!(report.damaged.len(), 1, "{report:?}");
    assert_eq!(log.segment_count(), logs.len());
    assert_eq!(log.log_end_offset(), end);
    let damage = &report.damaged[0];
    let lost = damage.first_offset..damage.resumed_offset.unwrap();
    assert_eq!(
        lost.end - lost.start,
        2,
        "one batch of two records: {damage:?}"
    );
    // Every other record reads back, at its offset.
    let mut records = read_range(&log, Offset(0), Offset(lost.start), 777);
    records.extend(read_from(&log, Offset(lost.end), 777));
    let expected: Vec<_> = all
        .iter()
        .filter(|(o, _)| !lost.contains(o))
        .cloned()
        .collect();
    assert_eq!(records, expected);
    for o in lost {
        assert!(matches!(
            log.read(Offset(o), 1 << 20),
            Err(weir_broker::log::LogError::Corrupt { .. })
        ));
    }
    // Appends continue at the end: no offset is reused.
    assert_eq!(log.append(&batch("x", 1, 0)).unwrap().base_offset, end);
}

#[test]
fn damaged_or_missing_indexes_are_rebuilt_after_a_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(4096));
    for i in 0..120 {
        log.append(&batch(&format!("i{i}"), 3, 10 * i)).unwrap();
    }
    let before = read_all(&log);
    let ts_before: Vec<_> = (0..1200)
        .step_by(37)
        .map(|t| log.offset_for_timestamp(t))
        .collect();
    log.close().unwrap();
    drop(log);
    let indexes = segment_files(dir.path(), "index");
    let time_indexes = segment_files(dir.path(), "timeindex");
    assert!(indexes.len() >= 3);
    fs::remove_file(&indexes[0]).unwrap();
    fs::write(&indexes[1], b"\x00\x00\x00\x09\x00\x00\xff\xff\x01").unwrap();
    fs::write(&time_indexes[2], b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00").unwrap();
    // And the active segment's index too.
    fs::write(indexes.last().unwrap(), b"xyz").unwrap();
    let log = open(dir.path(), small_config(4096));
    let report = log.recovery_report();
    assert!(report.clean);
    assert!(report.indexes_rebuilt >= 3, "{report:?}");
    assert_eq!(read_all(&log), before);
    let ts_after: Vec<_> = (0..1200)
        .step_by(37)
        .map(|t| log.offset_for_timestamp(t))
        .collect();
    assert_eq!(ts_after, ts_before);
    assert_eq!(
        log.append(&batch("z", 1, 0)).unwrap().base_offset,
        Offset(360)
    );
}

#[test]
fn clean_reopen_scans_nothing_and_unclean_reopen_scans_only_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1024));
    for i in 0..40 {
        log.append(&batch(&format!("c{i}"), 2, i)).unwrap();
    }
    // A sync writes the recovery point past every sealed segment.
    log.sync().unwrap();
    let segments = log.segment_count();
    assert!(segments > 3);
    drop(log);
    let log = open(dir.path(), small_config(1024));
    assert!(!log.recovery_report().clean);
    assert_eq!(log.recovery_report().segments_scanned, 1);
    assert_eq!(log.segment_count(), segments);
    log.close().unwrap();
    drop(log);
    assert!(dir.path().join("clean-shutdown").exists());
    let log = open(dir.path(), small_config(1024));
    assert!(log.recovery_report().clean);
    assert_eq!(log.recovery_report().segments_scanned, 0);
    // The marker is gone as soon as the log is open: a crash now must recover.
    assert!(!dir.path().join("clean-shutdown").exists());
}
