//! Failure injection through [`FaultyDisk`]: a full disk when a segment rolls (or when a log is
//! opened), and `fdatasync` errors with synchronous syncs, single waiters and many concurrent
//! waiters. The log must stay usable after a full disk, stop (fail-stop) after a sync error,
//! wake every waiter with an error, and never lose what it reported durable.
//!
//! None of these tests may die of `SIGBUS`: allocation failures must surface as errors before
//! anything is stored through a map.
//!
//! At the end, a recording [`Disk`] checks the order of syncs, and two regression tests pin
//! down bugs found here: the directory sync after a roll whose sealed segment retention had
//! already deleted, and a truncated time index that used to be trusted.

mod common;

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use weir_broker::clock::ManualClock;
use weir_broker::log::{
    Disk, FaultyDisk, FlushPolicy, LogConfig, LogError, Offset, OsDisk, PartitionLog, WritePath,
};

/// Segment size of the disk-full tests: small, so that a couple of segments fill the budget.
const SEGMENT: u32 = 4096;

type Records = Vec<(i64, Vec<u8>)>;

fn open_on(
    dir: &Path,
    config: LogConfig,
    disk: &Arc<FaultyDisk>,
) -> Result<Arc<PartitionLog>, LogError> {
    PartitionLog::open(
        dir,
        options(
            config,
            Arc::clone(disk) as _,
            Arc::new(ManualClock::new(1_000_000)),
        ),
    )
}

/// The record values [`batch_sized`] puts in a batch, as `read_all` reports them from `base`.
fn records_of(tag: &str, n: usize, pad: usize, base: i64) -> Records {
    (0..n)
        .map(|i| {
            let mut v = format!("{tag}-{i}").into_bytes();
            v.resize(v.len() + pad, b'.');
            (base + i as i64, v)
        })
        .collect()
}

/// Appends a ~300-byte batch tagged `tag` and records what it should read back as.
fn append_tracked(
    log: &PartitionLog,
    tag: &str,
    expected: &mut Records,
) -> Result<Offset, LogError> {
    let info = log.append(&batch_sized(tag, 2, 5_000, 100))?;
    let want = log_end_before(expected);
    assert_eq!(
        info.base_offset,
        Offset(want),
        "offsets must stay dense ({tag})"
    );
    expected.extend(records_of(tag, 2, 100, want));
    Ok(info.next_offset())
}

fn log_end_before(expected: &Records) -> i64 {
    expected.last().map_or(0, |(o, _)| o + 1)
}

/// Sizes of the files of the segment with base offset 0: `.log`, `.index`, `.timeindex`. With
/// preallocation this is exactly what `Disk::allocate` is charged for one segment.
fn segment_file_sizes(dir: &Path) -> [u64; 3] {
    ["log", "index", "timeindex"].map(|ext| {
        fs::metadata(dir.join(format!("{:020}.{ext}", 0)))
            .unwrap()
            .len()
    })
}

/// The smallest `FaultyDisk` budget with which a new log opens: the allocation charge of one
/// segment, found by bisection.
fn open_budget(config: &LogConfig) -> i64 {
    let (mut lo, mut hi) = (0i64, 1 << 24);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let probe = tempfile::tempdir().unwrap();
        if open_on(
            probe.path(),
            config.clone(),
            &Arc::new(FaultyDisk::new(mid)),
        )
        .is_ok()
        {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// What one new segment costs the disk's budget, file by file (`.log`, `.index`,
/// `.timeindex`), measured on throwaway logs.
fn segment_charge(config: &LogConfig) -> [i64; 3] {
    let probe = tempfile::tempdir().unwrap();
    let log = open(probe.path(), config.clone());
    let sizes = segment_file_sizes(probe.path()).map(|s| i64::try_from(s).unwrap());
    drop(log);
    assert_eq!(
        sizes[0],
        i64::from(config.segment_bytes),
        "the .log file is preallocated to segment.bytes"
    );
    // These tests place the failure in a given file of a roll: they assume the three files
    // are allocated through `Disk::allocate`, each to its full size.
    assert_eq!(
        sizes.iter().sum::<i64>(),
        open_budget(config),
        "a segment no longer charges exactly its three preallocated files to Disk::allocate: {sizes:?}"
    );
    sizes
}

/// Base offsets named by the files with extension `ext` in `dir`.
fn segment_bases(dir: &Path, ext: &str) -> Vec<i64> {
    let mut bases: Vec<i64> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            (path.extension()? == ext).then(|| path.file_stem()?.to_str()?.parse().ok())?
        })
        .collect();
    bases.sort_unstable();
    bases
}

