//! CreatePartitions (key 37) at every served version: a topic grows and its new partitions are
//! usable at once (Metadata, Produce, Fetch, ListOffsets) and kept across a restart and a
//! crash; each refusal with Kafka's code (shrink or same count, unknown topic, a topic named
//! twice, a bad manual assignment, too many partitions, not enough free space); validate_only
//! changing nothing; a grow that fails part-way being undone at once.

use std::path::Path;
use std::sync::Arc;

use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::{BrokerId, CreatePartitionsRequest, CreatePartitionsResponse};
use weir_broker::log::{FaultyDisk, LogError};
use weir_broker::topics::{CatalogError, TopicCatalog};
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::process::BrokerProcess;
use weir_tests::tmpfs::Tmpfs;
use weir_tests::{Client, TestBroker, batch, faulty_log_options, req, stored, versions};

/// One topic of a CreatePartitions request: `name` to `count` partitions, with an optional
/// manual assignment (a replica list per new partition).
fn grow(name: &str, count: i32, assignments: Option<&[&[i32]]>) -> CreatePartitionsTopic {
    CreatePartitionsTopic::default()
        .with_name(req::topic(name))
        .with_count(count)
        .with_assignments(assignments.map(|lists| {
            lists
                .iter()
                .map(|ids| {
                    CreatePartitionsAssignment::default()
                        .with_broker_ids(ids.iter().copied().map(BrokerId).collect())
                })
                .collect()
        }))
}

fn request(topics: Vec<CreatePartitionsTopic>) -> CreatePartitionsRequest {
    CreatePartitionsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(30_000)
}

