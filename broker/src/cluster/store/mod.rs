//! The metadata quorum's storage in `<data>/cluster/`: the Raft log ([`log`]), the applied
//! state and its snapshot ([`machine`]), both in checksummed records ([`records`]).

pub mod log;
pub mod machine;
pub(crate) mod records;

pub use log::LogStore;
pub use machine::{Applied, MachineStore};

/// The state machine is snapshotted every this many applied entries, after which openraft
/// purges the log entries the snapshot covers: the metadata log on disk stays bounded.
pub const SNAPSHOT_EVERY: u64 = 1000;

/// An I/O failure of the metadata stores as openraft reports it (its error carries the cause
/// as text).
pub(crate) fn storage_error(
    subject: openraft::ErrorSubject<crate::cluster::node_id::NodeId>,
    verb: openraft::ErrorVerb,
    err: &dyn std::error::Error,
) -> crate::cluster::types::StorageError {
    let err = std::io::Error::other(err.to_string());
    openraft::StorageIOError::new(subject, verb, openraft::AnyError::new(&err)).into()
}