/// Checks that every segment of the log has its three files and that nothing else (no half
/// created segment) is left in the directory.
fn assert_no_partial_segment(log: &PartitionLog) {
    let logs = segment_bases(log.dir(), "log");
    assert_eq!(
        logs.len(),
        log.segment_count(),
        "one .log file per segment: {logs:?}"
    );
    assert_eq!(
        segment_bases(log.dir(), "index"),
        logs,
        "one .index per segment"
    );
    assert_eq!(
        segment_bases(log.dir(), "timeindex"),
        logs,
        "one .timeindex per segment"
    );
}

/// Appends until the log refuses with `DiskFull`, which must happen at a roll. Returns the
/// number of successful appends.
fn fill_until_disk_full(log: &PartitionLog, tag: &str, expected: &mut Records) -> usize {
    let segments = log.segment_count();
    for i in 0..1_000 {
        match append_tracked(log, &format!("{tag}{i}"), expected) {
            Ok(_) => {
                if i % 5 == 4 {
                    log.sync().expect("sync while space lasts");
                }
            }
            Err(LogError::DiskFull { .. }) => {
                assert!(
                    log.segment_count() > segments,
                    "disk full before the first roll of this round"
                );
                return i;
            }
            Err(other) => panic!("expected DiskFull, got {other}"),
        }
    }
    panic!("the disk never filled up");
}

/// The disk runs out while creating the next segment; which of the three files fails depends
/// on `slack`, the budget left once two whole segments are allocated.
fn disk_full_at_roll(slack: impl Fn([i64; 3]) -> i64) {
    let config = small_config(SEGMENT);
    let charge = segment_charge(&config);
    let per_segment: i64 = charge.iter().sum();
    let dir = tempfile::tempdir().unwrap();
    // Room for the initial segment, one roll, and `slack` that is too little for a third.
    let disk = Arc::new(FaultyDisk::new(2 * per_segment + slack(charge)));
    let log = open_on(dir.path(), config.clone(), &disk).unwrap();
    let mut expected = Records::new();

    let appended = fill_until_disk_full(&log, "a", &mut expected);
    assert!(
        appended > 10,
        "only {appended} appends before the disk was full"
    );
    assert_eq!(log.segment_count(), 2);
    assert!(!log.is_failed(), "a full disk must not fail the log");
    let end = log.log_end_offset();
    assert_eq!(end, Offset(log_end_before(&expected)));
    assert_eq!(
        read_all(&log),
        expected,
        "data before the full disk reads back intact"
    );
    assert_no_partial_segment(&log);

    // While full, the same append keeps failing, and changes nothing.
    for _ in 0..3 {
        let err = log
            .append(&batch_sized("retry", 2, 5_000, 100))
            .unwrap_err();
        assert!(
            matches!(err, LogError::DiskFull { .. }),
            "retry while full: {err}"
        );
        assert_eq!(log.log_end_offset(), end);
        assert!(!log.is_failed());
    }
    assert_no_partial_segment(&log);
    // Everything accepted can still be made durable.
    assert_eq!(log.sync().unwrap(), end);
    assert_eq!(log.durable_offset(), end);
    assert_eq!(read_all(&log), expected);

    // Space comes back (enough for one segment): appends resume where they stopped, densely,
    // until the next roll hits the limit again.
    disk.add_space(per_segment);
    let appended = fill_until_disk_full(&log, "b", &mut expected);
    assert!(
        appended > 10,
        "only {appended} appends after space was freed"
    );
    assert_eq!(log.segment_count(), 3);
    assert!(!log.is_failed());
    assert_eq!(read_all(&log), expected);
    assert_no_partial_segment(&log);

    // Reopened on a healthy disk after a clean close: everything is there.
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), config.clone());
    assert!(log.recovery_report().clean);
    assert_eq!(read_all(&log), expected);
    assert_eq!(
        log.append(&batch("after", 1, 0)).unwrap().base_offset,
        Offset(log_end_before(&expected))
    );
}

