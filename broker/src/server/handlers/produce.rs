//! Produce (key 0), v3-7: append one v2 batch per partition, answering per Kafka's acks.
//!
//! `acks=0`: no response at all; if any partition fails the connection is closed instead, as
//! Kafka does, so a fire-and-forget producer notices and refreshes its metadata. `acks=1`:
//! answered once the batch is in the log (and synced, if the log's flush policy syncs every
//! append). `acks=all` (-1): answered only after the batch is on disk; all partitions of the
//! request wait for their syncs in parallel, and syncs are shared with every other waiter
//! (group commit).
//!
//! Appends happen in request order on a connection: the handler holds the connection's
//! [`Turn`] while appending and hands it on before waiting for the sync.
//!
//! Error codes follow Kafka: a batch that is not exactly one complete v2 batch (an empty
//! record set, a truncated batch, two batches, magic 0 or 1, a control batch) is
//! INVALID_RECORD, which clients do not retry; a batch damaged in transit (CRC, unknown magic,
//! inconsistent records) is CORRUPT_MESSAGE, which they do.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::{ProducedBatch, ProducedBatchError};

use super::produce_rules::{self, Admitted};
use super::{Context, NO_TRANSACTIONS, log_error_code, wire_str};
use crate::log::{LogError, Offset, PartitionLog};
use crate::producers::{AppendError, Appended, SequenceError};
use crate::server::turn::Turn;
use crate::topics::Partition;

/// A refused partition: the code and a message for the log and (v8+) the client.
type Refusal = produce_rules::Refusal;

pub(crate) async fn handle(
    ctx: &Arc<Context>,
    request: ProduceRequest,
    turn: &mut Turn,
) -> Result<Option<ProduceResponse>, String> {
    let acks = request.acks;
    let refuse_all = whole_request_refusal(acks, request.transactional_id.is_some());
    let mut topics = Vec::with_capacity(request.topic_data.len());
    // (topic index, partition index, log, offset to wait for)
    let mut durable_waits: Vec<DurableWait> = Vec::new();
    let mut first_failure: Option<String> = None;
    for (ti, topic) in request.topic_data.into_iter().enumerate() {
        let found = ctx.catalog.get(&topic.name.0);
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for (pi, data) in topic.partition_data.into_iter().enumerate() {
            let response = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1);
            let partition = found.as_ref().and_then(|t| t.partition(data.index));
            let outcome = match (&refuse_all, partition) {
                (Some(refusal), _) => Err(refusal.clone()),
                (None, None) => Err(ctx.missing_partition(&topic.name.0, data.index)),
                (None, Some(partition)) => append(partition, &data.records, acks, ctx)
                    .map(|(a, stamped_at)| (partition.log(), a, stamped_at)),
            };
            match outcome {
                Ok((log, info, stamped_at)) => {
                    if !info.duplicate {
                        // Wakes only the fetches parked on this partition.
                        ctx.appended.appended(&topic.name.0, data.index);
                    }
                    if acks == -1 || log.sync_before_ack() {
                        log.request_sync();
                        durable_waits.push((
                            ti,
                            pi,
                            Arc::clone(log),
                            info.next_offset,
                            Instant::now(),
                        ));
                    }
                    partitions.push(
                        response
                            .with_base_offset(info.base_offset.0)
                            .with_log_append_time_ms(stamped_at.unwrap_or(-1))
                            .with_log_start_offset(log.log_start_offset().0),
                    );
                }
                Err((code, message)) => {
                    first_failure.get_or_insert_with(|| {
                        format!("{}-{}: {message}", &*topic.name.0, data.index)
                    });
                    partitions.push(
                        response
                            .with_error_code(code.code())
                            .with_error_message(Some(wire_str(message))),
                    );
                }
            }
        }
        topics.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partitions),
        );
    }
    // Appends are done: later requests on this connection may act while we wait for syncs.
    turn.release();
    wait_for_durability(ctx, &mut topics, durable_waits, &mut first_failure).await;
    if acks != 0 {
        return Ok(Some(ProduceResponse::default().with_responses(topics)));
    }
    match first_failure {
        // No response exists to carry the error: close, so the client finds out.
        Some(failure) => Err(format!("acks=0 produce failed: {failure}")),
        None => Ok(None),
    }
}

/// (topic index, partition index, log, offset to wait for, when it was appended)
type DurableWait = (usize, usize, Arc<PartitionLog>, Offset, Instant);

