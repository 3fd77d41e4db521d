//! `kill -9` crash test with a real process.
//!
//! The child is this test binary run again with [`CHILD_DIR_ENV`] set (see [`crash_child`]): it
//! opens a log with `FlushPolicy::EveryAppend` and small segments, appends from several tasks
//! (so syncs are shared by group commit), and prints `ack <base offset> <seq>` once a batch is
//! durable. The parent kills it with `SIGKILL` at a random moment (sometimes before or during
//! its recovery), reopens the log, checks that every acknowledged batch is there, intact and
//! at its offset, and starts the next child on the same directory.
//!
//! Every batch is a pure function of its sequence number, so the parent can check any batch in
//! the log, acknowledged or not, byte for byte.
#![cfg(unix)]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use weir_broker::log::{FlushPolicy, LogConfig, Offset, PartitionLog};
use weir_protocol::record_batch::{BatchHeader, Records, validate_batch};

/// Directory of the log the child appends to; the child does nothing without it.
const CHILD_DIR_ENV: &str = "WEIR_CRASH_CHILD_DIR";
/// First sequence number the child uses (distinct per run, so no seq is ever produced twice).
const CHILD_SEQ_ENV: &str = "WEIR_CRASH_CHILD_FIRST_SEQ";
/// Concurrent appenders in the child.
const APPENDERS: usize = 4;
/// Kill cycles on the same directory.
const CYCLES: u64 = 24;
/// A child that runs this long was forgotten by its parent: it stops by itself.
const CHILD_LIFETIME: Duration = Duration::from_secs(120);
/// Generous bound for a child to acknowledge its first batch on a loaded machine.
const FIRST_ACK: Duration = Duration::from_secs(60);

fn crash_config() -> LogConfig {
    LogConfig {
        flush: FlushPolicy::EveryAppend,
        index_interval_bytes: 128,
        ..small_config(64 * 1024)
    }
}

/// Records in the batch of `seq` (1 to 5) and padding of each value (0 to 199 bytes).
fn shape(seq: u64) -> (usize, usize) {
    let h = Rng::new(seq).next_u64();
    (
        usize::try_from(1 + h % 5).unwrap(),
        usize::try_from((h >> 8) % 200).unwrap(),
    )
}

fn seq_tag(seq: u64) -> String {
    format!("seq-{seq}-rec")
}

/// The batch the child appends for `seq`: values `seq-<seq>-rec-<i>` padded with dots.
fn seq_batch(seq: u64) -> Bytes {
    let (records, pad) = shape(seq);
    batch_sized(
        &seq_tag(seq),
        records,
        i64::try_from(seq % 1_000_000).unwrap(),
        pad,
    )
}

/// The record values of the batch of `seq`.
fn seq_values(seq: u64) -> Vec<Vec<u8>> {
    let (records, pad) = shape(seq);
    (0..records)
        .map(|i| {
            let mut v = format!("{}-{i}", seq_tag(seq)).into_bytes();
            v.resize(v.len() + pad, b'.');
            v
        })
        .collect()
}

/// The sequence number named by a record value `seq-<seq>-rec-<i>...`.
fn parse_seq(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?.trim_end_matches('.');
    let (seq, _record) = text.strip_prefix("seq-")?.split_once("-rec-")?;
    seq.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// The child.

/// Not a test on its own: the body of the child process, run only when [`CHILD_DIR_ENV`] is set.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let first_seq: u64 = std::env::var(CHILD_SEQ_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("first seq");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(child_main(PathBuf::from(dir), first_seq));
}

async fn child_main(dir: PathBuf, first_seq: u64) {
    let log = open(&dir, crash_config());
    let next_seq = Arc::new(AtomicU64::new(first_seq));
    let stop_at = Instant::now() + CHILD_LIFETIME;
    let appenders: Vec<_> = (0..APPENDERS)
        .map(|_| {
            tokio::spawn(append_and_ack(
                Arc::clone(&log),
                Arc::clone(&next_seq),
                stop_at,
            ))
        })
        .collect();
    for appender in appenders {
        appender.await.expect("appender panicked");
    }
}

