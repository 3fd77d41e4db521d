//! The fault proxy between plain TCP echo servers: each fault does what it says, `heal`
//! undoes it, and the same seed gives the same fault log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use weir_tests::fault_proxy::{Direction, Fault, FaultProxy, FaultRecord};

/// Long enough that a byte that should arrive has, on a loaded two-core machine.
const ARRIVES: Duration = Duration::from_secs(5);
/// How long a byte that should not arrive is waited for.
const STAYS_AWAY: Duration = Duration::from_millis(400);

/// An echo server that first sends `greeting` on each connection and counts what it receives.
struct Echo {
    addr: SocketAddr,
    received: Arc<AtomicUsize>,
}

async fn echo(greeting: &'static [u8]) -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                if stream.write_all(greeting).await.is_err() {
                    return;
                }
                let mut buf = [0_u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    counter.fetch_add(n, Ordering::SeqCst);
                    if stream.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Echo { addr, received }
}

#[derive(Debug, PartialEq, Eq)]
enum Read {
    Bytes(Vec<u8>),
    Closed,
    Nothing,
}

/// Reads exactly `len` bytes, or reports the close or the silence that came instead.
async fn read_exact(stream: &mut TcpStream, len: usize, wait: Duration) -> Read {
    let mut buf = vec![0_u8; len];
    match tokio::time::timeout(wait, stream.read_exact(&mut buf)).await {
        Ok(Ok(_)) => Read::Bytes(buf),
        Ok(Err(_)) => Read::Closed,
        Err(_) => Read::Nothing,
    }
}

async fn connect(proxy: &FaultProxy) -> TcpStream {
    TcpStream::connect(proxy.addr()).await.unwrap()
}

async fn round_trip(stream: &mut TcpStream, message: &[u8], wait: Duration) -> Read {
    if stream.write_all(message).await.is_err() {
        return Read::Closed;
    }
    read_exact(stream, message.len(), wait).await
}

