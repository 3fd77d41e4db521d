//! [`Topic`]: one topic as this broker holds it — its name, the id a cluster gave it, its
//! partition count and the partitions this broker holds, and its config overrides.
//!
//! In a cluster a topic's partitions are spread over brokers: the count is the topic's,
//! cluster-wide, but only the partitions assigned to this broker have a log here (the
//! *local* ones). A broker on its own holds every partition. The topic does not know which
//! broker holds the others (the cluster's metadata does).
//!
//! Invariant: the partition count is at most [`super::MAX_PARTITIONS`], so every index fits
//! an `i32` (Kafka's partition index type); a topic may hold no partition at all here.

use std::sync::{Arc, PoisonError, RwLock};

use super::Overrides;
use crate::log::{LogConfig, PartitionLog};
use crate::topics::partition::Partition;

/// One topic and the partitions this broker holds of it.
#[derive(Debug)]
pub struct Topic {
    name: String,
    /// The id the cluster gave the topic; `None` for a topic created by a broker on its own
    /// (the catalog file then has no `id` line, as before clusters).
    id: Option<uuid::Uuid>,
    /// One slot per partition of the topic (its length is the cluster-wide count): the
    /// partition's log and producer table where this broker holds it, `None` where another
    /// broker does. A slot per index, rather than a map, keeps [`Topic::partition`] (called
    /// for every produce and fetch) one bounds-checked load.
    slots: Vec<Option<Arc<Partition>>>,
    /// The topic's config overrides by Kafka name, each checked and normalised
    /// ([`crate::topics::config`]); what the catalog file holds for it.
    overrides: RwLock<Arc<Overrides>>,
}

impl Topic {
    /// `slots` as described on the field: at most [`super::MAX_PARTITIONS`] of them.
    pub(super) fn new(
        name: String,
        id: Option<uuid::Uuid>,
        slots: Vec<Option<Arc<Partition>>>,
        overrides: Arc<Overrides>,
    ) -> Self {
        debug_assert!(slots.len() <= super::MAX_PARTITIONS as usize);
        Self {
            name,
            id,
            slots,
            overrides: RwLock::new(overrides),
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The topic id the cluster gave it; `None` for a topic created by a single broker.
    pub fn id(&self) -> Option<uuid::Uuid> {
        self.id
    }

    /// How many partitions the topic has, cluster-wide (held here or not).
    pub fn partition_count(&self) -> i32 {
        // At most MAX_PARTITIONS (the type's invariant).
        i32::try_from(self.slots.len()).unwrap_or(i32::MAX)
    }

    /// Partition `index` if this broker holds it: appends from the network go through it.
    /// `None` when the index is out of range or the partition lives on another broker.
    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.slots.get(i))
            .and_then(Option::as_ref)
    }

    /// Whether this broker holds partition `index` (false when out of range).
    pub fn is_local(&self, index: i32) -> bool {
        self.partition(index).is_some()
    }

    /// The partitions this broker holds, with their indexes, ascending.
    pub fn local_partitions(&self) -> impl Iterator<Item = (i32, &Arc<Partition>)> {
        self.slots.iter().enumerate().filter_map(|(i, slot)| {
            // Indexes fit an i32 (the type's invariant).
            Some((i32::try_from(i).ok()?, slot.as_ref()?))
        })
    }

    /// The log of partition `index`, if this broker holds it, for reads.
    pub fn log(&self, index: i32) -> Option<&Arc<PartitionLog>> {
        self.partition(index).map(|p| p.log())
    }

    /// The topic's config overrides.
    pub fn overrides(&self) -> Arc<Overrides> {
        Arc::clone(
            &self
                .overrides
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    pub(super) fn set_overrides(&self, overrides: Arc<Overrides>) {
        *self
            .overrides
            .write()
            .unwrap_or_else(PoisonError::into_inner) = overrides;
    }

    /// Every slot, by index (for growing the topic).
    pub(super) fn slots(&self) -> &[Option<Arc<Partition>>] {
        &self.slots
    }

    /// The partition count as stored (the same number as [`Self::partition_count`]).
    pub(super) fn count(&self) -> u32 {
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    /// The indexes of the local partitions when some partition is not local; `None` when this
    /// broker holds them all (the catalog file then has no `local` line).
    pub(super) fn local_indexes_if_sparse(&self) -> Option<Vec<i32>> {
        if self.slots.iter().all(Option::is_some) {
            return None;
        }
        Some(self.local_partitions().map(|(i, _)| i).collect())
    }

    /// Gives every local partition's log `config` (live: see [`PartitionLog::set_config`]).
    pub(super) fn apply(&self, config: &LogConfig) {
        for (_, partition) in self.local_partitions() {
            partition.log().set_config(config.clone());
        }
    }

    /// Writes each local partition's producer-state snapshot (if it changed); failures are
    /// logged, since a missing snapshot only costs a longer replay at the next start.
    pub fn snapshot_producers(&self) {
        for (_, partition) in self.local_partitions() {
            partition.snapshot_producers();
        }
    }
}
