//! The log cleaner's throughput, with the machine's sequential read and write measured in
//! the same run, and produce throughput with and without the cleaner running beside it.
//!
//! - `machine/*`: sequential 1 MiB writes synced at the end of each 16 MiB file (what the
//!   cleaner does per segment) and sequential 1 MiB reads of a file evicted from the page
//!   cache first (`posix_fadvise(DONTNEED)`);
//! - `cleaner/clean_16MiB`: one forced cleaning of a fresh copy of a 16 MiB log (1 KiB
//!   records over 2,000 keys, four versions of each on average, 4 MiB segments), in MB of
//!   log cleaned per second;
//! - `produce/*`: appends of 64 KiB batches of 1 KiB records, synced per batch, alone and
//!   while another thread cleans copies of the 16 MiB log in a loop.
//!
//! Run with `cargo bench -p weir-broker --bench cleaner -- --quick`; the figures are in
//! `docs/benchmarks.md`.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use weir_broker::log::cleaner::{CleanOutcome, Cleaner, CleanerOptions};
use weir_broker::log::{CleanupPolicy, FlushPolicy, Flusher, LogConfig, LogOptions, PartitionLog};
use weir_protocol::record_batch::{BatchBuilder, RecordInput};

const MIB: usize = 1 << 20;
const LOG_BYTES: usize = 16 * MIB;
const KEYS: u32 = 2_000;

fn config(flush: FlushPolicy) -> LogConfig {
    LogConfig {
        segment_bytes: 4 << 20,
        retention_ms: None,
        flush,
        cleanup_policy: CleanupPolicy::COMPACT,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, flush: FlushPolicy) -> Arc<PartitionLog> {
    PartitionLog::open(dir, LogOptions::new(config(flush), Flusher::new(1))).expect("open")
}

/// A batch of 1 KiB records with keys `first..first+n` (modulo [`KEYS`]).
fn batch(first: u32, n: u32) -> bytes::Bytes {
    let value = vec![0x5au8; 1000];
    let mut b = BatchBuilder::new();
    let keys: Vec<String> = (first..first + n)
        .map(|k| format!("key-{:06}", k % KEYS))
        .collect();
    for key in &keys {
        b.push(RecordInput {
            key: Some(key.as_bytes()),
            value: Some(&value),
            timestamp: 1_700_000_000_000,
            ..RecordInput::default()
        });
    }
    b.build().expect("records")
}

/// The template log: [`LOG_BYTES`] of keyed records, synced, closed.
fn template(dir: &Path) {
    let log = open(dir, FlushPolicy::Os);
    let mut k = 0;
    while log.size_bytes() < LOG_BYTES as u64 {
        log.append(&batch(k, 16)).expect("append");
        k += 16;
    }
    log.close().expect("close");
}

/// Copies the files of `from` into a fresh `to` (removed first if present).
fn copy_dir(from: &Path, to: &Path) {
    match std::fs::remove_dir_all(to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("remove {to:?}: {e}"),
        _ => {}
    }
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

fn clean_copy(template: &Path, scratch: &Path) -> u64 {
    copy_dir(template, scratch);
    let log = open(scratch, FlushPolicy::EveryAppend);
    let before = log.size_bytes();
    let mut cleaner = Cleaner::new(CleanerOptions {
        force: true,
        dedupe_buffer_bytes: 16 * MIB,
        ..CleanerOptions::default()
    });
    match cleaner.clean(&log).expect("clean") {
        CleanOutcome::Cleaned(_) => before,
        other => panic!("not cleaned: {other:?}"),
    }
}

fn machine(c: &mut Criterion) {
    let mut g = c.benchmark_group("machine");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    let dir = tempfile::tempdir().expect("tempdir");
    let buf = vec![0xa5u8; MIB];
    g.throughput(Throughput::Bytes(16 * MIB as u64));
    g.bench_function("write_16MiB_then_fdatasync", |b| {
        b.iter(|| {
            let mut f = File::create(dir.path().join("w")).expect("create");
            for _ in 0..16 {
                f.write_all(&buf).expect("write");
            }
            f.sync_data().expect("sync");
        });
    });
    let path = dir.path().join("r");
    let mut f = File::create(&path).expect("create");
    for _ in 0..16 {
        f.write_all(&buf).expect("write");
    }
    f.sync_data().expect("sync");
    g.bench_function("read_16MiB_uncached", |b| {
        let mut out = vec![0u8; MIB];
        b.iter(|| {
            let mut f = File::open(&path).expect("open");
            rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).expect("fadvise");
            while f.read(&mut out).expect("read") > 0 {}
        });
    });
    g.finish();
}

fn cleaner(c: &mut Criterion) {
    let root = tempfile::tempdir().expect("tempdir");
    let template_dir = root.path().join("template");
    template(&template_dir);
    let scratch = root.path().join("scratch");
    let mut g = c.benchmark_group("cleaner");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Bytes(LOG_BYTES as u64));
    g.bench_function("clean_16MiB", |b| {
        b.iter_batched(
            || {
                copy_dir(&template_dir, &scratch);
                open(&scratch, FlushPolicy::EveryAppend)
            },
            |log| {
                let mut cleaner = Cleaner::new(CleanerOptions {
                    force: true,
                    dedupe_buffer_bytes: 16 * MIB,
                    ..CleanerOptions::default()
                });
                assert!(matches!(
                    cleaner.clean(&log).expect("clean"),
                    CleanOutcome::Cleaned(_)
                ));
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();

    let mut g = c.benchmark_group("produce");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let batch = batch(0, 64);
    g.throughput(Throughput::Bytes(batch.len() as u64));
    for with_cleaner in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path(), FlushPolicy::EveryAppend);
        let stop = Arc::new(AtomicBool::new(false));
        let background = with_cleaner.then(|| {
            let (stop, template_dir) = (Arc::clone(&stop), template_dir.clone());
            let scratch = root.path().join("background");
            std::thread::spawn(move || {
                let mut cleaned = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    cleaned += clean_copy(&template_dir, &scratch);
                }
                cleaned
            })
        });
        let name = if with_cleaner {
            "64KiB_synced_while_cleaning"
        } else {
            "64KiB_synced_alone"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                log.append(&batch).expect("append");
                log.sync().expect("sync");
            });
        });
        stop.store(true, Ordering::Relaxed);
        if let Some(t) = background {
            let cleaned = t.join().expect("cleaner thread");
            eprintln!(
                "background cleaner: {} MiB cleaned meanwhile",
                cleaned / MIB as u64
            );
        }
    }
    g.finish();
}

criterion_group!(benches, machine, cleaner);
criterion_main!(benches);
