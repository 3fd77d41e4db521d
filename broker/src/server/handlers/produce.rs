//! Produce (key 0), v3-7: append one v2 batch per partition, answering per Kafka's acks.
//!
//! `acks=0`: no response at all. `acks=1`: answered once the batch is in the log (and synced,
//! if the log's flush policy syncs every append). `acks=all` (-1): answered only after the
//! batch is on disk; all partitions of the request wait for their syncs in parallel, and syncs
//! are shared with every other waiter (group commit).

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::BatchHeader;

use super::{Context, log_error_code, wire_str};
use crate::log::{LogError, Offset, PartitionLog};
use crate::producers::{AppendError, Appended, PartitionProducers, SequenceError};

pub(crate) async fn handle(ctx: &Arc<Context>, request: ProduceRequest) -> Option<ProduceResponse> {
    let acks = request.acks;
    let refuse = if !matches!(acks, -1..=1) {
        Some((
            ErrorCode::InvalidRequiredAcks,
            format!("acks must be -1, 0 or 1, not {acks}"),
        ))
    } else if request.transactional_id.is_some() {
        Some((
            ErrorCode::InvalidRequest,
            "transactions are not supported".to_owned(),
        ))
    } else {
        None
    };
    let mut topics = Vec::with_capacity(request.topic_data.len());
    // (topic index, partition index, log, offset to wait for)
    let mut durable_waits: Vec<(usize, usize, Arc<PartitionLog>, Offset)> = Vec::new();
    let mut appended = false;
    for (ti, topic) in request.topic_data.into_iter().enumerate() {
        let found = ctx.catalog.get(&topic.name.0);
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for (pi, data) in topic.partition_data.into_iter().enumerate() {
            let response = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1);
            if let Some((code, message)) = &refuse {
                partitions.push(
                    response
                        .with_error_code(code.code())
                        .with_error_message(Some(wire_str(message.clone()))),
                );
                continue;
            }
            let Some((log, producers)) = found
                .as_ref()
                .and_then(|t| t.producer_partition(data.index))
            else {
                partitions
                    .push(response.with_error_code(ErrorCode::UnknownTopicOrPartition.code()));
                continue;
            };
            match append(log, producers, &data.records.unwrap_or_default()) {
                Ok(info) => {
                    appended |= !info.duplicate;
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
                Err(err) => {
                    let code = match &err {
                        AppendError::Log(err) => {
                            if !matches!(err, LogError::InvalidBatch(_)) {
                                tracing::warn!(topic = %topic.name.0, partition = data.index, error = %err, "produce failed");
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
                    partitions.push(
                        response
                            .with_error_code(code.code())
                            .with_error_message(Some(wire_str(err.to_string()))),
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
    if appended {
        ctx.appended.notify_waiters();
    }
    for (ti, pi, log, offset) in durable_waits {
        if let Err(err) = log.wait_durable(offset).await {
            let p = &mut topics[ti].partition_responses[pi];
            p.error_code = log_error_code(&err).code();
            p.error_message = Some(wire_str(err.to_string()));
            p.base_offset = -1;
        }
    }
    (acks != 0).then(|| ProduceResponse::default().with_responses(topics))
}

/// Appends the request's record set, which must be exactly one v2 batch from a producer
/// (not a control batch), through the partition's idempotent-producer checks.
fn append(
    log: &PartitionLog,
    producers: &PartitionProducers,
    records: &Bytes,
) -> Result<Appended, AppendError> {
    let header = BatchHeader::parse(records).map_err(LogError::from)?;
    if header.attributes.is_control() {
        return Err(AppendError::Log(LogError::InvalidBatch(
            weir_protocol::record_batch::BatchError::BadRecord {
                index: 0,
                reason: "producers may not send control batches",
            },
        )));
    }
    producers.append(log, records)
}
