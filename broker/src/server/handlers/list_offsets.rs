//! ListOffsets (key 2), v1-7: earliest (-2), latest (-1), the first offset at or after a
//! timestamp (through the time index), or (v7+) the first record with the largest timestamp
//! (-3, MAX_TIMESTAMP, KIP-734).
//!
//! v4+: the request's `current_leader_epoch` (other than -1) is checked against the leader's
//! (FENCED_LEADER_EPOCH when older, UNKNOWN_LEADER_EPOCH when newer, as Fetch), and the
//! answer carries the leader epoch of the offset as Kafka's `fetchOffsetByTimestamp` does:
//! the log's latest epoch for latest and MAX_TIMESTAMP, the epoch that wrote the offset for
//! earliest and timestamps, -1 when the log places none. v6+ is flexible.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::Context;
use crate::log::{Offset, PartitionLog};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// The first version that carries leader epochs (KIP-320).
const EPOCHS_FROM: i16 = 4;
/// The first version that knows MAX_TIMESTAMP.
const MAX_TIMESTAMP_FROM: i16 = 7;

pub(crate) fn handle(
    ctx: &Arc<Context>,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let found = ctx.catalog.get(&topic.name.0);
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let Some(log) = found
                        .as_ref()
                        .and_then(|t| t.log(p.partition_index))
                        .filter(|_| ctx.serves(&topic.name.0, p.partition_index))
                    else {
                        return response.with_error_code(
                            ctx.missing_partition(&topic.name.0, p.partition_index)
                                .0
                                .code(),
                        );
                    };
                    if version >= EPOCHS_FROM {
                        if let Some(code) = ctx.check_leader_epoch(
                            &topic.name.0,
                            p.partition_index,
                            p.current_leader_epoch,
                        ) {
                            return response.with_error_code(code.code());
                        }
                    }
                    let (timestamp, offset, epoch) = lookup(log, p.timestamp, version);
                    let response = response.with_timestamp(timestamp).with_offset(offset);
                    // leader_epoch exists from v4 only; v1-3 must leave it at its default.
                    if version >= EPOCHS_FROM {
                        response.with_leader_epoch(epoch)
                    } else {
                        response
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// `(timestamp, offset, leader epoch)` answered for `target`; -1s when nothing matches.
fn lookup(log: &PartitionLog, target: i64, version: i16) -> (i64, i64, i32) {
    let latest_epoch = log.latest_epoch().unwrap_or(-1);
    let epoch_of = |offset: Offset| log.epoch_for_offset(offset).unwrap_or(-1);
    match target {
        LATEST => (-1, log.high_watermark().0, latest_epoch),
        EARLIEST => {
            let start = log.log_start_offset();
            (-1, start.0, epoch_of(start))
        }
        MAX_TIMESTAMP if version >= MAX_TIMESTAMP_FROM => log
            .max_timestamp_offset()
            .map_or((-1, -1, -1), |(o, ts)| (ts, o.0, latest_epoch)),
        ts => log
            .lookup_timestamp(ts)
            .map_or((-1, -1, -1), |(o, found)| (found, o.0, epoch_of(o))),
    }
}
