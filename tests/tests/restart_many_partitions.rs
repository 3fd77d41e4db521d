//! Restarting with many partitions: start-up opens them on a pool of threads and syncs their
//! directories together, so after a `kill -9` every partition must come back with exactly
//! its own records (none swapped, none lost), and a SIGTERM that arrives while the broker is
//! still opening them must stop it cleanly once it is open, not kill it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_tests::process::{BrokerProcess, START_TIMEOUT, broker_binary, free_port};
use weir_tests::{BASE_TIMESTAMP, Client, batch_at, stored};

const TOPICS: usize = 4;
const PARTITIONS: i32 = 25;

/// A batch of two records whose timestamps identify topic `t`, partition `p`, round `r`.
fn tagged(t: usize, p: i32, r: i64) -> Bytes {
    let tag = BASE_TIMESTAMP + (t as i64) * 1_000_000 + i64::from(p) * 1_000 + r * 10;
    batch_at(&[tag, tag + 1], 50)
}

fn topic(t: usize) -> String {
    format!("many-{t}")
}

/// Creates the topics and writes two batches to every partition; returns what each
/// partition must hold from offset 0.
async fn populate(broker: &BrokerProcess) -> Vec<Vec<u8>> {
    let mut client = Client::connect(broker.addr()).await;
    let mut expected = Vec::new();
    for t in 0..TOPICS {
        client.create_topic(&topic(t), PARTITIONS).await;
        for p in 0..PARTITIONS {
            let (a, b) = (tagged(t, p, 0), tagged(t, p, 1));
            assert_eq!(client.produce_ok(&topic(t), p, a.clone()).await, 0);
            assert_eq!(client.produce_ok(&topic(t), p, b.clone()).await, 2);
            let mut bytes = stored(&a, 0);
            bytes.extend(stored(&b, 2));
            expected.push(bytes);
        }
    }
    expected
}

async fn check_all(addr: std::net::SocketAddr, expected: &[Vec<u8>]) {
    let mut client = Client::connect(addr).await;
    for t in 0..TOPICS {
        for p in 0..PARTITIONS {
            let want = &expected[t * PARTITIONS as usize + p as usize];
            assert_eq!(
                &client.fetch_now(&topic(t), p, 0).await[..],
                &want[..],
                "{}-{p} holds its own records",
                topic(t)
            );
        }
    }
}

fn start(dir: &Path) -> BrokerProcess {
    BrokerProcess::start(
        &dir.join("data"),
        &dir.join("broker.log"),
        &["--segment-bytes", "65536", "--recovery-threads", "8"],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_every_partition_comes_back_with_its_own_records() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut broker = start(dir.path());
    let expected = populate(&broker).await;
    for _ in 0..2 {
        broker.kill9();
        broker.restart();
        check_all(broker.addr(), &expected).await;
    }
    assert!(broker.stop());
    broker.restart();
    check_all(broker.addr(), &expected).await;
    assert!(broker.stop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_while_partitions_are_opening_stops_the_broker_cleanly() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let mut broker = start(dir.path());
    let expected = populate(&broker).await;
    broker.kill9();

    let port = free_port();
    let mut child = Command::new(broker_binary())
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&data)
        .args(["--segment-bytes", "65536"])
        .env_remove("WEIR_LISTEN")
        .env_remove("WEIR_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn weir-broker");
    // The lock file gets this process's pid when Broker::start begins, after the signal
    // handlers are in place and before any partition is opened.
    let lock = data.join(".lock");
    let deadline = Instant::now() + START_TIMEOUT;
    while std::fs::read_to_string(&lock).unwrap_or_default().trim() != child.id().to_string() {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "broker exited while starting"
        );
        assert!(Instant::now() < deadline, "the broker never took the lock");
        std::thread::sleep(Duration::from_millis(1));
    }
    let kill = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(kill.success());
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0), "SIGTERM during start-up: {status}");
    for t in 0..TOPICS {
        for p in 0..PARTITIONS {
            let marker = data
                .join(format!("{}-{p}", topic(t)))
                .join("clean-shutdown");
            assert!(marker.exists(), "{}", marker.display());
        }
    }
    broker.restart();
    check_all(broker.addr(), &expected).await;
    assert!(broker.stop());
}
