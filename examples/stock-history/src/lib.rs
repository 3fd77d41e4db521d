//! `stock-history`: warehouse stock as of any moment, from an event log on Weir. The second
//! demo, for what the ledger does not show: events stamped with when they happened, and
//! temporal queries answered with ListOffsets by timestamp and timestamped snapshots.
//! Read the README first.
//!
//! # Layout
//!
//! - [`model`]: movements, stock levels as their fold, snapshots: pure.
//! - [`topics`]: the movements and snapshots topics; their creation.
//! - [`log`]: end offsets, offsets by timestamp, reading a partition's records.
//! - [`snapshotter`]: the service that folds movements into timestamped snapshots.
//! - [`query`]: stock as of a time.
//! - [`time`]: UTC dates to and from milliseconds.
//! - [`demo`]: the scripted session.
//! - [`embedded`]: the in-process broker.
//! - [`error`]: the one error type, [`Error`].

pub mod demo;
pub mod error;
pub mod model;
pub mod query;
pub mod snapshotter;
pub mod time;
pub mod topics;

pub use error::{Error, Result};
/// Shared with the other demo: reading the log, the embedded broker.
pub use event_kit::{embedded, log};
