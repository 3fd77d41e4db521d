//! Fetch (key 1), v4-11: whole batches from each requested partition, long-polling up to
//! `max_wait_ms` until `min_bytes` are available, woken by appends to the requested
//! partitions only (no polling loop; `appends` keeps the waiters by partition), re-reading
//! only the partitions appended to until `min_bytes` may be reached. A parked
//! fetch ends early, answered with what there is, when its connection closes or the broker
//! stops.
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
//!
//! v9+: a partition whose `current_leader_epoch` (other than -1) is older than the leader's
//! is answered FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH, without records
//! (`crate::server::leader_epochs`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use tokio_util::sync::CancellationToken;
use weir_protocol::error_code::ErrorCode;

use super::{Context, log_error_code};
use crate::log::{Offset, PartitionLog};
use crate::topics::Topic;

pub(crate) async fn handle(
    ctx: &Arc<Context>,
    request: FetchRequest,
    cancel: &CancellationToken,
) -> FetchResponse {
    let response = respond(ctx, request, cancel).await;
    count_out(ctx, &response);
    response
}

/// Counts the records and bytes of the response a client gets (once, not per re-read of a
/// parked fetch) into each partition's traffic, for the metrics.
fn count_out(ctx: &Context, response: &FetchResponse) {
    for t in &response.responses {
        let Some(topic) = ctx.catalog.get(&t.topic.0) else {
            continue;
        };
        for p in &t.partitions {
            let (Some(records), Some(partition)) = (
                p.records.as_ref().filter(|r| !r.is_empty()),
                topic.partition(p.partition_index),
            ) else {
                continue;
            };
            partition
                .traffic()
                .count_out(records_in(records), records.len() as u64);
        }
    }
}

/// Records in the whole batches of `bytes`, from each batch header's count (the batches are
/// not read further).
fn records_in(bytes: &[u8]) -> u64 {
    use weir_protocol::record_batch::{HEADER_LEN, LENGTH_PREFIX_LEN, field};
    let read_i32 = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut at = 0;
    let mut records = 0u64;
    while at + HEADER_LEN <= bytes.len() {
        let (Some(length), Some(count)) = (
            read_i32(at + field::BATCH_LENGTH),
            read_i32(at + field::RECORDS_COUNT),
        ) else {
            break;
        };
        records += u64::try_from(count).unwrap_or(0);
        match usize::try_from(length) {
            Ok(length) if length > 0 => at += LENGTH_PREFIX_LEN + length,
            _ => break,
        }
    }
    records
}

/// The fetch itself: read, and park until `min_bytes` or the deadline when there is too
/// little.
async fn respond(
    ctx: &Arc<Context>,
    request: FetchRequest,
    cancel: &CancellationToken,
) -> FetchResponse {
    let max_wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + max_wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let enough = |bytes: usize, errors: bool| {
        bytes >= min_bytes.max(1) || errors || tokio::time::Instant::now() >= deadline
    };
    let (response, bytes, errors) = read(ctx, &request);
    if enough(bytes, errors) || cancel.is_cancelled() {
        return response;
    }
    // Park: wait for an append to one of the requested partitions (and no other). Registered
    // before the next read, so an append between that read and the wait still wakes us.
    // A wake-up names the partitions appended to; only those are read to see whether
    // `min_bytes` is reached, and the whole request is read again only when it may be.
    let partitions = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (&*t.topic.0, p.partition)));
    let registration = ctx.appended.register(partitions);
    // Read again: an append may have come between the first read and the registration.
    let (mut response, mut bytes, mut errors) = read(ctx, &request);
    let mut seen = log_ends(&response);
    loop {
        if enough(bytes, errors) {
            return response;
        }
        let changed = tokio::select! {
            changed = registration.appended() => changed,
            // Deadline reached with too little: read once more so offsets are current.
            () = tokio::time::sleep_until(deadline) => return read(ctx, &request).0,
            // The broker is stopping or the client went away: answer with what there is now.
            () = cancel.cancelled() => return read(ctx, &request).0,
        };
        // Count only what the partitions appended to have gained; read everything (and build
        // a response) only once that may be enough.
        bytes = match appended_bytes(ctx, &request, &changed, &mut seen) {
            Some(appended) => bytes.saturating_add(appended),
            None => usize::MAX,
        };
        if bytes >= min_bytes.max(1) {
            ctx.appended.count_reread();
            (response, bytes, errors) = read(ctx, &request);
            seen = log_ends(&response);
        }
    }
}

/// The log end offset (high watermark) of each partition in a response.
fn log_ends(response: &FetchResponse) -> HashMap<(String, i32), i64> {
    response
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| ((t.topic.0.to_string(), p.partition_index), p.high_watermark))
        })
        .collect()
}

/// Record bytes appended to the `changed` partitions since their log ends in `seen` (which
/// move to the new ends), each up to the request's per-partition limit: an estimate of what
/// a full read would add, made without reading the partitions that did not change. `None`
/// when a partition cannot be read any more (deleted, or its start moved past): the caller
/// then reads everything, and the response carries the error.
fn appended_bytes(
    ctx: &Context,
    request: &FetchRequest,
    changed: &[(&str, i32)],
    seen: &mut HashMap<(String, i32), i64>,
) -> Option<usize> {
    let mut total = 0usize;
    for &(topic, partition) in changed {
        let partition_max = request
            .topics
            .iter()
            .filter(|t| &*t.topic.0 == topic)
            .flat_map(|t| t.partitions.iter())
            .filter(|p| p.partition == partition)
            .map(|p| usize::try_from(p.partition_max_bytes).unwrap_or(0))
            .max()
            .unwrap_or(0);
        let found = ctx.catalog.get(topic)?;
        let log = found.log(partition)?;
        let from = seen.get_mut(&(topic.to_owned(), partition))?;
        let read = log.read(Offset(*from), partition_max.max(1)).ok()?;
        *from = read.high_watermark.0;
        total = total.saturating_add(read.records.len());
    }
    Some(total)
}

/// One pass over the requested partitions: the response, its record bytes, and whether any
/// partition had an error (which ends the long poll, as in Kafka).
/// The log a fetch of `p` reads: off the leader NOT_LEADER_OR_FOLLOWER (or unknown); v9+, a
/// client whose leader epoch is not the leader's gets no records (KIP-320) and refreshes its
/// metadata (fenced) or retries (unknown).
fn served_log<'a>(
    ctx: &Context,
    found: Option<&'a Arc<Topic>>,
    topic: &str,
    p: &FetchPartition,
) -> Result<&'a Arc<PartitionLog>, ErrorCode> {
    let log = found
        .and_then(|t| t.log(p.partition))
        .filter(|_| ctx.serves(topic, p.partition))
        .ok_or_else(|| ctx.missing_partition(topic, p.partition).0)?;
    match ctx.check_leader_epoch(topic, p.partition, p.current_leader_epoch) {
        Some(code) => Err(code),
        None => Ok(log),
    }
}

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
                    let served = served_log(ctx, found.as_ref(), &topic.topic.0, p);
                    let log = match served {
                        Ok(log) => log,
                        Err(code) => {
                            errors = true;
                            return response
                                .with_error_code(code.code())
                                .with_high_watermark(-1)
                                .with_last_stable_offset(-1)
                                .with_log_start_offset(-1);
                        }
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
