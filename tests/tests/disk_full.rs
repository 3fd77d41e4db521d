//! A real full disk: the broker's data directory is on a 2 MiB `tmpfs` that a ballast file
//! fills to the last byte. Produce must be refused with KAFKA_STORAGE_ERROR (not crash, not
//! stop the partition for good), offset commits refused with a retriable error, reads keep
//! working, nothing already acknowledged changes, and once the ballast is deleted the same
//! broker process accepts writes again (across segment rolls) without a restart. A clean
//! restart at the end must find everything.
//!
//! Also: the disk filling up exactly between a roll and the recovery point written after it,
//! and (with an injected disk) `ENOSPC` from the write of a batch itself, as on filesystems
//! that do not honour `fallocate`.
//!
//! Needs root to mount the tmpfs; fails (never skips) without it. The log-level cases (each
//! index file, fsync errors) are in `broker/tests/log_faults.rs` with an injected disk.

use bytes::Bytes;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, OffsetFetchRequest};
use kafka_protocol::protocol::StrBytes;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::tmpfs::Tmpfs;
use weir_tests::{BASE_TIMESTAMP, Client, TestBroker, batch_at, req, stored, versions};

const TOPIC: &str = "full";
const GROUP: &str = "full-group";
/// Small segments: the first roll on the full disk comes after about 16 batches.
const SEGMENT_BYTES: u32 = 64 << 10;
/// Bound on attempts to fill something up, far above what the sizes need.
const MAX_ATTEMPTS: usize = 2_000;

/// A batch of about 4 KiB whose values are tagged with `n`.
fn big_batch(n: i64) -> Bytes {
    let timestamps: Vec<i64> = (0..4).map(|i| BASE_TIMESTAMP + n * 4 + i).collect();
    batch_at(&timestamps, 1000)
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Produces at acks=all and returns the partition's error code and base offset.
async fn produce(client: &mut Client, records: Bytes) -> (i16, i64) {
    let response = client
        .call(
            *versions(ApiKey::Produce).end(),
            req::produce(TOPIC, 0, records, -1),
        )
        .await;
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Commits `offset` with metadata of 4000 bytes (so that few commits fill a page); returns
/// the error code.
async fn commit(client: &mut Client, offset: i64) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(s(""))
        .with_retention_time_ms(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(req::topic(TOPIC))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(-1)
                        .with_committed_metadata(Some(s(&"m".repeat(4000)))),
                ]),
        ]);
    let response = client
        .call(*versions(ApiKey::OffsetCommit).end(), request)
        .await;
    response.topics[0].partitions[0].error_code
}

async fn committed(client: &mut Client) -> i64 {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(req::topic(TOPIC))
                .with_partition_indexes(vec![0]),
        ]));
    let response = client
        .call(*versions(ApiKey::OffsetFetch).end(), request)
        .await;
    assert_eq!(response.error_code, 0, "{response:?}");
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "{p:?}");
    p.committed_offset
}

