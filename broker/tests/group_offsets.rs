//! The committed-offsets store: round trips, a property test against a map, torn and garbled
//! tails at every byte, crashes at every step of compaction, group commit and fail-stop.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Rng;
use proptest::prelude::*;
use weir_broker::groups::offsets::{
    CommittedOffset, MAX_METADATA_BYTES, MAX_NAME_BYTES, OffsetStore, OffsetStoreConfig,
    OffsetStoreError, OffsetStoreOptions,
};
use weir_broker::log::{Disk, FaultyDisk, Flusher, LogOptions, OsDisk, PartitionLog};

/// Every committed offset, by (group, topic, partition).
type Model = BTreeMap<(String, String, i32), CommittedOffset>;

fn value(offset: i64, metadata: Option<&str>) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch: i32::try_from(offset % 7).unwrap(),
        metadata: metadata.map(str::to_owned),
        commit_timestamp_ms: 1_700_000_000_000 + offset,
    }
}

fn open(dir: &Path) -> OffsetStore {
    OffsetStore::open(dir, Arc::new(OsDisk)).expect("open offsets store")
}

/// Everything the store answers, checked for consistency between its three read paths.
fn contents(store: &OffsetStore) -> Model {
    let mut out = Model::new();
    for group in store.groups() {
        assert!(store.has_group(&group));
        let offsets = store.group_offsets(&group);
        assert!(!offsets.is_empty(), "listed group {group} has no offsets");
        assert!(
            offsets
                .windows(2)
                .all(|w| (&w[0].0, w[0].1) < (&w[1].0, w[1].1)),
            "group_offsets is not sorted"
        );
        for (topic, partition, committed) in offsets {
            assert_eq!(
                store.fetch(&group, &topic, partition).as_ref(),
                Some(&committed)
            );
            out.insert((group.clone(), topic, partition), committed);
        }
    }
    let groups = store.groups();
    assert!(groups.windows(2).all(|w| w[0] < w[1]), "groups not sorted");
    out
}

fn commit(
    store: &OffsetStore,
    model: &mut Model,
    group: &str,
    entries: &[(&str, i32, CommittedOffset)],
) {
    let entries: Vec<(String, i32, CommittedOffset)> = entries
        .iter()
        .map(|(t, p, c)| ((*t).to_owned(), *p, c.clone()))
        .collect();
    store.commit(group, &entries).expect("commit");
    for (t, p, c) in entries {
        model.insert((group.to_owned(), t, p), c);
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The only log file in `dir`.
fn only_log(dir: &Path) -> PathBuf {
    let logs: Vec<String> = files(dir)
        .into_iter()
        .filter(|n| n.ends_with(".log"))
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    dir.join(&logs[0])
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for name in files(from) {
        fs::copy(from.join(&name), to.join(&name)).unwrap();
    }
}

fn gen_name(generation: u64, ext: &str) -> String {
    format!("{generation:020}.{ext}")
}

#[test]
fn commits_round_trip_through_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert!(store.groups().is_empty());
    assert_eq!(store.fetch("g", "t", 0), None);
    let mut model = Model::new();
    commit(
        &store,
        &mut model,
        "g",
        &[
            ("t", 0, value(10, Some("meta"))),
            ("t", 1, value(11, None)),
            ("u", 0, value(12, Some(""))),
        ],
    );
    commit(&store, &mut model, "h", &[("t", 0, value(20, Some("é")))]);
    commit(&store, &mut model, "g", &[("t", 0, value(13, None))]);
    assert_eq!(store.fetch("g", "t", 0), Some(value(13, None)));
    assert_eq!(store.groups(), ["g", "h"]);
    assert_eq!(
        store.group_offsets("g"),
        [
            ("t".to_owned(), 0, value(13, None)),
            ("t".to_owned(), 1, value(11, None)),
            ("u".to_owned(), 0, value(12, Some(""))),
        ]
    );
    assert_eq!(contents(&store), model);
    store.close().unwrap();
    assert!(matches!(
        store.commit("g", &[("t".to_owned(), 0, value(1, None))]),
        Err(OffsetStoreError::Closed(_))
    ));
    drop(store);

    let store = open(dir.path());
    assert_eq!(contents(&store), model);
    // An empty commit writes nothing and its ticket is durable at once.
    let before = fs::metadata(only_log(dir.path())).unwrap().len();
    let ticket = store.commit("g", &[]).unwrap();
    block_on(store.wait_durable(ticket)).unwrap();
    assert_eq!(fs::metadata(only_log(dir.path())).unwrap().len(), before);
}

/// Runs a future to completion on a small runtime (for tests that are otherwise synchronous).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn tombstones_apply_in_order_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut model = Model::new();
    commit(
        &store,
        &mut model,
        "g",
        &[("t", 0, value(1, None)), ("u", 0, value(2, None))],
    );
    commit(&store, &mut model, "h", &[("t", 3, value(3, None))]);
    store.delete_topic("t").unwrap();
    model.retain(|(_, t, _), _| t != "t");
    assert_eq!(store.groups(), ["g"], "h had only offsets of t");
    commit(&store, &mut model, "h", &[("t", 4, value(4, None))]);
    store.delete_group("g").unwrap();
    model.retain(|(g, _, _), _| g != "g");
    commit(&store, &mut model, "g", &[("v", 0, value(5, None))]);
    // Deleting what is not there is harmless.
    store.delete_group("nobody").unwrap();
    store.delete_topic("nothing").unwrap();
    assert_eq!(contents(&store), model);
    drop(store);
    let store = open(dir.path());
    assert_eq!(contents(&store), model);
    store.compact().unwrap();
    drop(store);
    assert_eq!(contents(&open(dir.path())), model);
}