/// Appends batches and acknowledges each one on stdout once it is durable, until the parent
/// goes away (stdout breaks) or the lifetime is over. Any log error panics: the parent sees
/// the child exit on its own and fails.
async fn append_and_ack(log: Arc<PartitionLog>, next_seq: Arc<AtomicU64>, stop_at: Instant) {
    while Instant::now() < stop_at {
        let seq = next_seq.fetch_add(1, Ordering::Relaxed);
        let info = log.append(&seq_batch(seq)).expect("append");
        log.wait_durable(info.next_offset())
            .await
            .expect("wait_durable");
        // One write of a whole line: a kill can cut the line short, never mix two.
        let line = format!("ack {} {seq}\n", info.base_offset);
        let mut out = std::io::stdout().lock();
        if out
            .write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The parent.

/// A running child that is killed and reaped when dropped, so that a failing (panicking)
/// parent never leaves it running.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn spawn(dir: &Path, first_seq: u64) -> Self {
        let exe = std::env::current_exe().expect("current test binary");
        let child = Command::new(exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, dir)
            .env(CHILD_SEQ_ENV, first_seq.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        Self(Some(child))
    }

    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child still owned")
    }

    /// Sends SIGKILL and reaps the child, which must not have exited on its own before.
    fn kill(mut self) {
        let mut child = self.0.take().expect("child still owned");
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("the child exited by itself before the kill: {status}");
        }
        child.kill().expect("kill child");
        let status = child.wait().expect("wait for child");
        assert_eq!(
            status.signal(),
            Some(9),
            "the child must die of SIGKILL, not exit by itself: {status}"
        );
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            if let Err(err) = child.kill() {
                eprintln!("could not kill the crash child: {err}");
            }
            if let Err(err) = child.wait() {
                eprintln!("could not reap the crash child: {err}");
            }
        }
    }
}

/// Reads whole `ack` lines until the child's stdout closes. A last line without its newline
/// (cut by the kill) is ignored: the child wrote it only after the batch was durable anyway.
fn read_acks(stdout: ChildStdout, acks: &mpsc::Sender<(i64, u64)>) {
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) if !line.ends_with('\n') => return,
            Ok(_) => {}
            Err(err) => panic!("reading the child's stdout: {err}"),
        }
        let Some(rest) = line.trim_end().strip_prefix("ack ") else {
            // libtest's own output.
            continue;
        };
        let (base, seq) = rest
            .split_once(' ')
            .unwrap_or_else(|| panic!("bad ack line {line:?}"));
        let ack = (
            base.parse().expect("ack offset"),
            seq.parse().expect("ack seq"),
        );
        if acks.send(ack).is_err() {
            return;
        }
    }
}

/// One batch found in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    base: i64,
    next: i64,
    seq: u64,
}

/// Every batch of the log, checked: whole and valid, dense offsets from 0 to the log end, each
/// record's values exactly those of the child's batch for its seq.
fn read_batches(log: &PartitionLog) -> Vec<Found> {
    assert_eq!(log.log_start_offset(), Offset(0));
    let end = log.log_end_offset().0;
    let mut found = Vec::new();
    let mut offset = 0;
    while offset < end {
        let result = log.read(Offset(offset), 256 * 1024).expect("read");
        assert!(
            !result.records.is_empty(),
            "empty read at {offset} below the end {end}"
        );
        let mut at = 0;
        while at < result.records.len() {
            let rest = &result.records[at..];
            let len = BatchHeader::parse(rest)
                .and_then(|h| h.total_len())
                .expect("batch header");
            let whole = &rest[..len];
            let header = validate_batch(whole).expect("a batch in the log is valid");
            assert_eq!(header.base_offset, offset, "offsets must be dense");
            let mut values = Vec::new();
            for (i, record) in Records::new(whole).expect("records").enumerate() {
                let record = record.expect("record");
                assert_eq!(record.offset(header.base_offset), offset + i as i64);
                values.push(record.value.expect("a value").to_vec());
            }
            let seq = parse_seq(&values[0]).unwrap_or_else(|| {
                panic!(
                    "batch at {offset} was not written by the child: {:?}",
                    String::from_utf8_lossy(&values[0])
                )
            });
            assert!(
                values == seq_values(seq),
                "batch at {offset} claims seq {seq} but its records differ"
            );
            let next = header.next_offset();
            found.push(Found {
                base: offset,
                next,
                seq,
            });
            offset = next;
            at += len;
        }
    }
    assert_eq!(offset, end, "the last batch must end at the log end offset");
    found
}

#[derive(Debug, Default)]
struct Stats {
    acked: usize,
    unacked_kept: usize,
    cuts: usize,
    closed: usize,
    early_kills: usize,
    killed_before_open: usize,
}

