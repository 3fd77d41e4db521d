//! Consumer groups: the coordinator, its async shell and committed offsets.
//!
//! - [`coordinator`]: the classic group protocol as a pure state machine (no I/O, no clock).
//! - `service`: the async shell that drives it: the clock, parked replies, timers.
//! - [`offsets`]: the committed-offsets store.

pub mod coordinator;
pub mod offsets;
pub(crate) mod service;
