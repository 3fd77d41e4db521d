//! The memory held by request frames still arriving is bounded broker-wide: 16 connections
//! each send 96 MiB of a 100 MiB frame (and stop there) to the real `weir-broker` binary,
//! whose peak resident memory (`VmHWM` in `/proc/<pid>/status`) must stay within the
//! request-bytes budget (`--max-produce-bytes-in-flight`, 256 MiB by default) plus a margin,
//! instead of growing to 16 x 96 MiB. A small request from a bystander is still served while
//! the budget is spent. Prints the figures (`--nocapture`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiVersionsRequest;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use weir_tests::process::BrokerProcess;
use weir_tests::{Client, within};

const CONNECTIONS: usize = 16;
const FRAME: usize = 100 << 20;
const SENT: usize = 96 << 20;
const BUDGET: usize = 256 << 20;
/// What the broker may hold beyond the budget: its own heap, stacks and mapped segments, the
/// read buffers of the waiting connections, and the slack of buffers still growing.
const MARGIN: usize = 160 << 20;

/// A field of `/proc/<pid>/status`, in bytes.
fn status_bytes(pid: u32, field: &str) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad line {line:?}"));
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_large_frames_arriving_at_once_stay_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = tokio::task::block_in_place(|| {
        BrokerProcess::start(
            &dir.path().join("data"),
            &dir.path().join("broker.log"),
            &[],
        )
    });
    let pid = broker.pid();
    let idle_rss = status_bytes(pid, "VmRSS");
    // One shared payload: a produce request's first bytes (key 0, v7), then filler.
    let mut payload = vec![0u8; SENT];
    payload[..4].copy_from_slice(&[0, 0, 0, 7]);
    let payload: Arc<[u8]> = payload.into();
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..CONNECTIONS {
        let (payload, delivered) = (Arc::clone(&payload), Arc::clone(&delivered));
        let mut stream = TcpStream::connect(broker.addr()).await.unwrap();
        senders.push(tokio::spawn(async move {
            stream
                .write_all(&i32::try_from(FRAME).unwrap().to_be_bytes())
                .await?;
            // Blocks once the broker stops reading this connection (no budget for it).
            stream.write_all(&payload).await?;
            delivered.fetch_add(1, Ordering::SeqCst);
            // Hold the connection (and the incomplete frame) open.
            std::future::pending::<()>().await;
            Ok::<(), std::io::Error>(())
        }));
    }
    // The budget admits two 100 MiB frames; wait until they are in, then a little longer for
    // anything else the broker would buffer.
    let started = Instant::now();
    while delivered.load(Ordering::SeqCst) < BUDGET / FRAME {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} connections delivered their 96 MiB in 60 s",
            delivered.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let peak = status_bytes(pid, "VmHWM");
    let anon = status_bytes(pid, "RssAnon");
    let complete = delivered.load(Ordering::SeqCst);
    eprintln!(
        "{CONNECTIONS} connections x 96 MiB of a 100 MiB frame: {complete} delivered in full, broker VmHWM {} MiB, RssAnon {} MiB (idle VmRSS {} MiB)",
        peak >> 20,
        anon >> 20,
        idle_rss >> 20
    );
    assert!(
        complete <= BUDGET / FRAME,
        "{complete} connections got their whole 96 MiB read: the budget is not taken before the body"
    );
    assert!(
        peak < BUDGET + MARGIN,
        "peak RSS {} MiB with a {} MiB budget",
        peak >> 20,
        BUDGET >> 20
    );
    // Small requests do not need the budget: a bystander is served while it is spent.
    let mut bystander = Client::connect(broker.addr()).await;
    let response = within(
        "a small request while the request-bytes budget is spent",
        bystander.call(3, ApiVersionsRequest::default()),
    )
    .await;
    assert_eq!(response.error_code, 0);
    for sender in senders {
        sender.abort();
    }
    let (clean, _took) =
        tokio::task::block_in_place(|| broker.stop_within(Duration::from_secs(30)));
    assert!(clean, "{}", broker.log_text());
}
