//! Damaged files under a real `weir-broker` process: a flipped bit in a sealed segment (in a
//! batch's CRC-covered bytes, and in its base offset, which the CRC does not cover), a
//! truncated offset index, and a damaged committed-offsets log. In each case the broker must
//! start, report the damage in its log, isolate it (refuse the damaged batch, rebuild the
//! index, cut the invalid tail of the offsets log) and never serve damaged bytes as valid,
//! while everything around the damage stays readable.
//!
//! Files are damaged while the broker is stopped (a file changed under a running broker's
//! map is outside the storage contract, `docs/storage-format.md`).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, OffsetFetchRequest};
use kafka_protocol::protocol::StrBytes;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::{BatchHeader, HEADER_LEN};
use weir_tests::process::BrokerProcess;
use weir_tests::{BASE_TIMESTAMP, Client, batch_at, req, stored, versions};

const TOPIC: &str = "rot";
const GROUP: &str = "rot-group";
/// About seven 2 KiB batches per segment.
const SEGMENT_BYTES: &str = "16384";

struct Setup {
    _dir: tempfile::TempDir,
    data: PathBuf,
    broker: BrokerProcess,
}

fn start() -> Setup {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let broker = BrokerProcess::start(
        &data,
        &dir.path().join("broker.log"),
        &["--segment-bytes", SEGMENT_BYTES],
    );
    Setup {
        _dir: dir,
        data,
        broker,
    }
}

/// A batch of four ~500-byte records tagged by `n`.
fn batch_n(n: i64) -> Bytes {
    let timestamps: Vec<i64> = (0..4).map(|i| BASE_TIMESTAMP + n * 4 + i).collect();
    batch_at(&timestamps, 500)
}

/// Produces `count` batches at acks=all; returns `(base offset, batch)` of each.
async fn produce_batches(client: &mut Client, count: i64) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    for n in 0..count {
        let b = batch_n(n);
        out.push((client.produce_ok(TOPIC, 0, b.clone()).await, b));
    }
    out
}

/// Fetch at `offset`: the error code and the record bytes.
async fn fetch(client: &mut Client, offset: i64) -> (i16, Bytes) {
    let response = client
        .call(
            *versions(ApiKey::Fetch).end(),
            req::fetch(TOPIC, 0, offset, 0, 0),
        )
        .await;
    let p = &response.responses[0].partitions[0];
    (p.error_code, p.records.clone().unwrap_or_default())
}

/// The partition's segment files, oldest first.
fn segments(data: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join(format!("{TOPIC}-0")))
        .expect("partition directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    files.sort();
    files
}

/// `(position, base offset)` of every batch in a segment file.
fn batch_positions(path: &Path) -> Vec<(u64, i64)> {
    let bytes = std::fs::read(path).expect("read segment");
    let mut out = Vec::new();
    let mut at = 0;
    while at + HEADER_LEN <= bytes.len() {
        let Ok(header) = BatchHeader::parse(&bytes[at..]) else {
            break;
        };
        let Ok(len) = header.total_len() else {
            break;
        };
        out.push((at as u64, header.base_offset));
        at += len;
    }
    out
}

fn flip_bit(path: &Path, position: u64, mask: u8) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open file to damage");
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, position).expect("read byte");
    byte[0] ^= mask;
    file.write_all_at(&byte, position).expect("write byte");
    file.sync_all().expect("sync damaged file");
}

