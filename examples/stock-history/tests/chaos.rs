//! Temporal queries under crashes: three recorders (one per partition, each with its own
//! clock moving forward by random steps, equal stamps included) record thousands of
//! movements while the snapshotter, a real `stock-history` process, is killed with SIGKILL
//! and restarted at random moments, and also exits by itself at random step boundaries
//! (`--crash-one-in`: before writing snapshots, with snapshots sent but not acknowledged,
//! before committing). Afterwards:
//!
//! - every snapshot ever written equals the fold of its partition's movements below the
//!   offset it claims, is stamped with its last movement's time, and each partition's
//!   snapshots cover strictly growing prefixes (no movement folded twice or skipped, no
//!   restart from zero or from before the last snapshot);
//! - stock as of T (snapshots and offsets by timestamp) equals the fold of every movement
//!   stamped before T, for random times, every recorded stamp, and the edges;
//! - the `as-of` subcommand prints the same answer.
//!
//! The seed is printed; `WEIR_SEED=<seed>` replays the movements and the kill schedule.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stock_history::embedded::Embedded;
use stock_history::log;
use stock_history::model::{Movement, Snapshot, Stock};
use stock_history::query;
use stock_history::snapshotter::{self, CRASH_EXIT_CODE};
use stock_history::topics::{self, MOVEMENTS, PARTITIONS, SNAPSHOTS};
use tokio::time::Instant;
use weir_client::backoff::{JitterSource, SplitMix64};
use weir_client::partitioner::partition_for_key;
use weir_client::{Producer, ProducerConfig, ProducerRecord};

const MOVEMENTS_PER_RECORDER: u64 = 800;
/// The snapshotter crashes at one step boundary in this many (three per batch that writes).
const CRASH_ONE_IN: u64 = 6;
const SKUS: u64 = 30;
/// 2026-01-01T00:00Z: where every recorder's clock starts.
const START_MS: i64 = 1_767_225_600_000;

fn seed() -> u64 {
    std::env::var("WEIR_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        })
}

fn below(rng: &mut SplitMix64, n: u64) -> u64 {
    rng.next_u64() % n
}

fn small(rng: &mut SplitMix64, n: u64) -> i64 {
    i64::try_from(below(rng, n)).expect("small")
}

/// The snapshotter as a child process.
struct Snapshotter {
    args: Vec<String>,
    /// `(one_in, seed)`: injected crashes, with a new seed at each start.
    crashes: Option<(u64, u64)>,
    child: Option<Child>,
    starts: u64,
}

impl Snapshotter {
    fn start(&mut self) {
        let mut args = self.args.clone();
        if let Some((one_in, seed)) = self.crashes {
            args.extend([
                "--crash-one-in".to_owned(),
                one_in.to_string(),
                "--crash-seed".to_owned(),
                (seed + self.starts).to_string(),
            ]);
        }
        let child = Process::new(env!("CARGO_BIN_EXE_stock-history"))
            .args(&args)
            .env("WEIR_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the snapshotter");
        self.child = Some(child);
        self.starts += 1;
    }

    /// Whether it crashed by injection (reaped then); any other exit fails the test.
    fn crashed(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        match child.try_wait().expect("try_wait") {
            None => false,
            Some(status) => {
                assert_eq!(
                    status.code(),
                    Some(CRASH_EXIT_CODE),
                    "exited on its own: {status}"
                );
                self.child = None;
                true
            }
        }
    }

    /// SIGKILL, then reap.
    fn kill(&mut self) {
        if self.crashed() {
            return;
        }
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill");
            child.wait().expect("reap");
        }
    }
}

impl Drop for Snapshotter {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Only make sure no process outlives a failing test.
            if child.kill().is_ok() {
                drop(child.wait());
            }
        }
    }
}

