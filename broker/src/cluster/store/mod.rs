//! The metadata quorum's storage in `<data>/cluster/`: the Raft log ([`log`]), the applied
//! state and its snapshot ([`machine`]), both in checksummed records ([`records`]).

pub mod log;
pub mod machine;
mod records;

pub use log::LogStore;
pub use machine::{Applied, MachineStore};

/// The state machine is snapshotted every this many applied entries, after which openraft
/// purges the log entries the snapshot covers: the metadata log on disk stays bounded.
pub const SNAPSHOT_EVERY: u64 = 1000;
