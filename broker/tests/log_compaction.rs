//! Log compaction: a property test against a model of what the cleaner must keep, a crash at
//! every step of the swap, and readers running while the cleaner swaps segments.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::options;
use proptest::prelude::*;
use weir_broker::clock::ManualClock;
use weir_broker::log::cleaner::{CleanOutcome, Cleaner, CleanerOptions, SwapStep};
use weir_broker::log::{
    CleanupPolicy, CompactionConfig, FlushPolicy, LogConfig, Offset, OsDisk, PartitionLog,
};
use weir_broker::producers::PartitionProducers;
use weir_protocol::compression;
use weir_protocol::record_batch::{
    BatchBuilder, BatchHeader, Compression, HEADER_LEN, RecordInput, Records,
    validate_stored_batch, with_compressed_records,
};

/// `delete.retention.ms` of the test logs.
const RETENTION_MS: i64 = 1_000;

/// One record as appended or read: key and value (`None` is a tombstone).
type Rec = (Vec<u8>, Option<Vec<u8>>);

fn config(segment_bytes: u32) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 128,
        retention_ms: None,
        retention_bytes: None,
        flush: FlushPolicy::Os,
        cleanup_policy: CleanupPolicy::COMPACT,
        compaction: CompactionConfig {
            delete_retention_ms: RETENTION_MS,
            min_compaction_lag_ms: 0,
            ..CompactionConfig::default()
        },
        ..LogConfig::default()
    }
}

fn open(dir: &std::path::Path, config: &LogConfig, clock: &Arc<ManualClock>) -> Arc<PartitionLog> {
    let clock: Arc<ManualClock> = Arc::clone(clock);
    PartitionLog::open(dir, options(config.clone(), Arc::new(OsDisk), clock)).expect("open log")
}

/// A batch of `records`, stamped `ts`, compressed with `codec`, from `producer` (id, epoch,
/// first sequence) if any.
fn encode(
    records: &[Rec],
    ts: i64,
    codec: Compression,
    producer: Option<(i64, i16, i32)>,
) -> Vec<u8> {
    let mut b = BatchBuilder::new();
    if let Some((id, epoch, seq)) = producer {
        b = b.with_producer(id, epoch, seq);
    }
    for (k, v) in records {
        b.push(RecordInput {
            key: Some(k),
            value: v.as_deref(),
            timestamp: ts,
            ..RecordInput::default()
        });
    }
    let plain = b.build().expect("records");
    if codec == Compression::None {
        return plain.to_vec();
    }
    let packed = compression::compress(codec, &plain[HEADER_LEN..]).expect("compress");
    with_compressed_records(&plain, codec, &packed)
        .expect("batch")
        .to_vec()
}

/// Every record of the log by offset, read from the start as a consumer would (a read at any
/// offset, decompressing), checking offsets only grow and batches verify.
fn contents(log: &PartitionLog) -> BTreeMap<i64, Rec> {
    let mut out = BTreeMap::new();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    let mut last = -1;
    while offset < end {
        let read = log.read(offset, 700).expect("read");
        assert!(
            !read.records.is_empty(),
            "empty read at {offset} below {end}"
        );
        let mut rest = &read.records[..];
        while !rest.is_empty() {
            let header = BatchHeader::parse(rest).expect("header");
            let len = header.total_len().expect("len");
            let whole = &rest[..len];
            validate_stored_batch(whole).expect("a served batch verifies");
            for (o, rec) in records_of(whole, &header) {
                assert!(o > last, "offset {o} after {last}: offsets went backwards");
                assert!(o >= header.base_offset && o <= header.last_offset());
                last = o;
                if o >= offset.0 {
                    out.insert(o, rec);
                }
            }
            offset = Offset(header.next_offset());
            rest = &rest[len..];
        }
    }
    out
}

fn records_of(batch: &[u8], header: &BatchHeader) -> Vec<(i64, Rec)> {
    let codec = header.attributes.compression().expect("codec");
    let raw = compression::decompress(codec, &batch[HEADER_LEN..], 1 << 24).expect("decompress");
    Records::from_raw(&raw, header.records_count)
        .map(|r| r.expect("record"))
        .map(|r| {
            (
                r.offset(header.base_offset),
                (r.key.expect("keyed").to_vec(), r.value.map(<[u8]>::to_vec)),
            )
        })
        .collect()
}

