//! The leader-epoch history of a partition log across crashes and reopens: written before the
//! batches that carry a new epoch, rebuilt from the batches' partition-leader-epoch fields
//! when its file is missing, cut back to the recovered log end and to the log start, and the
//! bound on the epochs a stored batch may carry (the field lies outside the CRC).

mod common;

use std::fs;
use std::path::Path;

use common::*;
use weir_broker::log::{EpochEntry, LogError, Offset};
use weir_protocol::record_batch::field;

const CHECKPOINT: &str = "leader-epoch-checkpoint";

fn entry(epoch: i32, start_offset: i64) -> EpochEntry {
    EpochEntry {
        epoch,
        start_offset,
    }
}

/// The checkpoint's bytes, written here independently of the broker's encoder (the format of
/// `broker/src/log/epochs.rs`).
fn checkpoint_bytes(entries: &[(i32, i64)]) -> Vec<u8> {
    let mut out = u32::try_from(entries.len()).unwrap().to_be_bytes().to_vec();
    for (epoch, offset) in entries {
        out.extend_from_slice(&epoch.to_be_bytes());
        out.extend_from_slice(&offset.to_be_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Writes `epoch` into the partition-leader-epoch field of each batch of the first segment
/// from byte `from` on (the batches are laid out back to back from byte 0).
fn set_epochs_from(dir: &Path, lens: &[usize], from_batch: usize, epoch: i32) {
    let path = dir.join("00000000000000000000.log");
    let mut data = fs::read(&path).unwrap();
    let mut pos: usize = lens[..from_batch].iter().sum();
    for len in &lens[from_batch..] {
        let at = pos + field::PARTITION_LEADER_EPOCH;
        data[at..at + 4].copy_from_slice(&epoch.to_be_bytes());
        pos += len;
    }
    fs::write(&path, data).unwrap();
}

#[test]
fn the_history_survives_a_crash_and_is_written_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1 << 20));
    assert_eq!(log.epoch_history(), vec![]);
    assert_eq!(log.end_offset_for_epoch(0), (-1, Offset(-1)));
    for i in 0..5 {
        log.append(&batch(&format!("a{i}"), 2, i)).unwrap();
    }
    assert_eq!(log.epoch_history(), vec![entry(0, 0)]);
    assert_eq!(log.latest_epoch(), Some(0));
    // A new log gets no file from its appends (a crash rebuilds the history from them)...
    assert!(!dir.path().join(CHECKPOINT).exists());
    log.sync().unwrap();
    drop(log); // no close: a crash
    let log = open(dir.path(), small_config(1 << 20));
    assert!(!log.recovery_report().clean);
    assert_eq!(log.epoch_history(), vec![entry(0, 0)]);
    // ... and from then on it has one, which follows every new epoch.
    assert_eq!(
        fs::read(dir.path().join(CHECKPOINT)).unwrap(),
        checkpoint_bytes(&[(0, 0)])
    );
    assert_eq!(log.end_offset_for_epoch(0), (0, Offset(10)));
    assert_eq!(log.end_offset_for_epoch(1), (-1, Offset(-1)));
    assert_eq!(log.end_offset_for_epoch(-1), (-1, Offset(-1)));
}

#[test]
fn a_missing_history_is_rebuilt_from_the_batches_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1 << 20));
    let mut lens = Vec::new();
    for i in 0..6 {
        let b = batch(&format!("b{i}"), 2, i);
        lens.push(b.len());
        log.append(&b).unwrap();
    }
    log.close().unwrap();
    drop(log);
    // As if leaders of epochs 3 then 5 had written batches 2..4 and 4..6 (offsets 4 and 8).
    set_epochs_from(dir.path(), &lens, 2, 3);
    set_epochs_from(dir.path(), &lens, 4, 5);
    fs::remove_file(dir.path().join(CHECKPOINT)).unwrap();

    let log = open(dir.path(), small_config(1 << 20));
    assert_eq!(
        log.epoch_history(),
        vec![entry(0, 0), entry(3, 4), entry(5, 8)]
    );
    assert_eq!(
        fs::read(dir.path().join(CHECKPOINT)).unwrap(),
        checkpoint_bytes(&[(0, 0), (3, 4), (5, 8)])
    );
    // Every batch reads back: their epochs are at most the history's latest.
    assert_eq!(read_all(&log).len(), 12);
    assert_eq!(log.end_offset_for_epoch(5), (5, Offset(12)));
    assert_eq!(log.end_offset_for_epoch(4), (3, Offset(8)));
    assert_eq!(log.end_offset_for_epoch(3), (3, Offset(8)));
    assert_eq!(log.end_offset_for_epoch(0), (0, Offset(4)));
    assert_eq!(log.end_offset_for_epoch(6), (-1, Offset(-1)));
    // This log writes epoch 0, older than its latest: the append is fenced, nothing written.
    let err = log.append(&batch("late", 1, 0)).unwrap_err();
    assert!(matches!(err, LogError::Epoch(_)), "{err:?}");
    assert_eq!(log.log_end_offset(), Offset(12));
}

