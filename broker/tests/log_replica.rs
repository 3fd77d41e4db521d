//! A replica's log (replicated partitions): appends carry the Raft term as their leader
//! epoch, consumers read only below the high watermark, and an uncommitted tail can be cut
//! (across segments, durably, and never below the high watermark), after which appends
//! continue at the cut and a reopen finds exactly what is left.

mod common;

use std::sync::Arc;

use common::*;
use weir_broker::log::{Flusher, LogError, LogOptions, Offset, PartitionLog};
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