#[test]
fn disk_full_allocating_the_next_log_file_is_retryable() {
    disk_full_at_roll(|_| i64::from(SEGMENT) / 2);
}

#[test]
fn disk_full_allocating_the_next_offset_index_is_retryable() {
    // The .log file fits, its .index does not.
    disk_full_at_roll(|[log, index, _]| log + index / 2);
}

#[test]
fn disk_full_allocating_the_next_time_index_is_retryable() {
    // The .log and .index files fit, the .timeindex does not.
    disk_full_at_roll(|[log, index, time]| log + index + time / 2);
}

#[test]
fn disk_full_when_opening_fails_the_open_and_loses_nothing() {
    let config = small_config(SEGMENT);
    let dir = tempfile::tempdir().unwrap();

    // A new log cannot even allocate its first segment: an error, no files left behind.
    let err = open_on(dir.path(), config.clone(), &Arc::new(FaultyDisk::new(100))).unwrap_err();
    assert!(
        matches!(err, LogError::Io { .. } | LogError::DiskFull { .. }),
        "{err}"
    );
    assert!(segment_bases(dir.path(), "log").is_empty());

    let log = open(dir.path(), config.clone());
    let mut expected = Records::new();
    for i in 0..30 {
        append_tracked(&log, &format!("o{i}"), &mut expected).unwrap();
    }
    assert!(log.segment_count() >= 2);
    log.sync().unwrap();

    // Reopening after a crash (no close), and after a clean close, with no space to
    // preallocate the active segment again: the open fails, the data stays.
    drop(log);
    assert!(open_on(dir.path(), config.clone(), &Arc::new(FaultyDisk::new(0))).is_err());
    let log = open(dir.path(), config.clone());
    assert_eq!(read_all(&log), expected);
    log.close().unwrap();
    drop(log);
    assert!(open_on(dir.path(), config.clone(), &Arc::new(FaultyDisk::new(0))).is_err());
    let log = open(dir.path(), config);
    assert_eq!(read_all(&log), expected);
    assert_eq!(
        log.append(&batch("after", 1, 0)).unwrap().base_offset,
        Offset(log_end_before(&expected))
    );
}

fn assert_failed(result: Result<impl std::fmt::Debug, LogError>, what: &str) {
    match result {
        Err(LogError::Failed { .. }) => {}
        other => panic!("{what}: expected LogError::Failed, got {other:?}"),
    }
}