/// Everything a fetch from `from` returns, walking forward until `until` (exclusive) or an
/// error; returns `(records by base offset, the error code that stopped it, at which offset)`.
async fn read_until(
    client: &mut Client,
    from: i64,
    until: i64,
) -> (BTreeMap<i64, Vec<u8>>, Option<(i16, i64)>) {
    let mut out = BTreeMap::new();
    let mut offset = from;
    while offset < until {
        let (code, bytes) = fetch(client, offset).await;
        if code != 0 {
            return (out, Some((code, offset)));
        }
        assert!(!bytes.is_empty(), "empty fetch at {offset} below {until}");
        let mut at = 0;
        while at < bytes.len() {
            let header = BatchHeader::parse(&bytes[at..]).expect("header");
            let len = header.total_len().expect("length");
            let whole = &bytes[at..at + len];
            weir_protocol::record_batch::validate_batch(whole)
                .expect("every batch served is valid");
            out.insert(header.base_offset, whole.to_vec());
            offset = header.next_offset();
            at += len;
        }
    }
    (out, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bits_in_sealed_segments_are_refused_and_reported_never_served() {
    let mut s = start();
    let mut client = Client::connect(s.broker.addr()).await;
    client.create_topic(TOPIC, 1).await;
    let acked = produce_batches(&mut client, 30).await;
    drop(client);
    assert!(s.broker.stop(), "clean stop");

    let logs = segments(&s.data, "log");
    assert!(logs.len() >= 4, "the data spans several segments: {logs:?}");
    // Segment 0, third batch: a bit inside the records (covered by the CRC).
    let (pos_a, base_a) = batch_positions(&logs[0])[2];
    flip_bit(&logs[0], pos_a + HEADER_LEN as u64 + 40, 0x08);
    // Segment 1, second batch: a bit of the base offset (not covered by the CRC).
    let (pos_b, base_b) = batch_positions(&logs[1])[1];
    flip_bit(&logs[1], pos_b + 7, 0x01);
    let next = |base: i64| base + 4;

    for restart in ["after a clean stop", "after a kill"] {
        s.broker.restart();
        let mut client = Client::connect(s.broker.addr()).await;
        // The damaged batches are refused with CORRUPT_MESSAGE, at their own offsets and at
        // every offset inside them.
        for damaged in [base_a, base_a + 3, base_b, base_b + 2] {
            let (code, bytes) = fetch(&mut client, damaged).await;
            assert_eq!(
                (code, bytes.len()),
                (ErrorCode::CorruptMessage.code(), 0),
                "{restart}: fetch at damaged offset {damaged}"
            );
        }
        // Reading from the start stops just before the first damage, having served only
        // intact batches; after each damaged batch, reading resumes.
        let end = acked.last().map_or(0, |(b, _)| next(*b));
        let mut served = BTreeMap::new();
        let (part, stop) = read_until(&mut client, 0, end).await;
        served.extend(part);
        assert_eq!(
            stop,
            Some((ErrorCode::CorruptMessage.code(), base_a)),
            "{restart}"
        );
        let (part, stop) = read_until(&mut client, next(base_a), end).await;
        served.extend(part);
        assert_eq!(
            stop,
            Some((ErrorCode::CorruptMessage.code(), base_b)),
            "{restart}"
        );
        let (part, stop) = read_until(&mut client, next(base_b), end).await;
        served.extend(part);
        assert_eq!(stop, None, "{restart}");
        for (base, batch) in &acked {
            if *base == base_a || *base == base_b {
                assert!(
                    !served.contains_key(base),
                    "{restart}: damaged batch {base} served"
                );
            } else {
                assert_eq!(
                    served.get(base),
                    Some(&stored(batch, *base)),
                    "{restart}: intact batch at {base}"
                );
            }
        }
        // Writes go on.
        client.produce_ok(TOPIC, 0, batch_n(1000)).await;
        drop(client);
        if restart == "after a clean stop" {
            s.broker.kill9();
        } else {
            assert!(s.broker.stop(), "clean stop");
        }
    }
    let log = s.broker.log_text();
    assert!(
        log.contains("damaged batch on disk; refusing to serve it"),
        "the damage is reported:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_or_damaged_index_is_rebuilt() {
    let mut s = start();
    let mut client = Client::connect(s.broker.addr()).await;
    client.create_topic(TOPIC, 1).await;
    let acked = produce_batches(&mut client, 30).await;
    drop(client);
    assert!(s.broker.stop(), "clean stop");

    let indexes = segments(&s.data, "index");
    let sizes: Vec<u64> = indexes
        .iter()
        .map(|p| std::fs::metadata(p).expect("index").len())
        .collect();
    assert!(
        sizes[0] >= 16,
        "the first sealed index has entries: {sizes:?}"
    );
    // Cut the first index mid-entry, and point an entry of the second one elsewhere.
    OpenOptions::new()
        .write(true)
        .open(&indexes[0])
        .and_then(|f| f.set_len(5))
        .expect("truncate index");
    flip_bit(&indexes[1], 5, 0x40);

    s.broker.restart();
    let mut client = Client::connect(s.broker.addr()).await;
    for (base, batch) in &acked {
        for offset in [*base, base + 3] {
            let (code, bytes) = fetch(&mut client, offset).await;
            assert_eq!(code, 0, "fetch at {offset}");
            assert_eq!(
                &bytes[..batch.len()],
                &stored(batch, *base)[..],
                "fetch at {offset} starts with the batch holding it"
            );
        }
    }
    drop(client);
    assert!(s.broker.stop(), "clean stop");
    let rebuilt = std::fs::metadata(&indexes[0]).expect("index").len();
    assert_eq!(rebuilt, sizes[0], "the truncated index was rebuilt in full");
    let log = s.broker.log_text();
    assert!(
        log.contains("rebuilding indexes"),
        "the rebuild is reported:\n{log}"
    );
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

async fn commit(client: &mut Client, offset: i64) {
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
                        .with_committed_metadata(Some(s(&format!("commit {offset}")))),
                ]),
        ]);
    let response = client
        .call(*versions(ApiKey::OffsetCommit).end(), request)
        .await;
    assert_eq!(
        response.topics[0].partitions[0].error_code, 0,
        "commit {offset}"
    );
}

