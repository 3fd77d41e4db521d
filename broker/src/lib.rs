//! The Weir broker: partition logs on memory-mapped segment files behind a Kafka-protocol
//! server, so that stock Kafka clients work against it unchanged.
//!
//! # Layout
//!
//! - [`log`]: one partition's append-only log: segments, sparse indexes, group-commit flushing,
//!   crash recovery and retention. It stores raw v2 record batches and never sees other wire
//!   types.
//! - [`storage`]: the floor below `log`, `groups` and `producers`: the disk seam, atomic
//!   small-file writes, the shared sync threads and the durable watermark with fail-stop.
//! - `broker` (private; its types re-exported here): the composition root. [`Broker`] and
//!   [`Broker::builder`] assemble a broker (in-process on port 0 for tests, or from `main`)
//!   on the injected disk, clock and sync threads; the data directory's lock, the cluster id
//!   and the background upkeep (retention, producer-state snapshots, offsets compaction) live
//!   beside it.
//! - [`server`]: the Kafka-protocol server, the network only: the accept loop and admission,
//!   connections (read and write halves), dispatch, one handler per API.
//! - [`producers`]: idempotent producers: id allocation, sequence checks and deduplication,
//!   and the per-partition state's snapshots.
//! - [`groups`]: consumer groups: the coordinator and the durable store of committed offsets.
//! - [`config`]: flags and `WEIR_*` environment variables.
//! - [`topics`]: legal topic names, the persisted catalog of topics, and each partition
//!   (its log and producer table: the one door for appends from the network).
//! - [`clock`]: the injected wall clock used for segment rolls, retention, group sessions and
//!   commit timestamps.

// A function longer than this (clippy.toml: 80 lines) says why it is one piece, in the
// `reason` of an `allow`.
#![warn(clippy::too_many_lines)]

mod broker;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod groups;
mod http;
pub mod log;
pub mod metrics;
pub mod producers;
pub mod server;
pub mod storage;
pub mod testing;
pub mod topics;

pub use config::BrokerConfig;

pub use broker::{Broker, BrokerBuilder, BrokerError, DirLockError, RunningBroker, ServerStats};
