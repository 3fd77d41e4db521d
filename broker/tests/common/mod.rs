//! Helpers shared by the partition-log integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use bytes::Bytes;
use weir_broker::clock::{Clock, ManualClock};
use weir_broker::log::{
    Disk, FlushPolicy, Flusher, LogConfig, LogOptions, Offset, OsDisk, PartitionLog,
};
use weir_protocol::record_batch::{BatchBuilder, BatchHeader, RecordInput, Records};

/// A batch of `n` records whose values are `"{tag}-{i}"`, with timestamps `ts, ts+1, ...`.
pub fn batch(tag: &str, n: usize, ts: i64) -> Bytes {
    batch_sized(tag, n, ts, 0)
}

/// Like [`batch`], with `pad` extra bytes in every value.
pub fn batch_sized(tag: &str, n: usize, ts: i64, pad: usize) -> Bytes {
    let values: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut v = format!("{tag}-{i}").into_bytes();
            v.resize(v.len() + pad, b'.');
            v
        })
        .collect();
    let mut b = BatchBuilder::new();
    for (i, v) in values.iter().enumerate() {
        b.push(RecordInput {
            key: Some(b"k"),
            value: Some(v),
            timestamp: ts + i as i64,
            ..RecordInput::default()
        });
    }
    b.build().expect("non-empty batch")
}

/// A small-segment config so tests roll often.
pub fn small_config(segment_bytes: u32) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        retention_ms: None,
        retention_bytes: None,
        flush: FlushPolicy::Os,
        ..LogConfig::default()
    }
}

/// Options with a manual clock at `now` and the given disk.
pub fn options(config: LogConfig, disk: Arc<dyn Disk>, clock: Arc<dyn Clock>) -> LogOptions {
    LogOptions {
        config,
        flusher: Flusher::new(1),
        disk,
        clock,
    }
}

pub fn open(dir: &std::path::Path, config: LogConfig) -> Arc<PartitionLog> {
    PartitionLog::open(
        dir,
        options(
            config,
            Arc::new(OsDisk),
            Arc::new(ManualClock::new(1_000_000)),
        ),
    )
    .expect("open log")
}

/// Every record in the log as (offset, value), read batch by batch from the start, checking
/// that batches are whole, CRC-valid and dense.
pub fn read_all(log: &PartitionLog) -> Vec<(i64, Vec<u8>)> {
    read_from(log, log.log_start_offset(), 777)
}

pub fn read_from(log: &PartitionLog, from: Offset, max_bytes: usize) -> Vec<(i64, Vec<u8>)> {
    read_range(log, from, log.log_end_offset(), max_bytes)
}

/// Like [`read_from`], reading the batches that start below `end` only.
pub fn read_range(
    log: &PartitionLog,
    from: Offset,
    end: Offset,
    max_bytes: usize,
) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = from;
    while offset < end {
        let result = log.read(offset, max_bytes).expect("read");
        assert!(
            !result.records.is_empty(),
            "empty read at {offset} below end {end}"
        );
        let mut at = 0;
        while at < result.records.len() {
            let header = BatchHeader::parse(&result.records[at..]).expect("header");
            let len = header.total_len().expect("len");
            let whole = &result.records[at..at + len];
            weir_protocol::record_batch::validate_batch(whole).expect("returned batch is valid");
            for record in Records::new(whole).expect("records") {
                let record = record.expect("record");
                let o = record.offset(header.base_offset);
                if o >= offset.0 {
                    out.push((o, record.value.map(<[u8]>::to_vec).unwrap_or_default()));
                }
            }
            at += len;
            offset = Offset(header.next_offset());
        }
    }
    out
}

/// A tiny seeded generator (SplitMix64) so random tests print and replay their seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Seed from `WEIR_SEED` if set, else from the time; printed so a failure can be replayed.
    pub fn from_env(test: &str) -> Self {
        let seed = std::env::var("WEIR_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| {
                        u64::from(d.subsec_nanos()) ^ d.as_secs().rotate_left(32)
                    })
            });
        eprintln!("{test}: seed {seed} (replay with WEIR_SEED={seed})");
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}