/// The base offset of the active segment, from the directory's file names.
fn active_base(dir: &std::path::Path) -> i64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".log")
                .and_then(|s| s.parse::<i64>().ok())
        })
        .max()
        .expect("a segment")
}

/// A cleaner forced to run, with a map of `keys` keys (tiny: several passes).
fn cleaner(keys: usize) -> Cleaner {
    Cleaner::new(CleanerOptions {
        dedupe_buffer_bytes: (keys * 10).div_ceil(9) * 24 + 1,
        force: true,
        ..CleanerOptions::default()
    })
}

/// What the cleaner must keep, tracked record by record.
#[derive(Debug, Default)]
struct Model {
    /// Every record appended, by offset, with whether the cleaner may have removed it.
    records: BTreeMap<i64, (Rec, Fate)>,
    /// When each tombstone was first in a cleaned range.
    first_cleaned_ms: HashMap<i64, i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Present,
    Removed,
}

impl Model {
    /// A cleaning at `now_ms` that covered every offset below `end`.
    fn clean(&mut self, end: i64, now_ms: i64) {
        let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
        for (&o, ((k, _), _)) in self.records.range(..end) {
            latest.insert(k.clone(), o);
        }
        for (&o, ((k, v), fate)) in self.records.range_mut(..end) {
            if latest[k] != o {
                *fate = Fate::Removed;
            } else if v.is_none() {
                match self.first_cleaned_ms.get(&o) {
                    Some(&first) if now_ms >= first + RETENTION_MS => *fate = Fate::Removed,
                    Some(_) => {}
                    None => {
                        self.first_cleaned_ms.insert(o, now_ms);
                    }
                }
            }
        }
    }