/// Recorder `partition`: movements of the SKUs that hash to its partition, stamped by its
/// own clock, which never goes back. Returns `(timestamp, movement)` in order.
async fn recorder(bootstrap: String, partition: i32, seed: u64) -> Vec<(i64, Movement)> {
    let mut rng = SplitMix64::new(seed ^ u64::from(partition.unsigned_abs() + 1) << 32);
    let skus: Vec<String> = (0..SKUS)
        .map(|i| format!("sku-{i:02}"))
        .filter(|sku| partition_for_key(sku.as_bytes(), PARTITIONS) == Some(partition))
        .collect();
    assert!(!skus.is_empty(), "partition {partition} has SKUs");
    let producer = Producer::new(ProducerConfig::new([bootstrap.as_str()])).expect("producer");
    let mut clock = START_MS;
    let mut recorded = Vec::new();
    let mut deliveries = Vec::new();
    for n in 0..MOVEMENTS_PER_RECORDER {
        clock += small(&mut rng, 60_000); // 0 included: equal stamps happen.
        let sku = skus[usize::try_from(below(&mut rng, skus.len() as u64)).expect("index")].clone();
        let movement = Movement {
            id: format!("r{partition}-{n}"),
            sku: sku.clone(),
            delta: small(&mut rng, 41) - 20,
            reason: "test".to_owned(),
        };
        let value = serde_json::to_vec(&movement).expect("encode");
        let record = ProducerRecord::new(MOVEMENTS, value)
            .key(sku)
            .timestamp(clock);
        deliveries.push(producer.send(record).await.expect("buffer"));
        recorded.push((clock, movement));
        tokio::time::sleep(Duration::from_millis(2 + below(&mut rng, 20))).await;
    }
    for delivery in deliveries {
        let written = delivery.await.expect("movement written");
        assert_eq!(written.partition, partition);
    }
    producer.close().await.expect("close");
    recorded
}

