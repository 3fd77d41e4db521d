//! Produce (key 0) at every served version: acks 0, 1 and all, refused acks, refused batches
//! (nothing appended), unknown topics and partitions, several partitions and topics at once.

use bytes::Bytes;
use kafka_protocol::messages::{MetadataRequest, ProduceResponse, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::field;
use weir_tests::{TestBroker, batch, req, stored, versions};

async fn broker() -> TestBroker {
    TestBroker::start_with(|c| c.auto_create_topics = false).await
}

/// `(topic, partition, error code, base offset)` of every partition in the response, in order.
fn results(response: &ProduceResponse) -> Vec<(String, i32, i16, i64)> {
    response
        .responses
        .iter()
        .flat_map(|t| {
            t.partition_responses
                .iter()
                .map(|p| (t.name.0.to_string(), p.index, p.error_code, p.base_offset))
        })
        .collect()
}

#[tokio::test]
async fn acks_1_and_all_assign_increasing_base_offsets() {
    let broker = broker().await;
    let mut client = broker.client().await;
    for v in versions(ApiKey::Produce) {
        for acks in [1, -1] {
            let name = format!("p-{v}-{}", if acks == 1 { "one" } else { "all" });
            client.create_topic(&name, 1).await;
            let batches = [batch(3), batch(5), batch(1)];
            let mut expected_fetch = Vec::new();
            for (b, expected_base) in batches.iter().zip([0, 3, 8]) {
                let response = client
                    .call(v, req::produce(&name, 0, b.clone(), acks))
                    .await;
                assert_eq!(response.throttle_time_ms, 0);
                assert_eq!(
                    results(&response),
                    [(name.clone(), 0, 0, expected_base)],
                    "v{v} acks {acks}"
                );
                let p = &response.responses[0].partition_responses[0];
                assert_eq!(p.log_append_time_ms, -1, "create time: -1");
                if v >= 5 {
                    assert_eq!(p.log_start_offset, 0, "v{v}");
                }
                expected_fetch.extend(stored(b, expected_base));
            }
            assert_eq!(client.list_offset(&name, 0, -1).await, 9);
            assert_eq!(
                &client.fetch_now(&name, 0, 0).await[..],
                &expected_fetch[..]
            );
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn acks_0_gets_no_response_but_appends() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("fire-and-forget", 1).await;
    let mut appended = 0;
    for v in versions(ApiKey::Produce) {
        let _unanswered = client
            .send(v, req::produce("fire-and-forget", 0, batch(2), 0))
            .await;
        appended += 2;
        // The next response on the connection is the metadata's: recv checks the correlation
        // id, so a produce response arriving first fails here.
        let metadata = client
            .call(1, MetadataRequest::default().with_topics(None))
            .await;
        assert_eq!(metadata.topics.len(), 1, "v{v}");
        assert_eq!(
            client.list_offset("fire-and-forget", 0, -1).await,
            appended,
            "v{v}"
        );
    }
    assert!(
        !client
            .has_response_within(std::time::Duration::from_millis(100))
            .await,
        "a late response to an acks=0 produce"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn acks_0_with_an_error_closes_the_connection() {
    // Kafka closes the connection when an acks=0 produce fails, the only way a fire-and-forget
    // producer learns to refresh its metadata.
    let broker = broker().await;
    for v in versions(ApiKey::Produce) {
        let mut client = broker.client().await;
        let _unanswered = client
            .send(v, req::produce("no-such-topic", 0, batch(1), 0))
            .await;
        client.expect_closed().await;
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn invalid_acks_are_refused() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("acks", 2).await;
    for v in versions(ApiKey::Produce) {
        for acks in [2, -2, 5, i16::MAX, i16::MIN] {
            let request = req::produce_many(&[("acks", 0, batch(1)), ("acks", 1, batch(1))], acks);
            let response = client.call(v, request).await;
            let code = ErrorCode::InvalidRequiredAcks.code();
            assert_eq!(
                results(&response),
                [("acks".into(), 0, code, -1), ("acks".into(), 1, code, -1)],
                "v{v} acks {acks}"
            );
        }
    }
    assert_eq!(client.list_offset("acks", 0, -1).await, 0);
    assert_eq!(client.list_offset("acks", 1, -1).await, 0);
    broker.shutdown().await;
}

/// A transactional produce gets the error clients treat as fatal, on every partition, and
/// nothing is appended (there are no transactions; `init_transactions` already fails).
#[tokio::test]
async fn transactional_produce_is_refused() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("txn", 2).await;
    for v in versions(ApiKey::Produce) {
        let request = req::produce_many(&[("txn", 0, batch(1)), ("txn", 1, batch(1))], -1)
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx"))));
        let response = client.call(v, request).await;
        let code = ErrorCode::TransactionalIdAuthorizationFailed.code();
        assert_eq!(
            results(&response),
            [("txn".into(), 0, code, -1), ("txn".into(), 1, code, -1)],
            "v{v}"
        );
    }
    assert_eq!(client.list_offset("txn", 0, -1).await, 0);
    assert_eq!(client.list_offset("txn", 1, -1).await, 0);
    broker.shutdown().await;
}

/// Batches a producer must not send, each with the code Kafka answers.
fn refused_batches() -> Vec<(&'static str, Bytes, ErrorCode)> {
    let good = batch(3);
    let mut bad_crc = good.to_vec();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0x01;
    let mut bad_crc_field = good.to_vec();
    bad_crc_field[field::CRC] ^= 0x80;
    let with_magic = |magic: u8| {
        let mut b = good.to_vec();
        b[field::MAGIC] = magic;
        Bytes::from(b)
    };
    let two_batches = Bytes::from([&good[..], &batch(1)[..]].concat());
    // Refused on the control bit alone, before the CRC (which the flip breaks) is looked at.
    let mut control = good.to_vec();
    control[field::ATTRIBUTES + 1] |= 0x20;
    let with_length = |length: i32| {
        let mut b = good.to_vec();
        b[field::BATCH_LENGTH..field::BATCH_LENGTH + 4].copy_from_slice(&length.to_be_bytes());
        Bytes::from(b)
    };
    vec![
        (
            "control batch",
            Bytes::from(control),
            ErrorCode::InvalidRecord,
        ),
        (
            "length shorter than a header",
            with_length(20),
            ErrorCode::CorruptMessage,
        ),
        ("negative length", with_length(-1), ErrorCode::InvalidRecord),
        (
            "fewer bytes than the fixed fields",
            good.slice(..field::ATTRIBUTES),
            ErrorCode::InvalidRecord,
        ),
        (
            "bad CRC (payload flipped)",
            Bytes::from(bad_crc),
            ErrorCode::CorruptMessage,
        ),
        (
            "bad CRC (CRC field flipped)",
            Bytes::from(bad_crc_field),
            ErrorCode::CorruptMessage,
        ),
        ("magic 1", with_magic(1), ErrorCode::InvalidRecord),
        ("magic 0", with_magic(0), ErrorCode::InvalidRecord),
        ("magic 3", with_magic(3), ErrorCode::CorruptMessage),
        ("two batches", two_batches, ErrorCode::InvalidRecord),
        ("empty record set", Bytes::new(), ErrorCode::InvalidRecord),
        (
            "truncated batch",
            good.slice(..good.len() - 1),
            ErrorCode::InvalidRecord,
        ),
    ]
}

#[tokio::test]
async fn refused_batches_append_nothing() {
    let broker = broker().await;
    let mut client = broker.client().await;
    for v in versions(ApiKey::Produce) {
        let name = format!("refused-{v}");
        client.create_topic(&name, 1).await;
        for (what, records, _) in refused_batches() {
            for acks in [1, -1] {
                let response = client
                    .call(v, req::produce(&name, 0, records.clone(), acks))
                    .await;
                let p = &response.responses[0].partition_responses[0];
                assert_ne!(p.error_code, 0, "v{v}: {what} accepted");
                assert_eq!(p.base_offset, -1, "v{v}: {what}");
            }
        }
        assert_eq!(
            client.list_offset(&name, 0, -1).await,
            0,
            "v{v}: something was appended"
        );
        let good = batch(2);
        assert_eq!(client.produce_ok(&name, 0, good.clone()).await, 0);
        assert_eq!(
            &client.fetch_now(&name, 0, 0).await[..],
            &stored(&good, 0)[..]
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn bad_crc_is_corrupt_message() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("crc", 1).await;
    for v in versions(ApiKey::Produce) {
        for (what, records, _) in refused_batches() {
            if !what.starts_with("bad CRC") {
                continue;
            }
            let response = client.call(v, req::produce("crc", 0, records, 1)).await;
            assert_eq!(
                results(&response),
                [("crc".into(), 0, ErrorCode::CorruptMessage.code(), -1)],
                "v{v}: {what}"
            );
        }
    }
    assert_eq!(client.list_offset("crc", 0, -1).await, 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn invalid_batches_are_invalid_record() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("invalid", 1).await;
    let mut wrong = Vec::new();
    for v in versions(ApiKey::Produce) {
        for (what, records, expected) in refused_batches() {
            let response = client.call(v, req::produce("invalid", 0, records, 1)).await;
            let p = &response.responses[0].partition_responses[0];
            if p.error_code != expected.code() {
                wrong.push(format!(
                    "v{v} {what}: {} instead of {expected}",
                    p.error_code
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    broker.shutdown().await;
}

#[tokio::test]
async fn unknown_topic_or_partition_is_refused() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("two", 2).await;
    let unknown = ErrorCode::UnknownTopicOrPartition.code();
    for v in versions(ApiKey::Produce) {
        for acks in [1, -1] {
            let request = req::produce_many(
                &[
                    ("missing", 0, batch(1)),
                    ("two", 2, batch(1)),
                    ("two", -1, batch(1)),
                    ("two", 1, batch(1)),
                ],
                acks,
            );
            let response = client.call(v, request).await;
            let appended = (client.list_offset("two", 1, -1).await) - 1;
            assert_eq!(
                results(&response),
                [
                    ("missing".into(), 0, unknown, -1),
                    ("two".into(), 2, unknown, -1),
                    ("two".into(), -1, unknown, -1),
                    ("two".into(), 1, 0, appended),
                ],
                "v{v} acks {acks}"
            );
        }
        // Producing does not create topics when auto-creation is off.
        let mut c2 = broker.client().await;
        let v_md = *versions(ApiKey::Metadata).end();
        let md = c2.call(v_md, req::metadata(v_md, Some(&["missing"]))).await;
        assert_eq!(md.topics[0].error_code, unknown);
    }
    assert_eq!(client.list_offset("two", 0, -1).await, 0);
    broker.shutdown().await;
}

#[tokio::test]
async fn many_partitions_and_topics_in_one_request() {
    let broker = broker().await;
    let mut client = broker.client().await;
    client.create_topic("x", 3).await;
    client.create_topic("y", 1).await;
    let mut next = [0i64; 4]; // x/0, x/1, x/2, y/0
    for v in versions(ApiKey::Produce) {
        let (a, b, c) = (batch(1), batch(2), batch(3));
        let request = req::produce_many(
            &[
                ("x", 2, a.clone()),
                ("y", 0, b.clone()),
                ("x", 0, c.clone()),
            ],
            -1,
        );
        let response = client.call(v, request).await;
        assert_eq!(
            results(&response),
            [
                ("x".into(), 2, 0, next[2]),
                ("x".into(), 0, 0, next[0]),
                ("y".into(), 0, 0, next[3]),
            ],
            "v{v}"
        );
        let fetched = client.fetch_now("x", 2, next[2]).await;
        assert_eq!(&fetched[..], &stored(&a, next[2])[..], "v{v}");
        let fetched = client.fetch_now("y", 0, next[3]).await;
        assert_eq!(&fetched[..], &stored(&b, next[3])[..], "v{v}");
        let fetched = client.fetch_now("x", 0, next[0]).await;
        assert_eq!(&fetched[..], &stored(&c, next[0])[..], "v{v}");
        next[2] += 1;
        next[3] += 2;
        next[0] += 3;
    }
    assert_eq!(client.list_offset("x", 1, -1).await, 0, "x/1 untouched");
    broker.shutdown().await;
}

#[tokio::test]
async fn concurrent_producers_get_distinct_dense_offsets() {
    let broker = broker().await;
    let mut admin = broker.client().await;
    admin.create_topic("shared", 1).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let mut client = broker.client().await;
        tasks.spawn(async move {
            let mut bases = Vec::new();
            for _ in 0..10 {
                bases.push(client.produce_ok("shared", 0, batch(3)).await);
            }
            bases
        });
    }
    let mut bases: Vec<i64> = Vec::new();
    while let Some(result) = tasks.join_next().await {
        bases.extend(result.unwrap());
    }
    bases.sort_unstable();
    assert_eq!(bases, (0..40).map(|i| i * 3).collect::<Vec<i64>>());
    assert_eq!(admin.list_offset("shared", 0, -1).await, 120);
    broker.shutdown().await;
}
