//! OffsetForLeaderEpoch (key 23), v2-4 (v4 flexible): for each partition, the largest leader
//! epoch at or below the one asked for and the offset where it ends, from the leader's log
//! (its leader-epoch history, `crate::log::epochs`). Consumers ask it after a leader change to
//! find whether the log they read was truncated under them (KIP-320), followers to find where
//! their copy diverged (KIP-101).
//!
//! Per partition, as Kafka's `ReplicaManager.lastOffsetForLeaderEpoch`: unknown partitions
//! get UNKNOWN_TOPIC_OR_PARTITION, partitions led elsewhere (or not held here)
//! NOT_LEADER_OR_FOLLOWER; a `current_leader_epoch` other than -1 is checked against the
//! leader's (FENCED_LEADER_EPOCH when older, UNKNOWN_LEADER_EPOCH when newer); an epoch the
//! log cannot place answers epoch -1 and end offset -1 without an error. `replica_id` (v3+:
//! -1 from a consumer, a broker id from a follower) changes nothing, as in Kafka, where it
//! only selects the authorization checked: every caller is answered by the leader only.
//!
//! v0-1 are not served: the protocol codec (Kafka 4's schemas) has no encoding for them, and
//! the clients that use the API (librdkafka v2, the Java client v3-4) do not send them.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use weir_protocol::error_code::ErrorCode;

use super::Context;

pub(crate) fn handle(
    ctx: &Arc<Context>,
    request: &OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let name = &topic.topic.0;
            let found = ctx.catalog.get(name);
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let response = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let log = found.as_ref().and_then(|t| t.log(p.partition));
                    let Some(log) = log.filter(|_| ctx.leads(name, p.partition)) else {
                        let code = match log {
                            // Held here, led elsewhere: a follower's copy is not the answer.
                            Some(_) => ErrorCode::NotLeaderOrFollower,
                            None => ctx.missing_partition(name, p.partition).0,
                        };
                        return response.with_error_code(code.code());
                    };
                    if let Some(code) =
                        ctx.check_leader_epoch(name, p.partition, p.current_leader_epoch)
                    {
                        return response.with_error_code(code.code());
                    }
                    let (epoch, end) = log.end_offset_for_epoch(p.leader_epoch);
                    response.with_leader_epoch(epoch).with_end_offset(end.0)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
