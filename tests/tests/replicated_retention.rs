//! Retention, DeleteRecords and snapshots of replicated partitions, on three real broker
//! processes (`weir-broker` children, direct links):
//! - a follower stopped while retention deletes the segments it lacks comes back, receives
//!   its leader's snapshot (its log restarts at the leader's log start) and catches up from
//!   there, while produce to the leader keeps being acknowledged; every record from its new
//!   log start is the leader's;
//! - DeleteRecords moves the low watermark on every replica: the answer names it, a new
//!   leader reports it after a failover, and every replica's `log-start-offset` holds it.
//!
//! Needs a broker with the cluster flags (`--node-id`, `--cluster-listen`, `--peers`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::{DeleteRecordsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use weir_broker::log::{Flusher, LogConfig, LogOptions, Offset, PartitionLog};
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::{BatchBuilder, BatchHeader, RecordInput, Records};
use weir_tests::cluster_procs::{ClusterOptions, ClusterProcs};
use weir_tests::{BASE_TIMESTAMP, Client, batch_at, req, versions};

const SEGMENT_BYTES: u32 = 4096;

async fn wait_until<F, Fut, T>(what: &str, wait: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + wait;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (leader, isr count, broker count) of `topic`-0 as `addr` reports it; `None` when the
/// broker does not answer.
async fn partition0(addr: SocketAddr, topic: &str) -> Option<(i32, usize, usize)> {
    let connect = tokio::net::TcpStream::connect(addr).await.ok()?;
    drop(connect);
    let mut client = Client::connect(addr).await;
    let v = *versions(ApiKey::Metadata).end();
    let md = client.call(v, req::metadata(v, Some(&[topic]))).await;
    let brokers = md.brokers.len();
    let p = md.topics.first()?.partitions.first()?;
    Some((p.leader_id.0, p.isr_nodes.len(), brokers))
}

/// Starts three nodes with small segments, byte retention and a fast retention check, and
/// creates `topic` (one partition, three replicas); returns the cluster and the leader once
/// all three are in sync.
async fn three_nodes(root: &std::path::Path, topic: &str) -> (ClusterProcs, u64) {
    let segment = SEGMENT_BYTES.to_string();
    let options = ClusterOptions::new(3)
        .arg("--segment-bytes")
        .arg(&segment)
        .arg("--retention-bytes")
        .arg("8192")
        .arg("--retention-ms")
        .arg("-1")
        .arg("--retention-check-ms")
        .arg("200");
    let cluster = ClusterProcs::start(root, options);
    let one = cluster.kafka_addr(1);
    wait_until("the cluster forms", Duration::from_secs(60), || async {
        partition0(one, "none-yet")
            .await
            .map(|(_, _, brokers)| brokers)
            .filter(|b| *b == 3)
    })
    .await;
    let mut client = Client::connect(one).await;
    let v = *versions(ApiKey::CreateTopics).end();
    let created = client.call(v, req::create_topics(&[(topic, 1, 3)])).await;
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    let leader = wait_until(
        "a leader with 3 in sync",
        Duration::from_secs(60),
        || async {
            partition0(one, topic)
                .await
                .filter(|(leader, isr, _)| *leader > 0 && *isr == 3)
                .map(|(leader, _, _)| leader)
        },
    )
    .await;
    (cluster, u64::try_from(leader).unwrap())
}

/// A batch of 5 records of about 100 bytes each, values tagged `tag`.
fn records(tag: usize) -> bytes::Bytes {
    let ts: Vec<i64> = (0..5)
        .map(|i| BASE_TIMESTAMP + tag as i64 * 10 + i)
        .collect();
    batch_at(&ts, 100)
}

/// Every (offset, value) of the non-control records in `bytes` (whole batches).
fn decode(bytes: &[u8]) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let header = BatchHeader::parse(rest).unwrap();
        let len = header.total_len().unwrap();
        if !header.attributes.is_control() {
            for (i, record) in Records::new(&rest[..len]).unwrap().enumerate() {
                let record = record.unwrap();
                out.push((
                    header.base_offset + i as i64,
                    record.value.unwrap_or_default().to_vec(),
                ));
            }
        }
        rest = &rest[len..];
    }
    out
}

