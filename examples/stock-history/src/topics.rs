//! The two topics and their creation.
//!
//! Movements are keyed by SKU; snapshots of movements partition `p` go to snapshots
//! partition `p`, so the snapshotter that owns a movements partition (through its group) is
//! the one writer of that partition's snapshots. [`setup`] checks the partition counts.

use weir_client::protocol::error_code::ErrorCode;
use weir_client::{Admin, ClientConfig, NewTopic};

use crate::error::{Error, Result};

/// Movements, keyed by SKU (JSON [`crate::model::Movement`]), stamped with when they
/// happened: the source of truth.
pub const MOVEMENTS: &str = "stock-movements";
/// Snapshots (JSON [`crate::model::Snapshot`]), stamped with the last movement they cover.
pub const SNAPSHOTS: &str = "stock-snapshots";
/// Partitions of each topic.
pub const PARTITIONS: i32 = 3;
/// The snapshotters' consumer group.
pub const SNAPSHOTTER_GROUP: &str = "stock-snapshotter";

/// Creates the topics if they do not exist and checks their partition counts.
///
/// # Errors
/// The broker's refusal, or [`Error::Partitions`].
pub async fn setup(bootstrap: &str) -> Result<()> {
    let admin = Admin::new(ClientConfig::new([bootstrap]).client_id("stock-history-setup"));
    for topic in [MOVEMENTS, SNAPSHOTS] {
        match admin
            .create_topics(&[NewTopic::new(topic, PARTITIONS)])
            .await
        {
            Err(err) if err.code() != Some(ErrorCode::TopicAlreadyExists) => return Err(err.into()),
            _ => {}
        }
    }
    for info in admin.describe_topics(&[MOVEMENTS, SNAPSHOTS]).await? {
        let expected = usize::try_from(PARTITIONS).unwrap_or(0);
        if info.partitions.len() != expected {
            return Err(Error::Partitions {
                topic: info.name,
                found: info.partitions.len(),
                expected,
            });
        }
    }
    Ok(())
}
