//! DescribeCluster (key 60) at every served version: this broker as controller and only
//! broker, with the cluster id of Metadata and the advertised address, authorized operations
//! only when asked; a request for controller endpoints (v1) refused.

use kafka_protocol::messages::DescribeClusterRequest;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::{TestBroker, req, versions};

/// Every cluster operation (ALTER, DESCRIBE, CREATE, CLUSTER_ACTION, DESCRIBE_CONFIGS,
/// ALTER_CONFIGS, IDEMPOTENT_WRITE), as Kafka answers without an authorizer.
const CLUSTER_OPERATIONS: i32 = 1 << 5 | 1 << 7 | 1 << 8 | 1 << 9 | 1 << 10 | 1 << 11 | 1 << 12;

#[tokio::test]
async fn the_one_broker_is_described_at_every_version() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let mv = *versions(ApiKey::Metadata).end();
    let metadata = client.call(mv, req::metadata(mv, Some(&[]))).await;
    let cluster_id = metadata.cluster_id.clone().expect("cluster id");
    for v in versions(ApiKey::DescribeCluster) {
        for asked in [false, true] {
            let response = client
                .call(
                    v,
                    DescribeClusterRequest::default()
                        .with_include_cluster_authorized_operations(asked),
                )
                .await;
            assert_eq!(response.error_code, 0, "v{v}: {response:?}");
            assert_eq!(response.cluster_id, cluster_id);
            assert_eq!(response.controller_id.0, 0);
            assert_eq!(response.brokers.len(), 1);
            let b = &response.brokers[0];
            assert_eq!(b.broker_id.0, 0);
            assert_eq!(&*b.host, "127.0.0.1");
            assert_eq!(b.port, i32::from(broker.addr().port()));
            assert_eq!(b.rack, None);
            assert_eq!(
                response.cluster_authorized_operations,
                if asked { CLUSTER_OPERATIONS } else { i32::MIN },
                "v{v}"
            );
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn controller_endpoints_are_refused() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let response = client
        .call(1, DescribeClusterRequest::default().with_endpoint_type(2))
        .await;
    assert_eq!(
        response.error_code,
        ErrorCode::UnsupportedEndpointType.code()
    );
    assert!(response.error_message.is_some());
    assert!(response.brokers.is_empty());
    broker.shutdown().await;
}