#[test]
fn a_batch_epoch_above_the_history_is_damage_that_recovery_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open(dir.path(), small_config(1 << 20));
    let mut lens = Vec::new();
    for i in 0..4 {
        if i == 3 {
            // Closed and reopened: the log now has its history file.
            log.close().unwrap();
            drop(log);
            log = open(dir.path(), small_config(1 << 20));
            assert!(dir.path().join(CHECKPOINT).exists());
        }
        let b = batch(&format!("c{i}"), 1, i);
        lens.push(b.len());
        log.append(&b).unwrap();
    }
    log.sync().unwrap();
    drop(log); // a crash: recovery scans the active segment
    // A flipped epoch in the last batch: never written by this log (the history says 0).
    set_epochs_from(dir.path(), &lens, 3, 9);
    let log = open(dir.path(), small_config(1 << 20));
    assert_eq!(log.log_end_offset(), Offset(3));
    assert_eq!(log.recovery_report().truncated.len(), 1);
    assert_eq!(log.epoch_history(), vec![entry(0, 0)]);
}

#[test]
fn entries_past_the_recovered_end_are_dropped_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1 << 20));
    for i in 0..3 {
        log.append(&batch(&format!("d{i}"), 1, i)).unwrap();
    }
    log.sync().unwrap();
    drop(log);
    // A crash after epoch 4 reached the history but before its first batch reached the log.
    fs::write(
        dir.path().join(CHECKPOINT),
        checkpoint_bytes(&[(0, 0), (4, 3)]),
    )
    .unwrap();
    let log = open(dir.path(), small_config(1 << 20));
    assert_eq!(log.log_end_offset(), Offset(3));
    assert_eq!(log.epoch_history(), vec![entry(0, 0)]);
    assert_eq!(
        fs::read(dir.path().join(CHECKPOINT)).unwrap(),
        checkpoint_bytes(&[(0, 0)])
    );
    // A damaged file is rebuilt like a missing one.
    drop(log);
    fs::write(dir.path().join(CHECKPOINT), b"garbage").unwrap();
    let log = open(dir.path(), small_config(1 << 20));
    assert_eq!(log.epoch_history(), vec![entry(0, 0)]);
}

#[test]
fn moving_the_log_start_trims_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1 << 20));
    for i in 0..4 {
        log.append(&batch(&format!("e{i}"), 2, i)).unwrap();
    }
    assert_eq!(log.delete_records_before(Offset(5)).unwrap(), Offset(5));
    assert_eq!(log.epoch_history(), vec![entry(0, 5)]);
    assert_eq!(log.end_offset_for_epoch(0), (0, Offset(8)));
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), small_config(1 << 20));
    assert_eq!(log.epoch_history(), vec![entry(0, 5)]);
}

#[test]
fn a_new_log_writes_its_history_at_close_not_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1 << 20));
    assert!(!dir.path().join(CHECKPOINT).exists());
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), small_config(1 << 20));
    assert!(!dir.path().join(CHECKPOINT).exists());
    log.append(&batch("f", 1, 0)).unwrap();
    assert!(!dir.path().join(CHECKPOINT).exists());
    log.close().unwrap();
    assert_eq!(
        fs::read(dir.path().join(CHECKPOINT)).unwrap(),
        checkpoint_bytes(&[(0, 0)])
    );
}
