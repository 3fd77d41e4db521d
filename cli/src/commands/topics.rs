//! `weir topics list|create|describe|alter-config|delete`: the admin client's topic calls,
//! printed as tables (see `table.rs` for terminal versus pipe).

use weir_client::NewTopic;
use weir_client::admin::configs::{AlterConfigOp, ConfigResource, ConfigSource};
use weir_client::protocol::error_code::ErrorCode;

use super::Context;
use crate::args::TopicsCommand;
use crate::error::{CliError, CliResult};
use crate::output::print;
use crate::table::{Style, Table};

/// Runs a topics command.
///
/// # Errors
/// The broker's refusal or a network failure.
pub(crate) async fn run(ctx: &Context, command: TopicsCommand) -> CliResult {
    let admin = ctx.admin();
    let style = Style::for_stdout();
    match command {
        TopicsCommand::List => {
            let topics = admin.list_topics().await.map_err(|e| ctx.err(e))?;
            let mut table = Table::new(&["TOPIC", "PARTITIONS"]);
            for t in topics.iter().filter(|t| !t.internal) {
                table.row(vec![t.name.clone(), t.partitions.len().to_string()]);
            }
            print(&table.render(style))?;
        }
        TopicsCommand::Create {
            name,
            partitions,
            configs,
        } => {
            let mut topic = NewTopic::new(&name, partitions.unwrap_or(-1));
            for entry in &configs {
                let (k, v) = split_pair(entry, "--config")?;
                topic = topic.config(k, v);
            }
            admin
                .create_topics(&[topic])
                .await
                .map_err(|e| ctx.err(e))?;
            let created = describe_created(&admin, &name)
                .await
                .map_err(|e| ctx.err(e))?;
            let count = created.first().map_or(0, |t| t.partitions.len());
            print(&format!(
                "created topic {name} with {count} partition{}\n",
                if count == 1 { "" } else { "s" }
            ))?;
        }
        TopicsCommand::Describe {
            names,
            configs: true,
        } => {
            let mut table = Table::new(&["TOPIC", "CONFIG", "VALUE", "SOURCE"]);
            for name in &names {
                let entries = admin
                    .describe_configs(&ConfigResource::Topic(name.clone()))
                    .await
                    .map_err(|e| ctx.err(e))?;
                for e in entries {
                    table.row(vec![
                        name.clone(),
                        e.name,
                        e.value.unwrap_or_else(|| "-".to_owned()),
                        source_name(e.source).to_owned(),
                    ]);
                }
            }
            print(&table.render(style))?;
        }
        TopicsCommand::AlterConfig {
            name,
            set,
            delete,
            validate_only,
        } => {
            let mut ops = Vec::with_capacity(set.len() + delete.len());
            for entry in &set {
                let (k, v) = split_pair(entry, "--set")?;
                ops.push(AlterConfigOp::set(k, v));
            }
            ops.extend(delete.iter().map(AlterConfigOp::delete));
            if ops.is_empty() {
                return Err(CliError::Usage(
                    "alter-config: give at least one --set KEY=VALUE or --delete KEY".to_owned(),
                ));
            }
            admin
                .incremental_alter_configs(
                    &ConfigResource::Topic(name.clone()),
                    &ops,
                    validate_only,
                )
                .await
                .map_err(|e| ctx.err(e))?;
            let verb = if validate_only {
                "would change"
            } else {
                "changed"
            };
            print(&format!(
                "{verb} {} config{} of topic {name}\n",
                ops.len(),
                if ops.len() == 1 { "" } else { "s" }
            ))?;
        }
        TopicsCommand::Describe {
            names,
            configs: false,
        } => {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let topics = admin.describe_topics(&refs).await.map_err(|e| ctx.err(e))?;
            let cluster = ctx.cluster();
            let mut wanted = Vec::new();
            for t in &topics {
                for p in &t.partitions {
                    wanted.push((t.name.clone(), p.partition));
                }
            }
            let starts = offsets(&cluster, &wanted, -2)
                .await
                .map_err(|e| ctx.err(e))?;
            let ends = offsets(&cluster, &wanted, -1)
                .await
                .map_err(|e| ctx.err(e))?;
            let mut table = Table::new(&[
                "TOPIC",
                "PARTITION",
                "LEADER",
                "EPOCH",
                "REPLICAS",
                "ISR",
                "START",
                "END",
            ]);
            for t in &topics {
                for p in &t.partitions {
                    let key = (t.name.clone(), p.partition);
                    let show = |m: &std::collections::BTreeMap<_, i64>| {
                        m.get(&key).map_or("-".to_owned(), i64::to_string)
                    };
                    table.row(vec![
                        t.name.clone(),
                        p.partition.to_string(),
                        if p.leader < 0 {
                            "-".to_owned()
                        } else {
                            p.leader.to_string()
                        },
                        if p.leader_epoch < 0 {
                            "-".to_owned()
                        } else {
                            p.leader_epoch.to_string()
                        },
                        nodes(&p.replicas),
                        nodes(&p.isr),
                        show(&starts),
                        show(&ends),
                    ]);
                }
            }
            print(&table.render(style))?;
        }
        TopicsCommand::Delete { names } => {
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            admin.delete_topics(&refs).await.map_err(|e| ctx.err(e))?;
            for name in names {
                print(&format!("deleted topic {name}\n"))?;
            }
        }
        TopicsCommand::AddPartitions { name, total } => {
            super::trim::add_partitions(ctx, &admin, &name, total).await?;
        }
        TopicsCommand::Trim(args) => super::trim::trim(ctx, &admin, &args, style).await?,
    }
    Ok(())
}

