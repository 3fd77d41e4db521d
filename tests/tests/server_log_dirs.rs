//! DescribeLogDirs (key 35) at every served version: the one data directory, each partition's
//! bytes on disk, offset lag 0, never a future replica; v4 with the filesystem's figures;
//! unknown topics and partitions left out, as Kafka does.

use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use weir_protocol::api::ApiKey;
use weir_tests::{TestBroker, batch, req, versions};

/// (topic, partition, size) of every partition described, sorted.
fn sizes(response: &DescribeLogDirsResponse) -> Vec<(String, i32, i64)> {
    assert_eq!(response.results.len(), 1);
    let mut out: Vec<_> = response.results[0]
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                assert_eq!(p.offset_lag, 0);
                assert!(!p.is_future_key);
                (t.name.0.to_string(), p.partition_index, p.partition_size)
            })
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn partition_sizes_and_disk_figures_at_every_version() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    client.create_topic("big", 2).await;
    client.create_topic("small", 1).await;
    let records = batch(50);
    client.produce_ok("big", 1, records.clone()).await;
    client.produce_ok("big", 1, records.clone()).await;
    let one = batch(1);
    client.produce_ok("small", 0, one.clone()).await;
    let big = i64::try_from(2 * records.len()).unwrap();
    let small = i64::try_from(one.len()).unwrap();
    for v in versions(ApiKey::DescribeLogDirs) {
        let all = client
            .call(v, DescribeLogDirsRequest::default().with_topics(None))
            .await;
        assert_eq!(all.error_code, 0);
        let result = &all.results[0];
        assert_eq!(result.error_code, 0);
        let dir = std::path::absolute(broker.data_dir()).unwrap();
        assert_eq!(&*result.log_dir, dir.display().to_string());
        assert_eq!(
            sizes(&all),
            [
                ("big".to_owned(), 0, 0),
                ("big".to_owned(), 1, big),
                ("small".to_owned(), 0, small)
            ],
            "v{v}"
        );
        if v >= 4 {
            assert!(result.total_bytes > 0, "{result:?}");
            assert!(result.usable_bytes > 0 && result.usable_bytes <= result.total_bytes);
        } else {
            assert_eq!((result.total_bytes, result.usable_bytes), (-1, -1));
        }
        let some = client
            .call(
                v,
                DescribeLogDirsRequest::default().with_topics(Some(vec![
                    DescribableLogDirTopic::default()
                        .with_topic(req::topic("big"))
                        .with_partitions(vec![1, 7]),
                    DescribableLogDirTopic::default()
                        .with_topic(req::topic("missing"))
                        .with_partitions(vec![0]),
                ])),
            )
            .await;
        assert_eq!(sizes(&some), [("big".to_owned(), 1, big)], "v{v}");
    }
    broker.shutdown().await;
}