/// Every acknowledged batch reads back byte for byte at its offset.
async fn assert_all_readable(client: &mut Client, acked: &[(i64, Bytes)]) {
    for (base, batch) in acked {
        let got = client.fetch_now(TOPIC, 0, *base).await;
        let want = stored(batch, *base);
        assert!(
            got.len() >= want.len() && got[..want.len()] == want[..],
            "the batch acknowledged at offset {base} reads back differently"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_reads_and_recovers_without_a_restart() {
    let fs = Tmpfs::mount(2 << 20);
    let data = fs.path().join("data");
    let mut broker = TestBroker::start_with(|c| {
        c.data_dir = data.clone();
        c.segment_bytes = SEGMENT_BYTES;
    })
    .await;
    let mut client = broker.client().await;
    client.create_topic(TOPIC, 1).await;
    assert_eq!(commit(&mut client, 0).await, 0, "a commit with space left");

    let (ballast, ballast_bytes) = fs.fill("ballast");
    println!("filled the tmpfs with {ballast_bytes} bytes of ballast");

    // Appends go into the preallocated active segment until it must roll; the roll cannot
    // allocate the next segment.
    let mut acked: Vec<(i64, Bytes)> = Vec::new();
    let mut refused = None;
    for n in 0..MAX_ATTEMPTS {
        let records = big_batch(i64::try_from(n).expect("small"));
        match produce(&mut client, records.clone()).await {
            (0, base) => acked.push((base, records)),
            (code, _) => {
                refused = Some(code);
                break;
            }
        }
    }
    assert_eq!(
        refused,
        Some(ErrorCode::KafkaStorageError.code()),
        "produce on a full disk must fail with KAFKA_STORAGE_ERROR"
    );
    assert!(!acked.is_empty(), "the preallocated segment took no batch");
    // Still full: still refused, and the partition is not stopped for good.
    assert_eq!(
        produce(&mut client, big_batch(-1)).await.0,
        ErrorCode::KafkaStorageError.code()
    );
    assert_all_readable(&mut client, &acked).await;
    assert_eq!(
        client.list_offset(TOPIC, 0, -1).await,
        acked.last().map_or(0, |(base, _)| base + 4),
        "the refused batches left nothing behind"
    );

    // Offset commits: each ~4 KiB record fills the offsets log's page until it needs another.
    let mut last_ok = 0;
    let mut commit_refused = None;
    for offset in 1..=i64::try_from(MAX_ATTEMPTS).expect("small") {
        match commit(&mut client, offset).await {
            0 => last_ok = offset,
            code => {
                commit_refused = Some(code);
                break;
            }
        }
    }
    assert_eq!(
        commit_refused,
        Some(ErrorCode::NotCoordinator.code()),
        "a commit on a full disk must fail with a retriable error"
    );
    assert_eq!(
        committed(&mut client).await,
        last_ok,
        "the refused commit left nothing"
    );

    // Space comes back: the same process takes writes again, rolls included.
    std::fs::remove_file(&ballast).expect("delete the ballast");
    let base_before = acked.len();
    for n in 0..40 {
        let records = big_batch(10_000 + n);
        let (code, base) = produce(&mut client, records.clone()).await;
        assert_eq!(code, 0, "produce after space was freed (batch {n})");
        acked.push((base, records));
    }
    assert_eq!(
        acked[base_before].0,
        acked[base_before - 1].0 + 4,
        "offsets stay dense across the refused appends"
    );
    assert_eq!(
        commit(&mut client, 5_000).await,
        0,
        "a commit after space was freed"
    );
    assert_eq!(committed(&mut client).await, 5_000);
    assert_all_readable(&mut client, &acked).await;
    let segments = std::fs::read_dir(data.join(format!("{TOPIC}-0")))
        .expect("partition directory")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "log"))
        })
        .count();
    assert!(
        segments >= 3,
        "the writes after the full disk rolled segments ({segments})"
    );

    // And a restart finds all of it.
    drop(client);
    broker.restart().await;
    let mut client = broker.client().await;
    assert_all_readable(&mut client, &acked).await;
    assert_eq!(committed(&mut client).await, 5_000);
    drop(client);
    broker.shutdown().await;
}

/// Pages a roll allocates with [`SEGMENT_BYTES`]: the `.log` (16 pages of 4 KiB) and one page
/// each for the preallocated `.index` (18 entries of 8 bytes) and `.timeindex` (18 of 12).
const ROLL_PAGES: u64 = 16 + 1 + 1;
const PAGE: u64 = 4096;

