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

use crate::groups::offsets::replicated::OFFSETS_TOPIC;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::ProducedBatch;

use super::produce_replicated::{self, Proposed};
use super::produce_rules::{self, Ready, ready, shape};
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
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0).max(100));
    let refuse_all = whole_request_refusal(acks, request.transactional_id.is_some());
    // Batches proposed to replicated partitions' groups: (topic index, partition index,
    // the proposal, the log start offset).
    let mut proposed: Vec<(usize, usize, Proposed, i64)> = Vec::new();
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
            let outcome = land(ctx, &refuse_all, partition, &topic.name.0, &data, acks).await;
            match outcome {
                Ok(Landed::Proposed(proposal, start)) => {
                    proposed.push((ti, pi, proposal, start));
                    partitions.push(response);
                }
                Ok(Landed::Here(log, info, stamped_at)) => {
                    if !info.duplicate {
                        // Wakes only the fetches parked on this partition.
                        ctx.appended.appended(&topic.name.0, data.index);
                    }
                    if acks == -1 || log.sync_before_ack() {
                        log.request_sync();
                        let waited = (Arc::clone(log), info.next_offset, Instant::now());
                        durable_waits.push((ti, pi, waited.0, waited.1, waited.2));
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
    wait_for_replicas(&mut topics, proposed, timeout, &mut first_failure).await;
    if acks != 0 {
        return Ok(Some(ProduceResponse::default().with_responses(topics)));
    }
    match first_failure {
        // No response exists to carry the error: close, so the client finds out.
        Some(failure) => Err(format!("acks=0 produce failed: {failure}")),
        None => Ok(None),
    }
}

/// Sends one partition's batch where it goes: refused with the whole request, to its data
/// group when the partition is replicated, else to the local log.
async fn land<'a>(
    ctx: &Context,
    refuse_all: &Option<Refusal>,
    partition: Option<&'a Arc<Partition>>,
    topic: &str,
    data: &PartitionProduceData,
    acks: i16,
) -> Result<Landed<'a>, Refusal> {
    if let Some(refusal) = refuse_all {
        return Err(refusal.clone());
    }
    // Kafka's answer (`ReplicaManager.appendToLocalLog`): only the coordinator writes there.
    if ctx.cluster.is_some() && topic == OFFSETS_TOPIC {
        return Err((
            ErrorCode::InvalidTopicException,
            format!("cannot append to internal topic {OFFSETS_TOPIC}"),
        ));
    }
    if let Some(replicated) = ctx.replicated(topic, data.index) {
        let at = (topic, data.index);
        return produce_replicated::offer(ctx, replicated, partition, at, &data.records, acks)
            .await
            .map(|(proposal, start)| Landed::Proposed(proposal, start));
    }
    let partition = partition.ok_or_else(|| ctx.missing_partition(topic, data.index))?;
    append(partition, &data.records, acks, ctx)
        .map(|(a, stamped_at)| Landed::Here(partition.log(), a, stamped_at))
}

/// Where one partition's batch went.
enum Landed<'a> {
    /// Appended to this broker's log (one replica).
    Here(&'a Arc<PartitionLog>, Appended, Option<i64>),
    /// Proposed to the partition's data group, with the log start offset.
    Proposed(Proposed, i64),
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

/// Waits for the answers of the batches proposed to data groups (all at once).
async fn wait_for_replicas(
    topics: &mut [TopicProduceResponse],
    proposed: Vec<(usize, usize, Proposed, i64)>,
    timeout: Duration,
    first_failure: &mut Option<String>,
) {
    let answers = futures_util::future::join_all(proposed.into_iter().map(
        |(ti, pi, proposal, start)| async move {
            let stamped_at = proposal.stamped_at;
            let answer = produce_replicated::answer(proposal, timeout).await;
            (ti, pi, start, stamped_at, answer)
        },
    ))
    .await;
    for (ti, pi, start, stamped_at, answer) in answers {
        let p = &mut topics[ti].partition_responses[pi];
        match answer {
            Ok(base_offset) => {
                p.base_offset = base_offset;
                p.log_append_time_ms = stamped_at.unwrap_or(-1);
                p.log_start_offset = start;
            }
            Err((code, message)) => {
                p.error_code = code.code();
                first_failure.get_or_insert_with(|| message.clone());
                p.error_message = Some(wire_str(message));
            }
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

/// Appends the request's record set through the partition's door once [`ready`]: then the
/// producer's sequence is checked and the log verifies the contents (CRC, records) and
/// stores it. Returns the append and, for a stamped batch, the time stamped into it.
fn append(
    partition: &Partition,
    records: &Option<Bytes>,
    acks: i16,
    ctx: &Context,
) -> Result<(Appended, Option<i64>), Refusal> {
    match ready(partition, records, acks, ctx, 1)? {
        Ready::AsSent(batch) => append_checked(partition, &batch).map(|a| (a, None)),
        Ready::Stamped { bytes, at } => {
            let stamped = ProducedBatch::check(&bytes).map_err(shape)?;
            append_checked(partition, &stamped).map(|a| (a, Some(at)))
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