#[test]
fn size_limits_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let at_limit = "m".repeat(MAX_METADATA_BYTES);
    store
        .commit("g", &[("t".to_owned(), 0, value(1, Some(&at_limit)))])
        .unwrap();
    let over = "m".repeat(MAX_METADATA_BYTES + 1);
    let err = store
        .commit(
            "g",
            &[
                ("t".to_owned(), 1, value(2, None)),
                ("t".to_owned(), 2, value(3, Some(&over))),
            ],
        )
        .unwrap_err();
    assert!(
        matches!(err, OffsetStoreError::MetadataTooLarge { partition: 2, size, .. } if size == MAX_METADATA_BYTES + 1),
        "{err}"
    );
    // Nothing of the refused commit is visible, not even its valid entry.
    assert_eq!(store.fetch("g", "t", 1), None);

    let long = "x".repeat(MAX_NAME_BYTES + 1);
    assert!(matches!(
        store.commit(&long, &[("t".to_owned(), 0, value(1, None))]),
        Err(OffsetStoreError::NameTooLong { what: "group", .. })
    ));
    assert!(matches!(
        store.commit("g", &[(long.clone(), 0, value(1, None))]),
        Err(OffsetStoreError::NameTooLong { what: "topic", .. })
    ));
    assert!(matches!(
        store.delete_topic(&long),
        Err(OffsetStoreError::NameTooLong { .. })
    ));
    let max_name = "y".repeat(MAX_NAME_BYTES);
    store
        .commit(&max_name, &[(max_name.clone(), 0, value(1, None))])
        .unwrap();

    // A commit that does not fit one record.
    let entries: Vec<_> = (0..600)
        .map(|p| (max_name.clone(), p, value(1, None)))
        .collect();
    assert!(matches!(
        store.commit("g", &entries),
        Err(OffsetStoreError::CommitTooLarge { .. })
    ));
    let size = fs::metadata(only_log(dir.path())).unwrap().len();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.groups().len(), 2);
    assert_eq!(fs::metadata(only_log(dir.path())).unwrap().len(), size);
    assert_eq!(
        store.fetch("g", "t", 0).unwrap().metadata.unwrap().len(),
        MAX_METADATA_BYTES
    );
}

/// Writes a few commits, then one more; returns the models before and after the last one and
/// the log's length before and after it.
fn two_stage_log(dir: &Path) -> (Model, Model, u64, u64) {
    let store = open(dir);
    let mut model = Model::new();
    commit(&store, &mut model, "g", &[("t", 0, value(1, Some("a")))]);
    commit(&store, &mut model, "h", &[("t", 0, value(2, None))]);
    store.delete_group("h").unwrap();
    model.retain(|(g, _, _), _| g != "h");
    let before = model.clone();
    let len_before = fs::metadata(only_log(dir)).unwrap().len();
    commit(
        &store,
        &mut model,
        "g",
        &[
            ("t", 0, value(3, Some("bb"))),
            ("t", 1, value(4, None)),
            ("u", 9, value(5, Some("c"))),
        ],
    );
    store.close().unwrap();
    let len_after = fs::metadata(only_log(dir)).unwrap().len();
    (before, model, len_before, len_after)
}

#[test]
fn a_torn_last_record_is_cut_at_every_byte() {
    let template = tempfile::tempdir().unwrap();
    let (before, after, len_before, len_after) = two_stage_log(template.path());
    for cut in len_before..=len_after {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(template.path(), dir.path());
        let log = only_log(dir.path());
        OpenOptions::new()
            .write(true)
            .open(&log)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let store = open(dir.path());
        let (want, want_len) = if cut == len_after {
            (&after, len_after)
        } else {
            (&before, len_before)
        };
        assert_eq!(&contents(&store), want, "cut at {cut}");
        assert_eq!(fs::metadata(&log).unwrap().len(), want_len, "cut at {cut}");
        // The store goes on appending after the cut, and that survives.
        let mut model = want.clone();
        commit(&store, &mut model, "k", &[("t", 0, value(9, None))]);
        drop(store);
        assert_eq!(contents(&open(dir.path())), model, "cut at {cut}");
    }
}

