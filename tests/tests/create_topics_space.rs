//! CreateTopics and the disk: a topic whose preallocated partitions cannot fit is refused
//! before anything is allocated (POLICY_VIOLATION, with the figures), a create that fails
//! part-way is undone at once (its partitions' space comes back without a restart), and one
//! request cannot create more than 10,000 partitions in all.
//!
//! The refusal is tested on a real small filesystem (a tmpfs: needs root, fails without it)
//! with the real binary; the rollback with an injected disk that runs out of space after a
//! few partitions, on the catalog itself, since a real disk passes the free-space check.

use std::path::Path;
use std::sync::Arc;

use weir_broker::log::{FaultyDisk, LogError};
use weir_broker::topics::{CatalogError, TopicCatalog};
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::process::BrokerProcess;
use weir_tests::tmpfs::Tmpfs;
use weir_tests::{Client, TestBroker, batch, faulty_log_options, req, stored, versions};

/// Directories of `topic`'s partitions found in `data`.
fn partition_dirs(data: &Path, topic: &str) -> Vec<String> {
    std::fs::read_dir(data)
        .expect("list the data directory")
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| {
            n.strip_prefix(topic)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_whose_partitions_cannot_fit_is_refused_before_anything_is_allocated() {
    let fs = Tmpfs::mount(16 << 20);
    let data = fs.path().join("data");
    let log = tempfile::NamedTempFile::new().expect("log file");
    let mut broker = BrokerProcess::start(&data, log.path(), &["--segment-bytes", "1048576"]);
    let mut client = Client::connect(broker.addr()).await;
    let v = *versions(ApiKey::CreateTopics).end();

    for validate_only in [true, false] {
        let response = client
            .call(
                v,
                req::create_topic("huge", 100).with_validate_only(validate_only),
            )
            .await;
        let topic = &response.topics[0];
        assert_eq!(
            topic.error_code,
            ErrorCode::PolicyViolation.code(),
            "validate_only={validate_only}: {topic:?}"
        );
        let message = topic.error_message.as_deref().unwrap_or_default();
        // 100 x (1 MiB segment + one block for each index).
        assert!(
            message.contains("100 partitions need 105676800 bytes")
                && message.contains("bytes are free"),
            "the message gives the figures: {message}"
        );
        assert!(
            partition_dirs(&data, "huge").is_empty(),
            "nothing allocated for a refused topic"
        );
    }

    // What fits is still created, and the refused name is free.
    client.create_topic("fits", 4).await;
    client.create_topic("huge", 2).await;
    let records = batch(3);
    assert_eq!(client.produce_ok("huge", 1, records.clone()).await, 0);
    assert_eq!(client.fetch_now("huge", 1, 0).await, stored(&records, 0));
    drop(client);
    assert!(broker.stop());
}

#[test]
fn a_create_that_fails_part_way_is_rolled_back_at_once() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    // Room for a few partitions' segments and indexes, far from 50.
    let disk = Arc::new(FaultyDisk::new(5 * (64 << 10)));
    let catalog = TopicCatalog::open(&data, faulty_log_options(&disk)).expect("open the catalog");
    catalog.create("kept", 1).expect("a small topic fits");

    match catalog.create("big", 50) {
        Err(CatalogError::Log(LogError::DiskFull { .. })) => {}
        other => panic!("expected a full disk part-way, got {other:?}"),
    }
    assert!(catalog.get("big").is_none());
    assert!(
        partition_dirs(&data, "big").is_empty(),
        "partitions of the failed create are gone without a restart: {:?}",
        partition_dirs(&data, "big")
    );
    assert_eq!(partition_dirs(&data, "kept"), vec!["kept-0".to_owned()]);

    // The catalog on disk does not name it either, and the name can be used again.
    drop(catalog);
    disk.add_space(1 << 20);
    let catalog = TopicCatalog::open(&data, faulty_log_options(&disk)).expect("reopen");
    assert!(catalog.get("big").is_none());
    assert_eq!(catalog.list().len(), 1);
    catalog
        .create("big", 2)
        .expect("created once there is room");
    assert_eq!(partition_dirs(&data, "big").len(), 2);
    catalog.close().expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_creates_at_most_ten_thousand_partitions() {
    // Small segments: validate_only checks the free space of 12,000 of them.
    let broker = TestBroker::start_with(|c| c.segment_bytes = 4096).await;
    let mut client = broker.client().await;
    let v = *versions(ApiKey::CreateTopics).end();
    let request = req::create_topics(&[
        ("a", 4_000, 1),
        ("b", 4_000, 1),
        ("c", 4_000, 1),
        ("d", 2_000, 1),
    ])
    .with_validate_only(true);
    let response = client.call(v, request).await;
    let codes: Vec<i16> = response.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(
        codes,
        vec![0, 0, ErrorCode::InvalidPartitions.code(), 0],
        "{response:?}"
    );
    let message = response.topics[2]
        .error_message
        .as_deref()
        .unwrap_or_default();
    assert!(message.contains("limit of 10000 per request"), "{message}");
    broker.shutdown().await;
}
