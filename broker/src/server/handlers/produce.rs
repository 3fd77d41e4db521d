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

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::{HEADER_LEN, LENGTH_PREFIX_LEN, MAGIC_V2, field};

use super::{Context, NO_TRANSACTIONS, log_error_code, wire_str};
use crate::log::{LogError, Offset, PartitionLog};
use crate::producers::{AppendError, PartitionProducers, SequenceError};
use crate::server::connection::Turn;

/// A refused partition: the code and a message for the log and (v8+) the client.
type Refusal = (ErrorCode, String);

pub(crate) async fn handle(
    ctx: &Arc<Context>,
    request: ProduceRequest,
    turn: &mut Turn,
) -> Result<Option<ProduceResponse>, String> {
    let acks = request.acks;
    let refuse_all: Option<Refusal> = if !matches!(acks, -1..=1) {
        Some((
            ErrorCode::InvalidRequiredAcks,
            format!("acks must be -1, 0 or 1, not {acks}"),
        ))
    } else if request.transactional_id.is_some() {
        Some((
            ErrorCode::TransactionalIdAuthorizationFailed,
            NO_TRANSACTIONS.to_owned(),
        ))
    } else {
        None
    };
    let mut topics = Vec::with_capacity(request.topic_data.len());
    // (topic index, partition index, log, offset to wait for)
    let mut durable_waits: Vec<(usize, usize, Arc<PartitionLog>, Offset)> = Vec::new();
    let mut first_failure: Option<String> = None;
    for (ti, topic) in request.topic_data.into_iter().enumerate() {
        let found = ctx.catalog.get(&topic.name.0);
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for (pi, data) in topic.partition_data.into_iter().enumerate() {
            let response = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1);
            let outcome = match (
                &refuse_all,
                found
                    .as_ref()
                    .and_then(|t| t.producer_partition(data.index)),
            ) {
                (Some(refusal), _) => Err(refusal.clone()),
                (None, None) => Err((
                    ErrorCode::UnknownTopicOrPartition,
                    format!("{}-{} does not exist", &*topic.name.0, data.index),
                )),
                (None, Some((log, producers))) => {
                    append(log, producers, &data.records.unwrap_or_default()).map(|a| (log, a))
                }
            };
            match outcome {
                Ok((log, info)) => {
                    if !info.duplicate {
                        // Wakes only the fetches parked on this partition.
                        ctx.appended.appended(&topic.name.0, data.index);
                    }
                    if acks == -1 || log.sync_before_ack() {
                        log.request_sync();
                        durable_waits.push((ti, pi, Arc::clone(log), info.next_offset));
                    }
                    partitions.push(
                        response
                            .with_base_offset(info.base_offset.0)
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
    for (ti, pi, log, offset) in durable_waits {
        if let Err(err) = log.wait_durable(offset).await {
            let p = &mut topics[ti].partition_responses[pi];
            p.error_code = log_error_code(&err).code();
            p.error_message = Some(wire_str(err.to_string()));
            p.base_offset = -1;
            first_failure.get_or_insert_with(|| err.to_string());
        }
    }
    if acks != 0 {
        return Ok(Some(ProduceResponse::default().with_responses(topics)));
    }
    match first_failure {
        // No response exists to carry the error: close, so the client finds out.
        Some(failure) => Err(format!("acks=0 produce failed: {failure}")),
        None => Ok(None),
    }
}

/// Appends the request's record set through the partition's idempotent-producer checks.
fn append(
    log: &PartitionLog,
    producers: &PartitionProducers,
    records: &Bytes,
) -> Result<crate::producers::Appended, Refusal> {
    check_one_batch(records)?;
    producers.append(log, records).map_err(|err| {
        let code = match &err {
            AppendError::Log(err) => {
                if !matches!(err, LogError::InvalidBatch(_)) {
                    tracing::warn!(dir = %log.dir().display(), error = %err, "produce failed");
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

/// Kafka's rule for Produce v3+: the record set is exactly one complete v2 batch, and not a
/// control batch. Damage inside the batch (CRC, records) is left to the log's validation.
fn check_one_batch(records: &[u8]) -> Result<(), Refusal> {
    let invalid = |why: String| Err((ErrorCode::InvalidRecord, why));
    let Some(head) = records.get(..=field::ATTRIBUTES + 1) else {
        return invalid(format!(
            "record set of {} bytes holds no complete batch",
            records.len()
        ));
    };
    let magic = i8::from_be_bytes([head[field::MAGIC]]);
    if matches!(magic, 0 | 1) {
        return invalid(format!(
            "magic {magic} batches are not accepted by Produce v3 and later"
        ));
    }
    if magic != MAGIC_V2 {
        return Err((
            ErrorCode::CorruptMessage,
            format!("unknown record batch magic {magic}"),
        ));
    }
    let declared = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    if usize::try_from(declared).is_ok_and(|len| len + LENGTH_PREFIX_LEN < HEADER_LEN) {
        return Err((
            ErrorCode::CorruptMessage,
            format!("batch length {declared} is shorter than a batch header"),
        ));
    }
    let total = usize::try_from(declared)
        .ok()
        .map(|len| len + LENGTH_PREFIX_LEN);
    match total {
        Some(total) if total > records.len() => {
            return invalid(format!(
                "truncated batch: {total} bytes declared, {} sent",
                records.len()
            ));
        }
        Some(total) if total < records.len() => {
            return invalid("more than one batch for one partition".to_owned());
        }
        Some(_) => {}
        None => return invalid(format!("negative batch length {declared}")),
    }
    let attributes = i16::from_be_bytes([head[field::ATTRIBUTES], head[field::ATTRIBUTES + 1]]);
    if attributes & 0x20 != 0 {
        return invalid("producers may not send control batches".to_owned());
    }
    Ok(())
}