/// The answer by brute force: every recorded movement stamped before `time`.
fn fold_before(recorded: &[(i64, Movement)], time: i64) -> Stock {
    let mut stock = Stock::default();
    for (at, movement) in recorded {
        if *at < time {
            stock.apply(movement);
        }
    }
    stock
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_queries_equal_the_fold_of_earlier_movements_through_crashes() {
    let seed = seed();
    println!("seed {seed} (WEIR_SEED={seed} replays it)");
    let broker = Embedded::start(SocketAddr::from(([127, 0, 0, 1], 0)), None)
        .await
        .expect("broker");
    let bootstrap = broker.addr().to_string();
    topics::setup(&bootstrap).await.expect("topics");
    let mut snapshotter = Snapshotter {
        args: [
            "--bootstrap",
            &bootstrap,
            "snapshotter",
            "--session-timeout-ms",
            "1000",
            "--snapshot-every",
            "20",
        ]
        .map(str::to_owned)
        .to_vec(),
        crashes: Some((CRASH_ONE_IN, seed)),
        child: None,
        starts: 0,
    };
    snapshotter.start();

    let recorders: Vec<_> = (0..PARTITIONS)
        .map(|p| tokio::spawn(recorder(bootstrap.clone(), p, seed)))
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let chaos = {
        let done = Arc::clone(&done);
        let mut rng = SplitMix64::new(seed);
        tokio::spawn(async move {
            let (mut kills, mut injected) = (0, 0);
            let mut next_kill =
                Instant::now() + Duration::from_millis(400 + below(&mut rng, 1_500));
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if snapshotter.crashed() {
                    injected += 1;
                    snapshotter.start();
                }
                if Instant::now() < next_kill {
                    continue;
                }
                next_kill = Instant::now() + Duration::from_millis(400 + below(&mut rng, 1_500));
                snapshotter.kill();
                kills += 1;
                tokio::time::sleep(Duration::from_millis(below(&mut rng, 300))).await;
                snapshotter.start();
            }
            (snapshotter, kills, injected)
        })
    };
    let mut recorded: Vec<(i64, Movement)> = Vec::new();
    for task in recorders {
        recorded.extend(task.await.expect("recorder"));
    }
    done.store(true, Ordering::Relaxed);
    let (mut snapshotter, kills, injected) = chaos.await.expect("chaos");
    println!(
        "{} movements recorded; snapshotter killed {kills} times, crashed {injected} times",
        recorded.len()
    );
    assert!(kills >= 2, "the snapshotter was killed");
    assert!(injected >= 1, "the snapshotter crashed between steps");
    // Catch up without injected crashes.
    snapshotter.kill();
    snapshotter.crashes = None;
    snapshotter.start();
    snapshotter::wait_caught_up(&bootstrap, Duration::from_secs(90))
        .await
        .expect("the snapshotter catches up");

    // Every snapshot is the fold of exactly the prefix it claims.
    let ends = log::end_offsets(&bootstrap, MOVEMENTS, PARTITIONS)
        .await
        .expect("ends");
    let snapshot_ends = log::end_offsets(&bootstrap, SNAPSHOTS, PARTITIONS)
        .await
        .expect("ends");
    let mut checked = 0;
    for p in 0..PARTITIONS {
        let i = usize::try_from(p).expect("index");
        let movements = log::read(&bootstrap, MOVEMENTS, p, 0, ends[i])
            .await
            .expect("read");
        let mut prefixes: BTreeMap<i64, (Stock, i64)> = BTreeMap::new();
        let mut stock = Stock::default();
        prefixes.insert(0, (stock.clone(), -1));
        for record in &movements {
            stock.apply(&log::decode(record).expect("movement"));
            prefixes.insert(record.offset + 1, (stock.clone(), record.timestamp));
        }
        let mut previous = 0;
        for record in log::read(&bootstrap, SNAPSHOTS, p, 0, snapshot_ends[i])
            .await
            .expect("read snapshots")
        {
            let snapshot: Snapshot = log::decode(&record).expect("snapshot");
            assert_eq!(snapshot.partition, p);
            assert!(
                snapshot.next_offset > previous,
                "partition {p}: snapshot @{} covers {} after one covering {previous}",
                record.offset,
                snapshot.next_offset
            );
            previous = snapshot.next_offset;
            let (expected, last) = &prefixes[&snapshot.next_offset];
            assert_eq!(
                &snapshot.stock, expected,
                "snapshot @{} of partition {p}",
                record.offset
            );
            assert_eq!(snapshot.last_timestamp, *last);
            assert_eq!(record.timestamp, *last, "stamped with its last movement");
            checked += 1;
        }
        assert_eq!(previous, ends[i], "the last snapshot covers partition {p}");
    }
    println!("{checked} snapshots checked");

    // As-of queries against the brute-force fold.
    let last = recorded.iter().map(|(at, _)| *at).max().expect("movements");
    let mut rng = SplitMix64::new(seed ^ 0xa5a5);
    let mut times = vec![0, START_MS, START_MS + 1, last, last + 1];
    for _ in 0..25 {
        times.push(START_MS + small(&mut rng, u64::try_from(last - START_MS + 2).expect("span")));
    }
    for _ in 0..15 {
        let (at, _) =
            &recorded[usize::try_from(below(&mut rng, recorded.len() as u64)).expect("i")];
        times.push(*at);
    }
    let mut from_snapshots = 0;
    for time in &times {
        let answer = query::as_of(&bootstrap, *time).await.expect("as of");
        assert_eq!(answer.stock, fold_before(&recorded, *time), "as of {time}");
        if answer
            .partitions
            .iter()
            .any(|p| p.snapshot.is_some() && p.from > 0)
        {
            from_snapshots += 1;
        }
    }
    assert!(
        from_snapshots > times.len() / 2,
        "answers start from snapshots"
    );

    // The subcommand prints the same answer.
    let time = times[7];
    let output = Process::new(env!("CARGO_BIN_EXE_stock-history"))
        .args([
            "--bootstrap",
            &bootstrap,
            "as-of",
            &time.to_string(),
            "--json",
        ])
        .output()
        .expect("run as-of");
    assert!(output.status.success(), "{output:?}");
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let expected = serde_json::to_value(fold_before(&recorded, time)).expect("json");
    assert_eq!(printed["stock"], expected);

    snapshotter.kill();
    broker.shutdown().await.expect("broker shutdown");
}
