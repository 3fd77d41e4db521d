//! The log start offset moved by DeleteRecords (`PartitionLog::delete_records_before`): reads
//! and timestamp lookups follow it, sealed segments wholly below it go, and it survives clean
//! and unclean reopens; a missing or damaged checkpoint never exposes records from a deleted
//! segment, and a checkpoint past a cut log end exposes nothing below it.

mod common;

use std::sync::Arc;

use common::*;
use weir_broker::clock::ManualClock;
use weir_broker::log::{CleanupPolicy, FaultyDisk, LogError, Offset, PartitionLog};

const CHECKPOINT: &str = "log-start-offset";

/// A log of 10 batches of 10 records (offsets 0..100), several segments.
fn filled(dir: &std::path::Path) -> Arc<PartitionLog> {
    let log = open(dir, small_config(2048));
    for i in 0..10 {
        log.append(&batch_sized(&format!("b{i}"), 10, 1000 + i * 10, 60))
            .unwrap();
    }
    assert!(log.segment_count() > 3, "{}", log.segment_count());
    log
}

fn out_of_range(log: &PartitionLog, offset: i64) -> bool {
    matches!(
        log.read(Offset(offset), 1 << 20),
        Err(LogError::OffsetOutOfRange { .. })
    )
}

#[test]
fn delete_records_moves_the_start_and_hides_what_is_below() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    let segments = log.segment_count();
    assert_eq!(log.delete_records_before(Offset(55)).unwrap(), Offset(55));
    assert_eq!(log.log_start_offset(), Offset(55));
    assert!(out_of_range(&log, 54));
    assert!(out_of_range(&log, 0));
    // The batch holding 55 starts at 50: it is read whole, as any read in a batch is.
    let records = read_all(&log);
    assert_eq!(records.first().map(|r| r.0), Some(55));
    assert_eq!(records.len(), 45);
    assert!(
        log.segment_count() < segments,
        "sealed segments wholly below 55 are deleted at once"
    );
    assert!(dir.path().join(CHECKPOINT).exists());
}

#[test]
fn minus_one_is_the_high_watermark_and_past_it_is_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    assert!(matches!(
        log.delete_records_before(Offset(101)),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        log.delete_records_before(Offset(-2)),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.log_start_offset(), Offset(0));
    assert_eq!(log.delete_records_before(Offset(-1)).unwrap(), Offset(100));
    assert_eq!(log.log_start_offset(), Offset(100));
    assert!(read_all(&log).is_empty());
    // The log keeps working from there.
    let next = log.append(&batch("after", 2, 5000)).unwrap();
    assert_eq!(next.base_offset, Offset(100));
    assert_eq!(read_all(&log).len(), 2);
}

#[test]
fn an_offset_below_the_start_is_a_no_op_answering_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    log.delete_records_before(Offset(40)).unwrap();
    assert_eq!(log.delete_records_before(Offset(20)).unwrap(), Offset(40));
    assert_eq!(log.delete_records_before(Offset(40)).unwrap(), Offset(40));
    assert_eq!(log.log_start_offset(), Offset(40));
}

#[test]
fn the_start_survives_clean_and_unclean_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    log.delete_records_before(Offset(33)).unwrap();
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), small_config(2048));
    assert_eq!(log.log_start_offset(), Offset(33));
    assert!(out_of_range(&log, 32));
    log.delete_records_before(Offset(61)).unwrap();
    // No close: the next open recovers.
    drop(log);
    let log = open(dir.path(), small_config(2048));
    assert!(!log.recovery_report().clean);
    assert_eq!(log.log_start_offset(), Offset(61));
    assert!(out_of_range(&log, 60));
    assert_eq!(read_all(&log).first().map(|r| r.0), Some(61));
}

#[test]
fn a_missing_or_damaged_checkpoint_never_brings_back_a_deleted_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    log.delete_records_before(Offset(75)).unwrap();
    log.close().unwrap();
    drop(log);
    let path = dir.path().join(CHECKPOINT);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let log = open(dir.path(), small_config(2048));
    // Falls back to the first segment left, whose records below 75 come back; the segments
    // wholly below 75 were deleted when the start moved, so nothing older does.
    let start = log.log_start_offset();
    assert!(start <= Offset(75), "{start}");
    assert!(start > Offset(0), "{start}");
    assert!(out_of_range(&log, start.0 - 1));
    assert_eq!(read_all(&log).first().map(|r| r.0), Some(start.0));
    log.close().unwrap();
    drop(log);
    std::fs::remove_file(&path).unwrap();
    let log = open(dir.path(), small_config(2048));
    assert_eq!(log.log_start_offset(), start);
}

