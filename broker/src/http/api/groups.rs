//! `/v1/groups` and `/v1/groups/{group}`: consumer groups with their state and members, each
//! member's assignment, and per partition the committed offset and the lag.
//!
//! Lag is the partition's high watermark minus the committed offset, never below zero: the
//! same figure as `weir_consumer_group_lag` in `/metrics`. Groups that only committed offsets
//! (simple consumers, or a group whose members left or never rejoined after a restart) are
//! listed as `Empty`, as Kafka lists them.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use weir_protocol::consumer_protocol::decode_assignment;

use super::{ApiError, ApiState, MAX_LISTED};
use crate::groups::coordinator::MemberDescription;
use crate::server::Context;

/// One group in the list.
#[derive(Debug, Serialize)]
pub(crate) struct GroupSummary {
    group: String,
    state: &'static str,
    protocol_type: String,
    members: usize,
}

/// Every group, by name.
#[derive(Debug, Serialize)]
pub(crate) struct GroupList {
    groups: Vec<GroupSummary>,
    /// More groups exist than [`MAX_LISTED`].
    truncated: bool,
}

/// Partitions of one topic given to a member.
#[derive(Debug, Serialize)]
pub(crate) struct Assigned {
    topic: String,
    partitions: Vec<i32>,
}

/// One member of a group.
#[derive(Debug, Serialize)]
pub(crate) struct Member {
    member_id: String,
    group_instance_id: Option<String>,
    client_id: String,
    client_host: String,
    /// Decoded for the `consumer` protocol; `None` for other protocols or before SyncGroup.
    assignment: Option<Vec<Assigned>>,
}

/// One committed partition and how far behind it is.
#[derive(Debug, Serialize)]
pub(crate) struct PartitionLag {
    topic: String,
    partition: i32,
    committed_offset: i64,
    /// `None` when the topic or partition no longer exists.
    high_watermark: Option<i64>,
    log_end_offset: Option<i64>,
    lag: Option<i64>,
    metadata: Option<String>,
    commit_timestamp_ms: i64,
}

/// One group in full.
#[derive(Debug, Serialize)]
pub(crate) struct GroupDetail {
    group: String,
    state: &'static str,
    protocol_type: String,
    protocol: String,
    members: Vec<Member>,
    /// The first [`MAX_LISTED`] partitions by topic and partition.
    offsets: Vec<PartitionLag>,
    /// More partitions have committed offsets than are listed (`total_lag` counts them all).
    truncated: bool,
    /// Sum of the partitions' lag.
    total_lag: i64,
    /// The broker's clock at this answer, for lag rates computed by a poller.
    now_ms: i64,
}

pub(super) async fn list(State(state): State<ApiState>) -> Result<Json<GroupList>, ApiError> {
    state
        .read(|ctx| {
            let mut groups: BTreeMap<String, GroupSummary> = BTreeMap::new();
            for (group, group_state, protocol_type) in ctx.groups.list() {
                let members = ctx.groups.describe(&group).map_or(0, |d| d.members.len());
                groups.insert(
                    group.clone(),
                    GroupSummary {
                        group,
                        state: group_state.name(),
                        protocol_type,
                        members,
                    },
                );
            }
            for group in crate::server::committed(ctx).groups() {
                groups.entry(group.clone()).or_insert(GroupSummary {
                    group,
                    state: "Empty",
                    protocol_type: String::new(),
                    members: 0,
                });
            }
            let truncated = groups.len() > MAX_LISTED;
            let groups = groups.into_values().take(MAX_LISTED).collect();
            Ok(GroupList { groups, truncated })
        })
        .await
}

fn member(m: MemberDescription, consumer: bool) -> Member {
    // An assignment the members exchanged that does not decode is shown as none: the
    // coordinator passes it through without reading it.
    let assignment = (consumer && !m.assignment.is_empty())
        .then(|| decode_assignment(&m.assignment).ok())
        .flatten()
        .map(|a| {
            a.partitions
                .into_iter()
                .map(|tp| Assigned {
                    topic: tp.topic,
                    partitions: tp.partitions,
                })
                .collect()
        });
    Member {
        member_id: m.member_id,
        group_instance_id: m.group_instance_id,
        client_id: m.client_id,
        client_host: m.client_host,
        assignment,
    }
}

fn offsets(ctx: &Context, group: &str) -> Vec<PartitionLag> {
    let mut offsets: Vec<PartitionLag> = crate::server::committed(ctx)
        .group_offsets(group)
        .into_iter()
        .map(|(topic, partition, committed)| {
            let log = ctx
                .catalog
                .get(&topic)
                .and_then(|t| t.log(partition).cloned());
            let high_watermark = log.as_ref().map(|l| l.high_watermark().0);
            PartitionLag {
                log_end_offset: log.as_ref().map(|l| l.log_end_offset().0),
                lag: high_watermark.map(|hw| (hw - committed.offset).max(0)),
                high_watermark,
                topic,
                partition,
                committed_offset: committed.offset,
                metadata: committed.metadata,
                commit_timestamp_ms: committed.commit_timestamp_ms,
            }
        })
        .collect();
    offsets.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    offsets
}

pub(super) async fn one(
    State(state): State<ApiState>,
    Path(group): Path<String>,
) -> Result<Json<GroupDetail>, ApiError> {
    state
        .read(move |ctx| {
            let described = ctx.groups.describe(&group);
            if described.is_none() && !crate::server::committed(ctx).has_group(&group) {
                return Err(ApiError::NoGroup(group));
            }
            let mut offsets = offsets(ctx, &group);
            let total_lag = offsets.iter().filter_map(|o| o.lag).sum();
            let truncated = offsets.len() > MAX_LISTED;
            offsets.truncate(MAX_LISTED);
            let (state, protocol_type, protocol, members) = match described {
                Some(d) => {
                    let consumer = d.protocol_type == "consumer";
                    let members = d.members.into_iter().map(|m| member(m, consumer));
                    (
                        d.state.name(),
                        d.protocol_type,
                        d.protocol,
                        members.collect(),
                    )
                }
                None => ("Empty", String::new(), String::new(), Vec::new()),
            };
            Ok(GroupDetail {
                group,
                state,
                protocol_type,
                protocol,
                members,
                offsets,
                truncated,
                total_lag,
                now_ms: ctx.clock.now_ms(),
            })
        })
        .await
}
