//! DescribeProducers (key 61), v0: the idempotent producers a partition knows, from its
//! producer table (`crate::producers`).
//!
//! Per producer: id, epoch, the last sequence written, the max timestamp of its last batch
//! (read from that batch's header in the log; -1 once retention removed it), and, since there
//! are no transactions, coordinator epoch -1 and no open transaction (-1). Unknown topics and
//! partitions get UNKNOWN_TOPIC_OR_PARTITION.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use weir_protocol::record_batch::BatchHeader;

use super::Context;
use crate::log::{Offset, PartitionLog};
use crate::topics::Partition;

/// Enough bytes to hold a batch header: a read returns at least the first whole batch anyway.
const HEADER_READ_BYTES: usize = 64;

pub(crate) fn describe_producers(
    ctx: &Arc<Context>,
    request: &DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let found = ctx.catalog.get(&topic.name.0);
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|&index| {
                    let response = PartitionResponse::default().with_partition_index(index);
                    match found.as_ref().and_then(|t| t.partition(index)) {
                        Some(partition) => {
                            response.with_active_producers(active_producers(partition))
                        }
                        None => response
                            .with_error_code(ctx.missing_partition(&topic.name.0, index).0.code()),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

fn active_producers(partition: &Partition) -> Vec<ProducerState> {
    let states = partition.producer_states();
    let mut producers: Vec<ProducerState> = states
        .entries()
        .iter()
        .map(|(&id, entry)| {
            let last = entry.batches.back();
            ProducerState::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(i32::from(entry.epoch))
                .with_last_sequence(last.map_or(-1, |b| b.last_seq))
                .with_last_timestamp(
                    last.map_or(-1, |b| last_timestamp(partition.log(), b.base_offset)),
                )
                .with_coordinator_epoch(-1)
                .with_current_txn_start_offset(-1)
        })
        .collect();
    producers.sort_by_key(|p| p.producer_id.0);
    producers
}

/// The max timestamp of the batch at `base_offset`, or -1 when it is gone or unreadable.
fn last_timestamp(log: &PartitionLog, base_offset: i64) -> i64 {
    log.read_headers(Offset(base_offset), HEADER_READ_BYTES)
        .ok()
        .and_then(|read| BatchHeader::parse(&read.records).ok())
        .filter(|header| header.base_offset == base_offset)
        .map_or(-1, |header| header.max_timestamp)
}