#[test]
fn a_checkpoint_past_a_cut_log_end_exposes_nothing_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    log.delete_records_before(Offset(-1)).unwrap();
    log.close().unwrap();
    drop(log);
    // Damage takes the tail of the last segment with data: recovery cuts the log below 100.
    let mut logs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
        .collect();
    logs.sort();
    let last = logs.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(last).unwrap();
    file.set_len(len - 10).unwrap();
    std::fs::remove_file(dir.path().join("clean-shutdown")).unwrap();
    std::fs::write(dir.path().join("recovery-point"), []).unwrap();
    let log = open(dir.path(), small_config(2048));
    let end = log.log_end_offset();
    assert!(end < Offset(100));
    assert_eq!(log.log_start_offset(), end);
    assert!(read_all(&log).is_empty());
    // Records appended from there stay readable after the next reopen: the stale checkpoint
    // (100) was rewritten, so it cannot hide them.
    log.append(&batch("new", 3, 9000)).unwrap();
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), small_config(2048));
    assert_eq!(log.log_start_offset(), end);
    assert_eq!(read_all(&log).len(), 3);
}

#[test]
fn retention_past_the_checkpoint_moves_the_start_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(2048);
    config.retention_bytes = Some(2048);
    let log = open(dir.path(), small_config(2048));
    for i in 0..10 {
        log.append(&batch_sized(&format!("b{i}"), 10, 1000 + i * 10, 60))
            .unwrap();
    }
    log.delete_records_before(Offset(5)).unwrap();
    log.set_config(config.clone());
    assert!(log.apply_retention().unwrap() > 0);
    let start = log.log_start_offset();
    assert!(start > Offset(5));
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), config);
    assert_eq!(log.log_start_offset(), start);
}

#[test]
fn a_crash_before_the_segments_go_leaves_them_for_the_next_retention_pass() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    let segments = log.segment_count();
    log.close().unwrap();
    drop(log);
    // The checkpoint of a move to 80 is on disk, the segments below are not deleted yet.
    let other = tempfile::tempdir().unwrap();
    let scratch = filled(other.path());
    scratch.delete_records_before(Offset(80)).unwrap();
    std::fs::copy(other.path().join(CHECKPOINT), dir.path().join(CHECKPOINT)).unwrap();
    let log = open(dir.path(), small_config(2048));
    assert_eq!(log.log_start_offset(), Offset(80));
    assert!(out_of_range(&log, 0));
    assert_eq!(log.segment_count(), segments);
    assert!(log.apply_retention().unwrap() > 0);
    assert!(log.segment_count() < segments);
    assert_eq!(read_all(&log).first().map(|r| r.0), Some(80));
}

#[test]
fn a_failed_sync_leaves_the_start_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FaultyDisk::new(i64::MAX));
    let log = PartitionLog::open(
        dir.path(),
        options(
            small_config(2048),
            disk.clone(),
            Arc::new(ManualClock::new(1_000_000)),
        ),
    )
    .unwrap();
    for i in 0..5 {
        log.append(&batch(&format!("b{i}"), 10, 1000)).unwrap();
    }
    disk.set_fail_sync(true);
    assert!(log.delete_records_before(Offset(20)).is_err());
    assert_eq!(log.log_start_offset(), Offset(0));
    assert!(!dir.path().join(CHECKPOINT).exists());
}

#[test]
fn a_compact_only_log_refuses_delete_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    let mut config = small_config(2048);
    config.cleanup_policy = CleanupPolicy {
        delete: false,
        compact: true,
    };
    log.set_config(config);
    assert!(matches!(
        log.delete_records_before(Offset(10)),
        Err(LogError::DeleteForbidden(_))
    ));
    assert_eq!(log.log_start_offset(), Offset(0));
}

#[test]
fn timestamp_lookups_never_answer_below_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = filled(dir.path());
    log.delete_records_before(Offset(47)).unwrap();
    let (offset, _) = log.lookup_timestamp(0).unwrap();
    assert_eq!(offset, Offset(47));
}
