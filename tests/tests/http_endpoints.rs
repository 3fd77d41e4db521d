//! The HTTP listener: `/health`, `/ready`, `/metrics` counting exactly what was produced and
//! fetched, bad HTTP answered with 4xx without touching the Kafka port, an explicit address
//! that is taken failing the start, and `off` meaning no listener.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weir_broker::config::HttpListen;
use weir_broker::{Broker, BrokerConfig, BrokerError};
use weir_protocol::api::ApiKey;
use weir_tests::{TestBroker, batch, req, versions, within};

async fn http_broker() -> TestBroker {
    TestBroker::start_with(|c| {
        c.http_listen = Some(HttpListen::At(SocketAddr::from(([127, 0, 0, 1], 0))));
    })
    .await
}

/// Sends `request` as is and reads until the server closes: status line, headers and body.
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    within("http exchange", async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("send");
        let mut answer = Vec::new();
        // The server may reset the connection after answering a request it refused before
        // reading all of it; what came back before the reset is the answer.
        if let Err(err) = stream.read_to_end(&mut answer).await {
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
        }
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
}

async fn get(addr: SocketAddr, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: weir\r\nConnection: close\r\n\r\n");
    exchange(addr, request.as_bytes()).await
}

/// The value of the sample `name{labels}` in a Prometheus text exposition.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[tokio::test]
async fn health_and_ready_answer_and_other_paths_do_not() {
    let broker = http_broker().await;
    let http = broker.http_addr().expect("an HTTP listener");
    assert!(get(http, "/health").await.starts_with("HTTP/1.1 200"));
    assert!(get(http, "/ready").await.starts_with("HTTP/1.1 200"));
    assert!(get(http, "/nowhere").await.starts_with("HTTP/1.1 404"));
    let post =
        b"POST /metrics HTTP/1.1\r\nHost: w\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    assert!(exchange(http, post).await.starts_with("HTTP/1.1 405"));
    broker.shutdown().await;
}

#[tokio::test]
async fn metrics_count_exactly_what_was_produced_and_fetched() {
    let broker = http_broker().await;
    let http = broker.http_addr().expect("an HTTP listener");
    let mut client = broker.client().await;
    client.create_topic("counted", 2).await;
    let (first, second) = (batch(7), batch(5));
    client.produce_ok("counted", 0, first.clone()).await;
    client.produce_ok("counted", 1, second.clone()).await;
    let fetched = client.fetch_now("counted", 0, 0).await;
    assert_eq!(fetched.len(), first.len());

    let text = get(http, "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("text/plain; version=0.0.4"), "{text}");
    let topic = "{topic=\"counted\"}";
    assert_eq!(
        sample(&text, &format!("weir_topic_records_in_total{topic}")),
        Some(12.0)
    );
    let bytes_in = (first.len() + second.len()) as f64;
    assert_eq!(
        sample(&text, &format!("weir_topic_bytes_in_total{topic}")),
        Some(bytes_in)
    );
    assert_eq!(
        sample(&text, &format!("weir_topic_records_out_total{topic}")),
        Some(7.0)
    );
    assert_eq!(
        sample(&text, &format!("weir_topic_bytes_out_total{topic}")),
        Some(first.len() as f64)
    );
    let p1 = "{topic=\"counted\",partition=\"1\"}";
    assert_eq!(
        sample(&text, &format!("weir_partition_high_watermark{p1}")),
        Some(5.0)
    );
    assert_eq!(
        sample(&text, &format!("weir_partition_log_start_offset{p1}")),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, &format!("weir_partition_size_bytes{p1}")),
        Some(second.len() as f64)
    );
    let produced = sample(&text, "weir_requests_total{api=\"Produce\"}").expect("produce count");
    assert_eq!(produced, 2.0);
    assert!(
        text.contains("weir_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(sample(&text, "weir_process_open_files").is_some_and(|n| n > 0.0));
    // acks=all produce waited for syncs, through the metered disk, and nothing is left unsynced.
    assert!(sample(&text, "weir_append_to_durable_seconds_count").is_some_and(|n| n >= 2.0));
    assert_eq!(
        sample(&text, &format!("weir_partition_unsynced_bytes{p1}")),
        Some(0.0)
    );
    assert!(sample(&text, "weir_fsync_duration_seconds_count").is_some_and(|n| n >= 2.0));
    assert!(sample(&text, "weir_disk_written_bytes_total").is_some_and(|n| n >= bytes_in));
    assert_eq!(sample(&text, "weir_connections_open"), Some(1.0));
    assert_eq!(sample(&text, "weir_connections_accepted_total"), Some(1.0));
    assert_eq!(sample(&text, "weir_fetches_parked"), Some(0.0));

    assert_eq!(
        sample(
            &text,
            "weir_request_errors_total{api=\"Produce\",error=\"UNKNOWN_TOPIC_OR_PARTITION\"}"
        ),
        None
    );
    // A refused partition is counted by API and Kafka error name.
    let v = *versions(ApiKey::Produce).end();
    let refused = client
        .call(v, req::produce("counted", 9, batch(1), -1))
        .await;
    assert_eq!(refused.responses[0].partition_responses[0].error_code, 3);
    let text = get(http, "/metrics").await;
    assert_eq!(
        sample(
            &text,
            "weir_request_errors_total{api=\"Produce\",error=\"UNKNOWN_TOPIC_OR_PARTITION\"}"
        ),
        Some(1.0)
    );

    // Each later batch adds to the counters.
    client.produce_ok("counted", 1, batch(1)).await;
    let text = get(http, "/metrics").await;
    assert_eq!(
        sample(&text, &format!("weir_topic_records_in_total{topic}")),
        Some(13.0)
    );
    assert_eq!(
        sample(&text, "weir_requests_total{api=\"Produce\"}"),
        Some(4.0)
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn bad_http_gets_4xx_and_the_kafka_port_keeps_serving() {
    let broker = http_broker().await;
    let http = broker.http_addr().expect("an HTTP listener");
    let garbage = exchange(http, b"\x00\x01NOT HTTP AT ALL\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage:?}");
    // Headers past the limit: refused, not buffered without end.
    let mut huge = b"GET /metrics HTTP/1.1\r\nHost: w\r\nX-Big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    let answer = exchange(http, &huge).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    // A connection that sends nothing does not stop others.
    let _silent = TcpStream::connect(http).await.expect("connect");
    assert!(get(http, "/health").await.starts_with("HTTP/1.1 200"));
    let mut client = broker.client().await;
    client.create_topic("still", 1).await;
    assert_eq!(client.produce_ok("still", 0, batch(3)).await, 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn an_explicit_address_that_is_taken_fails_the_start() {
    let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = taken.local_addr().expect("address");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = BrokerConfig::for_tests(dir.path());
    config.http_listen = Some(HttpListen::At(addr));
    let started = within("start", Broker::builder(config).start()).await;
    match started {
        Err(BrokerError::Bind { addr: failed, .. }) => assert_eq!(failed, addr),
        other => panic!("expected a bind error for {addr}, got {other:?}"),
    }
    // The failed start released the data directory: a broker starts on it now.
    let mut config = BrokerConfig::for_tests(dir.path());
    config.http_listen = Some(HttpListen::Off);
    let running = within("start", Broker::builder(config).start())
        .await
        .expect("starts");
    assert_eq!(running.http_addr(), None);
    within("stop", running.shutdown()).await.expect("stops");
    drop(taken);
}
