//! Requests that ask the broker for more than it gives: a fetch claiming `i32::MAX` bytes,
//! overall and per partition, gets at most `--max-fetch-bytes` of records (plus, as in Kafka,
//! the rest of a first batch that is larger), so one small request cannot make the broker copy
//! gigabytes into a response.

use weir_protocol::api::ApiKey;
use weir_tests::{TestBroker, batch_at, req, versions};

const MAX_FETCH: usize = 300_000;
const PARTITIONS: i32 = 4;
const BATCHES: usize = 5;
const VALUE: usize = 100_000;

#[tokio::test]
async fn a_fetch_asking_for_everything_gets_at_most_the_broker_maximum() {
    let broker = TestBroker::start_with(|c| c.max_fetch_bytes = MAX_FETCH).await;
    let mut client = broker.client().await;
    client.create_topic("wide", PARTITIONS).await;
    for partition in 0..PARTITIONS {
        for i in 0..BATCHES {
            let timestamp = 1_700_000_000_000 + i64::try_from(i).unwrap();
            client
                .produce_ok("wide", partition, batch_at(&[timestamp], VALUE))
                .await;
        }
    }
    // 2 MB in the topic; the request asks for all of it and more.
    let parts: Vec<(&str, i32, i64)> = (0..PARTITIONS).map(|p| ("wide", p, 0)).collect();
    let mut fetch = req::fetch_many(&parts, 0, 1);
    fetch.max_bytes = i32::MAX;
    for topic in &mut fetch.topics {
        for partition in &mut topic.partitions {
            partition.partition_max_bytes = i32::MAX;
        }
    }
    let v = *versions(ApiKey::Fetch).end();
    let response = client.call(v, fetch).await;
    let sizes: Vec<usize> = response.responses[0]
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, 0);
            p.records.as_ref().map_or(0, bytes::Bytes::len)
        })
        .collect();
    let total: usize = sizes.iter().sum();
    assert!(total >= VALUE, "at least the first batch: {sizes:?}");
    assert!(
        total <= MAX_FETCH + VALUE + 1_000,
        "{total} bytes of records ({sizes:?}) for a broker maximum of {MAX_FETCH}"
    );
    broker.shutdown().await;
}
