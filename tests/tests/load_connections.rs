//! Many connections at once: 1,000 idle connections stay open and answered while 200
//! producers, each on its own connection, produce concurrently; every acknowledged record is
//! in the log, in each producer's order, and each idle connection is still served afterwards.

use std::collections::HashMap;

use kafka_protocol::messages::ApiVersionsRequest;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use weir_tests::{Client, TestBroker, batch, req, within};

const IDLE: usize = 1_000;
const PRODUCERS: usize = 200;
const BATCHES_PER_PRODUCER: usize = 10;
const RECORDS_PER_BATCH: usize = 5;
const PARTITIONS: i32 = 8;

/// Client and broker share this process: each connection costs two descriptors. Raises the
/// soft limit when it is lower than this test needs, and fails (never skips) when the hard
/// limit does not allow it.
fn ensure_open_files(needed: u64) {
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    if soft >= needed {
        return;
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    assert!(
        hard >= needed,
        "this test needs {needed} open files; the hard limit is {hard} (raise it with ulimit -Hn)"
    );
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(needed),
            maximum: limit.maximum,
        },
    )
    .expect("raise the open-files soft limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_and_two_hundred_producers_are_served() {
    let connections = u64::try_from(IDLE + PRODUCERS).unwrap();
    ensure_open_files(2 * connections + 512);
    // Every connection comes from 127.0.0.1: above the per-address default (1,000).
    let broker = TestBroker::start_with(|c| c.max_connections_per_ip = 2 * IDLE + PRODUCERS).await;
    let mut admin = broker.client().await;
    admin.create_topic("load", PARTITIONS).await;

    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        let mut client = broker.client().await;
        assert_eq!(
            client
                .call(0, ApiVersionsRequest::default())
                .await
                .error_code,
            0
        );
        idle.push(client);
    }

    let addr = broker.addr();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            tokio::spawn(async move {
                let mut client = Client::connect(addr).await;
                let partition = i32::try_from(p).unwrap() % PARTITIONS;
                let mut bases = Vec::with_capacity(BATCHES_PER_PRODUCER);
                for _ in 0..BATCHES_PER_PRODUCER {
                    let response = client
                        .call(
                            7,
                            req::produce("load", partition, batch(RECORDS_PER_BATCH), -1),
                        )
                        .await;
                    let part = &response.responses[0].partition_responses[0];
                    assert_eq!(part.error_code, 0, "producer {p}");
                    bases.push(part.base_offset);
                }
                (partition, bases)
            })
        })
        .collect();
    let mut acknowledged: HashMap<i32, Vec<i64>> = HashMap::new();
    for producer in producers {
        // Generous: 2,000 synced produces on a loaded 2-core machine.
        let (partition, bases) =
            tokio::time::timeout(std::time::Duration::from_secs(120), producer)
                .await
                .expect("producers finish within 2 minutes")
                .expect("producer task");
        assert!(
            bases.windows(2).all(|w| w[0] < w[1]),
            "one producer's batches are appended in its order: {bases:?}"
        );
        acknowledged.entry(partition).or_default().extend(bases);
    }

    // Every acknowledged batch has its own offsets: no two acknowledgements overlap, and the
    // log end is exactly what was acknowledged.
    let per_batch = i64::try_from(RECORDS_PER_BATCH).unwrap();
    let mut total = 0;
    for partition in 0..PARTITIONS {
        let mut bases = acknowledged.remove(&partition).unwrap_or_default();
        bases.sort_unstable();
        let expected: Vec<i64> = (0..i64::try_from(bases.len()).unwrap())
            .map(|i| i * per_batch)
            .collect();
        assert_eq!(bases, expected, "partition {partition}");
        let end = admin.list_offset("load", partition, -1).await;
        assert_eq!(
            end,
            i64::try_from(expected.len()).unwrap() * per_batch,
            "partition {partition}"
        );
        total += end;
    }
    assert_eq!(
        total,
        i64::try_from(PRODUCERS * BATCHES_PER_PRODUCER * RECORDS_PER_BATCH).unwrap()
    );

    // The idle connections were neither dropped nor starved.
    for (i, client) in idle.iter_mut().enumerate() {
        let response = within(
            "an idle connection's request",
            client.call(3, ApiVersionsRequest::default()),
        )
        .await;
        assert_eq!(response.error_code, 0, "idle connection {i}");
    }
    broker.shutdown().await;
}

/// With a produce budget far smaller than one request, requests queue for it one at a time
/// (a request larger than the budget takes all of it) and every one is served: the budget
/// slows producers down, it never deadlocks or refuses them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_produce_budget_smaller_than_a_request_serves_every_producer() {
    // acks=1 without syncs keeps each request's turn short, so 100 of them one at a time
    // stay far inside the harness's per-response timeout on a loaded machine.
    let broker = TestBroker::start_with(|c| {
        c.max_produce_bytes_in_flight = 1_024;
        c.flush = weir_broker::log::FlushPolicy::Os;
    })
    .await;
    let mut admin = broker.client().await;
    admin.create_topic("budget", 1).await;
    let addr = broker.addr();
    let producers: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(async move {
                let mut client = Client::connect(addr).await;
                // 100 records with 100-byte values: about 11 KB per request, 11 times the budget.
                let timestamps: Vec<i64> = (0..100).map(|i| 1_700_000_000_000 + i).collect();
                let mut sent = Vec::new();
                for _ in 0..5 {
                    let records = weir_tests::batch_at(&timestamps, 100);
                    sent.push(client.send(7, req::produce("budget", 0, records, 1)).await);
                }
                let mut bases = Vec::new();
                for s in sent {
                    let response = client.recv(s).await;
                    let part = &response.responses[0].partition_responses[0];
                    assert_eq!(part.error_code, 0);
                    bases.push(part.base_offset);
                }
                bases
            })
        })
        .collect();
    let mut bases = Vec::new();
    for producer in producers {
        let done = tokio::time::timeout(std::time::Duration::from_secs(60), producer).await;
        bases.extend(done.expect("producers finish within a minute").unwrap());
    }
    bases.sort_unstable();
    assert_eq!(bases, (0..100).map(|i| i * 100).collect::<Vec<i64>>());
    assert_eq!(admin.list_offset("budget", 0, -1).await, 10_000);
    broker.shutdown().await;
}
