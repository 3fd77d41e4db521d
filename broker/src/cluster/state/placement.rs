//! Where a new topic's (or new partitions') replicas go: Kafka's rack-unaware assignment,
//! round robin over the live brokers from a random start, so partitions and leadership
//! spread evenly and two topics created one after the other do not both start on the same
//! broker.

use crate::cluster::node_id::NodeId;

/// `replicas` replicas each (at most `live.len()`) of `count` partitions over `live`
/// brokers (ascending ids): partition `p`'s preferred leader is `live[(start + p) % n]` and
/// its followers the brokers after it, so leaders and replicas both spread evenly. Empty
/// when no broker is live.
#[must_use]
pub fn place(live: &[NodeId], count: usize, replicas: usize, start: usize) -> Vec<Vec<NodeId>> {
    if live.is_empty() {
        return Vec::new();
    }
    let replicas = replicas.clamp(1, live.len());
    (0..count)
        .map(|p| {
            (0..replicas)
                .map(|k| live[(start + p + k) % live.len()])
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_round_robin_from_the_start() {
        assert_eq!(
            place(&[1, 2, 3], 6, 1, 1),
            vec![vec![2], vec![3], vec![1], vec![2], vec![3], vec![1]]
        );
        assert!(place(&[], 3, 1, 0).is_empty());
        assert_eq!(
            place(&[1, 2, 3], 3, 3, 0),
            vec![vec![1, 2, 3], vec![2, 3, 1], vec![3, 1, 2]]
        );
        assert_eq!(
            place(&[1, 2], 1, 5, 1),
            vec![vec![2, 1]],
            "never more than the brokers"
        );
    }

    #[test]
    fn every_broker_leads_within_one_of_the_others() {
        for count in 1..20 {
            for start in 0..5 {
                let placed = place(&[1, 2, 3, 4, 5], count, 3, start);
                let mut per = [0_usize; 6];
                for r in &placed {
                    per[usize::try_from(r[0]).unwrap()] += 1;
                }
                let (min, max) = (per[1..].iter().min(), per[1..].iter().max());
                assert!(max.unwrap() - min.unwrap() <= 1, "{count} {start}: {per:?}");
            }
        }
    }
}