#[test]
fn a_flipped_byte_in_the_last_record_cuts_it() {
    let template = tempfile::tempdir().unwrap();
    let (before, _, len_before, len_after) = two_stage_log(template.path());
    for at in len_before..len_after {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(template.path(), dir.path());
        let log = only_log(dir.path());
        let mut bytes = fs::read(&log).unwrap();
        bytes[usize::try_from(at).unwrap()] ^= 0x04;
        fs::write(&log, bytes).unwrap();
        let store = open(dir.path());
        assert_eq!(contents(&store), before, "flip at {at}");
        assert_eq!(fs::metadata(&log).unwrap().len(), len_before);
    }
}

#[test]
fn garbage_after_the_last_record_is_cut() {
    let template = tempfile::tempdir().unwrap();
    let (_, after, _, len_after) = two_stage_log(template.path());
    let mut rng = Rng::from_env("garbage_after_the_last_record_is_cut");
    let mut tails: Vec<Vec<u8>> = vec![
        vec![0; 1],
        vec![0; 7],
        vec![0; 8],
        vec![0; 4096],
        // A plausible header whose length points past the end of the file.
        [&100_u32.to_be_bytes()[..], &[0; 4], b"short"].concat(),
        // A length beyond any record.
        [&u32::MAX.to_be_bytes()[..], &[0; 12]].concat(),
        // A whole record with a wrong checksum.
        [&3_u32.to_be_bytes()[..], &[1, 2, 3, 4], &[2, 0, 0]].concat(),
    ];
    for _ in 0..32 {
        let len = usize::try_from(rng.range(1, 300)).unwrap();
        tails.push((0..len).map(|_| rng.next_u64().to_le_bytes()[0]).collect());
    }
    for tail in tails {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(template.path(), dir.path());
        let log = only_log(dir.path());
        OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(&tail)
            .unwrap();
        let store = open(dir.path());
        assert_eq!(contents(&store), after, "tail {tail:?}");
        assert_eq!(fs::metadata(&log).unwrap().len(), len_after);
    }
}

// ---------------------------------------------------------------------------------------------
// Compaction
// ---------------------------------------------------------------------------------------------

#[test]
fn compaction_keeps_the_state_and_replaces_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = OffsetStoreConfig {
        compact_after_bytes: 2000,
    };
    let store = OffsetStore::open_with_config(dir.path(), Arc::new(OsDisk), config).unwrap();
    let mut model = Model::new();
    // The same 4 partitions over and over: the log grows, the live state does not.
    let mut i = 0;
    while !store.needs_compaction() {
        commit(
            &store,
            &mut model,
            "g",
            &[("t", i % 4, value(i64::from(i), Some("m")))],
        );
        i += 1;
        assert!(i < 1000, "never needed compaction");
    }
    assert!(fs::metadata(only_log(dir.path())).unwrap().len() > 2000);
    store.compact().unwrap();
    assert!(!store.needs_compaction());
    assert_eq!(
        files(dir.path()),
        [gen_name(1, "log"), gen_name(1, "snapshot")]
    );
    assert_eq!(contents(&store), model);
    commit(&store, &mut model, "h", &[("t", 0, value(7, None))]);
    store.compact().unwrap();
    assert_eq!(
        files(dir.path()),
        [gen_name(2, "log"), gen_name(2, "snapshot")]
    );
    commit(&store, &mut model, "h", &[("t", 1, value(8, None))]);
    drop(store);
    let store = open(dir.path());
    assert_eq!(contents(&store), model);
}

#[test]
fn compaction_is_not_needed_while_the_log_is_mostly_live() {
    let dir = tempfile::tempdir().unwrap();
    let config = OffsetStoreConfig {
        compact_after_bytes: 0,
    };
    let store = OffsetStore::open_with_config(dir.path(), Arc::new(OsDisk), config).unwrap();
    let entries: Vec<_> = (0..100)
        .map(|p| ("t".to_owned(), p, value(1, None)))
        .collect();
    store.commit("g", &entries).unwrap();
    assert!(!store.needs_compaction(), "the log is about the live size");
    store.commit("g", &entries).unwrap();
    assert!(store.needs_compaction(), "half the log is dead");
}

/// A [`Disk`] that works for `budget` more operations (writes and syncs), then fails every
/// one with EIO: the store stops exactly there, as a process killed at that point would.
#[derive(Debug)]
struct CrashDisk {
    budget: AtomicI64,
    ops: AtomicU64,
}

impl CrashDisk {
    fn new() -> Self {
        Self {
            budget: AtomicI64::new(i64::MAX),
            ops: AtomicU64::new(0),
        }
    }

