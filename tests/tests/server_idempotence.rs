//! InitProducerId (every version) and idempotent produce over the wire: duplicates answered
//! with the original offsets, gaps and stale epochs refused, state kept across restarts
//! (clean, and after an unclean stop that leaves no snapshot).

use bytes::Bytes;
use kafka_protocol::messages::{InitProducerIdRequest, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::{BatchBuilder, RecordInput};
use weir_tests::{Client, TestBroker, req, versions};

/// A batch of `count` records from producer `id`, epoch `epoch`, first sequence `seq`.
fn idempotent_batch(id: i64, epoch: i16, seq: i32, count: usize) -> Bytes {
    let mut builder = BatchBuilder::new().with_producer(id, epoch, seq);
    for i in 0..count {
        let value = format!("p{id}-s{}", i64::from(seq) + i as i64);
        builder.push(RecordInput {
            value: Some(value.as_bytes()),
            timestamp: 1_700_000_000_000,
            ..RecordInput::default()
        });
    }
    builder.build().expect("records")
}

async fn init_producer_id(client: &mut Client, version: i16) -> (i64, i16) {
    // What a non-transactional producer sends: a null transactional id (the codec's default
    // is an empty string, which Kafka refuses like any transactional id it cannot serve).
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(-1);
    let response = client.call(version, request).await;
    assert_eq!(response.error_code, 0, "v{version}: {response:?}");
    (response.producer_id.0, response.producer_epoch)
}

/// (error code, base offset) of a one-partition produce at the highest version.
async fn produce(client: &mut Client, topic: &str, records: Bytes) -> (i16, i64) {
    let v = *versions(ApiKey::Produce).end();
    let response = client.call(v, req::produce(topic, 0, records, -1)).await;
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[tokio::test]
async fn every_version_hands_out_distinct_ids_that_survive_restarts() {
    let mut broker = TestBroker::start().await;
    let mut client = broker.client().await;
    let mut seen = Vec::new();
    for v in versions(ApiKey::InitProducerId) {
        for _ in 0..3 {
            let (id, epoch) = init_producer_id(&mut client, v).await;
            assert!(id >= 0);
            assert_eq!(epoch, 0);
            seen.push(id);
        }
    }
    broker.restart().await;
    let mut client = broker.client().await;
    for v in versions(ApiKey::InitProducerId) {
        seen.push(init_producer_id(&mut client, v).await.0);
    }
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        seen.len(),
        "an id was handed out twice: {seen:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn transactional_ids_are_refused() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    for v in versions(ApiKey::InitProducerId) {
        // A fatal error for clients, not one they retry until a timeout; an empty id is
        // invalid, as in Kafka.
        for (id, expected) in [
            ("tx", ErrorCode::TransactionalIdAuthorizationFailed),
            ("", ErrorCode::InvalidRequest),
        ] {
            let request = InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str(id))))
                .with_transaction_timeout_ms(60_000);
            let response = client.call(v, request).await;
            assert_eq!(response.error_code, expected.code(), "v{v} {id:?}");
            assert_eq!(response.producer_id.0, -1);
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn duplicates_gaps_and_stale_epochs_at_every_produce_version() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    for v in versions(ApiKey::Produce) {
        let topic = format!("idem-{v}");
        client.create_topic(&topic, 1).await;
        let (id, epoch) =
            init_producer_id(&mut client, *versions(ApiKey::InitProducerId).end()).await;
        let call = |records: Bytes| req::produce(&topic, 0, records, -1);
        let mut results = Vec::new();
        for records in [
            idempotent_batch(id, epoch, 0, 3),     // appended at 0
            idempotent_batch(id, epoch, 3, 2),     // appended at 3
            idempotent_batch(id, epoch, 0, 3),     // retry of the first: duplicate
            idempotent_batch(id, epoch, 3, 2),     // retry of the second: duplicate
            idempotent_batch(id, epoch, 6, 1),     // gap (5 expected)
            idempotent_batch(id, epoch, 5, 1),     // appended at 5
            idempotent_batch(id, epoch + 1, 3, 1), // new epoch must start at 0
            idempotent_batch(id, epoch + 1, 0, 1), // appended at 6
            idempotent_batch(id, epoch, 6, 1),     // fenced: older epoch
        ] {
            let response = client.call(v, call(records)).await;
            let p = &response.responses[0].partition_responses[0];
            results.push((p.error_code, p.base_offset));
        }
        let ok = 0;
        let gap = ErrorCode::OutOfOrderSequenceNumber.code();
        let fenced = ErrorCode::InvalidProducerEpoch.code();
        assert_eq!(
            results,
            [
                (ok, 0),
                (ok, 3),
                (ok, 0),
                (ok, 3),
                (gap, -1),
                (ok, 5),
                (gap, -1),
                (ok, 6),
                (fenced, -1)
            ],
            "produce v{v}"
        );
        assert_eq!(
            client.list_offset(&topic, 0, -1).await,
            7,
            "v{v}: duplicates or refusals were appended"
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn only_the_last_five_batches_are_remembered() {
    let broker = TestBroker::start().await;
    let mut client = broker.client().await;
    client.create_topic("five", 1).await;
    let (id, epoch) = init_producer_id(&mut client, 1).await;
    for seq in 0..7 {
        assert_eq!(
            produce(&mut client, "five", idempotent_batch(id, epoch, seq, 1)).await,
            (0, i64::from(seq))
        );
    }
    // Sequences 2..=6 are the last five: retries are duplicates; 1 is too old to recognise and
    // does not follow 6, so it is out of order (never appended twice).
    assert_eq!(
        produce(&mut client, "five", idempotent_batch(id, epoch, 2, 1)).await,
        (0, 2)
    );
    assert_eq!(
        produce(&mut client, "five", idempotent_batch(id, epoch, 1, 1)).await,
        (ErrorCode::OutOfOrderSequenceNumber.code(), -1)
    );
    assert_eq!(client.list_offset("five", 0, -1).await, 7);
    broker.shutdown().await;
}

#[tokio::test]
async fn producer_state_survives_a_clean_restart() {
    let mut broker = TestBroker::start().await;
    let mut client = broker.client().await;
    client.create_topic("kept", 1).await;
    let (id, epoch) = init_producer_id(&mut client, 1).await;
    assert_eq!(
        produce(&mut client, "kept", idempotent_batch(id, epoch, 0, 4)).await,
        (0, 0)
    );
    assert_eq!(
        produce(&mut client, "kept", idempotent_batch(id, epoch, 4, 4)).await,
        (0, 4)
    );
    broker.restart().await;
    assert!(
        broker
            .data_dir()
            .join("kept-0/producer-state.snapshot")
            .exists()
    );
    let mut client = broker.client().await;
    // A retry after the restart is still recognised, and the sequence continues.
    assert_eq!(
        produce(&mut client, "kept", idempotent_batch(id, epoch, 4, 4)).await,
        (0, 4)
    );
    assert_eq!(
        produce(&mut client, "kept", idempotent_batch(id, epoch, 9, 1)).await,
        (ErrorCode::OutOfOrderSequenceNumber.code(), -1)
    );
    assert_eq!(
        produce(&mut client, "kept", idempotent_batch(id, epoch, 8, 1)).await,
        (0, 8)
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn producer_state_is_rebuilt_from_the_log_without_a_snapshot() {
    let mut broker = TestBroker::start().await;
    let mut client = broker.client().await;
    client.create_topic("rebuilt", 1).await;
    let (id, epoch) = init_producer_id(&mut client, 0).await;
    for seq in (0..20).step_by(2) {
        assert_eq!(
            produce(&mut client, "rebuilt", idempotent_batch(id, epoch, seq, 2))
                .await
                .0,
            0
        );
    }
    broker.restart().await;
    // As after a crash before any snapshot: only the log is left to rebuild from.
    std::fs::remove_file(broker.data_dir().join("rebuilt-0/producer-state.snapshot"))
        .expect("snapshot written at shutdown");
    broker.restart().await;
    let mut client = broker.client().await;
    assert_eq!(
        produce(&mut client, "rebuilt", idempotent_batch(id, epoch, 18, 2)).await,
        (0, 18)
    );
    assert_eq!(
        produce(&mut client, "rebuilt", idempotent_batch(id, epoch, 20, 2)).await,
        (0, 20)
    );
    broker.shutdown().await;
}
