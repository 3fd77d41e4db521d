//! ListOffsets (key 2), v1-3: earliest (-2), latest (-1), or the first offset at or after a
//! timestamp (through the time index).

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::Context;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

pub(crate) fn handle(ctx: &Arc<Context>, request: ListOffsetsRequest) -> ListOffsetsResponse {
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
                    let (timestamp, offset) = match p.timestamp {
                        LATEST => (-1, log.high_watermark().0),
                        EARLIEST => (-1, log.log_start_offset().0),
                        ts => log
                            .lookup_timestamp(ts)
                            .map_or((-1, -1), |(o, found)| (found, o.0)),
                    };
                    // leader_epoch exists from v4 only; v1-3 must leave it at its default.
                    response.with_timestamp(timestamp).with_offset(offset)
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
