//! `weir cluster describe`: the cluster id, the controller, each broker with its address and
//! how many partitions it leads, and how many partitions have no leader.
//!
//! Leadership comes from Metadata (every topic), which every Kafka-protocol broker answers;
//! the broker list, cluster id and controller from DescribeCluster where the broker supports
//! it (Kafka 2.8+, Weir), else from the same Metadata answer.

use weir_client::cluster::Snapshot;
use weir_client::{Admin, Error};

use super::Context;
use crate::args::ClusterCommand;
use crate::error::CliResult;
use crate::output::print;
use crate::table::{Style, Table};

/// A broker's row.
#[derive(Debug)]
struct Row {
    id: i32,
    host: String,
    port: i32,
    rack: Option<String>,
}

/// Runs a cluster command.
///
/// # Errors
/// The broker's refusal or a network failure.
pub(crate) async fn run(ctx: &Context, command: ClusterCommand) -> CliResult {
    match command {
        ClusterCommand::Describe => {
            let cluster = ctx.cluster();
            let snapshot = cluster.metadata(None).await.map_err(|e| ctx.err(e))?;
            let admin = Admin::with_cluster(cluster);
            let (cluster_id, controller, brokers) = match admin.describe_cluster(false).await {
                Ok(described) => (
                    Some(described.cluster_id),
                    Some(described.controller_id).filter(|&c| c >= 0),
                    described
                        .brokers
                        .into_iter()
                        .map(|b| Row {
                            id: b.id,
                            host: b.host,
                            port: b.port,
                            rack: b.rack,
                        })
                        .collect(),
                ),
                // An older broker: Metadata says it all but the fenced state.
                Err(Error::UnsupportedApi { .. }) => from_metadata(&snapshot),
                Err(err) => return Err(ctx.err(err)),
            };
            print(&describe(
                &snapshot,
                cluster_id,
                controller,
                &brokers,
                Style::for_stdout(),
            ))?;
        }
    }
    Ok(())
}

fn from_metadata(snapshot: &Snapshot) -> (Option<String>, Option<i32>, Vec<Row>) {
    let rows = snapshot
        .brokers
        .iter()
        .map(|b| Row {
            id: b.id,
            host: b.host.clone(),
            port: b.port,
            rack: b.rack.clone(),
        })
        .collect();
    (snapshot.cluster_id.clone(), snapshot.controller_id, rows)
}

/// The text printed: the id and controller lines, the broker table, and a count of the
/// partitions without a leader when there are any.
fn describe(
    snapshot: &Snapshot,
    cluster_id: Option<String>,
    controller: Option<i32>,
    brokers: &[Row],
    style: Style,
) -> String {
    let mut out = format!(
        "cluster id: {}\ncontroller id: {}\n",
        cluster_id.unwrap_or_else(|| "-".to_owned()),
        controller.map_or("-".to_owned(), |c| c.to_string())
    );
    let mut table = Table::new(&["BROKER", "HOST", "PORT", "RACK", "CONTROLLER", "LEADS"]);
    for b in brokers {
        table.row(vec![
            b.id.to_string(),
            b.host.clone(),
            b.port.to_string(),
            b.rack.clone().unwrap_or_else(|| "-".to_owned()),
            if Some(b.id) == controller {
                "yes"
            } else {
                "no"
            }
            .to_owned(),
            snapshot.leads(b.id).to_string(),
        ]);
    }
    out.push_str(&table.render(style));
    let leaderless = snapshot.leaderless();
    if leaderless > 0 {
        out.push_str(&format!("partitions without a leader: {leaderless}\n"));
    }
    out
}
