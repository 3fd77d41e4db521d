//! Slow and stalled clients: a client that sends a frame header and then nothing, one that
//! trickles a request a byte at a time, and one that never reads its responses each hold
//! their own connection only. The broker closes them (the frame timeout for a request that
//! does not arrive, the idle timeout for responses left unread), while a bystander
//! connection is served throughout. Claimed sizes beyond the default maximum are refused from
//! the 4-byte prefix (the codec's unit tests check that nothing is reserved for them).

use std::time::Duration;

use kafka_protocol::messages::ApiVersionsRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_protocol::api::ApiKey;
use weir_protocol::message::encode_request;
use weir_tests::{Client, TestBroker, batch_at, raw_request, req, versions, within};

/// The bystander is answered, and answered correctly, while others misbehave.
async fn served(bystander: &mut Client, what: &str) {
    let response = bystander.call(3, ApiVersionsRequest::default()).await;
    assert_eq!(response.error_code, 0, "bystander while {what}");
}

/// Reads until the broker closes the connection, returning the bytes received; fails if
/// the connection stays open (nothing arrives for `IO_TIMEOUT`).
async fn drain_until_closed(stream: &mut TcpStream, what: &str) -> usize {
    let mut total = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match within(what, stream.read(&mut buf)).await {
            Ok(0) => return total,
            Ok(n) => total += n,
            // A reset is also a close (the broker closed with unread data in its buffers).
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                return total;
            }
            Err(err) => panic!("{what}: {err}"),
        }
    }
}

#[tokio::test]
async fn a_header_then_nothing_is_closed_and_holds_no_one_else() {
    // The idle timeout (600 s) is far away: only the frame timeout can close it.
    let broker = TestBroker::start_with(|c| c.frame_timeout_secs = 1).await;
    let mut bystander = broker.client().await;
    let mut stalled = broker.client().await;
    // A well-formed prefix announcing 100 bytes, and not one of them.
    stalled.send_raw(&100i32.to_be_bytes()).await;
    served(&mut bystander, "a client is stalled inside a frame").await;
    let mut fresh = broker.client().await;
    served(&mut fresh, "a client is stalled inside a frame").await;
    stalled.expect_closed().await;
    served(&mut bystander, "after the stalled client was closed").await;
    broker.shutdown().await;
}

#[tokio::test]
async fn a_request_trickled_a_byte_at_a_time_is_cut_off() {
    let broker = TestBroker::start_with(|c| c.frame_timeout_secs = 1).await;
    let mut bystander = broker.client().await;
    let request = raw_request(ApiKey::ApiVersions.code(), 0, 1, &[]);
    let stream = TcpStream::connect(broker.addr()).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    // One byte every 250 ms: every read brings data, so an idle timer alone would never fire;
    // the whole request needs 3.5 s, over the 1 s frame timeout.
    let trickle = tokio::spawn(async move {
        for byte in request {
            if wr.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // Keep the write half open: only the broker may end the connection.
        std::future::pending::<()>().await;
    });
    served(&mut bystander, "a client trickles a request").await;
    let mut one = [0u8; 1];
    let read = within(
        "the broker to cut off the trickling client",
        rd.read(&mut one),
    )
    .await;
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "the trickled request was answered: {read:?}"
    );
    trickle.abort();
    served(&mut bystander, "after the trickling client was closed").await;
    broker.shutdown().await;
}

#[tokio::test]
async fn the_frame_timeout_does_not_apply_between_requests() {
    let broker = TestBroker::start_with(|c| c.frame_timeout_secs = 2).await;
    let mut client = broker.client().await;
    served(&mut client, "first request").await;
    // Longer than the frame timeout, far shorter than the idle timeout.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    served(&mut client, "after a pause between requests").await;
    // A request split in two writes 100 ms apart, well within the frame timeout, is served.
    let frame = encode_request(
        ApiKey::ApiVersions,
        0,
        7,
        Some("split"),
        &ApiVersionsRequest::default().into(),
    )
    .unwrap();
    let mut raw = TcpStream::connect(broker.addr()).await.unwrap();
    raw.write_all(&frame[..6]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    raw.write_all(&frame[6..]).await.unwrap();
    let mut prefix = [0u8; 4];
    within("the split request's response", raw.read_exact(&mut prefix))
        .await
        .unwrap();
    assert!(i32::from_be_bytes(prefix) > 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed() {
    // A response left unread counts as idleness. With a 1 s idle timeout, the bystander must
    // keep busy (or be a fresh connection) to stay open itself.
    let broker = TestBroker::start_with(|c| c.idle_timeout_secs = 1).await;
    let mut bystander = broker.client().await;
    bystander.create_topic("big", 1).await;
    // One batch of 10 x 100 KB: each fetch below returns about 1 MB.
    let timestamps: Vec<i64> = (0..10).map(|i| 1_700_000_000_000 + i).collect();
    assert_eq!(
        bystander
            .produce_ok("big", 0, batch_at(&timestamps, 100_000))
            .await,
        0
    );
    // 64 pipelined fetches (the per-connection in-flight limit): about 64 MB of responses,
    // far more than the socket buffers hold, and this client reads none of them for 3 s.
    let v = *versions(ApiKey::Fetch).end();
    let mut stream = TcpStream::connect(broker.addr()).await.unwrap();
    let mut requests = Vec::new();
    for correlation_id in 0..64 {
        let fetch = req::fetch("big", 0, 0, 0, 1);
        requests
            .extend(encode_request(ApiKey::Fetch, v, correlation_id, None, &fetch.into()).unwrap());
    }
    within("send the fetches", stream.write_all(&requests))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut bystander = broker.client().await;
    served(&mut bystander, "a client is not reading").await;
    let received =
        drain_until_closed(&mut stream, "the broker to close a non-reading client").await;
    assert!(
        received < 32 << 20,
        "{received} bytes arrived: the broker kept writing to a client that was not reading"
    );
    // A fresh connection: the bystander may have sat idle past the 1 s timeout meanwhile.
    let mut fresh = broker.client().await;
    served(&mut fresh, "after the non-reading client was closed").await;
    broker.shutdown().await;
}

#[tokio::test]
async fn claimed_sizes_beyond_the_default_maximum_close_on_the_prefix() {
    // The default configuration (100 MiB); `server_bad_input` covers a configured maximum.
    let broker = TestBroker::start().await;
    let mut bystander = broker.client().await;
    for claimed in [i32::MAX, 1 << 30, (100 << 20) + 1] {
        let mut client = broker.client().await;
        // Only the prefix: refusing must not wait for (or make room for) the claimed body.
        client.send_raw(&claimed.to_be_bytes()).await;
        client.expect_closed().await;
        served(&mut bystander, "after a refused size").await;
    }
    broker.shutdown().await;
}