    fn arm(&self, budget: i64) {
        self.budget.store(budget, Ordering::SeqCst);
    }

    fn take(&self) -> io::Result<()> {
        self.ops.fetch_add(1, Ordering::SeqCst);
        if self.budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return Err(io::Error::from_raw_os_error(5));
        }
        Ok(())
    }
}

impl Disk for CrashDisk {
    fn allocate(&self, file: &File, len: u64) -> io::Result<()> {
        OsDisk.allocate(file, len)
    }
    fn write_all_at(&self, file: &File, parts: &[&[u8]], offset: u64) -> io::Result<()> {
        self.take()?;
        OsDisk.write_all_at(file, parts, offset)
    }
    fn sync_data(&self, file: &File) -> io::Result<()> {
        self.take()?;
        OsDisk.sync_data(file)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.take()?;
        OsDisk.sync_dir(dir)
    }
}

/// Commits, one compaction, more commits, closed: the model.
fn populate(dir: &Path) -> Model {
    let store = open(dir);
    let mut model = Model::new();
    for i in 0..20 {
        let group = format!("g{}", i % 3);
        commit(
            &store,
            &mut model,
            &group,
            &[
                ("t", i % 2, value(i64::from(i), None)),
                ("u", 0, value(1, Some("x"))),
            ],
        );
    }
    store.compact().unwrap();
    store.delete_topic("u").unwrap();
    model.retain(|(_, t, _), _| t != "u");
    commit(&store, &mut model, "g9", &[("t", 5, value(5, None))]);
    store.close().unwrap();
    model
}

#[test]
fn a_crash_at_every_step_of_compaction_loses_nothing_acknowledged() {
    // How many disk operations a compaction plus one acknowledged commit take.
    let probe = tempfile::tempdir().unwrap();
    populate(probe.path());
    let disk = Arc::new(CrashDisk::new());
    let store = OffsetStore::open(probe.path(), Arc::clone(&disk) as _).unwrap();
    let before = disk.ops.load(Ordering::SeqCst);
    store.compact().unwrap();
    let ticket = store
        .commit("late", &[("t".to_owned(), 0, value(1, None))])
        .unwrap();
    block_on(store.wait_durable(ticket)).unwrap();
    let steps = disk.ops.load(Ordering::SeqCst) - before;
    drop(store);
    assert!(steps >= 5, "compaction took {steps} disk operations");

    let late = (("late".to_owned(), "t".to_owned(), 0), value(1, None));
    for budget in 0..=i64::try_from(steps).unwrap() {
        let dir = tempfile::tempdir().unwrap();
        let model = populate(dir.path());
        let disk = Arc::new(CrashDisk::new());
        let store = OffsetStore::open(dir.path(), Arc::clone(&disk) as _).unwrap();
        disk.arm(budget);
        let compacted = store.compact();
        let acknowledged = match store.commit("late", &[("t".to_owned(), 0, value(1, None))]) {
            Ok(ticket) => block_on(store.wait_durable(ticket)).is_ok(),
            Err(_) => false,
        };
        drop(store);

        let store = open(dir.path());
        let got = contents(&store);
        let mut with_late = model.clone();
        with_late.insert(late.0.clone(), late.1.clone());
        if acknowledged {
            assert_eq!(got, with_late, "budget {budget}: acknowledged commit lost");
        } else {
            assert!(got == model || got == with_late, "budget {budget}: {got:?}");
        }
        // Whatever was left, one open cleans up to one log (and at most one snapshot) ...
        drop(store);
        let names = files(dir.path());
        assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
        // ... and a compaction afterwards works.
        let store = open(dir.path());
        store.compact().unwrap();
        assert_eq!(
            contents(&store),
            got,
            "budget {budget} (compacted: {compacted:?})"
        );
        drop(store);
        assert_eq!(files(dir.path()).len(), 2);
    }
}

/// The files of a store at each step of its second compaction, to assemble the states a
/// crash (including a power loss that loses unsynced directory changes) can leave.
struct Stages {
    /// Generation 1 (snapshot and log) just before the second compaction.
    gen1: tempfile::TempDir,
    /// Generation 2 (snapshot and log) after it and more commits.
    gen2: tempfile::TempDir,
    /// State after generation 1 only, and after everything.
    model_gen1: Model,
    model_all: Model,
}

