//! Sans-I/O pieces of the Kafka wire protocol shared by the Weir broker and client.
//!
//! This crate owns byte layouts and their validation. It never touches sockets, files, clocks or
//! a runtime: everything is a pure function over `&[u8]`, `Bytes` or `BytesMut`, so that broker
//! and client agree on the bytes by construction and every decoder can be fuzzed in isolation.
//!
//! # Layout
//!
//! - [`api`]: the table of supported APIs and version ranges (ApiVersions and negotiation),
//!   and the request/response header version of each API version.
//! - [`compression`]: the record-batch codecs (gzip, Snappy raw and xerial, LZ4 frame, zstd),
//!   each behind a cargo feature; decompression bounded by the caller's limit.
//! - [`consumer_protocol`]: the consumer group subscription and assignment bytes (Kafka's
//!   `ConsumerProtocolSubscription` / `ConsumerProtocolAssignment`, versions 0-3).
//! - [`error_code`]: Kafka error codes as a typed enum, with names and retriability.
//! - [`frame`]: size-prefixed framing as a `tokio_util` codec, bounded before allocation.
//! - [`message`]: whole requests and responses (header and body) to and from frames.
//! - [`record_batch`]: the v2 record batch (magic 2): header parsing, CRC-32C, in-place patching
//!   of broker-assigned fields, lazy record iteration and a builder.
//! - [`topic_name`]: Kafka's topic name rules (broker and client apply the same).
//! - [`varint`]: zigzag varints as used inside records.

pub mod api;
pub mod compression;
pub mod consumer_protocol;
pub mod error_code;
pub mod frame;
pub mod message;
pub mod record_batch;
pub mod topic_name;
pub mod varint;
