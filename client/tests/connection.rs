//! One connection against an in-process broker: negotiation, pipelining, failure.

use std::time::Duration;

use kafka_protocol::messages::MetadataRequest;
use weir_broker::{Broker, BrokerConfig};
use weir_client::connection::Connection;
use weir_client::protocol::api::{ApiKey, SUPPORTED_APIS};

#[tokio::test]
async fn negotiates_pipelines_and_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::new(BrokerConfig::for_tests(dir.path()))
        .start()
        .await
        .unwrap();
    let connection = Connection::connect(broker.addr(), "conn-test", Duration::from_secs(5))
        .await
        .unwrap();
    // Against Weir every API negotiates to the top of the shared table.
    for (key, range) in SUPPORTED_APIS {
        assert_eq!(connection.version(*key), Some(range.max), "{}", key.name());
    }
    // Many requests in flight on one connection, each answered.
    let calls = (0..200).map(|_| {
        let c = connection.clone();
        tokio::spawn(async move {
            c.call(MetadataRequest::default().with_topics(Some(Vec::new())))
                .await
        })
    });
    for call in calls {
        let response = call.await.unwrap().unwrap();
        assert_eq!(response.brokers.len(), 1);
    }
    // Every version of an API works through call_at.
    for v in 0..=6 {
        let response = connection
            .call_at(v, MetadataRequest::default().with_topics(Some(Vec::new())))
            .await
            .unwrap();
        assert_eq!(response.brokers.len(), 1, "v{v}");
        if v >= 1 {
            assert_eq!(response.controller_id.0, 0, "v{v}");
        }
    }
    broker.shutdown().await.unwrap();
    let err = connection
        .call(MetadataRequest::default())
        .await
        .unwrap_err();
    assert!(err.is_retriable(), "{err}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(connection.is_dead());
    assert!(connection.version(ApiKey::Produce).is_some());
}

/// A server on a free port that answers every connection with `answer` and closes it.
async fn impostor(answer: &'static [u8]) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 512];
            // Whatever it got, it answers in its own protocol.
            let _read = socket.read(&mut request).await;
            let _written = socket.write_all(answer).await;
        }
    });
    addr
}

#[tokio::test]
async fn a_peer_that_does_not_speak_kafka_is_named_as_such() {
    let http = impostor(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
    let err = Connection::connect(http, "conn-test", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(err, weir_client::Error::NotKafka { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the peer at {http} does not speak the Kafka protocol (it answered like HTTP: \
             \"HTTP/1.1 400 Bad Request\")"
        )
    );
    assert!(!err.is_retriable());

    // Through the cluster, the cause is kept inside NoBroker.
    let admin = weir_client::Admin::new(weir_client::ClientConfig::new([http.to_string()]));
    let err = admin.list_topics().await.unwrap_err();
    let weir_client::Error::NoBroker { last, .. } = err else {
        panic!("{err:?}");
    };
    assert!(
        matches!(*last, weir_client::Error::NotKafka { .. }),
        "{last:?}"
    );

    let tls = impostor(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50]).await;
    let err = Connection::connect(tls, "conn-test", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("answered like TLS"), "{err}");
}

#[tokio::test]
async fn unresolvable_hosts_bad_ports_and_bad_topic_names_are_distinct_errors() {
    use weir_client::{Admin, ClientConfig, Error, NewTopic};
    // `.invalid` never resolves (RFC 6761).
    let admin = Admin::new(ClientConfig::new(["no-such-host.invalid:9092"]));
    let err = admin.list_topics().await.unwrap_err();
    let Error::NoBroker { last, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        matches!(&**last, Error::Resolve { address, .. } if address == "no-such-host.invalid:9092"),
        "{last:?}"
    );

    // No port: 9092, as librdkafka assumes; a bad one is refused before connecting.
    let admin = Admin::new(ClientConfig::new(["no-such-host.invalid"]));
    let err = admin.list_topics().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot resolve no-such-host.invalid:9092"),
        "{err}"
    );
    let admin = Admin::new(ClientConfig::new(["localhost:kafka"]));
    let err = admin.list_topics().await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");

    // An illegal topic name never reaches a broker (none is listening here).
    let admin = Admin::new(ClientConfig::new(["127.0.0.1:1"]));
    let err = admin
        .create_topics(&[NewTopic::new("my topic", 1)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTopicName { .. }), "{err:?}");
    let err = admin.describe_topics(&["a/b"]).await.unwrap_err();
    assert!(matches!(err, Error::InvalidTopicName { .. }), "{err:?}");
    let producer =
        weir_client::Producer::new(weir_client::ProducerConfig::new(["127.0.0.1:1"])).unwrap();
    let err = producer
        .send(weir_client::ProducerRecord::new("..", "x"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid topic name \"..\""),
        "{err}"
    );
}