    fn expected(&self) -> BTreeMap<i64, Rec> {
        self.records
            .iter()
            .filter(|(_, (_, fate))| *fate == Fate::Present)
            .map(|(&o, (rec, _))| (o, rec.clone()))
            .collect()
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// Records (key index, value or tombstone), codec, producer (0 = none).
    Append(Vec<(u8, Option<u8>)>, Compression, u8),
    Clean,
    Advance(i64),
    CrashReopen,
}

fn step() -> impl Strategy<Value = Step> {
    let codec = prop::sample::select(vec![
        Compression::None,
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ]);
    let record = (0u8..6, prop::option::weighted(0.8, any::<u8>()));
    prop_oneof![
        10 => (prop::collection::vec(record, 1..5), codec, 0u8..3)
            .prop_map(|(r, c, p)| Step::Append(r, c, p)),
        3 => Just(Step::Clean),
        2 => (1i64..800).prop_map(Step::Advance),
        1 => Just(Step::CrashReopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// After any appends (keys from a small set, tombstones, compressed or not, idempotent
    /// producers or none) and cleanings with a map too small for one pass, the log holds at
    /// the same offsets exactly the last record of each key within each cleaned range, plus
    /// the tombstones still within `delete.retention.ms`, and the producer table replayed
    /// from it is unchanged.
    #[test]
    fn the_cleaner_keeps_the_last_record_of_each_key(
        segment_bytes in 400u32..1500,
        steps in prop::collection::vec(step(), 1..70),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(10_000));
        let config = config(segment_bytes);
        let mut log = open(dir.path(), &config, &clock);
        let mut cleaner = cleaner(5);
        let mut model = Model::default();
        let mut sequences = [0i32; 3];
        for step in steps {
            match step {
                Step::Append(records, codec, producer) => {
                    let records: Vec<Rec> = records
                        .into_iter()
                        .map(|(k, v)| (vec![b'k', k], v.map(|v| vec![b'v', v, b'.'])))
                        .collect();
                    let p = usize::from(producer);
                    let id = (producer > 0).then(|| (i64::from(producer), 0i16, sequences[p]));
                    let batch = encode(&records, clock.now_ms_for_test(), codec, id);
                    let info = log.append(&batch).unwrap();
                    sequences[p] += i32::try_from(records.len()).unwrap();
                    for (i, rec) in records.into_iter().enumerate() {
                        model.records.insert(info.base_offset.0 + i as i64, (rec, Fate::Present));
                    }
                }
                Step::Clean => {
                    log.sync().unwrap();
                    let end = active_base(dir.path());
                    let outcome = cleaner.clean(&log).unwrap();
                    prop_assert!(matches!(outcome, CleanOutcome::Cleaned(_) | CleanOutcome::NotDue), "{outcome:?}");
                    if matches!(outcome, CleanOutcome::Cleaned(_)) {
                        model.clean(end, clock.now_ms_for_test());
                    }
                }
                Step::Advance(ms) => clock.advance(ms),
                Step::CrashReopen => {
                    drop(log);
                    log = open(dir.path(), &config, &clock);
                }
            }
            prop_assert_eq!(contents(&log), model.expected());
        }
        let before = PartitionProducers::load(&log).unwrap().states();
        log.sync().unwrap();
        let end = active_base(dir.path());
        if matches!(cleaner.clean(&log).unwrap(), CleanOutcome::Cleaned(_)) {
            model.clean(end, clock.now_ms_for_test());
        }
        prop_assert_eq!(contents(&log), model.expected());
        drop(log);
        let log = open(dir.path(), &config, &clock);
        prop_assert_eq!(contents(&log), model.expected());
        prop_assert_eq!(PartitionProducers::load(&log).unwrap().states(), before);
    }
}

/// Small clock helper: the manual clock's time (it implements the broker's `Clock`).
trait NowForTest {
    fn now_ms_for_test(&self) -> i64;
}

impl NowForTest for ManualClock {
    fn now_ms_for_test(&self) -> i64 {
        weir_broker::clock::Clock::now_ms(self)
    }
}

/// A log of several sealed segments with many versions per key, some compressed.
fn populated(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Arc<PartitionLog> {
    let log = open(dir, &config(600), clock);
    for i in 0..30u32 {
        let key = vec![b'k', (i % 7) as u8];
        let value = (i % 11 != 0).then(|| format!("v{i}").into_bytes());
        let codec = if i % 3 == 0 {
            Compression::Zstd
        } else {
            Compression::None
        };
        let producer = (i % 2 == 0).then_some((7, 0, (i / 2) as i32));
        log.append(&encode(&[(key, value)], 10_000, codec, producer))
            .unwrap();
    }
    log.sync().unwrap();
    log
}

/// A crash after each step of the swap (the hook fails there, the log is dropped without
/// closing, as after `kill -9`) leaves a log that reads exactly as before the cleaning
/// (before the commit) or exactly as after it (from the commit on), with no leftover
/// `.cleaned` file or marker; the reopened log cleans and appends normally.
#[test]
fn a_crash_at_every_swap_step_leaves_the_old_or_the_new_log() {
    let clock = Arc::new(ManualClock::new(10_000));
    let reference = tempfile::tempdir().unwrap();
    let log = populated(reference.path(), &clock);
    let before = contents(&log);
    let steps = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&steps);
    let mut c = Cleaner::new(CleanerOptions {
        force: true,
        dedupe_buffer_bytes: 6 * 24,
        hook: Some(Arc::new(move |s| {
            seen.lock().unwrap().push(s);
            Ok(())
        })),
        ..CleanerOptions::default()
    });
    assert!(matches!(c.clean(&log).unwrap(), CleanOutcome::Cleaned(s) if s.passes > 1));
    let after = contents(&log);
    assert_ne!(before, after, "the cleaning must change something");
    let steps = steps.lock().unwrap().clone();
    assert!(steps.len() > 10, "{steps:?}");
    assert!(
        steps.iter().any(|s| matches!(s, SwapStep::Removed { .. })),
        "later passes merge the segments earlier ones shrank: {steps:?}"
    );
    drop(log);

    let mut known = HashMap::new();
    for crash_at in 0..steps.len() {
        let dir = tempfile::tempdir().unwrap();
        let log = populated(dir.path(), &clock);
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let mut c = Cleaner::new(CleanerOptions {
            force: true,
            dedupe_buffer_bytes: 6 * 24,
            hook: Some(Arc::new(move |_| {
                if counted.fetch_add(1, Ordering::SeqCst) == crash_at {
                    Err(std::io::Error::other("injected crash"))
                } else {
                    Ok(())
                }
            })),
            ..CleanerOptions::default()
        });
        assert!(c.clean(&log).is_err(), "crash at step {crash_at}");
        // Until reopened the log still serves whole, verified batches.
        let _still_readable = contents(&log);
        drop(log);
        let log = open(dir.path(), &config(600), &clock);
        let got = contents(&log);
        // Passes before the failing one completed; the failing one is all or nothing,
        // decided by its commit.
        let pass_start = steps[..=crash_at]
            .iter()
            .rposition(|s| *s == SwapStep::Written)
            .unwrap();
        let committed = steps[pass_start..=crash_at]
            .iter()
            .any(|s| *s != SwapStep::Written);
        let passes = steps[..pass_start]
            .iter()
            .filter(|s| **s == SwapStep::Done)
            .count()
            + usize::from(committed);
        let expected = known
            .entry(passes)
            .or_insert_with(|| after_passes(&clock, passes))
            .clone();
        assert_eq!(
            got, expected,
            "crash after step {crash_at} ({:?})",
            steps[crash_at]
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".cleaned") || n == "cleaner-swap")
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let mut c = cleaner(64);
        assert!(matches!(c.clean(&log).unwrap(), CleanOutcome::Cleaned(_)));
        assert_eq!(contents(&log), after, "cleaning again reaches the same log");
        log.append(&encode(
            &[(b"k0".to_vec(), Some(b"new".to_vec()))],
            10_000,
            Compression::None,
            None,
        ))
        .unwrap();
    }
}

/// The log of [`populated`] after its first `passes` cleaning passes.
fn after_passes(clock: &Arc<ManualClock>, passes: usize) -> BTreeMap<i64, Rec> {
    let dir = tempfile::tempdir().unwrap();
    let log = populated(dir.path(), clock);
    let started = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&started);
    let mut c = Cleaner::new(CleanerOptions {
        force: true,
        dedupe_buffer_bytes: 6 * 24,
        hook: Some(Arc::new(move |s| {
            if s == SwapStep::Written && counted.fetch_add(1, Ordering::SeqCst) == passes {
                Err(std::io::Error::other("stop before this pass"))
            } else {
                Ok(())
            }
        })),
        ..CleanerOptions::default()
    });
    let _stopped_or_done = c.clean(&log);
    contents(&log)
}

