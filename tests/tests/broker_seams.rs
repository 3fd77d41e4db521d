//! The seams of `Broker::builder`, used from outside: an in-process broker built on a
//! `ManualClock` and on a `FaultyDisk`, driven over the wire.
//!
//! - The clock: a consumer group member's session expires when the injected clock passes its
//!   session timeout, with no real waiting. The group timers sleep in Tokio time for the gap
//!   they computed from the clock, and any group request wakes them to look again; so the
//!   test moves the clock, then wakes the timers with a heartbeat from another (unknown)
//!   group, as any other client's traffic would.
//! - The disk: an fsync failure under a produce with acks=all is answered
//!   KAFKA_STORAGE_ERROR, and the partition refuses every later produce (fail-stop), even
//!   once the disk works again; the shutdown then reports the failed log.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::{
    DescribeGroupsRequest, GroupId, HeartbeatRequest, JoinGroupRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use weir_broker::BrokerError;
use weir_broker::clock::ManualClock;
use weir_broker::log::LogError;
use weir_broker::storage::FaultyDisk;
use weir_broker::topics::CatalogError;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_tests::{BASE_TIMESTAMP, Client, Seams, TestBroker, batch, req, versions, within};

const GROUP: &str = "clocked";
const SESSION_TIMEOUT_MS: i32 = 30_000;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn heartbeat(group: &str, generation: i32, member: &str) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member))
}

/// Joins `GROUP` alone (v3: no member-id round trip) and syncs; returns (member, generation).
async fn join_and_sync(client: &mut Client) -> (String, i32) {
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_session_timeout_ms(SESSION_TIMEOUT_MS)
        .with_rebalance_timeout_ms(SESSION_TIMEOUT_MS)
        .with_member_id(s(""))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"subscription")),
        ]);
    let joined = client.call(3, join).await;
    assert_eq!(joined.error_code, 0, "{joined:?}");
    let member = joined.member_id.to_string();
    let synced = client
        .call(
            3,
            SyncGroupRequest::default()
                .with_group_id(GroupId(s(GROUP)))
                .with_generation_id(joined.generation_id)
                .with_member_id(s(&member)),
        )
        .await;
    assert_eq!(synced.error_code, 0, "{synced:?}");
    (member, joined.generation_id)
}

/// The members DescribeGroups reports for `GROUP`.
async fn members(client: &mut Client) -> Vec<String> {
    let described = client
        .call(
            *versions(ApiKey::DescribeGroups).end(),
            DescribeGroupsRequest::default().with_groups(vec![GroupId(s(GROUP))]),
        )
        .await;
    described.groups[0]
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .collect()
}

/// Wakes the group timers with a request that touches no group of the test.
async fn wake_timers(client: &mut Client) {
    let poke = client.call(0, heartbeat("unrelated", 1, "nobody")).await;
    assert_eq!(poke.error_code, ErrorCode::UnknownMemberId.code());
}

#[tokio::test]
async fn a_member_is_expelled_when_the_injected_clock_passes_its_session_timeout() {
    let clock = Arc::new(ManualClock::new(BASE_TIMESTAMP));
    let seams = Seams {
        clock: Some(Arc::clone(&clock) as _),
        ..Seams::default()
    };
    let broker = TestBroker::start_on(seams, |c| c.group_initial_rebalance_delay_ms = 0).await;
    let mut client = broker.client().await;
    let (member, generation) = join_and_sync(&mut client).await;
    assert_eq!(members(&mut client).await, vec![member.clone()]);

    // Just short of the session timeout: the timers look, and the member stays.
    clock.advance(i64::from(SESSION_TIMEOUT_MS) - 1);
    wake_timers(&mut client).await;
    assert_eq!(members(&mut client).await, vec![member.clone()]);

    // Past it: expelled, though far less real time has passed than the session timeout
    // (every step here is bounded by IO_TIMEOUT, a few seconds).
    clock.advance(2);
    wake_timers(&mut client).await;
    within("the member expires", async {
        while !members(&mut client).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let late = client.call(0, heartbeat(GROUP, generation, &member)).await;
    assert_eq!(late.error_code, ErrorCode::UnknownMemberId.code());
    broker.shutdown().await;
}

/// Produces one batch to partition 0 of `topic` and returns its error code.
async fn produce(client: &mut Client, topic: &str, acks: i16) -> i16 {
    let response = client
        .call(
            *versions(ApiKey::Produce).end(),
            req::produce(topic, 0, batch(3), acks),
        )
        .await;
    response.responses[0].partition_responses[0].error_code
}

#[tokio::test]
async fn an_fsync_failure_on_the_injected_disk_fails_the_produce_and_stops_the_partition() {
    let disk = Arc::new(FaultyDisk::new(i64::MAX));
    let seams = Seams {
        disk: Some(Arc::clone(&disk) as _),
        ..Seams::default()
    };
    let broker = TestBroker::start_on(seams, |_| {}).await;
    let mut client = broker.client().await;
    client.create_topic("faulty", 1).await;
    assert_eq!(produce(&mut client, "faulty", -1).await, 0);

    disk.set_fail_sync(true);
    assert_eq!(
        produce(&mut client, "faulty", -1).await,
        ErrorCode::KafkaStorageError.code(),
        "an acks=all produce whose sync failed"
    );
    // Fail-stop: the disk works again, the partition still refuses writes.
    disk.set_fail_sync(false);
    for acks in [-1, 1] {
        assert_eq!(
            produce(&mut client, "faulty", acks).await,
            ErrorCode::KafkaStorageError.code(),
            "a later produce with acks={acks}"
        );
    }
    // The shutdown reports the failed partition instead of writing its clean-shutdown marker.
    let stopped = broker.try_shutdown().await;
    assert!(
        matches!(
            stopped,
            Err(BrokerError::Catalog(CatalogError::Log(
                LogError::Failed { .. }
            )))
        ),
        "{stopped:?}"
    );
}