/// After a sync error the log refuses writes, keeps serving reads, and a reopen finds at least
/// everything that was durable. `sealed_pending` makes the failing sync one that also has a
/// rolled, not yet synced segment to write.
fn sync_failure_stops_the_log(sealed_pending: bool) {
    let config = small_config(SEGMENT);
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FaultyDisk::new(i64::MAX));
    let log = open_on(dir.path(), config.clone(), &disk).unwrap();
    let mut expected = Records::new();
    for i in 0..40 {
        append_tracked(&log, &format!("d{i}"), &mut expected).unwrap();
    }
    let durable = log.sync().unwrap();
    assert_eq!(durable, log.log_end_offset());
    assert_eq!(log.durable_offset(), durable);
    let segments = log.segment_count();
    // Not yet durable: a few batches, enough to roll at least once when asked to.
    let mut i = 0;
    while i < 3 || (sealed_pending && log.segment_count() == segments) {
        append_tracked(&log, &format!("n{i}"), &mut expected).unwrap();
        i += 1;
    }
    let syncs = disk.sync_count();

    disk.set_fail_sync(true);
    assert_failed(log.sync(), "sync on a failing disk");
    assert!(log.is_failed());
    assert_eq!(
        log.durable_offset(),
        durable,
        "a failed sync must not advance the durable offset"
    );
    let end = log.log_end_offset();
    assert_failed(log.append(&batch("late", 1, 0)), "append after the failure");
    assert_eq!(
        log.log_end_offset(),
        end,
        "a refused append must not change the log"
    );
    // Fail-stop: the log does not try again even once the disk would work.
    disk.set_fail_sync(false);
    assert_failed(log.sync(), "sync after the failure");
    assert_failed(
        log.append(&batch("later", 1, 0)),
        "append after the disk recovered",
    );
    assert_eq!(
        disk.sync_count(),
        syncs,
        "no sync may be attempted after the failure"
    );
    assert_eq!(log.durable_offset(), durable);
    // Reads still work, for everything appended (durable or not).
    assert_eq!(read_all(&log), expected);
    assert_eq!(log.read(Offset(0), 1).unwrap().high_watermark, end);

    // Reopen on a healthy disk: recovery keeps at least everything durable; anything beyond
    // must be exactly what was appended.
    drop(log);
    let log = open(dir.path(), config);
    assert!(!log.recovery_report().clean);
    let recovered = read_all(&log);
    let d = usize::try_from(durable.0).unwrap();
    assert!(
        recovered.len() >= d,
        "lost durable records: {} < {d}",
        recovered.len()
    );
    assert_eq!(
        &recovered[..],
        &expected[..recovered.len()],
        "recovered records differ"
    );
    let next = log.log_end_offset();
    assert_eq!(log.append(&batch("again", 1, 0)).unwrap().base_offset, next);
    log.sync().unwrap();
}

#[test]
fn sync_failure_stops_the_log_and_reopen_recovers_durable_data() {
    sync_failure_stops_the_log(false);
}

#[test]
fn sync_failure_with_a_rolled_unsynced_segment_stops_the_log() {
    sync_failure_stops_the_log(true);
}

/// A write error on the `pwrite` path stops the log like a sync error: the append fails with
/// `Failed`, nothing is published, reads of earlier data keep working, and a reopen on a healthy
/// disk finds every record that had been synced, nothing torn after them.
#[test]
fn write_failure_stops_the_log_and_reopen_recovers() {
    let config = LogConfig {
        write_path: WritePath::Pwrite,
        ..small_config(SEGMENT)
    };
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FaultyDisk::new(i64::MAX));
    let log = open_on(dir.path(), config.clone(), &disk).unwrap();
    let mut expected = Records::new();
    for i in 0..5 {
        append_tracked(&log, &format!("w{i}"), &mut expected).unwrap();
    }
    log.sync().unwrap();
    let end = log.log_end_offset();
    disk.set_fail_write(true);
    assert_failed(
        log.append(&batch("lost", 1, 0)),
        "append with a failing write",
    );
    assert!(log.is_failed());
    assert_eq!(
        log.log_end_offset(),
        end,
        "a failed write publishes nothing"
    );
    disk.set_fail_write(false);
    assert_failed(
        log.append(&batch("after", 1, 0)),
        "append after a write failure",
    );
    assert_failed(log.sync(), "sync after a write failure");
    assert_eq!(read_all(&log), expected);
    drop(log);
    let log = open_on(dir.path(), config, &disk).unwrap();
    assert_eq!(read_all(&log), expected);
    assert_eq!(log.append(&batch("again", 1, 0)).unwrap().base_offset, end);
}

