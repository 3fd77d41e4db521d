//! `weir cluster describe`: the cluster id, the controller and each broker (DescribeCluster).

use super::Context;
use crate::args::ClusterCommand;
use crate::error::CliResult;
use crate::output::print;
use crate::table::{Style, Table};

/// Runs a cluster command.
///
/// # Errors
/// The broker's refusal or a network failure.
pub(crate) async fn run(ctx: &Context, command: ClusterCommand) -> CliResult {
    match command {
        ClusterCommand::Describe => {
            let described = ctx
                .admin()
                .describe_cluster(false)
                .await
                .map_err(|e| ctx.err(e))?;
            print(&format!("cluster id: {}\n", described.cluster_id))?;
            let mut table = Table::new(&["BROKER", "HOST", "PORT", "RACK", "CONTROLLER"]);
            for b in &described.brokers {
                table.row(vec![
                    b.id.to_string(),
                    b.host.clone(),
                    b.port.to_string(),
                    b.rack.clone().unwrap_or_else(|| "-".to_owned()),
                    if b.id == described.controller_id {
                        "yes"
                    } else {
                        "no"
                    }
                    .to_owned(),
                ]);
            }
            print(&table.render(Style::for_stdout()))?;
        }
    }
    Ok(())
}
