//! The cluster port's TCP transport: a peer that dies fails calls at once (never at their
//! deadline), a request to a closed connection is reported as not sent (so a proposal may be
//! retried safely), and a peer that answers is reached again after it restarts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use weir_broker::cluster::Peers;
use weir_broker::cluster::net::server::{self, Handler};
use weir_broker::cluster::net::wire::{ForwardError, Request, Response};
use weir_broker::cluster::net::{NetError, TcpTransport, Transport};

fn heartbeat() -> Request {
    Request::BrokerHeartbeat {
        node: 1,
        host: "127.0.0.1".into(),
        port: 9092,
    }
}

fn answering() -> Handler {
    Arc::new(|_request| {
        Box::pin(async { Response::BrokerHeartbeat(Err(ForwardError::NotLeader(Some(7)))) })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_dies_fails_calls_at_once_and_is_reached_again_after_a_restart() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peers = Peers::from_map(BTreeMap::from([(2, addr.to_string())]));
    let transport = TcpTransport::new(peers);
    let stop = CancellationToken::new();
    let serving = tokio::spawn(server::serve(listener, answering(), stop.clone()));
    let answer = transport
        .call(2, heartbeat(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(matches!(
        answer,
        Response::BrokerHeartbeat(Err(ForwardError::NotLeader(Some(7))))
    ));

    // The peer stops: its listener and connections close, as a killed process's would.
    stop.cancel();
    serving.await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let failed = transport.call(2, heartbeat(), Duration::from_secs(5)).await;
    assert!(
        matches!(failed, Err(NetError::Unreachable { .. })),
        "a dead peer is unreachable (the request was never sent): {failed:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );

    // It comes back on the same address.
    let listener = TcpListener::bind(addr).await.unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(server::serve(listener, answering(), stop.clone()));
    let answer = transport.call(2, heartbeat(), Duration::from_secs(5)).await;
    assert!(answer.is_ok(), "{answer:?}");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_costs_the_deadline_not_more() {
    // Accepts and never answers (a paused process).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(socket);
    });
    let peers = Peers::from_map(BTreeMap::from([(2, addr.to_string())]));
    let transport = TcpTransport::new(peers);
    let started = Instant::now();
    let failed = transport
        .call(2, heartbeat(), Duration::from_millis(300))
        .await;
    assert!(matches!(failed, Err(NetError::Failed { .. })), "{failed:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    held.abort();
}
