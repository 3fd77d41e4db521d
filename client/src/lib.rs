//! `weir-client`: the Rust client for Weir and any Kafka-protocol broker.
//!
//! # Layout
//!
//! - [`config`]: [`ClientConfig`], the builder of settings shared by every client.
//! - [`connection`]: one broker connection: framing, API version negotiation against the
//!   shared table, pipelined requests.
//! - [`cluster`]: brokers, cached topic metadata (leaders, replicas, ISR, leader epochs),
//!   one connection per broker, reconnection with backoff; routing to partition leaders, and
//!   metadata learned through any broker left.
//! - [`admin`]: [`Admin`]: topics and consumer groups.
//! - [`consumer`]: [`Consumer`]: assigned or group-managed partitions, bounded prefetch,
//!   committed offsets, range and round-robin assignors.
//! - [`producer`]: [`Producer`]: batching, backpressure, retries, idempotent delivery.
//! - [`compression`]: the batch codecs (gzip, Snappy, LZ4, zstd), decompression bounded;
//!   `weir_protocol::compression`, re-exported here.
//! - [`backoff`]: exponential backoff with jitter as a plain iterator, random source injected.
//! - [`random`]: the injected random source ([`random::JitterSource`], [`random::SplitMix64`]).
//! - [`partitioner`]: Kafka's murmur2 key partitioning and sticky partitioning.
//! - [`error`]: [`Error`], which says whether a retry can help and keeps the Kafka code.
//! - [`topic_name`]: Kafka's topic name rules, checked before a name is sent.
//!
//! The client depends on `weir-protocol` only, never on the broker.

// A function longer than this (clippy.toml: 80 lines) says why it is one piece, in the
// `reason` of an `allow`.
#![warn(clippy::too_many_lines)]

pub mod admin;
pub mod backoff;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod partitioner;
pub mod producer;
pub mod random;
pub mod topic_name;

pub use admin::{Admin, GroupDescription, GroupListing, GroupMember, NewTopic, PartitionLag};
pub use cluster::{Cluster, PartitionInfo, TopicInfo};
pub use config::ClientConfig;
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, TopicPartition};
pub use error::{Error, Result};
pub use producer::{DeliveryFuture, Producer, ProducerConfig, ProducerRecord, RecordMetadata};
pub use weir_protocol as protocol;
/// The batch codecs, which live in the sans-I/O protocol crate.
pub use weir_protocol::compression;
