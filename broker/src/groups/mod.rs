//! Consumer groups: the coordinator and committed offsets.

pub mod coordinator;
pub mod offsets;
