//! `weir groups list|describe|delete|reset-offsets`. Descriptions decode each member's
//! assignment (the consumer protocol's bytes, `weir_protocol::consumer_protocol`) to show which partitions it owns; offsets are
//! reset by committing them as a member-less ("simple") consumer, which the coordinator only
//! accepts while the group has no members, so the command refuses an active group up front.

use std::collections::BTreeMap;

use weir_client::protocol::consumer_protocol::decode_assignment;
use weir_client::{Consumer, ConsumerConfig, TopicPartition};

use super::Context;
use super::topics::offsets;
use crate::args::{GroupsCommand, ResetOffsetsArgs, Start};
use crate::error::{CliError, CliResult};
use crate::output::{note, print};
use crate::table::{Style, Table};

/// Runs a groups command.
///
/// # Errors
/// The broker's refusal, a network failure, or an active group for reset-offsets.
pub(crate) async fn run(ctx: &Context, command: GroupsCommand) -> CliResult {
    let admin = ctx.admin();
    let style = Style::for_stdout();
    match command {
        GroupsCommand::List => {
            let groups = admin.list_groups().await.map_err(|e| ctx.err(e))?;
            let mut table = Table::new(&["GROUP", "TYPE"]);
            for g in groups {
                table.row(vec![g.group_id, g.protocol_type]);
            }
            print(&table.render(style))?;
        }
        GroupsCommand::Describe { group } => describe(ctx, &admin, &group, style).await?,
        GroupsCommand::Delete { groups } => {
            let refs: Vec<&str> = groups.iter().map(String::as_str).collect();
            admin.delete_groups(&refs).await.map_err(|e| ctx.err(e))?;
            for g in groups {
                print(&format!("deleted group {g}\n"))?;
            }
        }
        GroupsCommand::ResetOffsets(args) => reset_offsets(ctx, &args, style).await?,
        GroupsCommand::DeleteOffsets {
            group,
            topic,
            partition,
        } => super::trim::delete_offsets(ctx, &admin, &group, &topic, &partition).await?,
    }
    Ok(())
}

async fn describe(
    ctx: &Context,
    admin: &weir_client::Admin,
    group: &str,
    style: Style,
) -> CliResult {
    let d = admin.describe_group(group).await.map_err(|e| ctx.err(e))?;
    if d.state == "Dead" && d.offsets.is_empty() {
        return Err(CliError::Refused(format!(
            "group {group} does not exist (list groups with `weir groups list`)"
        )));
    }
    let mut members = Table::new(&["MEMBER", "CLIENT", "HOST", "ASSIGNMENT"]);
    for m in &d.members {
        let assignment = match decode_assignment(&m.assignment) {
            Ok(assignment) => assignment
                .partitions
                .iter()
                .map(|tp| {
                    let ps: Vec<String> = tp.partitions.iter().map(i32::to_string).collect();
                    format!("{}:{}", tp.topic, ps.join(","))
                })
                .collect::<Vec<_>>()
                .join(" "),
            Err(why) => format!("({why})"),
        };
        members.row(vec![
            m.member_id.clone(),
            m.client_id.clone(),
            m.client_host.clone(),
            assignment,
        ]);
    }
    let mut lags = Table::new(&["TOPIC", "PARTITION", "COMMITTED", "END", "LAG"]);
    for p in &d.offsets {
        lags.row(vec![
            p.topic.clone(),
            p.partition.to_string(),
            p.committed.to_string(),
            if p.end < 0 {
                "-".into()
            } else {
                p.end.to_string()
            },
            p.lag.to_string(),
        ]);
    }
    match style {
        Style::Aligned => {
            print(&format!(
                "group {}  state {}  protocol {}  members {}\n\n",
                d.group_id,
                d.state,
                if d.protocol.is_empty() {
                    "-"
                } else {
                    &d.protocol
                },
                d.members.len()
            ))?;
            if !members.is_empty() {
                print(&format!("{}\n", members.render(style)))?;
            }
            print(&lags.render(style))?;
        }
        // Each line says what it is, so a script can grep one kind.
        Style::Plain => {
            let mut text = format!(
                "group\t{}\t{}\t{}\t{}\n",
                d.group_id,
                d.state,
                d.protocol,
                d.members.len()
            );
            for line in members.render(style).lines() {
                text.push_str(&format!("member\t{line}\n"));
            }
            for line in lags.render(style).lines() {
                text.push_str(&format!("offset\t{line}\n"));
            }
            print(&text)?;
        }
    }
    Ok(())
}

