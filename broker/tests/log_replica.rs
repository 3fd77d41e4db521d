//! A replica's log (replicated partitions): appends carry the Raft term as their leader
//! epoch, consumers read only below the high watermark, and an uncommitted tail can be cut
//! (across segments, durably, and never below the high watermark), after which appends
//! continue at the cut and a reopen finds exactly what is left.

mod common;

use std::sync::Arc;

use common::*;
use weir_broker::log::{Flusher, LogError, LogOptions, Offset, PartitionLog, Restart};
use weir_protocol::record_batch::{BatchHeader, Records};

fn open_replica(dir: &std::path::Path, segment_bytes: u32) -> Arc<PartitionLog> {
    let options = LogOptions::new(small_config(segment_bytes), Flusher::new(1));
    PartitionLog::open_replicated(dir, options).unwrap()
}

/// (base offset, leader epoch, record values) of every batch below the high watermark.
fn committed(log: &PartitionLog) -> Vec<(i64, i32, Vec<String>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.high_watermark() {
        let read = log.read(offset, 1 << 20).unwrap();
        assert!(read.high_watermark <= log.log_end_offset());
        let mut rest = &read.records[..];
        assert!(
            !rest.is_empty(),
            "empty read at {offset} below the high watermark"
        );
        while !rest.is_empty() {
            let header = BatchHeader::parse(rest).unwrap();
            let len = header.total_len().unwrap();
            let values = Records::new(&rest[..len])
                .unwrap()
                .map(|r| String::from_utf8(r.unwrap().value.unwrap().to_vec()).unwrap())
                .collect();
            out.push((header.base_offset, header.partition_leader_epoch, values));
            offset = Offset(header.next_offset());
            rest = &rest[len..];
        }
    }
    out
}

fn epochs(log: &PartitionLog) -> Vec<(i64, i32)> {
    committed(log).into_iter().map(|(o, e, _)| (o, e)).collect()
}

fn values(log: &PartitionLog) -> Vec<String> {
    committed(log).into_iter().flat_map(|(_, _, v)| v).collect()
}

#[test]
fn reads_stop_at_the_high_watermark_and_batches_carry_their_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_replica(dir.path(), 1 << 20);
    assert!(log.is_replicated());
    log.append_at_epoch(&batch("a", 2, 1), 1).unwrap();
    log.append_at_epoch(&batch("b", 3, 2), 4).unwrap();
    assert_eq!(log.log_end_offset(), Offset(5));
    assert_eq!(log.high_watermark(), Offset(0), "nothing is committed yet");
    assert!(log.read(Offset(0), 1 << 20).unwrap().records.is_empty());
    log.set_high_watermark(Offset(2));
    assert_eq!(values(&log), ["a-0", "a-1"], "only the committed batch");
    log.set_high_watermark(Offset(1));
    assert_eq!(
        log.high_watermark(),
        Offset(2),
        "the high watermark never goes back"
    );
    log.set_high_watermark(Offset(5));
    assert_eq!(epochs(&log), vec![(0, 1), (2, 4)]);
    // Reopened, it is still a replica's log (the marker file), and epochs above 0 are not
    // taken for damage.
    log.close().unwrap();
    drop(log);
    let log = PartitionLog::open(
        dir.path(),
        LogOptions::new(small_config(1 << 20), Flusher::new(1)),
    )
    .unwrap();
    assert!(log.is_replicated());
    assert_eq!(log.log_end_offset(), Offset(5));
    assert_eq!(
        log.high_watermark(),
        Offset(0),
        "the commit point comes from Raft again"
    );
    log.set_high_watermark(Offset(5));
    assert_eq!(epochs(&log), vec![(0, 1), (2, 4)]);
}

