//! Idle connections cannot lock everyone out: a swarm of connections that never send a byte
//! does not keep a new client from being served, a connection that stays silent is closed
//! after the first-request timeout, and one address cannot take more than its share of the
//! connection slots.

use std::time::{Duration, Instant};

use kafka_protocol::messages::ApiVersionsRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_protocol::api::ApiKey;
use weir_tests::{Client, TestBroker, raw_request, within};

async fn served(client: &mut Client, what: &str) {
    let response = within(what, client.call(3, ApiVersionsRequest::default())).await;
    assert_eq!(response.error_code, 0, "{what}");
}

#[tokio::test]
async fn a_swarm_of_silent_connections_does_not_lock_out_a_new_client() {
    const LIMIT: usize = 50;
    // The first-request timeout (60 s here) is far away: only eviction can make room.
    let broker = TestBroker::start_with(|c| {
        c.max_connections = LIMIT;
        c.first_request_timeout_ms = 60_000;
    })
    .await;
    // A client that has been served keeps its slot throughout.
    let mut regular = broker.client().await;
    served(&mut regular, "before the swarm").await;
    // Four times the limit of connections that never send a byte.
    let mut swarm = Vec::new();
    for _ in 0..4 * LIMIT {
        swarm.push(TcpStream::connect(broker.addr()).await.unwrap());
    }
    let started = Instant::now();
    let mut newcomer = broker.client().await;
    served(
        &mut newcomer,
        "a new client behind a swarm of silent connections",
    )
    .await;
    eprintln!("new client served {:?} after the swarm", started.elapsed());
    served(&mut regular, "a client served before the swarm").await;
    // And once more, with the swarm still there.
    let mut another = broker.client().await;
    served(&mut another, "a second new client").await;
    drop(swarm);
    broker.shutdown().await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_first_request_timeout() {
    let broker = TestBroker::start_with(|c| c.first_request_timeout_ms = 500).await;
    let mut talker = broker.client().await;
    served(&mut talker, "first request").await;
    let mut silent = broker.client().await;
    let started = Instant::now();
    silent.expect_closed().await;
    let closed_after = started.elapsed();
    assert!(
        closed_after >= Duration::from_millis(400),
        "closed after {closed_after:?}"
    );
    // A connection past its first request is held to the idle timeout (600 s), not this one.
    tokio::time::sleep(Duration::from_millis(700)).await;
    served(&mut talker, "a connection silent after its first request").await;
    // A first request that has started but does not complete in time is cut off too.
    let mut trickler = broker.client().await;
    trickler.send_raw(&100i32.to_be_bytes()).await;
    trickler.expect_closed().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_per_address_limit_are_closed_at_once() {
    let broker = TestBroker::start_with(|c| c.max_connections_per_ip = 3).await;
    let mut held = Vec::new();
    for i in 0..3 {
        let mut client = broker.client().await;
        served(&mut client, &format!("connection {i} of 3")).await;
        held.push(client);
    }
    let mut fourth = broker.client().await;
    fourth.expect_closed().await;
    drop(held.pop());
    // The count follows closed connections: room for one again (once the broker has seen
    // the close, which takes a moment).
    let request = raw_request(ApiKey::ApiVersions.code(), 0, 1, &[]);
    within("a slot for the address to free up", async {
        loop {
            let mut stream = TcpStream::connect(broker.addr()).await.unwrap();
            stream.write_all(&request).await.unwrap();
            let mut prefix = [0u8; 4];
            if stream.read_exact(&mut prefix).await.is_ok() {
                assert!(i32::from_be_bytes(prefix) > 0);
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    for client in &mut held {
        served(client, "the address's other connections").await;
    }
    broker.shutdown().await;
}