async fn reset_offsets(ctx: &Context, args: &ResetOffsetsArgs, style: Style) -> CliResult {
    let ResetOffsetsArgs {
        group,
        topic: topics,
        partition: only,
        to,
        dry_run,
    } = args;
    let (to, dry_run) = (*to, *dry_run);
    let cluster = ctx.cluster();
    let admin = weir_client::Admin::with_cluster(cluster.clone());
    let described = admin.describe_group(group).await.map_err(|e| ctx.err(e))?;
    if !described.members.is_empty() {
        return Err(CliError::Refused(format!(
            "group {group} has {} active members; stop them before resetting its offsets \
             (`weir groups describe {group}` lists them)",
            described.members.len()
        )));
    }
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let infos = admin
        .describe_topics(&names)
        .await
        .map_err(|e| ctx.err(e))?;
    let mut partitions = Vec::new();
    for t in &infos {
        // A partition that does not exist would otherwise be skipped: a silent success.
        for p in only {
            if !t.partitions.iter().any(|info| info.partition == *p) {
                return Err(CliError::Usage(format!(
                    "topic {} has no partition {p} (it has {})",
                    t.name,
                    t.partitions.len()
                )));
            }
        }
        for p in &t.partitions {
            if only.is_empty() || only.contains(&p.partition) {
                partitions.push((t.name.clone(), p.partition));
            }
        }
    }
    let starts = offsets(&cluster, &partitions, -2)
        .await
        .map_err(|e| ctx.err(e))?;
    let ends = offsets(&cluster, &partitions, -1)
        .await
        .map_err(|e| ctx.err(e))?;
    let by_time = match to {
        Start::Timestamp(ts) => offsets(&cluster, &partitions, ts)
            .await
            .map_err(|e| ctx.err(e))?,
        _ => BTreeMap::new(),
    };
    let mut targets = Vec::new();
    let mut table = Table::new(&["TOPIC", "PARTITION", "NEW OFFSET"]);
    for key in &partitions {
        let (Some(&start), Some(&end)) = (starts.get(key), ends.get(key)) else {
            return Err(CliError::Refused(format!(
                "no offsets for {}-{}: its leader did not answer",
                key.0, key.1
            )));
        };
        let offset = match to {
            // Kept within the log, as Kafka's tool does.
            Start::Offset(n) => n.clamp(start, end),
            Start::Skip(n) => start.saturating_add(n).min(end),
            Start::Timestamp(_) => by_time.get(key).copied().filter(|o| *o >= 0).unwrap_or(end),
            Start::Beginning | Start::End | Start::BeforeEnd(_) => {
                crate::start::resolve(to, start, end).unwrap_or(end)
            }
        };
        table.row(vec![key.0.clone(), key.1.to_string(), offset.to_string()]);
        targets.push((TopicPartition::new(&key.0, key.1), offset));
    }
    if !dry_run {
        let mut consumer = Consumer::new(
            ConsumerConfig::new(ctx.client_config())
                .group_id(group)
                .enable_auto_commit(false),
        );
        consumer
            .assign(targets.iter().map(|(tp, _)| tp.clone()))
            .map_err(|e| ctx.err(e))?;
        let committed = consumer
            .commit_offsets(targets)
            .await
            .map_err(|e| ctx.err(e));
        let closed = consumer.close().await.map_err(|e| ctx.err(e));
        committed?;
        closed?;
    }
    print(&table.render(style))?;
    if dry_run {
        note!("dry run: nothing committed");
    }
    Ok(())
}
