//! The domain: stock movements (facts stamped with the time they happened), stock levels as
//! their fold, and snapshots of a partition's levels.
//!
//! Pure: no I/O, no clock. The time of a movement is its record's timestamp (Kafka's
//! CreateTime), set by whoever records it; [`Stock::apply`] is the only way levels change,
//! so the snapshotter, the as-of query and the test's brute-force check agree by
//! construction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Goods moving in or out of the warehouse, keyed by SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    /// Unique per movement (a scanner's id and counter).
    pub id: String,
    /// The stock-keeping unit.
    pub sku: String,
    /// Units in (positive) or out (negative).
    pub delta: i64,
    /// Why, for people: "received", "shipped", "count correction".
    pub reason: String,
}

/// Stock levels: the fold of movements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    /// Units on hand per SKU (negative when more was shipped than recorded as received: the
    /// log records what happened, it does not refuse facts).
    pub levels: BTreeMap<String, i64>,
    /// Movements folded in.
    pub movements: u64,
}

impl Stock {
    /// Folds one movement in.
    pub fn apply(&mut self, movement: &Movement) {
        *self.levels.entry(movement.sku.clone()).or_default() += movement.delta;
        self.movements += 1;
    }

    /// Adds another partition's stock (SKUs never share partitions, so nothing overlaps).
    pub fn merge(&mut self, other: &Self) {
        for (sku, level) in &other.levels {
            *self.levels.entry(sku.clone()).or_default() += level;
        }
        self.movements += other.movements;
    }
}

/// One partition's stock, covering its movements below `next_offset`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The movements partition.
    pub partition: i32,
    /// The first movements offset not folded in.
    pub next_offset: i64,
    /// The timestamp of the last movement folded in (-1 for none); also the snapshot
    /// record's own timestamp, so snapshots can be found by time with ListOffsets too.
    pub last_timestamp: i64,
    /// The levels.
    pub stock: Stock,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_and_merging_add_up() {
        let m = |sku: &str, delta| Movement {
            id: format!("{sku}{delta}"),
            sku: sku.to_owned(),
            delta,
            reason: String::new(),
        };
        let mut a = Stock::default();
        a.apply(&m("fig", 5));
        a.apply(&m("fig", -2));
        let mut b = Stock::default();
        b.apply(&m("kiwi", 7));
        a.merge(&b);
        assert_eq!(
            a.levels,
            BTreeMap::from([("fig".into(), 3), ("kiwi".into(), 7)])
        );
        assert_eq!(a.movements, 3);
    }
}
