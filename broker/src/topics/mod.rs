//! Topics: legal names, and the persisted catalog of topics with their partitions' logs.
//!
//! Owns the mapping from topic name to partition logs and its file `<data-dir>/topics`. It
//! does not know the wire protocol (handlers translate its errors to Kafka codes) and does not
//! store records (each partition's [`crate::log::PartitionLog`] does).

mod catalog;
mod deferred_sync;
mod name;
mod parallel;
pub mod space;

pub use catalog::{CatalogError, CatalogOptions, MAX_PARTITIONS, Topic, TopicCatalog};
pub use name::{MAX_TOPIC_NAME_LEN, TopicNameError, validate_topic_name};
pub use space::{SpaceProbe, Statvfs};