fn stages() -> Stages {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut model = Model::new();
    commit(
        &store,
        &mut model,
        "a",
        &[("t", 0, value(1, None)), ("t", 1, value(2, None))],
    );
    store.compact().unwrap();
    commit(&store, &mut model, "b", &[("t", 0, value(3, Some("m")))]);
    store.delete_topic("x").unwrap();
    commit(&store, &mut model, "a", &[("t", 0, value(4, None))]);
    store.sync().unwrap();
    let gen1 = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), gen1.path());
    assert_eq!(
        files(gen1.path()),
        [gen_name(1, "log"), gen_name(1, "snapshot")]
    );
    let model_gen1 = model.clone();
    store.compact().unwrap();
    store.delete_group("b").unwrap();
    model.retain(|(g, _, _), _| g != "b");
    commit(&store, &mut model, "c", &[("u", 0, value(5, None))]);
    store.close().unwrap();
    drop(store);
    assert_eq!(
        files(dir.path()),
        [gen_name(2, "log"), gen_name(2, "snapshot")]
    );
    Stages {
        gen1,
        gen2: dir,
        model_gen1,
        model_all: model,
    }
}

/// A directory made of the named files of each stage.
fn assemble(parts: &[(&Path, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (from, name) in parts {
        fs::copy(from.join(name), dir.path().join(name)).unwrap();
    }
    dir
}

#[test]
fn every_file_state_of_an_interrupted_compaction_recovers() {
    let s = stages();
    let (g1, g2) = (s.gen1.path(), s.gen2.path());
    let (log1, snap1) = (gen_name(1, "log"), gen_name(1, "snapshot"));
    let (log2, snap2) = (gen_name(2, "log"), gen_name(2, "snapshot"));

    // Step 1 done: an empty new log.
    let dir = assemble(&[(g1, &log1), (g1, &snap1)]);
    File::create(dir.path().join(&log2)).unwrap();
    assert_eq!(contents(&open(dir.path())), s.model_gen1, "empty new log");

    // Step 2 done: records in the new log, no snapshot (or a partial one) yet.
    for tmp in [None, Some(3), Some(10)] {
        let dir = assemble(&[(g1, &log1), (g1, &snap1), (g2, &log2)]);
        if let Some(tenths) = tmp {
            let bytes = fs::read(g2.join(&snap2)).unwrap();
            let keep = bytes.len() * tenths / 10;
            fs::write(dir.path().join(format!("{snap2}.tmp")), &bytes[..keep]).unwrap();
        }
        assert_eq!(contents(&open(dir.path())), s.model_all, "tmp {tmp:?}");
        assert_eq!(
            files(dir.path()),
            [log1.clone(), snap1.clone(), log2.clone()]
        );
    }

    // Step 3 done, step 4 in any state: the new snapshot and any subset of the old files.
    for mask in 0..4 {
        let mut parts = vec![(g2, log2.as_str()), (g2, snap2.as_str())];
        if mask & 1 != 0 {
            parts.push((g1, &log1));
        }
        if mask & 2 != 0 {
            parts.push((g1, &snap1));
        }
        let dir = assemble(&parts);
        assert_eq!(contents(&open(dir.path())), s.model_all, "mask {mask}");
        assert_eq!(
            files(dir.path()),
            [log2.clone(), snap2.clone()],
            "old files removed"
        );
    }

    // A damaged new snapshot while the old files are still there: they are used instead.
    let dir = assemble(&[(g1, &log1), (g1, &snap1), (g2, &log2)]);
    let mut bytes = fs::read(g2.join(&snap2)).unwrap();
    bytes[10] ^= 1;
    fs::write(dir.path().join(&snap2), &bytes).unwrap();
    assert_eq!(
        contents(&open(dir.path())),
        s.model_all,
        "damaged new snapshot"
    );

    // ... and without them: refusing to open beats forgetting offsets.
    let dir = assemble(&[(g2, &log2)]);
    fs::write(dir.path().join(&snap2), &bytes).unwrap();
    let err = OffsetStore::open(dir.path(), Arc::new(OsDisk)).unwrap_err();
    assert!(matches!(err, OffsetStoreError::Corrupt { .. }), "{err}");
    let dir = assemble(&[(g2, &log2)]);
    let err = OffsetStore::open(dir.path(), Arc::new(OsDisk)).unwrap_err();
    assert!(matches!(err, OffsetStoreError::Corrupt { .. }), "{err}");

    // A torn tail in the older log: the history ends there, the newer log is emptied.
    let dir = assemble(&[(g1, &log1), (g1, &snap1), (g2, &log2)]);
    OpenOptions::new()
        .append(true)
        .open(dir.path().join(&log1))
        .unwrap()
        .write_all(&[0xAB; 5])
        .unwrap();
    assert_eq!(contents(&open(dir.path())), s.model_gen1, "torn older log");
    assert_eq!(fs::metadata(dir.path().join(&log2)).unwrap().len(), 0);
    assert_eq!(
        fs::metadata(dir.path().join(&log1)).unwrap().len(),
        fs::metadata(g1.join(&log1)).unwrap().len()
    );
}

// ---------------------------------------------------------------------------------------------
// Property test against a map
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    Commit(usize, Vec<(usize, i32, i64, Option<usize>)>),
    DeleteGroup(usize),
    DeleteTopic(usize),
    Compact,
    CompactIfNeeded,
    /// Close and reopen.
    Reopen,
    /// Drop without closing and reopen.
    CrashReopen,
}

const GROUPS: [&str; 4] = ["g0", "g1", "group-two", ""];
const TOPICS: [&str; 3] = ["t", "topic.b", "ü"];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => (
            0..GROUPS.len(),
            prop::collection::vec(
                (0..TOPICS.len(), 0_i32..4, any::<i64>(), prop::option::of(0_usize..40)),
                1..6,
            ),
        )
            .prop_map(|(g, e)| Step::Commit(g, e)),
        1 => (0..GROUPS.len()).prop_map(Step::DeleteGroup),
        1 => (0..TOPICS.len()).prop_map(Step::DeleteTopic),
        1 => Just(Step::Compact),
        2 => Just(Step::CompactIfNeeded),
        1 => Just(Step::Reopen),
        1 => Just(Step::CrashReopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_store_behaves_like_a_map(steps in prop::collection::vec(step(), 1..50)) {
        let dir = tempfile::tempdir().unwrap();
        let config = OffsetStoreConfig { compact_after_bytes: 300 };
        let reopen = || OffsetStore::open_with_config(dir.path(), Arc::new(OsDisk), config).unwrap();
        let mut store = reopen();
        let mut model = Model::new();
        for step in &steps {
            match step {
                Step::Commit(g, entries) => {
                    let entries: Vec<(String, i32, CommittedOffset)> = entries
                        .iter()
                        .map(|&(t, p, o, m)| {
                            let metadata = m.map(|n| "µ".repeat(n));
                            (TOPICS[t].to_owned(), p, CommittedOffset {
                                offset: o,
                                leader_epoch: p - 1,
                                metadata,
                                commit_timestamp_ms: o.wrapping_mul(3),
                            })
                        })
                        .collect();
                    store.commit(GROUPS[*g], &entries).unwrap();
                    for (t, p, c) in entries {
                        model.insert((GROUPS[*g].to_owned(), t, p), c);
                    }
                }
                Step::DeleteGroup(g) => {
                    store.delete_group(GROUPS[*g]).unwrap();
                    model.retain(|(group, _, _), _| group != GROUPS[*g]);
                }
                Step::DeleteTopic(t) => {
                    store.delete_topic(TOPICS[*t]).unwrap();
                    model.retain(|(_, topic, _), _| topic != TOPICS[*t]);
                }
                Step::Compact => store.compact().unwrap(),
                Step::CompactIfNeeded => {
                    if store.needs_compaction() {
                        store.compact().unwrap();
                        prop_assert!(!store.needs_compaction());
                    }
                }
                Step::Reopen => {
                    store.close().unwrap();
                    drop(store);
                    store = reopen();
                }
                Step::CrashReopen => {
                    drop(store);
                    store = reopen();
                }
            }
            prop_assert_eq!(&contents(&store), &model, "after {:?}", step);
            // Compaction and reopening leave no superseded files behind.
            let names = files(dir.path());
            prop_assert_eq!(names.iter().filter(|n| n.ends_with(".log")).count(), 1, "{:?}", names);
            prop_assert!(names.iter().filter(|n| n.ends_with(".snapshot")).count() <= 1, "{:?}", names);
        }
        drop(store);
        prop_assert_eq!(contents(&reopen()), model);
    }
}

// ---------------------------------------------------------------------------------------------
// Group commit and failures
// ---------------------------------------------------------------------------------------------

/// Counts syncs; each `sync_data` takes `delay`, as on a real disk.
#[derive(Debug)]
struct SlowCountingDisk {
    syncs: AtomicU64,
    delay: Duration,
}

impl Disk for SlowCountingDisk {
    fn allocate(&self, file: &File, len: u64) -> io::Result<()> {
        OsDisk.allocate(file, len)
    }
    fn sync_data(&self, file: &File) -> io::Result<()> {
        std::thread::sleep(self.delay);
        OsDisk.sync_data(file)?;
        self.syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsDisk.sync_dir(dir)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_waiters_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(SlowCountingDisk {
        syncs: AtomicU64::new(0),
        delay: Duration::from_millis(20),
    });
    let store = Arc::new(OffsetStore::open(dir.path(), Arc::clone(&disk) as _).unwrap());
    let before = disk.syncs.load(Ordering::SeqCst);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let group = format!("group-{i}");
                let ticket = store
                    .commit(&group, &[("t".to_owned(), 0, value(i, None))])
                    .unwrap();
                store.wait_durable(ticket).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let syncs = disk.syncs.load(Ordering::SeqCst) - before;
    eprintln!("64 commits and waits took {syncs} fdatasyncs");
    assert!((1..=16).contains(&syncs), "{syncs} syncs for 64 waiters");
    assert_eq!(store.groups().len(), 64);
}

/// A disk whose syncs each wait for the test's permission, and say when they start.
#[derive(Debug)]
struct GatedDisk {
    started: tokio::sync::mpsc::UnboundedSender<()>,
    permits: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Disk for GatedDisk {
    fn allocate(&self, file: &File, len: u64) -> io::Result<()> {
        OsDisk.allocate(file, len)
    }
    fn sync_data(&self, file: &File) -> io::Result<()> {
        self.started.send(()).map_err(io::Error::other)?;
        self.permits
            .lock()
            .unwrap()
            .recv()
            .map_err(io::Error::other)?;
        OsDisk.sync_data(file)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsDisk.sync_dir(dir)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_written_during_a_sync_waits_for_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let (permit, permits) = std::sync::mpsc::channel();
    let disk = Arc::new(GatedDisk {
        started: started_tx,
        permits: Mutex::new(permits),
    });
    let store = Arc::new(OffsetStore::open(dir.path(), disk).unwrap());
    let entry = |o| vec![("t".to_owned(), 0, value(o, None))];

    let first = store.commit("a", &entry(1)).unwrap();
    let waiter = Arc::clone(&store);
    let first_wait = tokio::spawn(async move { waiter.wait_durable(first).await });
    started.recv().await.unwrap();

    // The first sync is running: a record written now is not covered by it.
    let second = store.commit("b", &entry(2)).unwrap();
    let waiter = Arc::clone(&store);
    let second_wait = tokio::spawn(async move { waiter.wait_durable(second).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    permit.send(()).unwrap();
    first_wait.await.unwrap().unwrap();
    started.recv().await.unwrap();
    assert!(
        !second_wait.is_finished(),
        "released by a sync that started before its record was written"
    );
    permit.send(()).unwrap();
    second_wait.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_stops_the_store_and_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FaultyDisk::new(i64::MAX));
    let store = OffsetStore::open(dir.path(), Arc::clone(&disk) as _).unwrap();
    let entry = |o| vec![("t".to_owned(), 0, value(o, None))];
    let acked = store.commit("a", &entry(1)).unwrap();
    store.wait_durable(acked).await.unwrap();

    disk.set_fail_sync(true);
    let doomed = store.commit("b", &entry(2)).unwrap();
    let err = store.wait_durable(doomed).await.unwrap_err();
    assert!(matches!(err, OffsetStoreError::Failed { .. }), "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept"
    );
    disk.set_fail_sync(false);
    // Fail-stop: no more writes even though the disk works again.
    assert!(matches!(
        store.commit("c", &entry(3)),
        Err(OffsetStoreError::Failed { .. })
    ));
    assert!(matches!(
        store.delete_group("a"),
        Err(OffsetStoreError::Failed { .. })
    ));
    assert!(matches!(
        store.compact(),
        Err(OffsetStoreError::Failed { .. })
    ));
    assert!(matches!(
        store.wait_durable(doomed).await,
        Err(OffsetStoreError::Failed { .. })
    ));
    // What was acknowledged before stays acknowledged, and readable.
    store.wait_durable(acked).await.unwrap();
    assert_eq!(store.fetch("a", "t", 0), Some(value(1, None)));
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.fetch("a", "t", 0), Some(value(1, None)));
    assert_eq!(store.fetch("c", "t", 0), None);
}

/// As in the broker: the store and a partition log share one pool of sync threads. Commits of
/// many groups still share fsyncs, and the store failing (fail-stop) leaves the log, and the
/// threads, working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_shares_the_sync_threads_of_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let flusher = Flusher::new(1);
    let log = PartitionLog::open(
        dir.path().join("t-0"),
        LogOptions::new(common::small_config(1 << 20), Arc::clone(&flusher)),
    )
    .unwrap();
    let disk = Arc::new(FaultyDisk::new(i64::MAX));
    let store = Arc::new(
        OffsetStore::open_with(
            &dir.path().join("offsets"),
            OffsetStoreOptions {
                disk: Arc::clone(&disk) as _,
                flusher,
                config: OffsetStoreConfig::default(),
            },
        )
        .unwrap(),
    );
    let before = disk.sync_count();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let ticket = store
                    .commit(
                        &format!("group-{i}"),
                        &[("t".to_owned(), 0, value(i, None))],
                    )
                    .unwrap();
                store.wait_durable(ticket).await.unwrap();
            })
        })
        .collect();
    let appended = log.append(&common::batch("a", 3, 0)).unwrap();
    log.wait_durable(appended.next_offset()).await.unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let syncs = disk.sync_count() - before;
    assert!(
        (1..=32).contains(&syncs),
        "{syncs} store syncs for 32 waiters"
    );
    assert_eq!(store.groups().len(), 32);

    disk.set_fail_sync(true);
    let doomed = store
        .commit("late", &[("t".to_owned(), 0, value(99, None))])
        .unwrap();
    assert!(matches!(
        store.wait_durable(doomed).await,
        Err(OffsetStoreError::Failed { .. })
    ));
    let appended = log.append(&common::batch("b", 2, 0)).unwrap();
    log.wait_durable(appended.next_offset()).await.unwrap();
    assert!(!log.is_failed());
}