#[test]
fn close_on_a_failing_disk_fails_and_leaves_no_clean_shutdown_marker() {
    let config = small_config(SEGMENT);
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FaultyDisk::new(i64::MAX));
    let log = open_on(dir.path(), config.clone(), &disk).unwrap();
    let mut expected = Records::new();
    for i in 0..30 {
        append_tracked(&log, &format!("c{i}"), &mut expected).unwrap();
    }
    let durable = log.sync().unwrap();
    append_tracked(&log, "unsynced", &mut expected).unwrap();
    disk.set_fail_sync(true);
    assert_failed(log.close(), "close on a failing disk");
    assert!(log.is_failed());
    assert_failed(
        log.append(&batch("late", 1, 0)),
        "append after a failed close",
    );
    assert!(
        !dir.path().join("clean-shutdown").exists(),
        "a close that could not sync must not vouch for the files"
    );
    drop(log);
    let log = open(dir.path(), config);
    assert!(!log.recovery_report().clean);
    let recovered = read_all(&log);
    assert!(recovered.len() >= usize::try_from(durable.0).unwrap());
    assert_eq!(&recovered[..], &expected[..recovered.len()]);
}

#[test]
fn open_with_failing_sync_fails_and_loses_nothing() {
    let config = small_config(SEGMENT);
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config.clone());
    let mut expected = Records::new();
    for i in 0..30 {
        append_tracked(&log, &format!("s{i}"), &mut expected).unwrap();
    }
    log.sync().unwrap();
    drop(log);
    let disk = Arc::new(FaultyDisk::new(i64::MAX));
    disk.set_fail_sync(true);
    assert!(
        open_on(dir.path(), config.clone(), &disk).is_err(),
        "recovery cannot make its work durable"
    );
    let log = open(dir.path(), config);
    assert_eq!(read_all(&log), expected);
}

fn durable_config() -> LogConfig {
    LogConfig {
        flush: FlushPolicy::EveryAppend,
        ..small_config(SEGMENT)
    }
}

/// Generous: a waiter that is not woken within this is hung.
const HANG: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_durable_fails_when_the_sync_fails() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FaultyDisk::new(i64::MAX));
    let log = open_on(dir.path(), durable_config(), &disk).unwrap();
    let mut expected = Records::new();
    let mut next = Offset(0);
    for i in 0..20 {
        next = append_tracked(&log, &format!("w{i}"), &mut expected).unwrap();
        tokio::time::timeout(HANG, log.wait_durable(next))
            .await
            .expect("durable wait hung")
            .unwrap();
    }
    let durable = log.durable_offset();
    assert_eq!(durable, next);

    disk.set_fail_sync(true);
    let pending = append_tracked(&log, "doomed", &mut expected).unwrap();
    let result = tokio::time::timeout(HANG, log.wait_durable(pending))
        .await
        .expect("waiter on a failing sync hung");
    assert_failed(result, "wait_durable on a failing disk");
    assert!(log.is_failed());
    assert_eq!(log.durable_offset(), durable);
    // What was durable stays durable; anything above fails at once.
    tokio::time::timeout(HANG, log.wait_durable(durable))
        .await
        .expect("hung")
        .unwrap();
    let again = tokio::time::timeout(HANG, log.wait_durable(pending))
        .await
        .expect("second waiter hung");
    assert_failed(again, "wait_durable after the failure");
    assert_failed(log.append(&batch("late", 1, 0)), "append after the failure");
    assert_eq!(read_all(&log), expected);

    drop(log);
    let log = open(dir.path(), durable_config());
    let recovered = read_all(&log);
    assert!(recovered.len() >= usize::try_from(durable.0).unwrap());
    assert_eq!(&recovered[..], &expected[..recovered.len()]);
}