/// How many times the metadata of a topic just created is asked for before its absence is
/// an error; the waits between double from 50 ms up to 1 s (about 5 s in all).
const CREATED_LOOKUPS: u32 = 10;

/// The metadata of a topic just created. In a cluster the broker asked may not know the new
/// topic yet (metadata reaches each broker a little after CreateTopics is answered, in Kafka
/// as in Weir), so UNKNOWN_TOPIC_OR_PARTITION is asked again, a bounded number of times.
///
/// # Errors
/// The last lookup's failure.
async fn describe_created(
    admin: &weir_client::Admin,
    name: &str,
) -> weir_client::Result<Vec<weir_client::TopicInfo>> {
    let mut wait = std::time::Duration::from_millis(50);
    let mut lookups = 1;
    loop {
        match admin.describe_topics(&[name]).await {
            Err(err)
                if err.code() == Some(ErrorCode::UnknownTopicOrPartition)
                    && lookups < CREATED_LOOKUPS =>
            {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(1));
                lookups += 1;
            }
            outcome => return outcome,
        }
    }
}

/// ListOffsets at `timestamp` (-2 earliest, -1 latest) for each partition that answers.
///
/// # Errors
/// A request failing as a whole.
pub(crate) async fn offsets(
    cluster: &weir_client::Cluster,
    partitions: &[(String, i32)],
    timestamp: i64,
) -> weir_client::Result<std::collections::BTreeMap<(String, i32), i64>> {
    let asked: Vec<(String, i32, i64)> = partitions
        .iter()
        .map(|(t, p)| (t.clone(), *p, timestamp))
        .collect();
    Ok(cluster
        .list_offsets(&asked)
        .await?
        .into_iter()
        .filter_map(|(tp, outcome)| outcome.ok().map(|o| (tp, o)))
        .collect())
}

/// Node ids as `kafka-topics --describe` prints them (`1,2,3`); `-` for none.
fn nodes(ids: &[i32]) -> String {
    if ids.is_empty() {
        return "-".to_owned();
    }
    let ids: Vec<String> = ids.iter().map(i32::to_string).collect();
    ids.join(",")
}

/// Kafka's name of a config source, as `kafka-configs --describe` prints it.
fn source_name(source: ConfigSource) -> &'static str {
    match source {
        ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
        ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
        ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
        ConfigSource::Default => "DEFAULT_CONFIG",
        _ => "UNKNOWN",
    }
}

/// `key=value` → (`key`, `value`).
///
/// # Errors
/// [`CliError::Usage`] without `=` or with an empty key.
pub(crate) fn split_pair<'a>(entry: &'a str, flag: &str) -> CliResult<(&'a str, &'a str)> {
    match entry.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k, v)),
        _ => Err(CliError::Usage(format!(
            "{flag} `{entry}`: expected KEY=VALUE"
        ))),
    }
}
