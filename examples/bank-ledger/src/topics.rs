//! The three topics and their creation.
//!
//! Commands, events and snapshots have the same partition count and are all keyed by account
//! id, so an account's commands, events and snapshot share one partition index: whoever owns
//! commands partition `p` is the one writer of events partition `p` and snapshots partition
//! `p`. [`setup`] checks this before anything runs.

use weir_client::protocol::error_code::ErrorCode;
use weir_client::{Admin, ClientConfig, NewTopic};

use crate::error::{Error, Result};

/// Commands, keyed by account id (JSON [`crate::model::Command`]).
pub const COMMANDS: &str = "ledger-commands";
/// Events, keyed by account id (JSON [`crate::model::Event`]): the source of truth.
pub const EVENTS: &str = "ledger-events";
/// One snapshot of a partition's accounts per record (JSON [`crate::snapshot::Snapshot`]).
pub const SNAPSHOTS: &str = "ledger-snapshots";
/// Partitions of each topic: the most command handlers that can share the work.
pub const PARTITIONS: i32 = 4;
/// The command handlers' consumer group.
pub const HANDLER_GROUP: &str = "ledger-handler";
/// The projection's consumer group.
pub const PROJECTION_GROUP: &str = "ledger-projection";

/// Creates the topics if they do not exist and checks their partition counts.
///
/// # Errors
/// The broker's refusal, or [`Error::Partitions`] for a topic created elsewhere with another
/// partition count.
pub async fn setup(bootstrap: &str) -> Result<()> {
    let admin = Admin::new(ClientConfig::new([bootstrap]).client_id("bank-ledger-setup"));
    for topic in [COMMANDS, EVENTS, SNAPSHOTS] {
        match admin
            .create_topics(&[NewTopic::new(topic, PARTITIONS)])
            .await
        {
            Err(err) if err.code() != Some(ErrorCode::TopicAlreadyExists) => return Err(err.into()),
            _ => {}
        }
    }
    for info in admin
        .describe_topics(&[COMMANDS, EVENTS, SNAPSHOTS])
        .await?
    {
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
