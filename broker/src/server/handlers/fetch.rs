//! Fetch (key 1), v4-11: whole batches from each requested partition, long-polling up to
//! `max_wait_ms` until `min_bytes` are available, woken by appends (no polling loop).
//!
//! Kafka's rules kept here (KIP-74): the response holds at most the smaller of the request's
//! `max_bytes` and the broker's `--max-fetch-bytes`, and each partition at most its
//! `partition_max_bytes`; only the first batch of the first partition that has data may go past
//! those limits (so a consumer can never get stuck behind a batch larger than its limits), and
//! a later partition whose next batch does not fit in what is left gets no records this time
//! (only its offsets), never a response the client would refuse as too large; a fetch from the
//! middle of a batch returns the whole batch; `last_stable_offset` is the high watermark (no
//! transactions); `session_id` is 0 (no incremental fetch sessions); an empty record set is
//! empty bytes, not null.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use weir_protocol::error_code::ErrorCode;

use super::{Context, log_error_code};
use crate::log::Offset;

pub(crate) async fn handle(ctx: &Arc<Context>, request: FetchRequest) -> FetchResponse {
    let max_wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + max_wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    loop {
        // Registered before reading, so an append between the read and the wait still wakes us.
        let appended = ctx.appended.notified();
        let (response, bytes, errors) = read(ctx, &request);
        let now = tokio::time::Instant::now();
        if bytes >= min_bytes.max(1) || errors || now >= deadline {
            return response;
        }
        if tokio::time::timeout(deadline - now, appended)
            .await
            .is_err()
        {
            // Deadline reached with nothing new: read once more so offsets are current.
            return read(ctx, &request).0;
        }
    }
}

/// One pass over the requested partitions: the response, its record bytes, and whether any
/// partition had an error (which ends the long poll, as in Kafka).
fn read(ctx: &Context, request: &FetchRequest) -> (FetchResponse, usize, bool) {
    // The client's limit, never above the broker's (Kafka's `fetch.max.bytes`): a response is
    // built in memory, and one small request asking for i32::MAX bytes across many partitions
    // must not make the broker copy gigabytes.
    let mut budget = usize::try_from(request.max_bytes)
        .ok()
        .filter(|&b| b > 0)
        .unwrap_or(usize::MAX)
        .min(ctx.config.max_fetch_bytes.max(1));
    let mut total = 0usize;
    // Until a partition has returned records, the next one may exceed the limits by its first
    // batch (Kafka's `minOneMessage`); after that, everything must fit.
    let mut may_exceed = true;
    let mut errors = false;
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let found = ctx.catalog.get(&topic.topic.0);
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = PartitionData::default()
                        .with_partition_index(p.partition)
                        .with_records(Some(Bytes::new()))
                        .with_preferred_read_replica(BrokerId(-1));
                    let Some(log) = found.as_ref().and_then(|t| t.partition(p.partition)) else {
                        errors = true;
                        return response
                            .with_error_code(ErrorCode::UnknownTopicOrPartition.code())
                            .with_high_watermark(-1)
                            .with_last_stable_offset(-1)
                            .with_log_start_offset(-1);
                    };
                    let partition_max = usize::try_from(p.partition_max_bytes).unwrap_or(0);
                    let limit = partition_max.min(budget);
                    // The read still happens when nothing fits, so that an offset out of range
                    // or a damaged batch is reported whatever the limits.
                    let records = log.read(Offset(p.fetch_offset), limit.max(1)).map(|read| {
                        // A read returns at least one whole batch: one that does not fit
                        // is left for a later fetch, unless this partition may exceed.
                        (may_exceed || read.records.len() <= limit).then_some(read)
                    });
                    let hw = log.high_watermark().0;
                    let response = response
                        .with_high_watermark(hw)
                        .with_last_stable_offset(hw)
                        .with_log_start_offset(log.log_start_offset().0);
                    match records {
                        Ok(Some(read)) => {
                            if !read.records.is_empty() {
                                may_exceed = false;
                            }
                            total += read.records.len();
                            budget = budget.saturating_sub(read.records.len());
                            response.with_records(Some(read.records))
                        }
                        Ok(None) => response,
                        Err(err) => {
                            errors = true;
                            response.with_error_code(log_error_code(&err).code())
                        }
                    }
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    (
        FetchResponse::default()
            .with_session_id(0)
            .with_responses(topics),
        total,
        errors,
    )
}
