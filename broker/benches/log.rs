//! Criterion benchmarks of the partition log's hot paths, with the machine's own limits
//! measured in the same run so every figure reads as a fraction of what the disk can do.
//!
//! - `machine/*`: plain file appends with and without `fdatasync` (the ceiling);
//! - `append/*`: `PartitionLog::append` for 1 KiB and 100 B records in 16 KiB and 1 MiB batches,
//!   buffered (`os`) and synced after every batch (`durable`);
//! - `write_path/*`: the log's two write paths (copy into the map, `pwritev` into the file),
//!   both synced per 1 MiB batch;
//! - `read/*`: sequential zero-copy reads from the page cache;
//! - `index/*`: random offset lookups (index binary search plus header walk).
//!
//! Run with `cargo bench -p weir-broker --bench log`; `bench/storage.sh` turns the results
//! into the table in `docs/benchmarks.md`.

use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use weir_broker::log::{
    FlushPolicy, Flusher, LogConfig, LogOptions, Offset, PartitionLog, WritePath,
};
use weir_protocol::record_batch::{BatchBuilder, RecordInput};

const MIB: usize = 1 << 20;
const SEGMENT_BYTES: u32 = 256 << 20;

fn batch(record_bytes: usize, batch_bytes: usize) -> Bytes {
    let value = vec![0x5au8; record_bytes];
    let mut b = BatchBuilder::new();
    while b.size_in_bytes() + record_bytes + 16 <= batch_bytes {
        b.push(RecordInput {
            value: Some(&value),
            timestamp: 1_700_000_000_000,
            ..RecordInput::default()
        });
    }
    b.build().expect("non-empty")
}

fn open_log(dir: &std::path::Path, flush: FlushPolicy) -> Arc<PartitionLog> {
    open_log_with(dir, flush, WritePath::default())
}

fn open_log_with(
    dir: &std::path::Path,
    flush: FlushPolicy,
    write_path: WritePath,
) -> Arc<PartitionLog> {
    let config = LogConfig {
        write_path,
        segment_bytes: SEGMENT_BYTES,
        retention_ms: None,
        flush,
        ..LogConfig::default()
    };
    PartitionLog::open(dir, LogOptions::new(config, Flusher::new(1))).expect("open log")
}

fn machine(c: &mut Criterion) {
    let mut g = c.benchmark_group("machine");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    let buf = vec![0xa5u8; MIB];
    for (name, sync) in [
        ("append_1MiB_fdatasync", true),
        ("append_1MiB_buffered", false),
    ] {
        g.throughput(Throughput::Bytes(MIB as u64));
        g.bench_function(name, |b| {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut n = 0u64;
            let mut file = File::create(dir.path().join("f")).expect("create");
            b.iter(|| {
                // A new file every 256 MiB, like a segment, so the figure is for a new file.
                if n % 256 == 255 {
                    file = File::create(dir.path().join(format!("f{n}"))).expect("create");
                }
                n += 1;
                file.write_all(&buf).expect("write");
                if sync {
                    file.sync_data().expect("sync");
                }
            });
        });
    }
    g.finish();
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    for (record, batch_bytes) in [(1024, 16 * 1024), (1024, MIB), (100, 16 * 1024), (100, MIB)] {
        let bytes = batch(record, batch_bytes);
        for durable in [false, true] {
            let mode = if durable { "durable" } else { "os" };
            let id = BenchmarkId::new(
                format!("{mode}/record_{record}B"),
                format!("batch_{}KiB", batch_bytes / 1024),
            );
            g.throughput(Throughput::Bytes(bytes.len() as u64));
            g.bench_with_input(id, &bytes, |b, bytes| {
                let dir = tempfile::tempdir().expect("tempdir");
                let log = open_log(dir.path(), FlushPolicy::Os);
                b.iter(|| {
                    log.append(bytes).expect("append");
                    if durable {
                        log.sync().expect("sync");
                    }
                });
            });
        }
    }
    g.finish();
}

fn write_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("write_path");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    let bytes = batch(1024, MIB);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    for (name, write_path) in [
        ("mmap_1MiB_fdatasync", WritePath::Mmap),
        ("pwrite_1MiB_fdatasync", WritePath::Pwrite),
    ] {
        g.bench_function(name, |b| {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = open_log_with(dir.path(), FlushPolicy::Os, write_path);
            b.iter(|| {
                log.append(&bytes).expect("append");
                log.sync().expect("sync");
            });
        });
    }
    g.finish();
}

fn read(c: &mut Criterion) {
    let mut g = c.benchmark_group("read");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open_log(dir.path(), FlushPolicy::Os);
    let bytes = batch(1024, 64 * 1024);
    while log.size_bytes() < 512 * MIB as u64 {
        log.append(&bytes).expect("append");
    }
    let end = log.log_end_offset();
    g.throughput(Throughput::Bytes(MIB as u64));
    g.bench_function("sequential_1MiB_from_cache", |b| {
        let mut offset = Offset(0);
        b.iter(|| {
            if offset >= end {
                offset = Offset(0);
            }
            let r = log.read(offset, MIB).expect("read");
            let last = weir_protocol::record_batch::BatchHeader::parse(
                &r.records[r.records.len() - bytes.len()..],
            )
            .expect("header");
            // Touch every byte, as a socket write would.
            std::hint::black_box(crc32c::crc32c(&r.records));
            offset = Offset(last.next_offset());
        });
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("index_lookup_random", |b| {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        b.iter(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let r = log
                .read(Offset((x % end.0 as u64) as i64), 1)
                .expect("read");
            std::hint::black_box(r.records.len());
        });
    });
    g.finish();
}

criterion_group!(benches, machine, append, write_path, read);
criterion_main!(benches);
