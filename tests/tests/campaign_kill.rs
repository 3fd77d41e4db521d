//! Crash campaign: the real `weir-broker` binary is killed with `SIGKILL` at random moments
//! (at least 20 times, `WEIR_CAMPAIGN_KILLS` for more) and paused with `SIGSTOP`/`SIGCONT`,
//! while two idempotent `weir-client` producers write at `acks=all` and a consumer group
//! reads and commits. Every restart is on the same data directory and port. After the last
//! kill the broker is stopped cleanly and restarted, the partitions are read in full, and
//! `weir_tests::campaign::check` verifies the whole history (see its docs for the list).
//!
//! The schedule (when to kill, pause, for how long) comes from a seed that is printed first;
//! `WEIR_CAMPAIGN_SEED=<seed>` replays it. Thread timing is the machine's, so a replay repeats
//! the schedule, not every interleaving. `scripts/campaign.sh` runs longer campaigns; the
//! confluent-kafka side is `tests/compat/test_campaign.py`.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use weir_client::producer::Acks;
use weir_client::{
    Admin, ClientConfig, Consumer, ConsumerConfig, NewTopic, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};
use weir_protocol::record_batch::{BatchHeader, Records, validate_batch};
use weir_tests::campaign::{
    Ack, Checked, CommitCheck, History, Rng, check, count_from_env, highest_commits, seed_from_env,
    value,
};
use weir_tests::process::BrokerProcess;

const TOPIC: &str = "campaign";
const PARTITIONS: i32 = 3;
const GROUP: &str = "campaign-group";
/// Producer names (value prefixes); both idempotent. `w1` picks partitions itself, `w2` keys.
const PRODUCERS: [&str; 2] = ["w1", "w2"];
/// Small segments, so that the campaign crosses many rolls and kills land in them.
const SEGMENT_BYTES: &str = "262144";
/// Generous bound for anything that should finish once the broker is up for good.
const SETTLE: Duration = Duration::from_secs(180);

type Shared = Arc<Mutex<History>>;

fn lock(h: &Shared) -> MutexGuard<'_, History> {
    h.lock().unwrap_or_else(PoisonError::into_inner)
}

fn client_config(bootstrap: &str) -> ClientConfig {
    ClientConfig::new([bootstrap.to_owned()])
        .request_timeout(Duration::from_secs(10))
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(250))
}

