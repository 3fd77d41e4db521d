//! Behaviour of the partition log through its public API: offsets, reads, rolls, indexes,
//! time lookups, retention, durability and clean reopen.

mod common;

use std::sync::Arc;

use common::*;
use weir_broker::clock::ManualClock;
use weir_broker::log::{
    FaultyDisk, FlushPolicy, LogConfig, LogError, Offset, OsDisk, PartitionLog,
};

#[test]
fn offsets_are_assigned_densely_and_batches_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1 << 20));
    assert_eq!(log.log_end_offset(), Offset(0));
    let a = log.append(&batch("a", 3, 100)).unwrap();
    let b = log.append(&batch("b", 2, 200)).unwrap();
    assert_eq!((a.base_offset, a.last_offset), (Offset(0), Offset(2)));
    assert_eq!((b.base_offset, b.last_offset), (Offset(3), Offset(4)));
    assert_eq!(log.log_end_offset(), Offset(5));
    assert_eq!(log.high_watermark(), Offset(5));
    let all = read_all(&log);
    let values: Vec<_> = all
        .iter()
        .map(|(o, v)| (*o, String::from_utf8(v.clone()).unwrap()))
        .collect();
    assert_eq!(
        values,
        vec![
            (0, "a-0".into()),
            (1, "a-1".into()),
            (2, "a-2".into()),
            (3, "b-0".into()),
            (4, "b-1".into())
        ]
    );
}

#[test]
fn read_starts_with_the_batch_containing_the_offset_and_returns_at_least_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1 << 20));
    let first = batch("a", 5, 0);
    log.append(&first).unwrap();
    log.append(&batch("b", 5, 0)).unwrap();
    // Offset 3 lies inside the first batch: the whole batch comes back, even with max_bytes 1.
    let r = log.read(Offset(3), 1).unwrap();
    assert_eq!(r.records.len(), first.len());
    assert_eq!(
        &r.records[8..],
        &first[8..]
            .iter()
            .enumerate()
            .map(|(i, b)| if (4..8).contains(&i) { 0 } else { *b })
            .collect::<Vec<_>>()[..]
    );
    // Enough room for both batches returns both.
    let both = log.read(Offset(0), 1 << 20).unwrap();
    assert!(both.records.len() > first.len());
    // At the end: empty; beyond: out of range.
    assert!(log.read(Offset(10), 100).unwrap().records.is_empty());
    assert!(matches!(
        log.read(Offset(11), 100),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn invalid_batches_are_rejected_without_effect() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(4096));
    let good = batch("x", 2, 0);
    let mut bad_crc = good.to_vec();
    *bad_crc.last_mut().unwrap() ^= 0xff;
    assert!(matches!(
        log.append(&bad_crc),
        Err(LogError::InvalidBatch(_))
    ));
    let mut bad_magic = good.to_vec();
    bad_magic[16] = 1;
    assert!(matches!(
        log.append(&bad_magic),
        Err(LogError::InvalidBatch(_))
    ));
    assert!(matches!(
        log.append(&good[..good.len() - 1]),
        Err(LogError::InvalidBatch(_))
    ));
    assert!(matches!(
        log.append(b"garbage"),
        Err(LogError::InvalidBatch(_))
    ));
    let huge = batch_sized("h", 1, 0, 8000);
    assert!(matches!(
        log.append(&huge),
        Err(LogError::BatchTooLarge { .. })
    ));
    assert_eq!(log.log_end_offset(), Offset(0));
    log.append(&good).unwrap();
    assert_eq!(read_all(&log).len(), 2);
}

#[test]
fn segments_roll_when_full_and_offsets_stay_dense_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(2048));
    let mut expected = 0;
    for i in 0..60 {
        let info = log
            .append(&batch(&format!("r{i}"), 1 + i % 4, i as i64))
            .unwrap();
        assert_eq!(info.base_offset, Offset(expected));
        expected += 1 + i as i64 % 4;
    }
    assert!(
        log.segment_count() >= 3,
        "segments: {}",
        log.segment_count()
    );
    let before = read_all(&log);
    assert_eq!(before.len() as i64, expected);
    assert!(before.windows(2).all(|w| w[1].0 == w[0].0 + 1));
    log.close().unwrap();
    assert!(matches!(
        log.append(&batch("late", 1, 0)),
        Err(LogError::Closed(_))
    ));
    drop(log);

    let log = open(dir.path(), small_config(2048));
    assert!(log.recovery_report().clean);
    assert_eq!(log.recovery_report().segments_scanned, 0);
    assert_eq!(log.log_end_offset(), Offset(expected));
    assert_eq!(read_all(&log), before);
    let info = log.append(&batch("after", 2, 999)).unwrap();
    assert_eq!(info.base_offset, Offset(expected));
    // A reopen without close (as after kill -9) scans and finds the same data.
    drop(log);
    let log = open(dir.path(), small_config(2048));
    assert!(!log.recovery_report().clean);
    assert!(log.recovery_report().truncated.is_empty());
    assert_eq!(log.log_end_offset(), Offset(expected + 2));
    assert_eq!(&read_all(&log)[..before.len()], &before[..]);
}