#[test]
fn a_failed_write_stops_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FaultyDisk::new(i64::MAX));
    let store = OffsetStore::open(dir.path(), Arc::clone(&disk) as _).unwrap();
    let entry = |o| vec![("t".to_owned(), 0, value(o, None))];
    store.commit("a", &entry(1)).unwrap();
    disk.set_fail_write(true);
    assert!(matches!(
        store.commit("b", &entry(2)),
        Err(OffsetStoreError::Failed { .. })
    ));
    assert_eq!(
        store.fetch("b", "t", 0),
        None,
        "a failed commit is not visible"
    );
    disk.set_fail_write(false);
    assert!(matches!(
        store.commit("c", &entry(3)),
        Err(OffsetStoreError::Failed { .. })
    ));
    assert!(matches!(store.sync(), Err(OffsetStoreError::Failed { .. })));
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.groups(), ["a"]);
}

/// Records the inode of every file synced.
#[derive(Debug, Default)]
struct RecordingDisk {
    synced: Mutex<Vec<u64>>,
}

impl Disk for RecordingDisk {
    fn allocate(&self, file: &File, len: u64) -> io::Result<()> {
        OsDisk.allocate(file, len)
    }
    fn sync_data(&self, file: &File) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        self.synced.lock().unwrap().push(file.metadata()?.ino());
        OsDisk.sync_data(file)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsDisk.sync_dir(dir)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_written_before_a_compaction_is_synced_in_its_old_log() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(RecordingDisk::default());
    let store = OffsetStore::open(dir.path(), Arc::clone(&disk) as _).unwrap();
    let old_log = fs::metadata(only_log(dir.path())).unwrap().ino();
    let ticket = store
        .commit("g", &[("t".to_owned(), 0, value(1, None))])
        .unwrap();
    // Appends move to a new log before anything was synced.
    store.compact().unwrap();
    disk.synced.lock().unwrap().clear();
    store.wait_durable(ticket).await.unwrap();
    let synced = disk.synced.lock().unwrap().clone();
    assert!(
        synced.contains(&old_log),
        "the record's log was not synced: {synced:?}"
    );
}