/// Readers running while the cleaner swaps segments and a writer appends: every read
/// succeeds, offsets only grow within a sweep, and every record read is the one appended at
/// its offset.
#[test]
fn readers_never_go_backwards_while_the_cleaner_runs() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(10_000));
    let log = open(dir.path(), &config(500), &clock);
    let written: Arc<Mutex<HashMap<i64, Rec>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (log, written, stop) = (Arc::clone(&log), Arc::clone(&written), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut sweeps = 0;
                while !stop.load(Ordering::Relaxed) {
                    for (o, rec) in contents(&log) {
                        let expected = written.lock().unwrap().get(&o).cloned();
                        assert_eq!(Some(rec), expected, "record at {o}");
                    }
                    sweeps += 1;
                }
                sweeps
            })
        })
        .collect();
    let mut c = cleaner(8);
    let mut cleaned = 0;
    for i in 0..300u32 {
        let rec: Rec = (
            vec![b'k', (i % 5) as u8],
            Some(format!("v{i}").into_bytes()),
        );
        // Recorded before the append (one writer: the offset is the log end), so a reader
        // can never meet a record the model does not know yet.
        let next = log.log_end_offset().0;
        written.lock().unwrap().insert(next, rec.clone());
        let batch = encode(std::slice::from_ref(&rec), 10_000, Compression::None, None);
        assert_eq!(log.append(&batch).unwrap().base_offset.0, next);
        if i % 20 == 19 {
            log.sync().unwrap();
            if matches!(c.clean(&log).unwrap(), CleanOutcome::Cleaned(_)) {
                cleaned += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().expect("reader panicked") > 0);
    }
    assert!(cleaned > 3, "cleaned {cleaned} times");
    let last = contents(&log);
    let keys: std::collections::HashSet<_> = last.values().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys.len(), 5);
}

/// A log closed (as when its topic is deleted) while a cleaning runs is left as it was: the
/// pass is dropped before its commit and its `.cleaned` files removed.
#[test]
fn a_log_closed_meanwhile_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(10_000));
    let log = populated(dir.path(), &clock);
    let before = contents(&log);
    log.close().unwrap();
    assert_eq!(cleaner(64).clean(&log).unwrap(), CleanOutcome::Abandoned);
    assert_eq!(contents(&log), before);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with(".cleaned") || n == "cleaner-swap"),
        "{names:?}"
    );
    drop(log);
    assert_eq!(contents(&open(dir.path(), &config(600), &clock)), before);
}