/// Produces until `stop`, keeping at most 500 deliveries outstanding; records every value
/// handed to the producer and every acknowledgement. Returns the delivery failures.
async fn produce(
    bootstrap: String,
    name: &'static str,
    keyed: bool,
    seed: u64,
    history: Shared,
    stop: Arc<AtomicBool>,
) -> Vec<String> {
    let producer = Producer::new(
        ProducerConfig::new([bootstrap.clone()])
            .acks(Acks::All)
            .idempotence(true)
            .linger(Duration::from_millis(2))
            .delivery_timeout(Duration::from_secs(300))
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(250))
            .client(|_| client_config(&bootstrap)),
    )
    .expect("producer configuration");
    let mut rng = Rng::new(seed);
    let mut pending = JoinSet::new();
    let mut failures = Vec::new();
    let mut seq = 0u64;
    let settle = |result: Result<(Vec<u8>, _), tokio::task::JoinError>,
                  failures: &mut Vec<String>| {
        match result.expect("delivery task") {
            (v, Ok::<weir_client::RecordMetadata, weir_client::producer::DeliveryError>(meta)) => {
                lock(&history).acked.push(Ack {
                    partition: meta.partition,
                    offset: meta.offset,
                    value: v,
                });
            }
            (v, Err(err)) => failures.push(format!("{}: {err}", String::from_utf8_lossy(&v))),
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let pad = usize::try_from(rng.range(0, 120)).unwrap_or(0);
        let v = value(name, seq, pad);
        lock(&history).produced.insert(v.clone());
        let mut record = ProducerRecord::new(TOPIC, v.clone());
        record = if keyed {
            record.key(format!("key-{}", seq % 17))
        } else {
            record.partition(i32::try_from(seq % 3).unwrap_or(0))
        };
        match producer.send(record).await {
            Ok(delivery) => {
                pending.spawn(async move { (v, delivery.await) });
            }
            Err(err) => failures.push(format!("send: {err}")),
        }
        seq += 1;
        while pending.len() >= 500 {
            if let Some(result) = pending.join_next().await {
                settle(result, &mut failures);
            }
        }
        while let Some(result) = pending.try_join_next() {
            settle(result, &mut failures);
        }
        if seq % 25 == 0 {
            // About 2,000 records a second: enough to be mid-write at every kill without
            // making the final read long.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    while let Some(result) = pending.join_next().await {
        settle(result, &mut failures);
    }
    if let Err(err) = producer.close().await {
        failures.push(format!("close: {err}"));
    }
    failures
}

/// Reads as a group member until `stop`, committing after every poll that returned records.
/// Returns how many polls and commits failed (retried: the broker was down).
async fn consume(bootstrap: String, history: Shared, stop: Arc<AtomicBool>) -> (u64, u64) {
    let mut consumer = Consumer::new(
        ConsumerConfig::new(client_config(&bootstrap))
            .group_id(GROUP)
            .auto_offset_reset(OffsetReset::Earliest)
            .enable_auto_commit(false)
            .session(Duration::from_secs(10), Duration::from_secs(1))
            .fetch_wait(Duration::from_millis(100), 1),
    );
    consumer.subscribe([TOPIC]).expect("subscribe");
    let (mut poll_errors, mut commit_errors) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        let records = match consumer.poll(Duration::from_millis(200)).await {
            Ok(records) => records,
            Err(_) => {
                poll_errors += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if records.is_empty() {
            continue;
        }
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        {
            let mut h = lock(&history);
            for r in &records {
                h.consumed.push((
                    r.partition,
                    r.offset,
                    r.value.as_ref().map(|v| v.to_vec()).unwrap_or_default(),
                ));
                let e = next.entry(r.partition).or_insert(r.offset + 1);
                *e = (*e).max(r.offset + 1);
            }
        }
        let offsets: Vec<(TopicPartition, i64)> = next
            .iter()
            .map(|(&p, &o)| (TopicPartition::new(TOPIC, p), o))
            .collect();
        match consumer.commit_offsets(offsets).await {
            Ok(()) => lock(&history).commits.extend(next),
            Err(_) => commit_errors += 1,
        }
    }
    if consumer.close().await.is_err() {
        commit_errors += 1;
    }
    (poll_errors, commit_errors)
}

/// The group's committed offsets, retried until the broker answers.
async fn read_committed(bootstrap: &str) -> BTreeMap<i32, i64> {
    let reader = Consumer::new(ConsumerConfig::new(client_config(bootstrap)).group_id(GROUP));
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(TOPIC, p))
        .collect();
    let deadline = Instant::now() + SETTLE;
    loop {
        match reader.committed(&tps).await {
            Ok(map) => return map.into_iter().map(|(tp, o)| (tp.partition, o)).collect(),
            Err(err) => {
                assert!(
                    Instant::now() < deadline,
                    "OffsetFetch keeps failing: {err}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Every record of a partition, read with the wire test client (which validates every
/// batch, CRC included).
async fn read_partition(addr: std::net::SocketAddr, partition: i32) -> Vec<(i64, Vec<u8>)> {
    let mut client = weir_tests::Client::connect(addr).await;
    let end = client.list_offset(TOPIC, partition, -1).await;
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < end {
        let bytes = client.fetch_now(TOPIC, partition, offset).await;
        assert!(
            !bytes.is_empty(),
            "empty fetch at {offset} below the end {end}"
        );
        let mut at = 0;
        while at < bytes.len() {
            let header = BatchHeader::parse(&bytes[at..]).expect("batch header");
            let len = header.total_len().expect("batch length");
            let whole = &bytes[at..at + len];
            validate_batch(whole).expect("a fetched batch is valid");
            for record in Records::new(whole).expect("records") {
                let record = record.expect("record");
                let o = record.offset(header.base_offset);
                if o >= offset {
                    out.push((o, record.value.map(<[u8]>::to_vec).unwrap_or_default()));
                }
            }
            at += len;
            offset = header.next_offset();
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_and_commits_survive_kills_and_pauses() {
    let seed = seed_from_env();
    let kills = count_from_env("WEIR_CAMPAIGN_KILLS", 20).max(20);
    println!("campaign seed {seed}, {kills} kills (replay: WEIR_CAMPAIGN_SEED={seed})");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let log_path = dir.path().join("broker.log");
    let mut broker = BrokerProcess::start(
        &data,
        &log_path,
        &[
            "--segment-bytes",
            SEGMENT_BYTES,
            "--group-initial-rebalance-delay-ms",
            "0",
        ],
    );
    let bootstrap = broker.bootstrap();
    Admin::new(client_config(&bootstrap))
        .create_topics(&[NewTopic::new(TOPIC, PARTITIONS)])
        .await
        .expect("create the topic");

    let history: Shared = Arc::new(Mutex::new(History::default()));
    lock(&history).idempotent = PRODUCERS.iter().map(|p| (*p).to_owned()).collect();
    let stop_producing = Arc::new(AtomicBool::new(false));
    let stop_consuming = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = PRODUCERS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            tokio::spawn(produce(
                bootstrap.clone(),
                name,
                i == 1,
                rng.next_u64(),
                Arc::clone(&history),
                Arc::clone(&stop_producing),
            ))
        })
        .collect();
    let consumer = tokio::spawn(consume(
        bootstrap.clone(),
        Arc::clone(&history),
        Arc::clone(&stop_consuming),
    ));

    let (mut pauses, mut killed_while_paused) = (0, 0);
    for kill in 0..kills {
        tokio::time::sleep(Duration::from_millis(rng.range(150, 1200))).await;
        let mut paused = false;
        if rng.one_in(3) {
            broker.signal("STOP");
            pauses += 1;
            paused = true;
            tokio::time::sleep(Duration::from_millis(rng.range(100, 1500))).await;
            if rng.one_in(2) {
                broker.signal("CONT");
                paused = false;
                tokio::time::sleep(Duration::from_millis(rng.range(0, 400))).await;
            }
        }
        killed_while_paused += u32::from(paused);
        tokio::task::block_in_place(|| broker.kill9());
        // Everything acknowledged so far must survive this kill.
        let acknowledged = highest_commits(&lock(&history).commits);
        tokio::time::sleep(Duration::from_millis(rng.range(0, 300))).await;
        tokio::task::block_in_place(|| broker.restart());
        let read_back = read_committed(&bootstrap).await;
        let acked = lock(&history).acked.len();
        println!(
            "kill {}: restarted; {acked} records acknowledged so far",
            kill + 1
        );
        lock(&history).commit_checks.push(CommitCheck {
            acknowledged,
            read_back,
        });
    }

    // Let the clients finish on a broker that stays up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop_producing.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for p in producers {
        failures.extend(
            tokio::time::timeout(SETTLE, p)
                .await
                .expect("producers finish")
                .expect("producer task"),
        );
    }
    let wanted: HashSet<(i32, i64)> = lock(&history)
        .acked
        .iter()
        .map(|a| (a.partition, a.offset))
        .collect();
    let deadline = Instant::now() + SETTLE;
    loop {
        let missing = {
            let h = lock(&history);
            let seen: HashSet<(i32, i64)> = h.consumed.iter().map(|(p, o, _)| (*p, *o)).collect();
            wanted.difference(&seen).count()
        };
        if missing == 0 {
            break;
        }
        if Instant::now() > deadline {
            // Let the checker say exactly which records the group never got.
            println!("{missing} acknowledged records still unconsumed after {SETTLE:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_consuming.store(true, Ordering::Relaxed);
    let (poll_errors, commit_errors) = tokio::time::timeout(SETTLE, consumer)
        .await
        .expect("consumer finishes")
        .expect("consumer task");

    // A clean stop after all this, then a restart: the history must still hold.
    let clean = tokio::task::block_in_place(|| broker.stop());
    assert!(
        clean,
        "weir-broker did not exit cleanly after the campaign:\n{}",
        broker.log_text()
    );
    tokio::task::block_in_place(|| broker.restart());
    let acknowledged = highest_commits(&lock(&history).commits);
    let read_back = read_committed(&bootstrap).await;
    lock(&history).commit_checks.push(CommitCheck {
        acknowledged,
        read_back,
    });
    let mut final_log = BTreeMap::new();
    for p in 0..PARTITIONS {
        final_log.insert(p, read_partition(broker.addr(), p).await);
    }
    let history = lock(&history).clone();
    let result = check(&history, &final_log);
    assert!(
        tokio::task::block_in_place(|| broker.stop()),
        "weir-broker did not exit cleanly at the end"
    );
    let checked: Checked = match result {
        Ok(checked) => checked,
        Err(violations) => panic!(
            "campaign seed {seed} (replay: WEIR_CAMPAIGN_SEED={seed}) broke promises:\n{}\n\nbroker log:\n{}",
            violations.join("\n"),
            tail(&broker.log_text(), 200)
        ),
    };
    assert!(
        failures.is_empty(),
        "{} deliveries failed (seed {seed}): {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(checked.acked > 0, "nothing was acknowledged");
    assert!(
        !history.commits.is_empty(),
        "the consumer group never committed (poll errors {poll_errors}, commit errors {commit_errors})"
    );
    println!(
        "campaign seed {seed}: {kills} kills survived ({killed_while_paused} while paused), {pauses} pauses; \
         {} records produced, {} acknowledged, {} in the log checked, {} consumed; \
         {} commits acknowledged, {} commit read-backs; {poll_errors} poll and {commit_errors} commit errors retried",
        history.produced.len(),
        checked.acked,
        checked.log_records,
        checked.consumed,
        history.commits.len(),
        checked.commit_checks,
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
