//! The workload's reads of the partitions: each broker read directly (all along,
//! [`poll_broker`], and once after healing, [`read_each_broker`]) and a `weir-client`
//! consumer in assign mode ([`read_assigned`]), every record recorded as a [`Read`].
//!
//! A direct read is a Fetch (replica id -1, as a consumer) from offset 0 or where the last one
//! ended up to the high watermark the broker reports, every batch checked (CRC, length)
//! before its records are taken. A broker that answers NOT_LEADER_OR_FOLLOWER or
//! REPLICA_NOT_AVAILABLE does not serve the partition; that is not an error.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use weir_client::connection::Connection;
use weir_client::{Consumer, ConsumerConfig, OffsetReset};
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::{BatchHeader, Records, validate_batch};

use super::{Recorder, Workload, value_text};
use crate::jepsen::{Op, Read};

/// Why one broker's copy of a partition could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("{0}")]
    Client(#[from] weir_client::Error),
    #[error("fetch at {offset}: error {code}")]
    Code { offset: i64, code: i16 },
    #[error("fetch at {offset}: nothing returned below the high watermark {high_watermark}")]
    Empty { offset: i64, high_watermark: i64 },
    #[error("fetch at {offset}: a damaged batch: {detail}")]
    Batch { offset: i64, detail: String },
}

/// Every record of `partition` that broker `addr` serves, from offset 0 to its high
/// watermark: `Ok(None)` when it does not serve it (NOT_LEADER_OR_FOLLOWER, or
/// REPLICA_NOT_AVAILABLE from a replica that cannot answer yet).
///
/// # Errors
/// The connection, an error code or a damaged batch.
pub async fn read_broker_partition(
    addr: SocketAddr,
    topic: &str,
    partition: i32,
) -> Result<Option<Vec<(i64, String)>>, ReadError> {
    let connection = Connection::connect(addr, "jepsen-reader", Duration::from_secs(5)).await?;
    let mut out = Vec::new();
    Ok(read_from(&connection, topic, partition, 0, &mut out)
        .await?
        .map(|_| out))
}

/// Appends the records of `partition` from `from` up to the high watermark to `out`; the
/// offset reached, or `None` when the broker does not serve the partition.
async fn read_from(
    connection: &Connection,
    topic: &str,
    partition: i32,
    from: i64,
    out: &mut Vec<(i64, String)>,
) -> Result<Option<i64>, ReadError> {
    let mut offset = from;
    loop {
        let response = connection
            .call(crate::req::fetch(topic, partition, offset, 0, 0))
            .await?;
        let Some(p) = response
            .responses
            .first()
            .and_then(|t| t.partitions.first())
        else {
            return Err(ReadError::Code { offset, code: -1 });
        };
        if p.error_code == ErrorCode::NotLeaderOrFollower.code()
            || p.error_code == ErrorCode::ReplicaNotAvailable.code()
        {
            return Ok(None);
        }
        if p.error_code != 0 {
            return Err(ReadError::Code {
                offset,
                code: p.error_code,
            });
        }
        if offset >= p.high_watermark {
            return Ok(Some(offset));
        }
        let bytes = p.records.clone().unwrap_or_default();
        if bytes.is_empty() {
            return Err(ReadError::Empty {
                offset,
                high_watermark: p.high_watermark,
            });
        }
        offset = decode(&bytes, offset, out)?;
    }
}