/// The leader's records from `from` to its high watermark.
async fn leader_records(addr: SocketAddr, topic: &str, from: i64) -> Vec<(i64, Vec<u8>)> {
    let mut client = Client::connect(addr).await;
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let bytes = client.fetch_now(topic, 0, offset).await;
        if bytes.is_empty() {
            return out;
        }
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let header = BatchHeader::parse(rest).unwrap();
            offset = header.next_offset();
            rest = &rest[header.total_len().unwrap()..];
        }
        out.extend(decode(&bytes).into_iter().filter(|(o, _)| *o >= from));
    }
}

/// Opens a stopped node's replica of `topic`-0 from its directory: (log start, records from
/// it to the log end).
fn replica_on_disk(cluster: &ClusterProcs, id: u64, topic: &str) -> (i64, Vec<(i64, Vec<u8>)>) {
    let dir = cluster.data_dir(id).join(format!("{topic}-0"));
    let config = LogConfig {
        segment_bytes: SEGMENT_BYTES,
        ..LogConfig::default()
    };
    let log =
        PartitionLog::open_replicated(&dir, LogOptions::new(config, Flusher::new(1))).unwrap();
    log.set_high_watermark(log.log_end_offset());
    let start = log.log_start_offset();
    let mut out = Vec::new();
    let mut offset = start;
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 20).unwrap();
        let mut rest = &read.records[..];
        assert!(!rest.is_empty(), "empty read at {offset}");
        out.extend(decode(rest).into_iter().filter(|(o, _)| *o >= start.0));
        while !rest.is_empty() {
            let header = BatchHeader::parse(rest).unwrap();
            offset = Offset(header.next_offset());
            rest = &rest[header.total_len().unwrap()..];
        }
    }
    (start.0, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_retention_a_returning_follower_catches_up_from_a_snapshot_while_produce_goes_on()
 {
    let root = tempfile::tempdir().unwrap();
    let (mut cluster, leader) = three_nodes(root.path(), "r").await;
    let leader_addr = cluster.kafka_addr(leader);
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let mut client = Client::connect(leader_addr).await;
    // An idempotent producer writes two batches, then goes quiet: its state reaches the
    // returning follower only through the snapshot's producer table.
    let iv = *versions(ApiKey::InitProducerId).end();
    let init = client
        .call(
            iv,
            kafka_protocol::messages::InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(kafka_protocol::messages::ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    assert_eq!(init.error_code, 0);
    let pid = init.producer_id.0;
    let mut idempotent_bases = Vec::new();
    for first_seq in [0, 3] {
        let mut builder = BatchBuilder::new().with_producer(pid, init.producer_epoch, first_seq);
        for i in 0..3 {
            builder.push(RecordInput {
                value: Some(format!("idempotent-{}", first_seq + i).as_bytes()),
                timestamp: BASE_TIMESTAMP,
                ..RecordInput::default()
            });
        }
        idempotent_bases.push(client.produce_ok("r", 0, builder.build().unwrap()).await);
    }
    for i in 0..10 {
        client.produce_ok("r", 0, records(i)).await;
    }
    let end_before = client.list_offset("r", 0, -1).await;
    cluster.stop(follower);

    // Enough that byte retention deletes, on the two running replicas, segments past what
    // the stopped one holds: it can only come back through a snapshot.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut tag = 10;
    let start = loop {
        for _ in 0..20 {
            client.produce_ok("r", 0, records(tag)).await;
            tag += 1;
        }
        let start = client.list_offset("r", 0, -2).await;
        if start > end_before + 20 {
            break start;
        }
        assert!(
            Instant::now() < deadline,
            "retention never moved the leader's log start (at {start}, end {})",
            client.list_offset("r", 0, -1).await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    eprintln!("leader's log start {start}, stopped follower ended at {end_before}");

    // The follower returns while a producer keeps writing: every produce is acknowledged.
    cluster.restart(follower);
    let producing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = {
        let producing = Arc::clone(&producing);
        tokio::spawn(async move {
            let mut client = Client::connect(leader_addr).await;
            let mut slowest = Duration::ZERO;
            let mut acked = 0;
            let mut i = 100_000;
            while producing.load(std::sync::atomic::Ordering::Relaxed) || acked < 20 {
                let at = Instant::now();
                client.produce_ok("r", 0, records(i)).await;
                slowest = slowest.max(at.elapsed());
                acked += 1;
                i += 1;
            }
            (acked, slowest)
        })
    };
    wait_until(
        "the returning follower is in sync",
        Duration::from_secs(120),
        || async {
            partition0(leader_addr, "r")
                .await
                .filter(|(l, isr, _)| i64::from(*l) == leader as i64 && *isr == 3)
        },
    )
    .await;
    producing.store(false, std::sync::atomic::Ordering::Relaxed);
    let (acked, slowest) = writer.await.unwrap();
    eprintln!("{acked} produces acknowledged while the follower caught up, slowest {slowest:?}");
    assert!(
        slowest < Duration::from_secs(5),
        "produce stalled for {slowest:?} while the follower caught up"
    );
    // Let the follower take the last entries, then read its log from its disk.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let leader_end = client.list_offset("r", 0, -1).await;
    assert!(
        cluster
            .node(follower)
            .log_text()
            .contains("replica restarted from its leader's snapshot"),
        "the follower did not install a snapshot:\n{}",
        cluster.node(follower).log_text()
    );
    cluster.stop(follower);
    let (follower_start, follower_records) = replica_on_disk(&cluster, follower, "r");
    assert!(
        follower_start > end_before,
        "the follower's log start {follower_start} moved past its old end {end_before}"
    );
    let leader_records = leader_records(leader_addr, "r", follower_start).await;
    assert!(!follower_records.is_empty());
    let (last, _) = *follower_records.last().unwrap();
    assert!(
        last + 1 >= leader_end - 5,
        "the follower caught up: its last record {last}, the leader's end {leader_end}"
    );
    assert_eq!(
        follower_records[..],
        leader_records[..follower_records.len()],
        "every record from the follower's log start is the leader's"
    );
    // The producer's batches lie below the follower's log start: it knows them from the
    // leader's snapshot, at their original offsets (a retry would be answered with them).
    let dir = cluster.data_dir(follower).join("r-0");
    let options = LogOptions::new(
        LogConfig {
            segment_bytes: SEGMENT_BYTES,
            ..LogConfig::default()
        },
        Flusher::new(1),
    );
    let partition = weir_broker::topics::Partition::open(&dir, &options).unwrap();
    let states = partition.producer_states();
    let entry = states
        .entries()
        .get(&pid)
        .expect("the producer is in the follower's table");
    let batches: Vec<(i32, i64)> = entry
        .batches
        .iter()
        .map(|b| (b.first_seq, b.base_offset))
        .collect();
    assert_eq!(
        batches,
        vec![(0, idempotent_bases[0]), (3, idempotent_bases[1])],
        "the producer's batches, as the leader recorded them"
    );
    cluster.stop_all();
}

fn delete_records(topic: &str, offset: i64) -> DeleteRecordsRequest {
    DeleteRecordsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            DeleteRecordsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(vec![
                    DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(offset),
                ]),
        ])
}

/// (error code, low watermark) of a DeleteRecords of `topic`-0 up to `offset` sent to `addr`.
async fn delete_at(addr: SocketAddr, topic: &str, offset: i64) -> (i16, i64) {
    let mut client = Client::connect(addr).await;
    let v = *versions(ApiKey::DeleteRecords).end();
    let answer = client.call(v, delete_records(topic, offset)).await;
    let p = &answer.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_retention_delete_records_moves_the_low_watermark_on_every_replica() {
    let root = tempfile::tempdir().unwrap();
    let (mut cluster, leader) = three_nodes(root.path(), "d").await;
    let leader_addr = cluster.kafka_addr(leader);
    let mut client = Client::connect(leader_addr).await;
    for i in 0..10 {
        client.produce_ok("d", 0, records(i)).await;
    }
    let end = client.list_offset("d", 0, -1).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    assert_eq!(
        delete_at(cluster.kafka_addr(follower), "d", 3).await.0,
        ErrorCode::NotLeaderOrFollower as i16
    );
    assert_eq!(
        delete_at(leader_addr, "d", end + 1).await.0,
        ErrorCode::OffsetOutOfRange as i16,
        "past the high watermark"
    );
    // Inside a batch, as Kafka allows.
    let target = 23;
    assert_eq!(delete_at(leader_addr, "d", target).await, (0, target));
    assert_eq!(client.list_offset("d", 0, -2).await, target);
    assert_eq!(
        delete_at(leader_addr, "d", 5).await,
        (0, target),
        "below the start changes nothing"
    );

    // The leader's retention pass purges the entries below the start (its anchor moves).
    let anchor = cluster.data_dir(leader).join("d-0").join("raft-anchor");
    wait_until("the leader purged", Duration::from_secs(30), || async {
        anchor.exists().then_some(())
    })
    .await;
    // The leader goes: the new one reports the same low watermark and serves from it.
    cluster.stop(leader);
    let survivor = (1..=3).find(|id| *id != leader).unwrap();
    let new_leader = wait_until("another replica leads", Duration::from_secs(60), || async {
        partition0(cluster.kafka_addr(survivor), "d")
            .await
            .map(|(l, _, _)| l)
            .filter(|l| *l > 0 && i64::from(*l) != leader as i64)
    })
    .await;
    let new_addr = cluster.kafka_addr(u64::try_from(new_leader).unwrap());
    let mut to_new = Client::connect(new_addr).await;
    let earliest = wait_until(
        "the new leader answers",
        Duration::from_secs(30),
        || async {
            let mut c = Client::connect(new_addr).await;
            let v = *versions(ApiKey::ListOffsets).end();
            let answer = c.call(v, req::list_offsets("d", 0, -2)).await;
            let p = &answer.topics[0].partitions[0];
            (p.error_code == 0).then_some(p.offset)
        },
    )
    .await;
    assert_eq!(earliest, target, "the new leader's low watermark");
    let records = leader_records(new_addr, "d", target).await;
    assert_eq!(records.first().map(|r| r.0), Some(target));
    to_new.produce_ok("d", 0, records_tail()).await;

    // The old leader reopens from its purge point (its state machine starts there) and
    // catches up: all three in sync again.
    cluster.restart(leader);
    wait_until(
        "the old leader is in sync again",
        Duration::from_secs(60),
        || async {
            partition0(new_addr, "d")
                .await
                .filter(|(l, isr, _)| *l == new_leader && *isr == 3)
        },
    )
    .await;
    // Every replica's start is on its disk.
    cluster.stop_all();
    for id in 1..=3 {
        let (start, _) = replica_on_disk(&cluster, id, "d");
        assert_eq!(start, target, "node {id}'s log start");
    }
}

fn records_tail() -> bytes::Bytes {
    records(999)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_retention_a_start_inside_a_batch_reaches_a_follower_through_a_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let (mut cluster, leader) = three_nodes(root.path(), "m").await;
    let leader_addr = cluster.kafka_addr(leader);
    let mut client = Client::connect(leader_addr).await;
    for i in 0..4 {
        client.produce_ok("m", 0, records(i)).await;
    }
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    cluster.stop(follower);
    let end_before = client.list_offset("m", 0, -1).await;
    let mut bases = Vec::new();
    for i in 4..12 {
        bases.push(client.produce_ok("m", 0, records(i)).await);
    }
    // Two batches after the follower's end, three records into the third: the leader purges
    // the entries wholly below it at its next retention pass.
    let target = bases[2] + 3;
    assert_eq!(delete_at(leader_addr, "m", target).await, (0, target));
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.restart(follower);
    wait_until(
        "the returning follower is in sync",
        Duration::from_secs(120),
        || async {
            partition0(leader_addr, "m")
                .await
                .filter(|(l, isr, _)| i64::from(*l) == leader as i64 && *isr == 3)
        },
    )
    .await;
    // One more batch, committed on all three, so the follower's high watermark passes the start.
    client.produce_ok("m", 0, records(99)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = cluster.node(follower).log_text();
    assert!(
        log.contains("replica restarted from its leader's snapshot"),
        "the follower (end {end_before}) did not install a snapshot:\n{log}"
    );
    cluster.stop_all();
    let (start, records) = replica_on_disk(&cluster, follower, "m");
    assert_eq!(
        start, target,
        "the follower's log start is the leader's, inside a batch"
    );
    assert_eq!(records.first().map(|r| r.0), Some(target));
}