#[test]
fn an_uncommitted_tail_is_cut_across_segments_and_appends_resume_there() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments: the tail spans several.
    let log = open_replica(dir.path(), 600);
    let mut bases = Vec::new();
    for i in 0..12 {
        let info = log
            .append_at_epoch(&batch_sized(&format!("x{i}"), 2, i, 60), 1)
            .unwrap();
        bases.push(info.base_offset.0);
    }
    assert!(log.segment_count() > 3, "{} segments", log.segment_count());
    log.sync().unwrap();
    log.set_high_watermark(Offset(bases[3]));
    assert!(matches!(
        log.truncate_from(Offset(bases[2])),
        Err(LogError::TruncateBelowCommitted { .. })
    ));
    assert!(matches!(
        log.truncate_from(Offset(bases[5] + 1)),
        Err(LogError::NotABatchStart(_))
    ));
    log.truncate_from(Offset(bases[5])).unwrap();
    assert_eq!(log.log_end_offset(), Offset(bases[5]));
    assert!(
        log.durable_offset() <= Offset(bases[5]),
        "nothing past the cut counts as durable"
    );
    let again = log.append_at_epoch(&batch("new", 3, 99), 2).unwrap();
    assert_eq!(again.base_offset, Offset(bases[5]));
    log.sync().unwrap();
    log.set_high_watermark(again.next_offset());
    let values = values(&log);
    assert_eq!(values.len(), 5 * 2 + 3);
    assert!(values[..10].iter().all(|v| v.starts_with('x')));
    assert!(values[10..].iter().all(|v| v.starts_with("new")));
    // A crash now (no clean close) finds the same log.
    drop(log);
    let log = open_replica(dir.path(), 600);
    assert_eq!(log.log_end_offset(), again.next_offset());
    log.set_high_watermark(again.next_offset());
    assert_eq!(committed(&log).iter().map(|b| b.2.len()).sum::<usize>(), 13);
    assert_eq!(
        epochs(&log).last().copied(),
        Some((bases[5], 2)),
        "the new leader's epoch"
    );
}

/// A replica log of 12 two-record batches at epoch 1 over several segments, durable, none
/// committed yet: (its directory, the log).
fn filled_replica(disk: Arc<dyn weir_broker::log::Disk>) -> (tempfile::TempDir, Arc<PartitionLog>) {
    let dir = tempfile::tempdir().unwrap();
    let options = common::options(
        small_config(600),
        disk,
        Arc::new(weir_broker::clock::SystemClock),
    );
    let log = PartitionLog::open_replicated(dir.path(), options).unwrap();
    for i in 0..12 {
        log.append_at_epoch(&batch_sized(&format!("old{i}"), 2, i, 60), 1)
            .unwrap();
    }
    log.sync().unwrap();
    assert!(log.segment_count() > 3);
    (dir, log)
}

fn restart_at(next: i64) -> Restart {
    Restart {
        next_offset: Offset(next),
        epoch: Some(3),
        files: vec![(
            "raft-anchor".to_owned(),
            b"anchor of the new state".to_vec(),
        )],
    }
}

/// What a reopened log holds, as (log start, log end, epoch history, values).
fn state_after_reopen(dir: &std::path::Path) -> (Offset, Offset, Vec<(i32, i64)>, Vec<String>) {
    let log = open_replica(dir, 600);
    log.set_high_watermark(log.log_end_offset());
    let history = log
        .epoch_history()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect();
    (
        log.log_start_offset(),
        log.log_end_offset(),
        history,
        values(&log),
    )
}