#[test]
fn commits_racing_compactions_all_survive() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    std::thread::scope(|scope| {
        for writer in 0..2 {
            let store = Arc::clone(&store);
            scope.spawn(move || {
                for i in 0..300 {
                    let group = format!("w{writer}-{}", i % 5);
                    store
                        .commit(
                            &group,
                            &[("t".to_owned(), i % 3, value(i64::from(i), None))],
                        )
                        .unwrap();
                    if i % 50 == 0 {
                        store.delete_topic("t-none").unwrap();
                    }
                }
            });
        }
        let store = Arc::clone(&store);
        scope.spawn(move || {
            for _ in 0..10 {
                store.compact().unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        });
    });
    let model = contents(&store);
    assert_eq!(model.len(), 2 * 5 * 3);
    drop(store);
    assert_eq!(contents(&open(dir.path())), model);
}

/// OffsetDelete's tombstone: only the named partitions go, the group and topics left without
/// offsets go with them, and the deletion survives a reopen (log replay) and a compaction
/// (snapshot) followed by a reopen.
#[test]
fn deleted_partitions_stay_deleted_across_reopen_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut model = Model::new();
    commit(
        &store,
        &mut model,
        "g",
        &[
            ("t", 0, value(10, Some("m"))),
            ("t", 1, value(11, None)),
            ("u", 0, value(12, None)),
        ],
    );
    commit(&store, &mut model, "h", &[("t", 0, value(13, None))]);
    store
        .delete_offsets(
            "g",
            &[
                ("t".to_owned(), 0),
                ("u".to_owned(), 0),
                ("v".to_owned(), 9),
            ],
        )
        .unwrap();
    model.remove(&("g".to_owned(), "t".to_owned(), 0));
    model.remove(&("g".to_owned(), "u".to_owned(), 0));
    assert_eq!(contents(&store), model);
    store.delete_offsets("h", &[("t".to_owned(), 0)]).unwrap();
    model.remove(&("h".to_owned(), "t".to_owned(), 0));
    assert_eq!(store.groups(), ["g"], "h had no other offsets");
    // Not there: harmless.
    store
        .delete_offsets("nobody", &[("t".to_owned(), 0)])
        .unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(contents(&store), model);
    store.compact().unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(contents(&store), model);
    assert_eq!(store.fetch("g", "t", 0), None);
    assert_eq!(store.fetch("g", "t", 1).map(|c| c.offset), Some(11));
}
