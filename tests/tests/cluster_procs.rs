//! The multi-process cluster harness without a cluster: its links routed through the right
//! proxies (fake nodes stand in for the cluster ports), and its process control on real
//! `weir-broker` processes started without cluster flags.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use weir_tests::cluster_procs::{ClusterLinks, ClusterOptions, ClusterProcs};
use weir_tests::history::FetchError;

const ARRIVES: Duration = Duration::from_secs(5);
const STAYS_AWAY: Duration = Duration::from_millis(400);

/// A fake node's cluster port: it notes the id each connection opens with (one byte), counts
/// the bytes after it, and echoes them.
struct FakeNode {
    addr: SocketAddr,
    /// (sender id, bytes received after the id) per connection, in accept order.
    seen: Arc<Mutex<Vec<(u8, usize)>>>,
}

async fn fake_node() -> FakeNode {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                let mut id = [0_u8; 1];
                if stream.read_exact(&mut id).await.is_err() {
                    return;
                }
                let slot = {
                    let mut seen = record.lock().unwrap();
                    seen.push((id[0], 0));
                    seen.len() - 1
                };
                let mut buf = [0_u8; 1024];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    record.lock().unwrap()[slot].1 += n;
                    if stream.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    FakeNode { addr, seen }
}

/// Node `me`'s view of where each peer is, from its `--peers` value.
fn peers(links: &ClusterLinks, me: u64) -> BTreeMap<u64, SocketAddr> {
    links
        .peers_arg(me)
        .split(',')
        .map(|entry| {
            let (id, addr) = entry.split_once('@').unwrap();
            (id.parse().unwrap(), addr.parse().unwrap())
        })
        .collect()
}

/// Node `from` connects to `to` as its peers list says, introduces itself and sends `ping`;
/// returns the stream and whether the echo came back.
async fn send(links: &ClusterLinks, from: u64, to: u64) -> (tokio::net::TcpStream, bool) {
    let addr = peers(links, from)[&to];
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(&[u8::try_from(from).unwrap()])
        .await
        .unwrap();
    stream.write_all(b"ping").await.unwrap();
    let wait = if links.proxy(from, to).fault() == weir_tests::fault_proxy::Fault::Healthy
        && links.proxy(to, from).fault() == weir_tests::fault_proxy::Fault::Healthy
    {
        ARRIVES
    } else {
        STAYS_AWAY
    };
    let mut echo = [0_u8; 4];
    let echoed = matches!(
        tokio::time::timeout(wait, stream.read_exact(&mut echo)).await,
        Ok(Ok(_))
    );
    (stream, echoed)
}

/// Waits until node `to` has seen a connection from `from` carrying `bytes` bytes after the id.
async fn received(node: &FakeNode, from: u64, bytes: usize, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        let found = node
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|&(id, n)| u64::from(id) == from && n == bytes);
        if found || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_links_route_each_directed_link_through_its_own_proxy() {
    let nodes = [fake_node().await, fake_node().await, fake_node().await];
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    let links = ClusterLinks::proxied(addrs.clone(), 2026).unwrap();
    for me in 1..=3_u64 {
        let view = peers(&links, me);
        assert_eq!(view[&me], addrs[usize::try_from(me).unwrap() - 1]);
        for to in (1..=3).filter(|&to| to != me) {
            assert_eq!(view[&to], links.proxy(me, to).addr());
            let (_stream, echoed) = send(&links, me, to).await;
            assert!(echoed, "{me} -> {to}\n{}", links.report());
            assert!(received(&nodes[usize::try_from(to).unwrap() - 1], me, 4, ARRIVES).await);
            assert_eq!(links.proxy(me, to).accepted(), 1);
        }
    }

    // 1 -> 2 lost both on 1's connections (requests) and on 2's (1's answers).
    links.partition_one_way(1, 2);
    let (_lost_request, echoed) = send(&links, 1, 2).await;
    assert!(!echoed);
    assert_eq!(
        nodes[1].seen.lock().unwrap().len(),
        2,
        "node 2 saw nothing new from 1"
    );
    let (_lost_answer, echoed) = send(&links, 2, 1).await;
    assert!(!echoed, "1's answer to 2 must be lost");
    assert_eq!(
        nodes[0].seen.lock().unwrap().len(),
        3,
        "2's request reached 1"
    );
    // Links not involved are untouched.
    let (_ok, echoed) = send(&links, 1, 3).await;
    assert!(echoed);

    links.heal_all();
    links.isolate(3);
    for (from, to) in [(1, 3), (3, 1), (2, 3), (3, 2)] {
        let (_stream, echoed) = send(&links, from, to).await;
        assert!(!echoed, "{from} -> {to} while 3 is isolated");
    }
    let (_ok, echoed) = send(&links, 1, 2).await;
    assert!(echoed, "{}", links.report());
    links.heal_all();
    let (_ok, echoed) = send(&links, 3, 1).await;
    assert!(echoed, "{}", links.report());
    assert!(links.report().contains("seed 2026"));
}

/// The state letter of `/proc/<pid>/stat` (`T` when stopped).
fn process_state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit_once(')').unwrap().1;
    after_name.trim_start().chars().next().unwrap()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + ARRIVES;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

#[test]
fn cluster_procs_start_kill_pause_restart_and_wipe_nodes() {
    let root = tempfile::tempdir().unwrap();
    let mut cluster = ClusterProcs::start(root.path(), ClusterOptions::new(2).standalone());
    let ids: Vec<u64> = cluster.ids().collect();
    assert_eq!(ids, [1, 2]);
    assert_eq!(
        cluster.bootstrap(),
        format!("{},{}", cluster.kafka_addr(1), cluster.kafka_addr(2))
    );
    for id in [1, 2] {
        assert!(accepts(cluster.kafka_addr(id)));
        assert!(accepts(cluster.http_addr(id)), "node {id}'s --http-listen");
        assert!(cluster.data_dir(id).starts_with(root.path()));
    }
    assert_ne!(cluster.data_dir(1), cluster.data_dir(2));

    let pid = cluster.node(2).pid();
    cluster.pause(2);
    assert!(!cluster.is_up(2));
    wait_for("node 2 to stop", || process_state(pid) == 'T');
    // A paused node is not asked (it would not answer); node 1 is, at its HTTP port. A broker
    // without the cluster has no such route (404); one with it answers for itself alone.
    match cluster.raft_statuses() {
        Ok(statuses) => assert_eq!(statuses.len(), 1),
        Err(FetchError::Status { addr, .. }) => assert_eq!(addr, cluster.http_addr(1)),
        Err(other) => panic!("{other}"),
    }
    cluster.resume(2);
    assert!(cluster.is_up(2));
    wait_for("node 2 to resume", || process_state(pid) != 'T');

    let kafka = cluster.kafka_addr(1);
    cluster.kill9(1);
    assert!(!cluster.is_up(1));
    assert!(!accepts(kafka));
    assert!(accepts(cluster.kafka_addr(2)), "node 2 is untouched");
    cluster.restart(1);
    assert_eq!(cluster.kafka_addr(1), kafka);
    assert!(accepts(kafka));

    let marker = cluster.data_dir(1).join("marker");
    std::fs::write(&marker, b"old disk").unwrap();
    cluster.wipe_and_restart(1);
    assert!(!marker.exists());
    assert!(cluster.data_dir(1).is_dir());
    assert!(accepts(kafka));
    assert!(cluster.report().contains("weir-broker run 3"));
    assert!(cluster.stop_all(), "{}", cluster.report());
}