/// One appender: appends and waits until something fails. Returns the offsets it was told
/// are durable and the error that stopped it.
async fn append_until_error(
    log: Arc<PartitionLog>,
    task: usize,
) -> (Vec<(i64, Vec<u8>)>, LogError) {
    let mut acked = Vec::new();
    let mut i = 0u64;
    loop {
        let tag = format!("t{task}-{i}");
        let info = match log.append(&batch(&tag, 1, 0)) {
            Ok(info) => info,
            Err(err) => return (acked, err),
        };
        match log.wait_durable(info.next_offset()).await {
            Ok(()) => acked.push((info.base_offset.0, format!("{tag}-0").into_bytes())),
            Err(err) => return (acked, err),
        }
        if i % 8 == 7 {
            tokio::task::yield_now().await;
        }
        i += 1;
    }
}

async fn concurrent_waiters_on_failing_sync(fail_from_start: bool) {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FaultyDisk::new(i64::MAX));
    let log = open_on(dir.path(), durable_config(), &disk).unwrap();
    if fail_from_start {
        disk.set_fail_sync(true);
    }
    let tasks: Vec<_> = (0..16)
        .map(|t| tokio::spawn(append_until_error(Arc::clone(&log), t)))
        .collect();
    if !fail_from_start {
        // Let them make some progress (durable acks), then break the disk under them.
        let deadline = tokio::time::Instant::now() + HANG;
        while log.durable_offset() < Offset(100) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no durable progress"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        disk.set_fail_sync(true);
    }
    let mut acked = Vec::new();
    for task in tasks {
        let (mut ok, err) = tokio::time::timeout(HANG, task)
            .await
            .expect("an appender hung on a failing sync")
            .unwrap();
        assert!(
            matches!(err, LogError::Failed { .. }),
            "every appender must end with Failed, got {err}"
        );
        acked.append(&mut ok);
    }
    assert!(log.is_failed());
    let durable = log.durable_offset();
    if fail_from_start {
        assert!(
            acked.is_empty(),
            "nothing can be acknowledged on a disk that never syncs"
        );
        assert_eq!(durable, Offset(0));
    } else {
        assert!(!acked.is_empty());
    }
    for (offset, _) in &acked {
        assert!(
            *offset < durable.0,
            "offset {offset} acknowledged above the durable offset {durable}"
        );
    }
    assert!(log.log_end_offset() >= durable);

    drop(log);
    let log = open(dir.path(), durable_config());
    let recovered = read_all(&log);
    for (offset, value) in &acked {
        let found = recovered.get(usize::try_from(*offset).unwrap());
        assert_eq!(
            found,
            Some(&(*offset, value.clone())),
            "acknowledged record {offset} lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_waiters_all_fail_when_sync_starts_failing() {
    concurrent_waiters_on_failing_sync(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_waiters_all_fail_when_sync_always_fails() {
    concurrent_waiters_on_failing_sync(true).await;
}

/// What a [`Disk`] was asked to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DiskEvent {
    Allocate(PathBuf),
    SyncData(PathBuf),
    SyncDir(PathBuf),
}

/// A healthy disk that records every allocation and sync, to check their order.
#[derive(Debug, Default)]
struct RecordingDisk {
    events: Mutex<Vec<DiskEvent>>,
}

impl RecordingDisk {
    fn record(&self, event: DiskEvent) {
        self.events.lock().unwrap().push(event);
    }

    fn events(&self) -> Vec<DiskEvent> {
        self.events.lock().unwrap().clone()
    }
}

/// The path an open file was opened at (Linux).
fn path_of(file: &File) -> PathBuf {
    fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).unwrap_or_default()
}

impl Disk for RecordingDisk {
    fn allocate(&self, file: &File, len: u64) -> io::Result<()> {
        self.record(DiskEvent::Allocate(path_of(file)));
        OsDisk.allocate(file, len)
    }

    fn sync_data(&self, file: &File) -> io::Result<()> {
        OsDisk.sync_data(file)?;
        self.record(DiskEvent::SyncData(path_of(file)));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsDisk.sync_dir(dir)?;
        self.record(DiskEvent::SyncDir(dir.to_path_buf()));
        Ok(())
    }
}

/// Rolls once, optionally lets retention delete the (not yet synced) sealed segment, then
/// syncs. Returns whether the directory was synced after the new active segment's `.log` was
/// created, i.e. whether its directory entry survives a power loss.
fn new_segment_entry_is_synced(retention_first: bool) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(RecordingDisk::default());
    let config = LogConfig {
        retention_bytes: Some(0),
        ..small_config(SEGMENT)
    };
    let log = PartitionLog::open(
        dir.path(),
        options(
            config,
            Arc::clone(&disk) as _,
            Arc::new(ManualClock::new(0)),
        ),
    )
    .unwrap();
    let mut expected = Records::new();
    let mut i = 0;
    while log.segment_count() < 2 {
        append_tracked(&log, &format!("r{i}"), &mut expected).unwrap();
        i += 1;
    }
    let active = *segment_bases(dir.path(), "log").last().unwrap();
    let active_log = format!("{active:020}.log");
    if retention_first {
        assert_eq!(log.apply_retention().unwrap(), 1);
    }
    let durable = log.sync().unwrap();
    assert_eq!(durable, log.log_end_offset());
    assert!(
        durable.0 > active,
        "the sync covers records stored in the new segment"
    );
    let events = disk.events();
    let created = events
        .iter()
        .position(|e| matches!(e, DiskEvent::Allocate(p) if p.file_name().is_some_and(|n| n == active_log.as_str())))
        .expect("the new segment was allocated");
    events[created..]
        .iter()
        .any(|e| matches!(e, DiskEvent::SyncDir(_)))
}