#[test]
fn segments_roll_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(0));
    let config = LogConfig {
        segment_ms: 1_000,
        ..small_config(1 << 20)
    };
    let log =
        PartitionLog::open(dir.path(), options(config, Arc::new(OsDisk), clock.clone())).unwrap();
    log.append(&batch("a", 1, 0)).unwrap();
    clock.advance(999);
    log.append(&batch("b", 1, 0)).unwrap();
    assert_eq!(log.segment_count(), 1);
    clock.advance(1);
    log.append(&batch("c", 1, 0)).unwrap();
    assert_eq!(log.segment_count(), 2);
    assert_eq!(read_all(&log).len(), 3);
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config(1024));
    // Batches of 4 records, timestamps 1000 + 10*i (+0..3).
    for i in 0..50 {
        log.append(&batch("t", 4, 1000 + 10 * i)).unwrap();
    }
    assert!(log.segment_count() > 3);
    let linear = |ts: i64| -> Option<i64> {
        // record j of batch i has timestamp 1000 + 10*i + j and offset 4*i + j
        (0..200).find(|o| 1000 + 10 * (o / 4) + o % 4 >= ts)
    };
    for ts in [
        0, 1000, 1001, 1003, 1004, 1005, 1010, 1257, 1490, 1493, 1494, 5000,
    ] {
        assert_eq!(
            log.offset_for_timestamp(ts).map(|o| o.0),
            linear(ts),
            "timestamp {ts}"
        );
    }
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), small_config(1024));
    for ts in [1000, 1257, 1493] {
        assert_eq!(
            log.offset_for_timestamp(ts).map(|o| o.0),
            linear(ts),
            "after reopen, timestamp {ts}"
        );
    }
}

#[test]
fn retention_deletes_old_sealed_segments_and_advances_the_start_offset() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(10_000));
    let config = LogConfig {
        retention_bytes: Some(4096),
        retention_ms: Some(5_000),
        ..small_config(1024)
    };
    let log =
        PartitionLog::open(dir.path(), options(config, Arc::new(OsDisk), clock.clone())).unwrap();
    for i in 0..40 {
        log.append(&batch_sized("r", 2, 9_000 + i, 100)).unwrap();
    }
    let segments = log.segment_count();
    let deleted = log.apply_retention().unwrap();
    assert!(deleted > 0 && log.segment_count() == segments - deleted);
    assert!(log.size_bytes() >= 4096 - 1024, "kept {}", log.size_bytes());
    let start = log.log_start_offset();
    assert!(start > Offset(0));
    assert!(matches!(
        log.read(Offset(0), 100),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(read_all(&log).first().map(|r| r.0), Some(start.0));
    // By age: everything sealed is older than 5 s once the clock moves on; the active stays.
    clock.advance(60_000);
    log.apply_retention().unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_end_offset(), Offset(80));
    log.append(&batch("after", 1, 0)).unwrap();
    // Deleted segments stay deleted across a reopen.
    drop(log);
    let log = open(dir.path(), small_config(1024));
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_end_offset(), Offset(81));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_durable_appends_share_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FaultyDisk::new(i64::MAX));
    let config = LogConfig {
        flush: FlushPolicy::EveryAppend,
        ..small_config(1 << 20)
    };
    let log = PartitionLog::open(
        dir.path(),
        options(config, disk.clone(), Arc::new(ManualClock::new(0))),
    )
    .unwrap();
    assert!(log.sync_before_ack());
    let syncs_before = disk.sync_count();
    let mut tasks = Vec::new();
    for t in 0..32 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let info = log.append(&batch(&format!("{t}-{i}"), 1, 0)).unwrap();
                log.wait_durable(info.next_offset()).await.unwrap();
                assert!(log.durable_offset() >= info.next_offset());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let syncs = disk.sync_count() - syncs_before;
    assert_eq!(log.durable_offset(), Offset(320));
    // 320 durable appends; group commit must have shared syncs between them.
    assert!(syncs < 320, "{syncs} syncs for 320 appends");
}

#[tokio::test]
async fn interval_policy_syncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush: FlushPolicy::Interval(std::time::Duration::from_millis(20)),
        ..small_config(1 << 20)
    };
    let log = PartitionLog::open(
        dir.path(),
        options(config, Arc::new(OsDisk), Arc::new(ManualClock::new(0))),
    )
    .unwrap();
    assert!(!log.sync_before_ack());
    log.append(&batch("a", 3, 0)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while log.durable_offset() < Offset(3) {
        assert!(
            std::time::Instant::now() < deadline,
            "interval sync never happened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[test]
fn unsynced_bytes_count_what_waits_for_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        LogConfig {
            flush: FlushPolicy::Os,
            ..small_config(1 << 20)
        },
    );
    assert_eq!(log.unsynced_bytes(), 0);
    let (a, b) = (batch("a", 3, 100), batch("b", 2, 200));
    log.append(&a).unwrap();
    log.append(&b).unwrap();
    assert_eq!(log.unsynced_bytes(), (a.len() + b.len()) as u64);
    log.sync().unwrap();
    assert_eq!(log.unsynced_bytes(), 0);
    let c = batch("c", 1, 300);
    log.append(&c).unwrap();
    assert_eq!(log.unsynced_bytes(), c.len() as u64);
}
