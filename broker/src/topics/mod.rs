//! Topics: legal names, the persisted catalog of topics, and their partitions.
//!
//! Owns the mapping from topic name to partitions and its file `<data-dir>/topics` (with each
//! topic's config overrides; the configs themselves are [`config`]'s), and the
//! [`Partition`], which pairs each log with its idempotent-producer table and is the one door
//! for appends from the network. It does not know the wire protocol (handlers translate its
//! errors to Kafka codes) and does not store records (each partition's
//! [`crate::log::PartitionLog`] does).

mod catalog;
pub mod config;
mod deferred_sync;
mod name;
mod parallel;
mod partition;
pub mod space;

pub use catalog::{CatalogError, CatalogOptions, MAX_PARTITIONS, Overrides, Topic, TopicCatalog};
pub use name::{MAX_TOPIC_NAME_LEN, TopicNameError, validate_topic_name};
pub use partition::{Partition, Traffic, TrafficCounts};
pub use space::{SpaceProbe, Statvfs};
