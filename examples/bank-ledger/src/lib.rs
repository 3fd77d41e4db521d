//! `bank-ledger`: an event-sourced bank ledger on Weir, as a library the binary and the tests
//! share. Read the README first; it explains the patterns this code shows.
//!
//! # Layout
//!
//! - [`model`]: commands, events, the account aggregate (`decide`, `apply`): pure.
//! - [`topics`]: the commands, events and snapshots topics; their creation.
//! - [`log`]: reading a partition's records and end offsets.
//! - [`snapshot`]: partition snapshots and rebuilding state from the latest one.
//! - [`handler`]: the command handler (consumer group, one writer per partition, the saga).
//! - [`projection`]: the read model service, checkpointed with the offsets it covers.
//! - [`verify`]: the invariants over the whole log.
//! - [`settle`]: waiting until the services caught up.
//! - [`demo`]: the scripted session.
//! - [`embedded`]: the in-process broker.
//! - [`error`]: the one error type, [`Error`].

pub mod demo;
pub mod error;
pub mod handler;
pub mod model;
pub mod projection;
pub mod settle;
pub mod snapshot;
pub mod topics;
pub mod verify;

pub use error::{Error, Result};
/// Shared with the other demo: reading the log, the embedded broker.
pub use event_kit::{embedded, log};
