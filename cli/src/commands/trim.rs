//! `weir topics trim|add-partitions` and `weir groups delete-offsets`: the admin calls that
//! change what a topic or a group holds (DeleteRecords, CreatePartitions, OffsetDelete).

use weir_client::Admin;

use super::Context;
use crate::args::TrimArgs;
use crate::error::{CliError, CliResult};
use crate::output::print;
use crate::table::{Style, Table};

/// The partitions to act on: `only` if given, else every partition of `topic`.
async fn partitions(
    ctx: &Context,
    admin: &Admin,
    topic: &str,
    only: &[i32],
) -> CliResult<Vec<i32>> {
    if !only.is_empty() {
        return Ok(only.to_vec());
    }
    let described = admin
        .describe_topics(&[topic])
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(described
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.partition))
        .collect())
}

/// `weir topics trim`: DeleteRecords, then a table of each partition's new start.
///
/// # Errors
/// A partition the broker refused (after trying all), or a network failure.
pub(crate) async fn trim(ctx: &Context, admin: &Admin, args: &TrimArgs, style: Style) -> CliResult {
    let chosen = partitions(ctx, admin, &args.name, &args.partition).await?;
    let asked: Vec<(String, i32, i64)> = chosen
        .iter()
        .map(|&p| (args.name.clone(), p, args.before))
        .collect();
    let outcomes = admin.delete_records(&asked).await.map_err(|e| ctx.err(e))?;
    let mut table = Table::new(&["TOPIC", "PARTITION", "START"]);
    let mut first_error = None;
    for ((topic, partition), outcome) in outcomes {
        let start = match outcome {
            Ok(start) => start.to_string(),
            Err(err) => {
                first_error.get_or_insert(err);
                "-".to_owned()
            }
        };
        table.row(vec![topic, partition.to_string(), start]);
    }
    print(&table.render(style))?;
    match first_error {
        Some(err) => Err(ctx.err(err)),
        None => Ok(()),
    }
}

/// `weir topics add-partitions`.
///
/// # Errors
/// The broker's refusal (e.g. a total not above the current count) or a network failure.
pub(crate) async fn add_partitions(
    ctx: &Context,
    admin: &Admin,
    name: &str,
    total: i32,
) -> CliResult {
    if total < 1 {
        return Err(CliError::Usage(format!(
            "--total {total}: a topic has at least 1 partition"
        )));
    }
    admin
        .create_partitions(name, total)
        .await
        .map_err(|e| ctx.err(e))?;
    print(&format!("topic {name} now has {total} partitions\n"))?;
    Ok(())
}

/// `weir groups delete-offsets`.
///
/// # Errors
/// The broker's refusal (unknown group, a member still consuming the topic) or a network
/// failure.
pub(crate) async fn delete_offsets(
    ctx: &Context,
    admin: &Admin,
    group: &str,
    topic: &str,
    only: &[i32],
) -> CliResult {
    let chosen = partitions(ctx, admin, topic, only).await?;
    let asked: Vec<(String, i32)> = chosen.iter().map(|&p| (topic.to_owned(), p)).collect();
    admin
        .delete_group_offsets(group, &asked)
        .await
        .map_err(|e| ctx.err(e))?;
    let list = chosen
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    print(&format!(
        "deleted the committed offsets of group {group} for {topic} partitions {list}\n"
    ))?;
    Ok(())
}