fn start(upstream: SocketAddr, seed: u64) -> FaultProxy {
    FaultProxy::start(&Handle::current(), upstream, seed).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_forwards_both_ways_when_healthy_and_after_heal() {
    let server = echo(b"hi").await;
    let proxy = start(server.addr, 1);
    let mut stream = connect(&proxy).await;
    assert_eq!(
        read_exact(&mut stream, 2, ARRIVES).await,
        Read::Bytes(b"hi".to_vec())
    );
    let big = vec![7_u8; 300_000];
    assert_eq!(
        round_trip(&mut stream, &big, ARRIVES).await,
        Read::Bytes(big)
    );
    proxy.set(Fault::Delay(
        Duration::from_millis(1)..=Duration::from_millis(2),
    ));
    proxy.heal();
    assert_eq!(
        round_trip(&mut stream, b"after", ARRIVES).await,
        Read::Bytes(b"after".to_vec()),
        "{}",
        proxy.report()
    );
    assert_eq!(proxy.fault(), Fault::Healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_delays_each_chunk_within_the_range() {
    let server = echo(b"").await;
    let proxy = start(server.addr, 2);
    let mut stream = connect(&proxy).await;
    let range = Duration::from_millis(100)..=Duration::from_millis(150);
    proxy.set(Fault::Delay(range));
    for i in 0..3_u8 {
        let started = Instant::now();
        let message = [b'a' + i; 10];
        assert_eq!(
            round_trip(&mut stream, &message, ARRIVES).await,
            Read::Bytes(message.to_vec())
        );
        // The request and the echo are each held at least 100 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "round trip {i} took {:?}\n{}",
            started.elapsed(),
            proxy.report()
        );
    }
    let delays: Vec<(Direction, u64)> = proxy
        .records()
        .into_iter()
        .filter_map(|r| match r {
            FaultRecord::Delayed {
                direction,
                delay_ms,
                ..
            } => Some((direction, delay_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(delays.len(), 6, "{}", proxy.report());
    assert!(delays.iter().all(|&(_, ms)| (100..=150).contains(&ms)));
    let ups = delays
        .iter()
        .filter(|(d, _)| *d == Direction::ToUpstream)
        .count();
    assert_eq!(ups, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_blackholes_one_direction_only() {
    // Requests lost, responses (here the greeting) delivered.
    let server = echo(b"hello").await;
    let proxy = start(server.addr, 3);
    proxy.set(Fault::Blackhole(Direction::ToUpstream));
    let mut stream = connect(&proxy).await;
    assert_eq!(
        read_exact(&mut stream, 5, ARRIVES).await,
        Read::Bytes(b"hello".to_vec())
    );
    assert_eq!(
        round_trip(&mut stream, b"ping", STAYS_AWAY).await,
        Read::Nothing
    );
    assert_eq!(server.received.load(Ordering::SeqCst), 0);

    // Responses lost, requests delivered.
    let server = echo(b"hello").await;
    let proxy = start(server.addr, 3);
    proxy.set(Fault::Blackhole(Direction::FromUpstream));
    let mut stream = connect(&proxy).await;
    stream.write_all(b"ping").await.unwrap();
    let deadline = Instant::now() + ARRIVES;
    while server.received.load(Ordering::SeqCst) < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        server.received.load(Ordering::SeqCst),
        4,
        "{}",
        proxy.report()
    );
    assert_eq!(read_exact(&mut stream, 1, STAYS_AWAY).await, Read::Nothing);
    assert!(
        proxy.records().iter().any(|r| matches!(
            r,
            FaultRecord::Discarded {
                direction: Direction::FromUpstream,
                ..
            }
        )),
        "{}",
        proxy.report()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_blackholes_both_ways_then_closes_torn_connections_on_heal() {
    let server = echo(b"").await;
    let proxy = start(server.addr, 4);
    let mut idle = connect(&proxy).await;
    let mut stream = connect(&proxy).await;
    assert_eq!(
        round_trip(&mut stream, b"a", ARRIVES).await,
        Read::Bytes(b"a".to_vec())
    );
    assert_eq!(
        round_trip(&mut idle, b"b", ARRIVES).await,
        Read::Bytes(b"b".to_vec())
    );
    proxy.set(Fault::BlackholeBoth);
    assert_eq!(
        round_trip(&mut stream, b"lost", STAYS_AWAY).await,
        Read::Nothing
    );
    assert_eq!(server.received.load(Ordering::SeqCst), 2);
    proxy.heal();
    // The stream lost bytes: it is closed rather than resumed with a hole in it.
    assert_eq!(read_exact(&mut stream, 1, ARRIVES).await, Read::Closed);
    // The idle one lost nothing and carries on.
    assert_eq!(
        round_trip(&mut idle, b"c", ARRIVES).await,
        Read::Bytes(b"c".to_vec())
    );
    assert!(
        proxy
            .records()
            .contains(&FaultRecord::ClosedTorn { conn: 1 }),
        "{}",
        proxy.report()
    );
    let mut fresh = connect(&proxy).await;
    assert_eq!(
        round_trip(&mut fresh, b"d", ARRIVES).await,
        Read::Bytes(b"d".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_blackhole_loses_a_close_until_heal() {
    let server = echo(b"").await;
    let proxy = start(server.addr, 8);
    let mut stream = connect(&proxy).await;
    assert_eq!(
        round_trip(&mut stream, b"a", ARRIVES).await,
        Read::Bytes(b"a".to_vec())
    );
    proxy.set(Fault::Blackhole(Direction::ToUpstream));
    stream.shutdown().await.unwrap();
    // The server would close its side on seeing the close; it does not see it.
    assert_eq!(read_exact(&mut stream, 1, STAYS_AWAY).await, Read::Nothing);
    proxy.heal();
    assert_eq!(read_exact(&mut stream, 1, ARRIVES).await, Read::Closed);
    assert!(
        proxy
            .records()
            .contains(&FaultRecord::ClosedTorn { conn: 0 }),
        "{}",
        proxy.report()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_drop_closes_open_connections_and_refuses_new_ones() {
    let server = echo(b"").await;
    let proxy = start(server.addr, 5);
    let mut open = connect(&proxy).await;
    assert_eq!(
        round_trip(&mut open, b"a", ARRIVES).await,
        Read::Bytes(b"a".to_vec())
    );
    proxy.set(Fault::Drop);
    assert_eq!(read_exact(&mut open, 1, ARRIVES).await, Read::Closed);
    let mut refused = connect(&proxy).await;
    assert_eq!(read_exact(&mut refused, 1, ARRIVES).await, Read::Closed);
    assert_eq!(proxy.open_connections(), 0);
    proxy.heal();
    let mut fresh = connect(&proxy).await;
    assert_eq!(
        round_trip(&mut fresh, b"b", ARRIVES).await,
        Read::Bytes(b"b".to_vec())
    );
    let records = proxy.records();
    assert_eq!(
        records[..3],
        [
            FaultRecord::Set(Fault::Drop),
            FaultRecord::Dropped { conn: 0 },
            FaultRecord::Refused { conn: 1 },
        ],
        "{}",
        proxy.report()
    );
    assert_eq!(proxy.accepted(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_flapping_alternates_healthy_and_partitioned() {
    let server = echo(b"").await;
    let proxy = start(server.addr, 6);
    let phase = Duration::from_millis(150)..=Duration::from_millis(250);
    proxy.set(Fault::Flapping {
        healthy: phase.clone(),
        partitioned: phase,
    });
    let (mut delivered, mut lost) = (0, 0);
    let mut stream = connect(&proxy).await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        match round_trip(&mut stream, b"x", Duration::from_millis(50)).await {
            Read::Bytes(_) => delivered += 1,
            Read::Nothing => lost += 1,
            // Closed after a partition ate bytes: reconnect, as a node would.
            Read::Closed => stream = connect(&proxy).await,
        }
    }
    proxy.heal();
    let report = proxy.report();
    assert!(
        delivered > 0 && lost > 0,
        "{delivered} delivered, {lost} lost\n{report}"
    );
    let phases: Vec<(bool, u64)> = proxy
        .records()
        .into_iter()
        .filter_map(|r| match r {
            FaultRecord::FlapPhase {
                partitioned,
                lasts_ms,
            } => Some((partitioned, lasts_ms)),
            _ => None,
        })
        .collect();
    assert!(phases.len() >= 4, "{report}");
    for (i, &(partitioned, lasts_ms)) in phases.iter().enumerate() {
        assert_eq!(partitioned, i % 2 == 1, "{report}");
        assert!((150..=250).contains(&lasts_ms), "{report}");
    }
    assert!(
        proxy
            .records()
            .iter()
            .any(|r| matches!(r, FaultRecord::ClosedTorn { .. })),
        "{report}"
    );
}

/// One connection, messages one at a time: the same traffic for every run.
async fn delayed_run(seed: u64) -> (Vec<FaultRecord>, Vec<FaultRecord>) {
    let server = echo(b"").await;
    let proxy = start(server.addr, seed);
    proxy.set(Fault::Delay(Duration::ZERO..=Duration::from_millis(20)));
    for _ in 0..2 {
        let mut stream = connect(&proxy).await;
        for i in 0..5_u8 {
            assert_eq!(
                round_trip(&mut stream, &[i], ARRIVES).await,
                Read::Bytes(vec![i])
            );
        }
    }
    proxy.set(Fault::Flapping {
        healthy: Duration::from_millis(1)..=Duration::from_millis(30),
        partitioned: Duration::from_millis(1)..=Duration::from_millis(30),
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.heal();
    let records = proxy.records();
    let (phases, rest) = records
        .into_iter()
        .partition(|r| matches!(r, FaultRecord::FlapPhase { .. }));
    (rest, phases)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_same_seed_gives_the_same_fault_log() {
    let (delays_a, phases_a) = delayed_run(42).await;
    let (delays_b, phases_b) = delayed_run(42).await;
    let (delays_c, phases_c) = delayed_run(43).await;
    // Three settings and twenty delays (two per round trip).
    assert_eq!(delays_a.len(), 3 + 20, "{delays_a:?}");
    assert_eq!(delays_a, delays_b);
    assert_ne!(delays_a, delays_c);
    // How many phases fit in the wait depends on timing; the phases drawn do not.
    let common = phases_a.len().min(phases_b.len());
    assert!(common >= 5, "{phases_a:?}");
    assert_eq!(phases_a[..common], phases_b[..common]);
    let common = phases_a.len().min(phases_c.len());
    assert_ne!(phases_a[..common], phases_c[..common]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_closes_connections_while_the_upstream_is_down() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = unused.local_addr().unwrap();
    drop(unused);
    let proxy = start(down, 7);
    for _ in 0..3 {
        let mut stream = connect(&proxy).await;
        assert_eq!(read_exact(&mut stream, 1, ARRIVES).await, Read::Closed);
    }
    assert_eq!(
        proxy.records(),
        (0..3)
            .map(|conn| FaultRecord::UpstreamUnreachable { conn })
            .collect::<Vec<_>>()
    );
    assert_eq!(proxy.open_connections(), 0);
}
