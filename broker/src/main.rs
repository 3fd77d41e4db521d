//! The `weir-broker` binary.
//!
//! Until the Kafka-protocol server lands, it runs a demonstration of the storage engine on the
//! data directory: it opens (recovering if needed) a partition log, appends durable batches
//! from concurrent writers sharing group-commit syncs, reads everything back, and closes
//! cleanly. Run it twice to see a clean reopen; kill it with `kill -9` to see recovery.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use weir_broker::log::{Flusher, LogConfig, LogOptions, Offset, PartitionLog};
use weir_protocol::record_batch::{BatchBuilder, RecordInput};

/// Weir broker (storage demonstration until the server lands).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Data directory.
    #[arg(long, env = "WEIR_DATA_DIR", default_value = "./weir-data")]
    data_dir: PathBuf,
    /// Address the Kafka-protocol listener will bind (not served yet).
    #[arg(long, env = "WEIR_LISTEN", default_value = "127.0.0.1:9092")]
    listen: String,
    /// Batches to append in the demonstration.
    #[arg(long, default_value_t = 2_000)]
    batches: usize,
    /// Records per batch.
    #[arg(long, default_value_t = 100)]
    records_per_batch: usize,
    /// Bytes per record value.
    #[arg(long, default_value_t = 1024)]
    record_bytes: usize,
    /// Concurrent writers (their durable appends share syncs).
    #[arg(long, default_value_t = 4)]
    writers: usize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    println!(
        "weir-broker {}: the Kafka-protocol server is not built yet (it would listen on {}).",
        env!("CARGO_PKG_VERSION"),
        args.listen
    );
    println!(
        "Running the storage engine demonstration in {}.",
        args.data_dir.display()
    );

    let flusher = Flusher::new(1);
    let dir = args.data_dir.join("demo-0");
    let opened = Instant::now();
    let log = PartitionLog::open(&dir, LogOptions::new(LogConfig::default(), flusher))?;
    let report = log.recovery_report();
    println!(
        "opened {} in {:?}: {} segment(s), offsets [{}, {}), clean shutdown: {}, scanned {}, cut {}",
        dir.display(),
        opened.elapsed(),
        report.segments,
        log.log_start_offset(),
        log.log_end_offset(),
        report.clean,
        report.segments_scanned,
        report.truncated.len()
    );

    let value = vec![b'w'; args.record_bytes];
    let mut builder = BatchBuilder::new();
    for i in 0..args.records_per_batch {
        builder.push(RecordInput {
            value: Some(&value),
            timestamp: i as i64,
            ..RecordInput::default()
        });
    }
    let batch = builder.build().ok_or("empty batch")?;
    let start_offset = log.log_end_offset();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..args.writers.max(1) {
        let (log, batch) = (Arc::clone(&log), batch.clone());
        let n = args.batches / args.writers.max(1)
            + usize::from(w < args.batches % args.writers.max(1));
        tasks.push(tokio::spawn(async move {
            for _ in 0..n {
                let info = log.append(&batch)?;
                log.wait_durable(info.next_offset()).await?;
            }
            Ok::<_, weir_broker::log::LogError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    let bytes = (batch.len() * args.batches) as f64;
    println!(
        "appended {} batches ({} records, {:.1} MiB) durably in {:?}: {:.1} MB/s",
        args.batches,
        args.batches * args.records_per_batch,
        bytes / (1 << 20) as f64,
        elapsed,
        bytes / elapsed.as_secs_f64() / 1e6
    );

    let started = Instant::now();
    let (mut offset, mut read) = (start_offset, 0usize);
    while offset < log.log_end_offset() {
        let result = log.read(offset, 1 << 20)?;
        read += result.records.len();
        let batches = weir_protocol::record_batch::BatchHeader::parse(&result.records)?;
        let mut at = 0;
        let mut next = batches.next_offset();
        while at < result.records.len() {
            let h = weir_protocol::record_batch::BatchHeader::parse(&result.records[at..])?;
            next = h.next_offset();
            at += h.total_len()?;
        }
        offset = Offset(next);
    }
    println!(
        "read back {:.1} MiB in {:?}",
        read as f64 / (1 << 20) as f64,
        started.elapsed()
    );
    log.close()?;
    println!("closed cleanly at offset {}", log.log_end_offset());
    Ok(())
}