/// The disk fills up exactly between a roll and the sync after it: the new segment gets its
/// space, the recovery point (a small file written at the next sync) does not. The data is
/// synced either way, so the log must carry on (the old recovery point stays valid) rather
/// than stop for good, and write the recovery point once there is room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_point_that_finds_no_space_does_not_stop_the_log() {
    let fs = Tmpfs::mount(2 << 20);
    let data = fs.path().join("data");
    let mut broker = TestBroker::start_with(|c| {
        c.data_dir = data.clone();
        c.segment_bytes = SEGMENT_BYTES;
    })
    .await;
    let mut client = broker.client().await;
    client.create_topic(TOPIC, 1).await;
    let recovery_point = data.join(format!("{TOPIC}-0")).join("recovery-point");
    assert!(!recovery_point.exists(), "no roll yet, no recovery point");

    // Leave exactly the space of one roll.
    let (ballast, size) = fs.fill("ballast");
    assert_eq!(size % PAGE, 0, "tmpfs fills whole pages");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&ballast)
        .and_then(|f| f.set_len(size - ROLL_PAGES * PAGE))
        .expect("free one roll's worth of the ballast");

    // Fill the first segment and roll into the second: every produce is acknowledged.
    let mut acked: Vec<(i64, Bytes)> = Vec::new();
    let segment_files = || {
        std::fs::read_dir(data.join(format!("{TOPIC}-0")))
            .expect("partition directory")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "log"))
            })
            .count()
    };
    for n in 0..MAX_ATTEMPTS {
        let records = big_batch(i64::try_from(n).expect("small"));
        let (code, base) = produce(&mut client, records.clone()).await;
        assert_eq!(
            code, 0,
            "produce {n}: the roll had room and the recovery point must not stop the log"
        );
        acked.push((base, records));
        if segment_files() == 2 {
            break;
        }
    }
    assert_eq!(segment_files(), 2, "the log rolled");
    assert!(
        !recovery_point.exists(),
        "the recovery point found no space (otherwise this test proves nothing)"
    );
    // Still writable after the failed recovery point, while space remains in the segment.
    let (code, base) = produce(&mut client, big_batch(5_000)).await;
    assert_eq!(
        code, 0,
        "the log carries on after the recovery point failed"
    );
    acked.push((base, big_batch(5_000)));

    // Space comes back: the next sync writes the recovery point.
    std::fs::remove_file(&ballast).expect("delete the ballast");
    let (code, base) = produce(&mut client, big_batch(5_001)).await;
    assert_eq!(code, 0);
    acked.push((base, big_batch(5_001)));
    assert!(
        recovery_point.exists(),
        "the recovery point is written once there is space"
    );
    assert_all_readable(&mut client, &acked).await;

    drop(client);
    broker.restart().await;
    let mut client = broker.client().await;
    assert_all_readable(&mut client, &acked).await;
    drop(client);
    broker.shutdown().await;
}

/// A filesystem that does not honour `fallocate` (some copy-on-write ones) can refuse the
/// write of a batch into a preallocated segment with `ENOSPC`. Nothing is published then, so
/// the append is refused as disk full and the log stays writable; other write errors still
/// stop it.
#[derive(Debug, Default)]
struct NoSpaceOnWrite {
    refuse: std::sync::atomic::AtomicBool,
}

impl weir_broker::log::Disk for NoSpaceOnWrite {
    fn allocate(&self, file: &std::fs::File, len: u64) -> std::io::Result<()> {
        weir_broker::log::OsDisk.allocate(file, len)
    }
    fn write_all_at(
        &self,
        file: &std::fs::File,
        parts: &[&[u8]],
        offset: u64,
    ) -> std::io::Result<()> {
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            // Part of the batch gets in before the space runs out.
            std::os::unix::fs::FileExt::write_all_at(file, &parts[0][..8], offset)?;
            return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
        }
        weir_broker::log::OsDisk.write_all_at(file, parts, offset)
    }
    fn sync_data(&self, file: &std::fs::File) -> std::io::Result<()> {
        weir_broker::log::OsDisk.sync_data(file)
    }
    fn sync_dir(&self, dir: &std::path::Path) -> std::io::Result<()> {
        weir_broker::log::OsDisk.sync_dir(dir)
    }
}

#[test]
fn no_space_while_writing_a_batch_refuses_that_append_only() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use weir_broker::log::{Flusher, LogConfig, LogError, LogOptions, Offset, PartitionLog};

    let dir = tempfile::tempdir().expect("temporary directory");
    let disk = Arc::new(NoSpaceOnWrite::default());
    let mut options = LogOptions::new(
        LogConfig {
            segment_bytes: 1 << 20,
            ..LogConfig::default()
        },
        Flusher::new(1),
    );
    options.disk = Arc::clone(&disk) as _;
    let log = PartitionLog::open(dir.path(), options).expect("open");
    let first = big_batch(0);
    assert_eq!(log.append(&first).expect("append").base_offset, Offset(0));
    disk.refuse.store(true, Ordering::SeqCst);
    let refused = log.append(&big_batch(1));
    assert!(
        matches!(refused, Err(LogError::DiskFull { .. })),
        "{refused:?}"
    );
    assert!(!log.is_failed(), "a full disk is not a device failure");
    assert_eq!(
        log.log_end_offset(),
        Offset(4),
        "nothing of the refused batch is visible"
    );
    disk.refuse.store(false, Ordering::SeqCst);
    let second = big_batch(2);
    assert_eq!(log.append(&second).expect("append").base_offset, Offset(4));
    log.sync().expect("sync");
    let read = log.read(Offset(0), 1 << 20).expect("read");
    let mut want = stored(&first, 0);
    want.extend_from_slice(&stored(&second, 4));
    assert_eq!(
        &read.records[..],
        &want[..],
        "the partial write was overwritten"
    );
    log.close().expect("close");
}