/// Waits until each appended batch of the request is on disk (their syncs run in parallel
/// and are shared with other waiters); a failed sync turns that partition's answer into its
/// error.
async fn wait_for_durability(
    ctx: &Context,
    topics: &mut [TopicProduceResponse],
    durable_waits: Vec<DurableWait>,
    first_failure: &mut Option<String>,
) {
    for (ti, pi, log, offset, appended) in durable_waits {
        let synced = log.wait_durable(offset).await;
        ctx.metrics.durable_after(appended.elapsed());
        if let Err(err) = synced {
            let p = &mut topics[ti].partition_responses[pi];
            p.error_code = log_error_code(&err).code();
            p.error_message = Some(wire_str(err.to_string()));
            p.base_offset = -1;
            first_failure.get_or_insert_with(|| err.to_string());
        }
    }
}

/// A refusal that applies to every partition of the request: impossible acks, or a
/// transactional produce (no transactions yet).
fn whole_request_refusal(acks: i16, transactional: bool) -> Option<Refusal> {
    if !matches!(acks, -1..=1) {
        Some((
            ErrorCode::InvalidRequiredAcks,
            format!("acks must be -1, 0 or 1, not {acks}"),
        ))
    } else if transactional {
        Some((
            ErrorCode::TransactionalIdAuthorizationFailed,
            NO_TRANSACTIONS.to_owned(),
        ))
    } else {
        None
    }
}

/// Appends the request's record set through the partition's door: its shape is checked
/// first (Kafka's rule for Produce v3+, [`ProducedBatch::check`]), then that a compacted
/// topic's records have keys, then the topic's message
/// rules ([`produce_rules::admit`], which may stamp it with the broker's time), then the
/// producer's sequence, then the log verifies the contents (CRC, records) and stores it.
/// Returns the append and, for a stamped batch, the time stamped into it.
fn append(
    partition: &Partition,
    records: &Option<Bytes>,
    acks: i16,
    ctx: &Context,
) -> Result<(Appended, Option<i64>), Refusal> {
    let shape = |err: ProducedBatchError| (shape_error_code(&err), err.to_string());
    let batch = ProducedBatch::check(records.as_deref().unwrap_or_default()).map_err(shape)?;
    // One read of the log's live settings serves both checks.
    let config = partition.log().config();
    super::compacted_keys::require_keys(&batch, config.cleanup_policy.compact)
        .map_err(|err| (err.code(), err.to_string()))?;
    let now_ms = ctx.clock.now_ms();
    let rules = config.rules;
    match produce_rules::admit(&rules, acks, &batch, now_ms)? {
        Admitted::AsSent => append_checked(partition, &batch).map(|a| (a, None)),
        Admitted::Stamped {
            bytes,
            append_time_ms,
        } => {
            let stamped = ProducedBatch::check(&bytes).map_err(shape)?;
            append_checked(partition, &stamped).map(|a| (a, Some(append_time_ms)))
        }
    }
}

/// The producer-sequence check and the log append of a batch the rules admitted.
fn append_checked(partition: &Partition, batch: &ProducedBatch<'_>) -> Result<Appended, Refusal> {
    partition.append(batch).map_err(|err| {
        let code = match &err {
            AppendError::Log(err) => {
                if !matches!(err, LogError::InvalidBatch(_)) {
                    tracing::warn!(dir = %partition.log().dir().display(), error = %err, "produce failed");
                }
                log_error_code(err)
            }
            AppendError::Sequence(SequenceError::OutOfOrder { .. }) => {
                ErrorCode::OutOfOrderSequenceNumber
            }
            AppendError::Sequence(SequenceError::StaleEpoch { .. }) => {
                ErrorCode::InvalidProducerEpoch
            }
        };
        (code, err.to_string())
    })
}

/// Kafka's codes for a record set that is not one batch a producer may send: INVALID_RECORD
/// (not retried) when the client sent the wrong thing, CORRUPT_MESSAGE (retried) when the
/// bytes look damaged on the way.
fn shape_error_code(err: &ProducedBatchError) -> ErrorCode {
    match err {
        ProducedBatchError::UnknownMagic(_)
        | ProducedBatchError::ShorterThanHeader { .. }
        | ProducedBatchError::Header(_) => ErrorCode::CorruptMessage,
        ProducedBatchError::NoCompleteBatch { .. }
        | ProducedBatchError::LegacyMagic(_)
        | ProducedBatchError::NegativeLength { .. }
        | ProducedBatchError::Truncated { .. }
        | ProducedBatchError::MoreThanOneBatch
        | ProducedBatchError::ControlBatch => ErrorCode::InvalidRecord,
        // A refusal added later: the client sent something this broker does not take.
        _ => ErrorCode::InvalidRecord,
    }
}
