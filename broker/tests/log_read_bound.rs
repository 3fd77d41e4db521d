//! Reads racing appends: a read never hands out a batch at or beyond the high watermark it
//! reports, so a consumer that continues from the last offset it was given never asks for an
//! offset past the log end.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use weir_broker::log::{LogError, Offset, PartitionLog};
use weir_protocol::record_batch::BatchHeader;

/// How long the race runs at most; it stops at the first violation.
const RACE_FOR: Duration = Duration::from_secs(3);
const APPENDERS: usize = 4;
const READERS: usize = 4;

/// What one reader saw wrong, if anything.
fn check_read(log: &PartitionLog, at: Offset) -> Result<Offset, String> {
    let read = match log.read(at, 1 << 20) {
        Ok(read) => read,
        Err(LogError::OffsetOutOfRange { end, .. }) => {
            return Err(format!(
                "offset {at}, the next one after what earlier reads returned, is out of range (log end {end})"
            ));
        }
        Err(err) => return Err(format!("read at {at} failed: {err}")),
    };
    let hw = read.high_watermark;
    if at > hw {
        return Err(format!("read at {at} reports a high watermark of {hw}"));
    }
    let mut next = at;
    let mut pos = 0;
    while pos < read.records.len() {
        let header = BatchHeader::parse(&read.records[pos..]).map_err(|e| e.to_string())?;
        if header.base_offset != next.0 && pos > 0 {
            return Err(format!(
                "read at {at}: batch at {} where {next} was expected",
                header.base_offset
            ));
        }
        if header.base_offset >= hw.0 || header.last_offset() >= hw.0 {
            return Err(format!(
                "read at {at} returned a batch with offsets {}..={} at or beyond the high watermark {hw} it reported",
                header.base_offset,
                header.last_offset()
            ));
        }
        next = Offset(header.next_offset());
        pos += header.total_len().map_err(|e| e.to_string())?;
    }
    Ok(next)
}

#[test]
fn reads_racing_appends_never_pass_the_high_watermark_they_report() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments, so rolls (a new segment in the list before the end moves) are raced too.
    let log = open(dir.path(), small_config(64 * 1024));
    let stop = Arc::new(AtomicBool::new(false));
    let violation: Arc<Mutex<Option<String>>> = Arc::default();
    let reads = Arc::new(AtomicU64::new(0));
    let started = Instant::now();

    let appenders: Vec<_> = (0..APPENDERS)
        .map(|t| {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            thread::spawn(move || {
                let batches: Vec<_> = (1..=3).map(|n| batch(&format!("t{t}"), n, 0)).collect();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) && started.elapsed() < RACE_FOR {
                    log.append(&batches[i % batches.len()]).expect("append");
                    i += 1;
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            let (violation, reads) = (Arc::clone(&violation), Arc::clone(&reads));
            thread::spawn(move || {
                let mut at = Offset(0);
                while !stop.load(Ordering::Relaxed) && started.elapsed() < RACE_FOR {
                    match check_read(&log, at) {
                        Ok(next) => at = next,
                        Err(found) => {
                            violation
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .get_or_insert(found);
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in appenders.into_iter().chain(readers) {
        t.join().expect("thread");
    }
    let violation = violation
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    eprintln!(
        "{} reads, {} records appended, {} segments, {:?}",
        reads.load(Ordering::Relaxed),
        log.log_end_offset(),
        log.segment_count(),
        started.elapsed()
    );
    assert_eq!(violation, None);
    // Every record appended is readable once the appends are over.
    let end = log.log_end_offset();
    assert_eq!(read_all(&log).len() as i64, end.0);
}