/// Opens the log after a kill and checks it against every acknowledgement so far and against
/// what the previous check found. Returns the batches it found.
fn check_after_kill(
    dir: &Path,
    acked: &HashMap<i64, u64>,
    previous: &[Found],
    may_be_clean: bool,
    close: bool,
    stats: &mut Stats,
) -> Vec<Found> {
    let log = open(dir, crash_config());
    let report = log.recovery_report().clone();
    if report.clean {
        // The child never got as far as opening the log (which removes the marker before
        // accepting a write): only possible for a kill before its first acknowledgement,
        // after the previous check closed the log.
        assert!(
            may_be_clean,
            "a child that appended was killed, yet the log looks cleanly closed"
        );
        stats.killed_before_open += 1;
    }
    stats.cuts += report.truncated.len();
    let found = read_batches(&log);

    let mut seqs = HashSet::new();
    for f in &found {
        assert!(
            seqs.insert(f.seq),
            "seq {} appears twice in the log (again at {})",
            f.seq,
            f.base
        );
    }
    // What the previous check found had been synced by that recovery: it must all still be
    // there, unchanged, as a prefix.
    assert!(
        found.len() >= previous.len(),
        "the log shrank: {} batches, {} before",
        found.len(),
        previous.len()
    );
    if let Some(i) = previous.iter().zip(&found).position(|(a, b)| a != b) {
        panic!(
            "batch {i} changed across a crash: {:?} became {:?}",
            previous[i], found[i]
        );
    }
    let by_base: HashMap<i64, u64> = found.iter().map(|f| (f.base, f.seq)).collect();
    for (&base, &seq) in acked {
        match by_base.get(&base) {
            Some(&s) if s == seq => {}
            other => panic!("acknowledged seq {seq} at offset {base} lost: found {other:?} there"),
        }
    }
    let acked_seqs: HashSet<u64> = acked.values().copied().collect();
    stats.unacked_kept = found
        .iter()
        .filter(|f| !acked_seqs.contains(&f.seq))
        .count();

    // Either way is a valid state to restart from: closing makes the next child trust the
    // files (clean-shutdown path, reopening the trimmed active segment for appends); dropping
    // it leaves the state of a crash right after recovery, which the child recovers again.
    if close {
        log.close().expect("close");
        stats.closed += 1;
    }
    drop(log);
    found
}

#[test]
fn acknowledged_batches_survive_sigkill() {
    let mut rng = Rng::from_env("acknowledged_batches_survive_sigkill");
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    // Base offset -> seq of every acknowledged batch, over all runs.
    let mut acked: HashMap<i64, u64> = HashMap::new();
    let mut previous: Vec<Found> = Vec::new();
    let mut stats = Stats::default();
    let mut closed_last = false;

    for cycle in 0..CYCLES {
        // A quarter of the kills come early, timed from the start: before the first append or
        // in the middle of recovery. The rest come after the first durable acknowledgement, so
        // that every such run makes progress.
        let early = rng.range(0, 4) == 0;
        let delay = Duration::from_millis(if early {
            rng.range(0, 80)
        } else {
            rng.range(50, 400)
        });
        let close = rng.range(0, 2) == 0;

        let mut child = ChildGuard::spawn(dir.path(), (cycle + 1) * 1_000_000_000);
        let stdout = child.child().stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || read_acks(stdout, &tx));
        let mut run_acks = Vec::new();
        if early {
            stats.early_kills += 1;
        } else {
            match rx.recv_timeout(FIRST_ACK) {
                Ok(ack) => run_acks.push(ack),
                Err(err) => panic!("cycle {cycle}: no acknowledgement from the child ({err})"),
            }
        }
        std::thread::sleep(delay);
        child.kill();
        reader.join().expect("ack reader");
        run_acks.extend(rx.iter());

        let may_be_clean = closed_last && run_acks.is_empty();
        for (base, seq) in run_acks {
            if let Some(old) = acked.insert(base, seq) {
                panic!(
                    "cycle {cycle}: offset {base} acknowledged twice, for seq {old} and seq {seq}"
                );
            }
            stats.acked += 1;
        }
        previous = check_after_kill(
            dir.path(),
            &acked,
            &previous,
            may_be_clean,
            close,
            &mut stats,
        );
        closed_last = close;
    }

    let end = previous.last().map_or(0, |f| f.next);
    eprintln!(
        "{CYCLES} kills ({} early) in {:.1?}: {} acknowledged batches, {} batches / {end} records in the log \
         ({} kept without an ack), {} tails cut, {} reopens closed cleanly, {} kills before the open",
        stats.early_kills,
        started.elapsed(),
        stats.acked,
        previous.len(),
        stats.unacked_kept,
        stats.cuts,
        stats.closed,
        stats.killed_before_open,
    );
    assert!(stats.acked > 0, "the children never acknowledged anything");
}