#[test]
fn a_restart_from_a_snapshot_leaves_an_empty_log_at_the_new_offset_that_survives_a_crash() {
    let (dir, log) = filled_replica(Arc::new(weir_broker::log::OsDisk));
    log.restart_at(&restart_at(100)).unwrap();
    assert_eq!(log.log_start_offset(), Offset(100));
    assert_eq!(log.log_end_offset(), Offset(100));
    assert_eq!(log.high_watermark(), Offset(100));
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.latest_epoch(), Some(3));
    let next = log.append_at_epoch(&batch("new", 2, 1), 3).unwrap();
    assert_eq!(next.base_offset, Offset(100));
    log.sync().unwrap();
    // A crash (no close): the new state, its epoch, the caller's file and the new batch.
    drop(log);
    let (start, end, history, values) = state_after_reopen(dir.path());
    assert_eq!((start, end), (Offset(100), Offset(102)));
    assert_eq!(history, vec![(3, 100)]);
    assert_eq!(values, vec!["new-0", "new-1"]);
    assert_eq!(
        std::fs::read(dir.path().join("raft-anchor")).unwrap(),
        b"anchor of the new state"
    );
    assert!(!dir.path().join("log-restart").exists());
}

#[test]
fn a_restart_interrupted_after_its_marker_is_finished_at_the_next_open() {
    // Room for the marker and small files but not for the new segment: the restart stops
    // after its commit point, with the old segments already gone.
    let disk = Arc::new(weir_broker::log::FaultyDisk::new(i64::MAX / 2));
    let (dir, log) = filled_replica(Arc::clone(&disk) as Arc<dyn weir_broker::log::Disk>);
    disk.add_space(-(i64::MAX / 2) + 100);
    let err = log.restart_at(&restart_at(100)).unwrap_err();
    assert!(
        log.is_failed(),
        "a restart failing after its commit point stops the log: {err}"
    );
    assert!(dir.path().join("log-restart").exists());
    drop(log);
    let (start, end, history, values) = state_after_reopen(dir.path());
    assert_eq!((start, end), (Offset(100), Offset(100)), "the new state");
    // An epoch without a batch is not kept across an open (the history's rule); the next
    // append at it records it again.
    assert!(history.is_empty());
    assert!(values.is_empty());
    assert!(!dir.path().join("log-restart").exists());
    assert_eq!(
        std::fs::read(dir.path().join("raft-anchor")).unwrap(),
        b"anchor of the new state"
    );
    let log = open_replica(dir.path(), 600);
    let next = log.append_at_epoch(&batch("new", 1, 1), 3).unwrap();
    assert_eq!(next.base_offset, Offset(100));
}

#[test]
fn a_restart_refused_before_its_marker_leaves_the_old_log() {
    let disk = Arc::new(weir_broker::log::FaultyDisk::new(i64::MAX / 2));
    let (dir, log) = filled_replica(Arc::clone(&disk) as Arc<dyn weir_broker::log::Disk>);
    let end = log.log_end_offset();
    disk.set_fail_sync(true);
    log.restart_at(&restart_at(100)).unwrap_err();
    assert_eq!(log.log_end_offset(), end, "nothing changed");
    drop(log);
    let (start, reopened_end, history, values) = state_after_reopen(dir.path());
    assert_eq!((start, reopened_end), (Offset(0), end), "the old state");
    assert_eq!(history, vec![(1, 0)]);
    assert_eq!(values.len(), 24);
    assert!(values.iter().all(|v| v.starts_with("old")));
}

#[test]
fn a_replica_start_moves_only_below_the_high_watermark_and_segments_go_only_when_purged() {
    let (_dir, log) = filled_replica(Arc::new(weir_broker::log::OsDisk));
    let segments = log.segment_count();
    log.set_high_watermark(Offset(10));
    // Clamped to the high watermark: uncommitted records never leave.
    assert_eq!(log.advance_start(Offset(20)).unwrap(), Offset(10));
    assert_eq!(
        log.segment_count(),
        segments,
        "moving the start deletes nothing"
    );
    assert!(
        log.read(Offset(10), 1 << 20).is_ok(),
        "the start is in range"
    );
    assert!(
        log.read(Offset(8), 1 << 20).is_err(),
        "below the start is out of range"
    );
    let deleted = log.delete_segments_below(Offset(10)).unwrap();
    assert!(deleted >= 1);
    assert_eq!(log.segment_count(), segments - deleted);
    assert_eq!(log.log_start_offset(), Offset(10));
}