/// (name, error code, message) of each result, in order; an error always has a message.
fn results(response: &CreatePartitionsResponse) -> Vec<(String, i16, String)> {
    assert_eq!(response.throttle_time_ms, 0);
    response
        .results
        .iter()
        .map(|r| {
            if r.error_code != 0 {
                assert!(r.error_message.is_some(), "an error has a message: {r:?}");
            }
            (
                r.name.0.to_string(),
                r.error_code,
                r.error_message.as_deref().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Partitions of `name` per Metadata (the topic must exist).
async fn partitions_of(client: &mut Client, name: &str) -> usize {
    let v = *versions(ApiKey::Metadata).end();
    let response = client.call(v, req::metadata(v, Some(&[name]))).await;
    let t = &response.topics[0];
    assert_eq!(t.error_code, 0, "{t:?}");
    let mut indexes: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
    indexes.sort_unstable();
    assert_eq!(
        indexes,
        (0..i32::try_from(indexes.len()).unwrap()).collect::<Vec<_>>()
    );
    t.partitions.len()
}

async fn broker() -> TestBroker {
    TestBroker::start_with(|c| c.auto_create_topics = false).await
}

#[tokio::test]
async fn grows_a_topic_and_the_new_partitions_work_at_once() {
    let broker = broker().await;
    let mut client = broker.client().await;
    for v in versions(ApiKey::CreatePartitions) {
        let name = format!("grow-{v}");
        client.create_topic(&name, 1).await;
        let old = batch(2);
        assert_eq!(client.produce_ok(&name, 0, old.clone()).await, 0);

        let response = client.call(v, request(vec![grow(&name, 3, None)])).await;
        assert_eq!(
            results(&response),
            [(name.clone(), 0, String::new())],
            "v{v}"
        );
        assert_eq!(partitions_of(&mut client, &name).await, 3);

        // The old partition keeps its records; the new ones start empty and take writes.
        assert_eq!(client.fetch_now(&name, 0, 0).await, stored(&old, 0));
        for p in [1, 2] {
            assert_eq!(client.list_offset(&name, p, -1).await, 0);
            let records = batch(3);
            assert_eq!(client.produce_ok(&name, p, records.clone()).await, 0);
            assert_eq!(client.fetch_now(&name, p, 0).await, stored(&records, 0));
            assert_eq!(client.list_offset(&name, p, -1).await, 3);
            assert_eq!(client.list_offset(&name, p, -2).await, 0);
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn a_total_at_or_below_the_current_count_is_refused() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("three", 3).await;
    for v in versions(ApiKey::CreatePartitions) {
        for count in [3, 2, 0, -1] {
            let response = client
                .call(v, request(vec![grow("three", count, None)]))
                .await;
            let [(_, code, message)] = &results(&response)[..] else {
                panic!("{response:?}")
            };
            assert_eq!(*code, ErrorCode::InvalidPartitions.code(), "v{v} {count}");
            assert!(
                message.contains("has 3 partitions") && message.contains(&count.to_string()),
                "the message names both counts: {message}"
            );
        }
        // Past the per-topic limit.
        let response = client
            .call(v, request(vec![grow("three", 10_001, None)]))
            .await;
        assert_eq!(results(&response)[0].1, ErrorCode::InvalidPartitions.code());
    }
    assert_eq!(partitions_of(&mut client, "three").await, 3);
    broker.shutdown().await;
}

#[tokio::test]
async fn unknown_and_duplicate_topics_are_refused_and_the_rest_proceed() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("twice", 1).await;
    client.create_topic("other", 1).await;
    for v in versions(ApiKey::CreatePartitions) {
        let count = 2 + i32::from(v);
        let response = client
            .call(
                v,
                request(vec![
                    grow("twice", 5, None),
                    grow("nowhere", 5, None),
                    grow("other", count, None),
                    grow("twice", 6, None),
                ]),
            )
            .await;
        let codes: Vec<(String, i16)> = results(&response)
            .into_iter()
            .map(|(n, c, _)| (n, c))
            .collect();
        assert_eq!(
            codes,
            [
                ("twice".to_owned(), ErrorCode::InvalidRequest.code()),
                (
                    "nowhere".to_owned(),
                    ErrorCode::UnknownTopicOrPartition.code()
                ),
                ("other".to_owned(), 0),
                ("twice".to_owned(), ErrorCode::InvalidRequest.code()),
            ],
            "v{v}"
        );
        assert_eq!(
            partitions_of(&mut client, "other").await,
            usize::try_from(count).unwrap()
        );
    }
    assert_eq!(partitions_of(&mut client, "twice").await, 1);
    broker.shutdown().await;
}

#[tokio::test]
async fn validate_only_checks_everything_and_changes_nothing() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("checked", 2).await;
    for v in versions(ApiKey::CreatePartitions) {
        let response = client
            .call(
                v,
                request(vec![
                    grow("checked", 5, None),
                    grow("checked-not", 5, None),
                    grow("checked", 5, Some(&[&[0], &[0], &[0]])),
                ])
                .with_validate_only(true),
            )
            .await;
        // "checked" twice: refused as a duplicate even when only validating.
        let codes: Vec<i16> = results(&response).iter().map(|r| r.1).collect();
        assert_eq!(
            codes,
            [
                ErrorCode::InvalidRequest.code(),
                ErrorCode::UnknownTopicOrPartition.code(),
                ErrorCode::InvalidRequest.code()
            ]
        );
        for (count, code) in [
            (5, 0),
            (2, ErrorCode::InvalidPartitions.code()),
            (10_001, ErrorCode::InvalidPartitions.code()),
        ] {
            let response = client
                .call(
                    v,
                    request(vec![grow("checked", count, None)]).with_validate_only(true),
                )
                .await;
            assert_eq!(results(&response)[0].1, code, "v{v} {count}");
        }
        let response = client
            .call(
                v,
                request(vec![grow("checked", 4, Some(&[&[7], &[0]]))]).with_validate_only(true),
            )
            .await;
        assert_eq!(
            results(&response)[0].1,
            ErrorCode::InvalidReplicaAssignment.code()
        );
        assert_eq!(partitions_of(&mut client, "checked").await, 2);
    }
    assert!(!broker.data_dir().join("checked-2").exists());
    broker.shutdown().await;
}

#[tokio::test]
async fn a_manual_assignment_may_name_only_this_broker() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("placed", 1).await;
    let v = *versions(ApiKey::CreatePartitions).end();
    let refused: [&[&[i32]]; 5] = [
        &[&[1], &[0]],       // another broker
        &[&[0]],             // fewer lists than new partitions
        &[&[0], &[0], &[0]], // more
        &[&[0, 0], &[0]],    // two replicas
        &[&[], &[0]],        // none
    ];
    for assignments in refused {
        let response = client
            .call(v, request(vec![grow("placed", 3, Some(assignments))]))
            .await;
        let [(_, code, message)] = &results(&response)[..] else {
            panic!("{response:?}")
        };
        assert_eq!(
            *code,
            ErrorCode::InvalidReplicaAssignment.code(),
            "{assignments:?}: {message}"
        );
    }
    assert_eq!(partitions_of(&mut client, "placed").await, 1);
    let response = client
        .call(v, request(vec![grow("placed", 3, Some(&[&[0], &[0]]))]))
        .await;
    assert_eq!(results(&response)[0].1, 0, "{response:?}");
    assert_eq!(partitions_of(&mut client, "placed").await, 3);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_adds_at_most_ten_thousand_partitions() {
    // Small segments: validate_only checks the free space of 12,000 of them.
    let broker = TestBroker::start_with(|c| c.segment_bytes = 4096).await;
    let mut client = broker.client().await;
    for name in ["a", "b", "c"] {
        client.create_topic(name, 1).await;
    }
    let v = *versions(ApiKey::CreatePartitions).end();
    let response = client
        .call(
            v,
            request(vec![
                grow("a", 6_001, None),
                grow("b", 6_001, None),
                grow("c", 4_001, None),
            ])
            .with_validate_only(true),
        )
        .await;
    let results = results(&response);
    let codes: Vec<i16> = results.iter().map(|r| r.1).collect();
    assert_eq!(codes, [0, ErrorCode::InvalidPartitions.code(), 0]);
    assert!(
        results[1].2.contains("limit of 10000 per request"),
        "{}",
        results[1].2
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_partitions_survive_a_restart_and_a_crash() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let log = tempfile::NamedTempFile::new().expect("log file");
    let mut broker = BrokerProcess::start(&data, log.path(), &[]);
    let mut client = Client::connect(broker.addr()).await;
    let v = *versions(ApiKey::CreatePartitions).end();
    client.create_topic("kept", 1).await;
    let response = client.call(v, request(vec![grow("kept", 3, None)])).await;
    assert_eq!(results(&response)[0].1, 0);
    let records = batch(4);
    assert_eq!(client.produce_ok("kept", 2, records.clone()).await, 0);
    drop(client);

    assert!(broker.stop(), "clean stop");
    broker.restart();
    let mut client = Client::connect(broker.addr()).await;
    assert_eq!(partitions_of(&mut client, "kept").await, 3);
    assert_eq!(client.fetch_now("kept", 2, 0).await, stored(&records, 0));
    let response = client.call(v, request(vec![grow("kept", 5, None)])).await;
    assert_eq!(results(&response)[0].1, 0);
    let more = batch(1);
    assert_eq!(client.produce_ok("kept", 4, more.clone()).await, 0);
    drop(client);

    // Acknowledged means in the catalog file: a crash right after keeps them.
    broker.kill9();
    broker.restart();
    let mut client = Client::connect(broker.addr()).await;
    assert_eq!(partitions_of(&mut client, "kept").await, 5);
    assert_eq!(client.fetch_now("kept", 4, 0).await, stored(&more, 0));
    assert_eq!(client.fetch_now("kept", 2, 0).await, stored(&records, 0));
    drop(client);
    assert!(broker.stop());
}

/// Directories of `topic`'s partitions found in `data`, sorted.
fn partition_dirs(data: &Path, topic: &str) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(data)
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
        .collect();
    dirs.sort();
    dirs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_that_cannot_fit_are_refused_before_anything_is_allocated() {
    let fs = Tmpfs::mount(16 << 20);
    let data = fs.path().join("data");
    let log = tempfile::NamedTempFile::new().expect("log file");
    let mut broker = BrokerProcess::start(&data, log.path(), &["--segment-bytes", "1048576"]);
    let mut client = Client::connect(broker.addr()).await;
    let v = *versions(ApiKey::CreatePartitions).end();
    client.create_topic("room", 2).await;
    for validate_only in [true, false] {
        let response = client
            .call(
                v,
                request(vec![grow("room", 102, None)]).with_validate_only(validate_only),
            )
            .await;
        let [(_, code, message)] = &results(&response)[..] else {
            panic!("{response:?}")
        };
        assert_eq!(*code, ErrorCode::PolicyViolation.code(), "{message}");
        // The 100 added partitions x (1 MiB segment + one block for each index).
        assert!(
            message.contains("100 partitions need 105676800 bytes"),
            "the message gives the figures: {message}"
        );
        assert_eq!(partition_dirs(&data, "room"), ["room-0", "room-1"]);
    }
    // What fits is still added.
    let response = client.call(v, request(vec![grow("room", 4, None)])).await;
    assert_eq!(results(&response)[0].1, 0);
    let records = batch(2);
    assert_eq!(client.produce_ok("room", 3, records.clone()).await, 0);
    assert_eq!(client.fetch_now("room", 3, 0).await, stored(&records, 0));
    drop(client);
    assert!(broker.stop());
}

#[test]
fn a_grow_that_fails_part_way_is_rolled_back_at_once() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    // Room for a few partitions' segments and indexes, far from 50.
    let disk = Arc::new(FaultyDisk::new(5 * (64 << 10)));
    let catalog = TopicCatalog::open(&data, faulty_log_options(&disk)).expect("open the catalog");
    catalog.create("big", 1).expect("a small topic fits");

    match catalog.add_partitions("big", 50) {
        Err(CatalogError::Log(LogError::DiskFull { .. })) => {}
        other => panic!("expected a full disk part-way, got {other:?}"),
    }
    assert_eq!(
        catalog.get("big").expect("still there").partition_count(),
        1
    );
    assert_eq!(
        partition_dirs(&data, "big"),
        ["big-0"],
        "partitions of the failed grow are gone without a restart"
    );

    // The catalog on disk still says 1, and the topic grows once there is room.
    drop(catalog);
    disk.add_space(1 << 20);
    let catalog = TopicCatalog::open(&data, faulty_log_options(&disk)).expect("reopen");
    assert_eq!(catalog.get("big").expect("kept").partition_count(), 1);
    assert_eq!(catalog.add_partitions("big", 3).expect("grown"), 2);
    catalog.close().expect("close");
    drop(catalog);
    let catalog = TopicCatalog::open(&data, faulty_log_options(&disk)).expect("reopen");
    assert_eq!(catalog.get("big").expect("kept").partition_count(), 3);
    catalog.close().expect("close");
}

#[test]
fn directories_of_a_grow_the_catalog_never_recorded_are_removed_at_start_up() {
    // A crash after the new partitions' directories were made but before the catalog was
    // written: the directories past the recorded count are not the topic's.
    let dir = tempfile::tempdir().expect("temporary directory");
    let disk = Arc::new(FaultyDisk::new(i64::MAX / 4));
    let catalog = TopicCatalog::open(dir.path(), faulty_log_options(&disk)).expect("open");
    catalog.create("half", 2).expect("create");
    catalog.close().expect("close");
    drop(catalog);
    std::fs::create_dir_all(dir.path().join("half-2")).expect("make a stray directory");
    std::fs::write(
        dir.path().join("half-2").join("00000000000000000000.log"),
        b"old",
    )
    .expect("write");
    let catalog = TopicCatalog::open(dir.path(), faulty_log_options(&disk)).expect("reopen");
    assert_eq!(partition_dirs(dir.path(), "half"), ["half-0", "half-1"]);
    assert_eq!(catalog.add_partitions("half", 3).expect("grow"), 1);
    let topic = catalog.get("half").expect("topic");
    let log = topic.log(2).expect("partition 2");
    assert_eq!(log.log_end_offset().0, 0, "the new partition starts empty");
    catalog.close().expect("close");
}
