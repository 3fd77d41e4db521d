//! The Kafka error codes in a response, for `weir_request_errors_total{api, error}`.
//!
//! Reads the response a handler built, before it is encoded: the top-level code and each
//! topic's, partition's, group's or member's code, for the APIs that carry them. A code of 0
//! is no error and is not reported. APIs not listed here report nothing (their errors still
//! reach the client; they are just not counted yet).

use kafka_protocol::messages::ResponseKind;

/// Calls `each` with every non-zero error code in `response`.
pub(crate) fn error_codes(response: &ResponseKind, each: &mut dyn FnMut(i16)) {
    let mut one = |code: i16| {
        if code != 0 {
            each(code);
        }
    };
    match response {
        ResponseKind::Produce(r) => r
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .for_each(|p| one(p.error_code)),
        ResponseKind::Fetch(r) => {
            one(r.error_code);
            r.responses
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| one(p.error_code));
        }
        ResponseKind::ListOffsets(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| one(p.error_code)),
        ResponseKind::Metadata(r) => {
            for t in &r.topics {
                one(t.error_code);
                t.partitions.iter().for_each(|p| one(p.error_code));
            }
        }
        ResponseKind::OffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .for_each(|p| one(p.error_code)),
        ResponseKind::OffsetFetch(r) => {
            one(r.error_code);
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .for_each(|p| one(p.error_code));
            for g in &r.groups {
                one(g.error_code);
                g.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .for_each(|p| one(p.error_code));
            }
        }
        ResponseKind::FindCoordinator(r) => {
            one(r.error_code);
            r.coordinators.iter().for_each(|c| one(c.error_code));
        }
        ResponseKind::JoinGroup(r) => one(r.error_code),
        ResponseKind::SyncGroup(r) => one(r.error_code),
        ResponseKind::Heartbeat(r) => one(r.error_code),
        ResponseKind::LeaveGroup(r) => {
            one(r.error_code);
            r.members.iter().for_each(|m| one(m.error_code));
        }
        ResponseKind::DescribeGroups(r) => r.groups.iter().for_each(|g| one(g.error_code)),
        ResponseKind::ListGroups(r) => one(r.error_code),
        ResponseKind::DeleteGroups(r) => r.results.iter().for_each(|g| one(g.error_code)),
        ResponseKind::CreateTopics(r) => r.topics.iter().for_each(|t| one(t.error_code)),
        ResponseKind::DeleteTopics(r) => r.responses.iter().for_each(|t| one(t.error_code)),
        ResponseKind::CreatePartitions(r) => r.results.iter().for_each(|t| one(t.error_code)),
        ResponseKind::DescribeConfigs(r) => r.results.iter().for_each(|t| one(t.error_code)),
        ResponseKind::InitProducerId(r) => one(r.error_code),
        ResponseKind::ApiVersions(r) => one(r.error_code),
        ResponseKind::ElectLeaders(r) => r
            .replica_election_results
            .iter()
            .flat_map(|t| &t.partition_result)
            .for_each(|p| one(p.error_code)),
        _ => {}
    }
}
