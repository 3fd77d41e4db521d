//! Property tests of the partition log against a plain in-memory model: random batches,
//! segment sizes, read sizes, timestamps and (clean or crash-like) reopens.

mod common;

use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use weir_broker::clock::ManualClock;
use weir_broker::log::{LogConfig, Offset, OsDisk, PartitionLog, WritePath};
use weir_protocol::record_batch::{BatchBuilder, BatchHeader, RecordInput};

/// One step of a generated history.
#[derive(Debug, Clone)]
enum Step {
    /// Append a batch of records: (value length, timestamp) each.
    Append(Vec<(usize, i64)>),
    /// Close cleanly and reopen.
    CleanReopen,
    /// Drop without closing (as after `kill -9`) and reopen.
    CrashReopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => prop::collection::vec((0usize..300, 0i64..10_000), 1..8).prop_map(Step::Append),
        1 => Just(Step::CleanReopen),
        1 => Just(Step::CrashReopen),
    ]
}

fn encode(records: &[(usize, i64)], first_offset: i64) -> (bytes::Bytes, Vec<(Vec<u8>, i64)>) {
    let values: Vec<(Vec<u8>, i64)> = records
        .iter()
        .enumerate()
        .map(|(i, &(len, ts))| {
            let mut v = format!("{}:", first_offset + i as i64).into_bytes();
            v.resize(v.len() + len, b'x');
            (v, ts)
        })
        .collect();
    let mut b = BatchBuilder::new();
    for (v, ts) in &values {
        b.push(RecordInput {
            value: Some(v),
            timestamp: *ts,
            ..RecordInput::default()
        });
    }
    (b.build().unwrap(), values)
}

fn open_with(dir: &std::path::Path, config: &LogConfig) -> Arc<PartitionLog> {
    PartitionLog::open(
        dir,
        options(
            config.clone(),
            Arc::new(OsDisk),
            Arc::new(ManualClock::new(0)),
        ),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn the_log_behaves_like_a_vector_of_records(
        segment_bytes in 1024u32..16_384,
        index_interval in prop::sample::select(vec![1u32, 100, 512, 4096]),
        write_path in prop::sample::select(vec![WritePath::Pwrite, WritePath::Mmap]),
        steps in prop::collection::vec(step(), 1..60),
        max_bytes in prop::collection::vec(1usize..8192, 8),
        probes in prop::collection::vec(0u64..u64::MAX, 16),
        time_probes in prop::collection::vec(-1i64..10_100, 16),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes, index_interval_bytes: index_interval, write_path, ..small_config(segment_bytes) };
        let mut log = open_with(dir.path(), &config);
        // The model: every record's value and timestamp, by offset.
        let mut model: Vec<(Vec<u8>, i64)> = Vec::new();
        for step in &steps {
            match step {
                Step::Append(records) => {
                    let (batch, values) = encode(records, model.len() as i64);
                    if batch.len() > segment_bytes as usize {
                        prop_assert!(log.append(&batch).is_err());
                        continue;
                    }
                    let info = log.append(&batch).unwrap();
                    prop_assert_eq!(info.base_offset, Offset(model.len() as i64));
                    prop_assert_eq!(info.last_offset, Offset((model.len() + values.len() - 1) as i64));
                    model.extend(values);
                }
                Step::CleanReopen => {
                    log.close().unwrap();
                    drop(log);
                    log = open_with(dir.path(), &config);
                    prop_assert!(log.recovery_report().clean);
                }
                Step::CrashReopen => {
                    drop(log);
                    log = open_with(dir.path(), &config);
                    // Nothing was damaged, so nothing may be cut.
                    prop_assert!(log.recovery_report().truncated.is_empty(), "{:?}", log.recovery_report());
                }
            }
            prop_assert_eq!(log.log_end_offset(), Offset(model.len() as i64));
        }

        // Round trip with several read sizes: dense offsets, exact values, whole batches only.
        for &max in &max_bytes {
            let got = read_from(&log, Offset(0), max);
            prop_assert_eq!(got.len(), model.len());
            for (i, (offset, value)) in got.iter().enumerate() {
                prop_assert_eq!(*offset, i as i64);
                prop_assert_eq!(value, &model[i].0);
            }
        }
        if model.is_empty() {
            return Ok(());
        }

        // Index lookups agree with a linear scan: the first batch returned contains the offset,
        // and a read returns at least one whole batch even when max_bytes is 1.
        for &p in &probes {
            let target = (p % model.len() as u64) as i64;
            let r = log.read(Offset(target), 1).unwrap();
            let header = BatchHeader::parse(&r.records).unwrap();
            prop_assert!(header.base_offset <= target && target <= header.last_offset(),
                "offset {} not in batch [{}, {}]", target, header.base_offset, header.last_offset());
            prop_assert_eq!(header.total_len().unwrap(), r.records.len());
        }

        // Time lookups agree with the first record at or after the timestamp.
        for &t in &time_probes {
            let linear = model.iter().position(|(_, ts)| *ts >= t).map(|o| Offset(o as i64));
            prop_assert_eq!(log.offset_for_timestamp(t), linear, "timestamp {}", t);
        }
    }
}
