//! Consumers fetching at the log end while producers append: no fetch returns a batch at or
//! beyond the high watermark in its response, and a fetch at the offset after the last one
//! returned is never out of range (librdkafka reported `Fetch failed at offset 51:
//! OFFSET_OUT_OF_RANGE` with offset 50 just consumed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use weir_broker::log::FlushPolicy;
use weir_protocol::api::ApiKey;
use weir_protocol::record_batch::BatchHeader;
use weir_tests::{Client, TestBroker, batch, req, versions};

const TOPIC: &str = "tail";
const RACE_FOR: Duration = Duration::from_secs(3);
const PRODUCERS: usize = 4;
const CONSUMERS: usize = 4;

/// Fetches from `offset` until the race ends, each time from the offset after the last batch
/// returned; returns the first violation seen.
async fn tail(mut client: Client, stop: Arc<AtomicBool>, started: Instant) -> Option<String> {
    let mut offset = 0i64;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < RACE_FOR {
        let response = client
            .call(
                *versions(ApiKey::Fetch).end(),
                req::fetch(TOPIC, 0, offset, 0, 0),
            )
            .await;
        let p = &response.responses[0].partitions[0];
        if p.error_code != 0 {
            stop.store(true, Ordering::Relaxed);
            return Some(format!(
                "fetch at {offset}, right after the batches returned so far, got error {} (high watermark {})",
                p.error_code, p.high_watermark
            ));
        }
        let records = p.records.clone().unwrap_or_default();
        let mut at = 0;
        while at < records.len() {
            let Ok(header) = BatchHeader::parse(&records[at..]) else {
                return Some(format!("unparsable batch in a fetch at {offset}"));
            };
            if header.last_offset() >= p.high_watermark {
                stop.store(true, Ordering::Relaxed);
                return Some(format!(
                    "fetch at {offset} returned offsets {}..={} with a high watermark of {}",
                    header.base_offset,
                    header.last_offset(),
                    p.high_watermark
                ));
            }
            offset = header.next_offset();
            at += header.total_len().unwrap_or(records.len());
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fetches_at_the_end_never_pass_the_high_watermark_nor_fall_out_of_range() {
    // Appends are not waited on (acks=1 with the page cache as the flush policy), so they
    // come as fast as the producers send them.
    let broker = TestBroker::start_with(|c| c.flush = FlushPolicy::Os).await;
    broker.client().await.create_topic(TOPIC, 1).await;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut producers = Vec::new();
    for n in 0..PRODUCERS {
        let mut client = broker.client().await;
        let stop = Arc::clone(&stop);
        producers.push(tokio::spawn(async move {
            let records = batch(1 + n % 3);
            while !stop.load(Ordering::Relaxed) && started.elapsed() < RACE_FOR {
                let response = client
                    .call(
                        *versions(ApiKey::Produce).end(),
                        req::produce(TOPIC, 0, records.clone(), 1),
                    )
                    .await;
                let p = &response.responses[0].partition_responses[0];
                assert_eq!(p.error_code, 0, "produce: {p:?}");
            }
        }));
    }
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let client = broker.client().await;
        consumers.push(tokio::spawn(tail(client, Arc::clone(&stop), started)));
    }
    let mut violations = Vec::new();
    for c in consumers {
        violations.extend(c.await.expect("consumer task"));
    }
    for p in producers {
        p.await.expect("producer task");
    }
    let end = broker.client().await.list_offset(TOPIC, 0, -1).await;
    eprintln!("{end} records produced in {:?}", started.elapsed());
    assert_eq!(violations, Vec::<String>::new());
}
