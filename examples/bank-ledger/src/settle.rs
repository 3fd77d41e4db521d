//! Waiting until the services have caught up with everything sent: the handler has
//! committed every command (including the saga's follow-ups, which it sends before
//! committing the command that caused them) and the projection's checkpoint covers every
//! event.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;
use weir_client::{Admin, ClientConfig};

use crate::error::{Error, Result};
use crate::log;
use crate::projection::ReadModel;
use crate::topics::{COMMANDS, EVENTS, HANDLER_GROUP, PARTITIONS};

/// Whether the handler group has committed every command: commands end offsets minus
/// committed offsets, per partition (a partition without a commit counts from 0).
///
/// # Errors
/// The client's failure.
pub async fn handler_lag(bootstrap: &str) -> Result<Vec<i64>> {
    let ends = log::end_offsets(bootstrap, COMMANDS, PARTITIONS).await?;
    let admin = Admin::new(ClientConfig::new([bootstrap]).client_id("bank-ledger-settle"));
    let committed: BTreeMap<i32, i64> = admin
        .describe_group(HANDLER_GROUP)
        .await?
        .offsets
        .into_iter()
        .filter(|p| p.topic == COMMANDS)
        .map(|p| (p.partition, p.committed))
        .collect();
    Ok((0..PARTITIONS)
        .zip(ends)
        .map(|(p, end)| end - committed.get(&p).copied().unwrap_or(0))
        .collect())
}

/// Waits until the handler has no lag and the projection checkpoint at `state` covers every
/// event, checking every 200 ms.
///
/// # Errors
/// [`Error::Timeout`] after `timeout`, saying which side lags.
pub async fn wait(bootstrap: &str, state: &Path, timeout: Duration) -> Result<ReadModel> {
    let deadline = Instant::now() + timeout;
    loop {
        let lag = handler_lag(bootstrap).await?;
        let why = if lag.iter().all(|&l| l == 0) {
            let ends = log::end_offsets(bootstrap, EVENTS, PARTITIONS).await?;
            let model = ReadModel::load(state)?;
            let covered: Vec<i64> = (0..PARTITIONS)
                .map(|p| model.offsets.get(&p).copied().unwrap_or(0))
                .collect();
            if covered == ends {
                return Ok(model);
            }
            format!("projection at {covered:?}, events end at {ends:?}")
        } else {
            format!("handler lag per partition {lag:?}")
        };
        if Instant::now() > deadline {
            return Err(Error::Timeout(format!("services did not catch up: {why}")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
