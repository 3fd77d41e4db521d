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