#[test]
fn a_sync_after_a_roll_makes_the_new_segment_entry_durable() {
    assert!(new_segment_entry_is_synced(false));
}

/// Regression: `sync` used to sync the directory only while sealed segments awaited their sync.
/// When retention had deleted every segment sealed since the last sync, the next sync reported
/// the new active segment's records durable without syncing the directory entry the roll had
/// created, so a power loss could take the file (and acknowledged records) with it.
#[test]
fn a_sync_after_a_roll_makes_the_new_segment_entry_durable_even_if_retention_deleted_the_old_one() {
    assert!(
        new_segment_entry_is_synced(true),
        "records in the new segment were reported durable but its directory entry was never synced"
    );
}

/// Regression: a time index that lost its tail (here: an empty file, as a crash during a
/// non-atomic rewrite could leave) used to pass the trusted-segment check, so the segment's
/// newest timestamp was taken from it: retention by age deleted live data and time lookups
/// skipped the segment. Recovery now walks the batches after the last time entry.
#[test]
fn a_time_index_that_lost_its_tail_is_rebuilt_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let base_ts = 1_000_000_000;
    let clock = Arc::new(ManualClock::new(base_ts + 1_000));
    let config = LogConfig {
        retention_ms: Some(3_600_000),
        ..small_config(SEGMENT)
    };
    let log = PartitionLog::open(
        dir.path(),
        options(config.clone(), Arc::new(OsDisk), Arc::clone(&clock) as _),
    )
    .unwrap();
    let mut ts = base_ts;
    while log.segment_count() < 4 {
        log.append(&batch_sized("t", 2, ts, 100)).unwrap();
        ts += 2;
    }
    let expected = read_all(&log);
    let first_ts_of_segment_0_tail = base_ts + 10;
    let want = log.offset_for_timestamp(first_ts_of_segment_0_tail);
    assert_eq!(want, Some(Offset(10)));
    log.close().unwrap();
    drop(log);
    fs::write(dir.path().join(format!("{:020}.timeindex", 0)), b"").unwrap();

    let log =
        PartitionLog::open(dir.path(), options(config, Arc::new(OsDisk), clock as _)).unwrap();
    assert_eq!(
        log.apply_retention().unwrap(),
        0,
        "nothing is older than retention.ms"
    );
    assert_eq!(read_all(&log), expected);
    assert_eq!(
        log.offset_for_timestamp(first_ts_of_segment_0_tail),
        want,
        "time lookup after the index lost its tail"
    );
}
