//! A graceful shutdown finishes, however long the requests clients left parked: the real
//! `weir-broker` binary gets `SIGTERM` while a Fetch waits with `max_wait_ms = i32::MAX`, two
//! JoinGroups wait for a rebalance that would take ten minutes (one from a client that has
//! already disconnected, as has the client of a second parked fetch), and a client has stopped
//! reading its responses. The broker must exit 0 within a few seconds, answer the connected
//! client's parked requests (the fetch with what there is, the join with NOT_COORDINATOR),
//! write its clean-shutdown markers, and start again without recovery.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::{GroupId, JoinGroupRequest};
use kafka_protocol::protocol::StrBytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_protocol::message::encode_request;
use weir_tests::process::BrokerProcess;
use weir_tests::{Client, batch_at, req, versions, within};

/// Longest a shutdown with parked requests may take: the requests are answered at once, and
/// `--shutdown-grace-ms` bounds a client that does not read.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(10);

fn join_request(group: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_session_timeout_ms(30_000)
        // A rebalance allowed to take 24 days.
        .with_rebalance_timeout_ms(i32::MAX)
        .with_member_id(StrBytes::from_static_str(""))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from_static(b"subscription")),
        ])
}

/// Every partition directory of `topic` holds the clean-shutdown marker.
fn assert_clean_markers(data_dir: &Path, topic: &str, partitions: u32) {
    for p in 0..partitions {
        let marker = data_dir.join(format!("{topic}-{p}")).join("clean-shutdown");
        assert!(
            marker.exists(),
            "no clean-shutdown marker at {}",
            marker.display()
        );
    }
}

/// Starts the binary with `args` and a 2-partition topic "parked" whose partition 1 holds
/// 4 MB (40 records of 100 KB).
async fn broker_with_data(dir: &Path, args: &[&str]) -> BrokerProcess {
    // The 4 MB batch is larger than the default message.max.bytes.
    let args: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--message-max-bytes", "8388608"])
        .collect();
    let broker = tokio::task::block_in_place(|| {
        BrokerProcess::start(&dir.join("data"), &dir.join("broker.log"), &args)
    });
    let mut admin = Client::connect(broker.addr()).await;
    admin.create_topic("parked", 2).await;
    let timestamps: Vec<i64> = (0..40).map(|i| 1_700_000_000_000 + i).collect();
    assert_eq!(
        admin
            .produce_ok("parked", 1, batch_at(&timestamps, 100_000))
            .await,
        0
    );
    broker
}

/// Stops `broker` with SIGTERM, checks the exit status, the clean-shutdown markers, and that
/// the next start recovers nothing; returns how long the stop took.
async fn stop_and_check_clean(mut broker: BrokerProcess, dir: &Path) -> Duration {
    let (clean, took) = tokio::task::block_in_place(|| broker.stop_within(SHUTDOWN_BOUND));
    assert!(clean, "exit status not 0:\n{}", broker.log_text());
    assert_clean_markers(&dir.join("data"), "parked", 2);
    let before_restart = broker.log_text().len();
    tokio::task::block_in_place(|| broker.restart());
    let mut client = Client::connect(broker.addr()).await;
    assert_eq!(client.list_offset("parked", 1, -1).await, 40);
    let (clean, _took) = tokio::task::block_in_place(|| broker.stop_within(SHUTDOWN_BOUND));
    assert!(clean);
    let second_run = &broker.log_text()[before_restart..];
    assert!(
        !second_run.contains("recovered log after unclean shutdown"),
        "the restart recovered:\n{second_run}"
    );
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_parked_requests_and_exits_cleanly_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // The first rebalance of a group waits 10 minutes for more members. The default grace
    // period (5 s) is the bound: nothing here should need it.
    let broker = broker_with_data(
        dir.path(),
        &["--group-initial-rebalance-delay-ms", "600000"],
    )
    .await;
    let addr = broker.addr();
    let fetch_v = *versions(ApiKey::Fetch).end();
    // Connected to the end: a fetch at the log end of partition 0 that may wait 24 days, and
    // a JoinGroup waiting for the initial rebalance delay.
    let mut patient = Client::connect(addr).await;
    let fetch = patient
        .send(fetch_v, req::fetch("parked", 0, 0, i32::MAX, 1))
        .await;
    let mut member = Client::connect(addr).await;
    let join = member.send(3, join_request("parked-group")).await;
    // Gone: the same, from clients that disconnect with their requests parked.
    let mut gone_fetch = Client::connect(addr).await;
    let _never_read = gone_fetch
        .send(fetch_v, req::fetch("parked", 0, 0, i32::MAX, 1))
        .await;
    let mut gone_member = Client::connect(addr).await;
    let _never_read = gone_member.send(3, join_request("parked-group")).await;
    // Let every request reach its wait.
    assert!(
        !patient
            .has_response_within(Duration::from_millis(500))
            .await
    );
    assert!(!member.has_response_within(Duration::from_millis(10)).await);
    drop(gone_fetch);
    drop(gone_member);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let data_dir = dir.path().to_owned();
    let stopping = tokio::spawn(async move { stop_and_check_clean(broker, &data_dir).await });
    // The connected client's parked requests are answered, not dropped.
    let response = patient.recv(fetch).await;
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    assert_eq!(response.responses[0].partitions[0].high_watermark, 0);
    let joined = member.recv(join).await;
    assert_eq!(
        joined.error_code,
        ErrorCode::NotCoordinator.code(),
        "a JoinGroup parked at shutdown: {joined:?}"
    );
    let took = stopping.await.unwrap();
    eprintln!("SIGTERM to exit with parked requests: {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "the shutdown waited for the grace period: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_holds_the_shutdown_only_for_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_data(dir.path(), &["--shutdown-grace-ms", "1000"]).await;
    let fetch_v = *versions(ApiKey::Fetch).end();
    // 16 fetches of 4 MB each, far more than the socket buffers hold, never read (the
    // writer would otherwise wait the idle timeout, 10 minutes, for each).
    let mut deaf = TcpStream::connect(broker.addr()).await.unwrap();
    let mut requests = Vec::new();
    for correlation_id in 0..16 {
        let fetch = req::fetch("parked", 1, 0, 0, 1);
        requests.extend(
            encode_request(ApiKey::Fetch, fetch_v, correlation_id, None, &fetch.into()).unwrap(),
        );
    }
    within("send the unread fetches", deaf.write_all(&requests))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let took = stop_and_check_clean(broker, dir.path()).await;
    eprintln!("SIGTERM to exit with a client not reading (1 s grace): {took:?}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    drop(deaf);
}