/// Reads every partition from broker `id` at `addr` over and over until `stop`, each from
/// where the last read of it ended, recording the records as read by `live-node-<id>` (not
/// final): what a broker served during the faults, so that a deposed leader's records count
/// among the observations of their offsets. Errors (the node is down, paused, cut off, or
/// truncated below the position: OFFSET_OUT_OF_RANGE) are skipped, the position kept.
/// Returns how many records it read.
pub async fn poll_broker(
    w: Workload,
    id: u64,
    addr: SocketAddr,
    rec: Recorder,
    stop: Arc<AtomicBool>,
) -> u64 {
    let reader = format!("live-node-{id}");
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut count = 0;
    let mut connection: Option<Connection> = None;
    while !stop.load(Ordering::Relaxed) {
        if connection.as_ref().is_none_or(Connection::is_dead) {
            let connecting = Connection::connect(addr, "jepsen-poller", Duration::from_secs(1));
            connection = connecting.await.ok();
        }
        if let Some(conn) = &connection {
            for partition in 0..w.partitions {
                let from = next.get(&partition).copied().unwrap_or(0);
                let mut out = Vec::new();
                let reading = read_from(conn, &w.topic, partition, from, &mut out);
                let reached = match tokio::time::timeout(Duration::from_secs(2), reading).await {
                    Ok(Ok(reached)) => reached,
                    // A paused node: start afresh on a new connection next round.
                    Err(_) => {
                        connection = None;
                        break;
                    }
                    Ok(Err(_)) => None,
                };
                for (offset, value) in out {
                    count += 1;
                    rec.push(Op::Read(Read {
                        reader: reader.clone(),
                        partition,
                        offset,
                        value,
                        final_read: false,
                    }));
                }
                if let Some(reached) = reached {
                    next.insert(partition, reached);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    count
}

/// Appends the records at or after `from` in `bytes` (whole batches) to `out`; returns the
/// offset after the last batch.
fn decode(bytes: &[u8], from: i64, out: &mut Vec<(i64, String)>) -> Result<i64, ReadError> {
    let bad = |detail: String| ReadError::Batch {
        offset: from,
        detail,
    };
    let mut at = 0;
    let mut next = from;
    while at < bytes.len() {
        let header = BatchHeader::parse(&bytes[at..]).map_err(|e| bad(e.to_string()))?;
        let len = header.total_len().map_err(|e| bad(e.to_string()))?;
        let whole = bytes
            .get(at..at + len)
            .ok_or_else(|| bad("cut short".into()))?;
        validate_batch(whole).map_err(|e| bad(e.to_string()))?;
        // Control batches (a replicated partition's leader and membership entries, and the
        // markers standing for refused or retried produces) hold no records for consumers:
        // Kafka clients skip them, and so does this reader.
        if header.attributes.is_control() {
            at += len;
            next = header.next_offset();
            continue;
        }
        for record in Records::new(whole).map_err(|e| bad(e.to_string()))? {
            let record = record.map_err(|e| bad(e.to_string()))?;
            let o = record.offset(header.base_offset);
            if o >= from {
                out.push((o, value_text(record.value)));
            }
        }
        at += len;
        next = header.next_offset();
    }
    Ok(next)
}

/// Reads every partition from every node in `nodes` (`(id, Kafka address)`), recording each
/// record as read by `node-<id>`; returns, per partition, the nodes that served it.
///
/// # Errors
/// The first read that failed otherwise than by NOT_LEADER_OR_FOLLOWER.
pub async fn read_each_broker(
    w: &Workload,
    nodes: &[(u64, SocketAddr)],
    rec: &Recorder,
) -> Result<BTreeMap<i32, Vec<u64>>, (u64, i32, ReadError)> {
    let mut served: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    for partition in 0..w.partitions {
        for &(id, addr) in nodes {
            let records = read_broker_partition(addr, &w.topic, partition)
                .await
                .map_err(|err| (id, partition, err))?;
            if let Some(records) = records {
                served.entry(partition).or_default().push(id);
                for (offset, value) in records {
                    rec.push(Op::Read(Read {
                        reader: format!("node-{id}"),
                        partition,
                        offset,
                        value,
                        final_read: true,
                    }));
                }
            }
        }
    }
    Ok(served)
}

/// Reads the whole topic from offset 0 with a `weir-client` consumer in assign mode until it
/// reaches `ends` (partition -> offset to reach), recording the records as `assign`.
///
/// # Errors
/// A poll error that is not retriable, or `limit` passed before the ends were reached.
pub async fn read_assigned(
    w: &Workload,
    ends: &BTreeMap<i32, i64>,
    rec: &Recorder,
    limit: Duration,
) -> Result<usize, String> {
    let mut consumer = Consumer::new(
        ConsumerConfig::new(w.client_config())
            .auto_offset_reset(OffsetReset::Earliest)
            .fetch_wait(Duration::from_millis(100), 1),
    );
    consumer.assign(w.partitions()).map_err(|e| e.to_string())?;
    for tp in w.partitions() {
        consumer.seek(&tp, 0).map_err(|e| e.to_string())?;
    }
    let mut reached: BTreeMap<i32, i64> = BTreeMap::new();
    let mut count = 0;
    let deadline = Instant::now() + limit;
    let done = |reached: &BTreeMap<i32, i64>| {
        ends.iter()
            .all(|(p, end)| *end <= 0 || reached.get(p).is_some_and(|r| r >= end))
    };
    while !done(&reached) {
        if Instant::now() > deadline {
            return Err(format!("assign-mode read reached {reached:?} of {ends:?}"));
        }
        let records = match consumer.poll(Duration::from_millis(200)).await {
            Ok(records) => records,
            Err(err) if err.is_retriable() => continue,
            Err(err) => return Err(err.to_string()),
        };
        for r in records {
            count += 1;
            reached.insert(r.partition, r.offset + 1);
            rec.push(Op::Read(Read {
                reader: "assign".into(),
                partition: r.partition,
                offset: r.offset,
                value: value_text(r.value.as_deref()),
                final_read: true,
            }));
        }
    }
    let _closed = consumer.close().await;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_takes_the_records_from_the_position_on_and_refuses_damage() {
        let first = crate::stored(&crate::batch(3), 10);
        let second = crate::stored(&crate::batch(2), 13);
        let both = [first.as_slice(), second.as_slice()].concat();
        let mut out = Vec::new();
        // From the middle of the first batch: its earlier records are left out.
        let next = decode(&both, 11, &mut out).unwrap();
        assert_eq!(next, 15);
        let offsets: Vec<i64> = out.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, [11, 12, 13, 14]);
        assert_eq!(out[0].1, "v1");
        assert_eq!(out[2].1, "v0");
        // A batch cut short, and a flipped bit under the CRC.
        let mut out = Vec::new();
        assert!(matches!(
            decode(&both[..both.len() - 1], 10, &mut out),
            Err(ReadError::Batch { offset: 10, .. })
        ));
        let mut damaged = first.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(decode(&damaged, 10, &mut Vec::new()).is_err());
    }
}
