//! The scripted session `stock-history` runs by default: three business days of movements
//! recorded with their times, the snapshotter as a task, then stock as of several moments,
//! each answer showing which snapshot it started from and how many movements it replayed.

use std::time::Duration;

use weir_client::backoff::{JitterSource, SplitMix64};
use weir_client::{Producer, ProducerConfig, ProducerRecord};

use crate::error::{Error, Result};
use crate::model::Movement;
use crate::query::{self, AsOf};
use crate::snapshotter::{self, SnapshotterConfig};
use crate::time::{self, DAY_MS};
use crate::topics::{self, MOVEMENTS};

/// The SKUs of the demo's warehouse: two on each partition.
pub const SKUS: [&str; 6] = ["apple", "pear", "plum", "mango", "kiwi", "peach"];

const HOUR_MS: i64 = 3_600_000;

/// Three days of movements, starting on the day that begins at `first_day_ms` (UTC
/// midnight), in time order: deliveries in the morning, shipments and the odd correction
/// through the day. The same every run for the same day.
pub fn script(first_day_ms: i64) -> Vec<(i64, Movement)> {
    let mut rng = SplitMix64::new(7);
    let mut below = |n: u64| i64::try_from(rng.next_u64() % n).unwrap_or(0);
    let mut on_hand = [0_i64; SKUS.len()];
    let mut out = Vec::new();
    for day in 0..3 {
        let mut at = first_day_ms + day * DAY_MS + 8 * HOUR_MS;
        for n in 0..30 {
            at += (1 + below(40)) * 60_000;
            let i = usize::try_from(below(6)).unwrap_or(0);
            let (delta, reason) = match n {
                0..6 => (10 + below(40), "received"),
                _ if below(10) == 0 => (below(5) - 2, "count correction"),
                // Ship what is there; an empty shelf gets a delivery instead.
                _ if on_hand[i] > 0 => (-(1 + below(8)).min(on_hand[i]), "shipped"),
                _ => (5 + below(20), "received"),
            };
            let delta = delta.max(-on_hand[i]);
            on_hand[i] += delta;
            let movement = Movement {
                id: format!("day{day}-{n}"),
                sku: SKUS[i].to_owned(),
                delta,
                reason: reason.to_owned(),
            };
            out.push((at, movement));
        }
    }
    out
}

/// Records movements with their times (one producer: per partition, stamps never go back).
///
/// # Errors
/// The client's failure.
pub async fn record(bootstrap: &str, movements: &[(i64, Movement)]) -> Result<()> {
    let producer = Producer::new(ProducerConfig::new([bootstrap]))?;
    let mut pending = Vec::new();
    for (at, movement) in movements {
        let value = serde_json::to_vec(movement).map_err(Error::Encode)?;
        let record = ProducerRecord::new(MOVEMENTS, value)
            .key(movement.sku.clone())
            .timestamp(*at);
        let delivery = producer.send(record).await.map_err(Box::new)?;
        pending.push(delivery);
    }
    for delivery in pending {
        delivery.await.map_err(|source| Error::Delivery {
            what: "movement".to_owned(),
            source,
        })?;
    }
    producer.close().await.map_err(Error::from)
}

/// One line of the table: the levels and where the answer came from.
pub fn print_row(answer: &AsOf) {
    let levels: Vec<String> = SKUS
        .iter()
        .map(|sku| format!("{:>6}", answer.stock.levels.get(*sku).copied().unwrap_or(0)))
        .collect();
    let replayed: i64 = answer.partitions.iter().map(|p| p.cut - p.from).sum();
    let snapshots = answer
        .partitions
        .iter()
        .filter(|p| p.snapshot.is_some())
        .count();
    println!(
        "{}  {}   {snapshots} snapshots + {replayed} movements replayed",
        time::format(answer.time),
        levels.join("")
    );
}

/// Runs the session against `bootstrap`; `today_ms` is any time on the day after the last
/// simulated one.
///
/// # Errors
/// Any failure of the services or queries.
pub async fn run(bootstrap: &str, today_ms: i64) -> Result<()> {
    topics::setup(bootstrap).await?;
    let first_day = today_ms.div_euclid(DAY_MS) * DAY_MS - 3 * DAY_MS;
    let movements = script(first_day);
    let snapshotter = tokio::spawn(snapshotter::run(SnapshotterConfig {
        bootstrap: bootstrap.to_owned(),
        session_timeout: Duration::from_secs(6),
        snapshot_every: 10,
        crashes: None,
    }));
    println!(
        "recording {} movements from {} to {}",
        movements.len(),
        time::format(movements.first().map_or(0, |m| m.0)),
        time::format(movements.last().map_or(0, |m| m.0)),
    );
    record(bootstrap, &movements).await?;
    let caught_up = snapshotter::wait_caught_up(bootstrap, Duration::from_secs(60)).await;
    snapshotter.abort();
    caught_up?;
    println!(
        "\nstock as of (movements stamped before that time count):\n{:<19}  {}",
        "time (UTC)",
        SKUS.map(|s| format!("{s:>6}")).join("")
    );
    let mut times = vec![first_day + 7 * HOUR_MS];
    for day in 0..3 {
        times.push(first_day + day * DAY_MS + 12 * HOUR_MS);
        times.push(first_day + day * DAY_MS + 23 * HOUR_MS);
    }
    for at in times {
        print_row(&query::as_of(bootstrap, at).await?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use weir_client::partitioner::partition_for_key;

    use super::*;
    use crate::topics::PARTITIONS;

    #[test]
    fn every_partition_has_skus_and_the_script_never_goes_below_zero() {
        for p in 0..PARTITIONS {
            let on_p = SKUS
                .iter()
                .filter(|s| partition_for_key(s.as_bytes(), PARTITIONS) == Some(p))
                .count();
            assert_eq!(on_p, 2, "partition {p}");
        }
        let script = script(0);
        assert!(script.windows(2).all(|w| w[0].0 <= w[1].0), "in time order");
        for sku in SKUS {
            let mut level = 0;
            for (_, m) in script.iter().filter(|(_, m)| m.sku == sku) {
                level += m.delta;
                assert!(level >= 0, "{sku} below zero at {}", m.id);
            }
        }
    }
}
