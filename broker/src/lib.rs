//! The Weir broker: partition logs on memory-mapped segment files, and (as later issues land)
//! the Kafka-protocol server, topic catalog and group coordinator built on them.
//!
//! # Layout
//!
//! - [`log`]: one partition's append-only log: segments, sparse indexes, group-commit flushing,
//!   crash recovery and retention. It stores raw v2 record batches and never sees other wire
//!   types.
//! - [`topics`]: legal topic names and the persisted catalog of topics and partition logs.
//! - [`clock`]: the injected wall clock used for segment rolls and retention.

pub mod clock;
pub mod log;
pub mod topics;