async fn committed(client: &mut Client) -> (i64, Option<String>) {
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
    let p = &response.topics[0].partitions[0];
    assert_eq!((response.error_code, p.error_code), (0, 0), "{response:?}");
    (
        p.committed_offset,
        p.metadata.as_ref().map(|m| m.to_string()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_offsets_log_is_cut_at_the_damage_and_reported() {
    let mut s = start();
    let mut client = Client::connect(s.broker.addr()).await;
    client.create_topic(TOPIC, 1).await;
    for offset in 1..=10 {
        commit(&mut client, offset).await;
    }
    drop(client);
    // A kill, so the commits are still in the log rather than folded into a snapshot.
    s.broker.kill9();

    let dir = s.data.join("__consumer_offsets");
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("offsets directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    let log_file = logs.last().expect("an offsets log");
    // Records are length (u32) + crc (u32) + body; damage the body of the 6th one.
    let bytes = std::fs::read(log_file).expect("read offsets log");
    let mut at = 0usize;
    let mut starts = Vec::new();
    while at + 8 <= bytes.len() {
        starts.push(at);
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        at += 8 + len;
    }
    assert_eq!(starts.len(), 10, "one record per commit");
    flip_bit(log_file, (starts[5] + 12) as u64, 0x02);

    s.broker.restart();
    let mut client = Client::connect(s.broker.addr()).await;
    // The history ends at the last intact record: commit 5, with its own metadata (never a
    // value read from the damaged bytes).
    assert_eq!(
        committed(&mut client).await,
        (5, Some("commit 5".to_owned()))
    );
    // The store takes commits again, and they survive another crash.
    commit(&mut client, 11).await;
    drop(client);
    s.broker.kill9();
    s.broker.restart();
    let mut client = Client::connect(s.broker.addr()).await;
    assert_eq!(
        committed(&mut client).await,
        (11, Some("commit 11".to_owned()))
    );
    drop(client);
    assert!(s.broker.stop(), "clean stop");
    let log = s.broker.log_text();
    assert!(
        log.contains("cutting the invalid tail of the offsets log"),
        "the cut is reported:\n{log}"
    );
}

/// The partition's log end offset, as ListOffsets reports it.
async fn log_end(client: &mut Client) -> i64 {
    client.list_offset(TOPIC, 0, -1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_length_or_epoch_hides_no_neighbour_and_later_segments_survive_a_lost_recovery_point()
 {
    let mut s = start();
    let mut client = Client::connect(s.broker.addr()).await;
    client.create_topic(TOPIC, 1).await;
    let acked = produce_batches(&mut client, 30).await;
    let mut end = log_end(&mut client).await;
    drop(client);
    assert!(s.broker.stop(), "clean stop");

    let logs = segments(&s.data, "log");
    assert!(logs.len() >= 4, "the data spans several segments: {logs:?}");
    // Segment 0, second batch: its length field (outside the CRC), 16 bytes longer. With
    // 2 KiB batches and a 4 KiB index interval, the third batch comes before the next index
    // entry: a walk from the segment start must get past the damage to reach it.
    let (pos_a, base_a) = batch_positions(&logs[0])[1];
    flip_bit(&logs[0], pos_a + 11, 0x10);
    // Segment 1, second batch: its partition leader epoch (outside the CRC), 0 -> 1.
    let (pos_b, base_b) = batch_positions(&logs[1])[1];
    flip_bit(&logs[1], pos_b + 15, 0x01);
    // A crash that also lost the recovery point: every segment is scanned at the restart.
    let partition = s.data.join(format!("{TOPIC}-0"));
    for file in ["clean-shutdown", "recovery-point"] {
        std::fs::remove_file(partition.join(file)).unwrap_or_else(|e| panic!("remove {file}: {e}"));
    }

    for restart in ["after losing the recovery point", "after a kill"] {
        s.broker.restart();
        let mut client = Client::connect(s.broker.addr()).await;
        assert_eq!(
            log_end(&mut client).await,
            end,
            "{restart}: the log end stays"
        );
        for (base, batch) in &acked {
            for offset in [*base, base + 3] {
                let (code, bytes) = fetch(&mut client, offset).await;
                if *base == base_a || *base == base_b {
                    assert_eq!(
                        (code, bytes.len()),
                        (ErrorCode::CorruptMessage.code(), 0),
                        "{restart}: fetch at damaged offset {offset}"
                    );
                } else {
                    assert_eq!(code, 0, "{restart}: fetch at intact offset {offset}");
                    assert_eq!(
                        &bytes[..batch.len()],
                        &stored(batch, *base)[..],
                        "{restart}: fetch at {offset} starts with the batch holding it"
                    );
                }
            }
        }
        // Writes go on at the old end: no offset is given out twice.
        let next = client.produce_ok(TOPIC, 0, batch_n(1000)).await;
        assert_eq!(next, end, "{restart}: produced at the log end");
        end = next + 4;
        drop(client);
        s.broker.kill9();
    }
    s.broker.restart();
    assert!(s.broker.stop(), "clean stop");
    let log = s.broker.log_text();
    assert!(
        log.contains("damaged batch in a sealed segment"),
        "the damage is reported at recovery:\n{log}"
    );
}
