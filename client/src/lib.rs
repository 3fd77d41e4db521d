//! `weir-client`: producer, consumer and admin for Weir and any Kafka-protocol broker.
//!
//! The crate is filled by the client issue; today it only re-exports the protocol pieces it
//! will be built on, so that the dependency direction (client -> protocol, never broker) is
//! fixed from the start.

pub use weir_protocol as protocol;
