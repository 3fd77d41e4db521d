//! Reading a partition's log: its end offset, and the records in an offset range.
//!
//! Services rebuild state from here (the ledger's handler an account partition, its verifier
//! whole topics; stock-history's snapshotter and as-of queries). A range is read with a consumer of its own, assigned (no group), so reading never disturbs
//! a group's committed offsets.

use std::time::Duration;

use serde::de::DeserializeOwned;
use weir_client::{
    ClientConfig, Cluster, Consumer, ConsumerConfig, ConsumerRecord, TopicPartition,
};

use crate::{Error, Result};

/// The longest a range read may take before it is reported as stuck.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The log end offset of each of `topic`'s partitions `0..partitions`.
///
/// # Errors
/// The client's failure.
pub async fn end_offsets(bootstrap: &str, topic: &str, partitions: i32) -> Result<Vec<i64>> {
    offsets_for(bootstrap, topic, partitions, -1).await
}

/// For each partition, the offset of the first record stamped at or after `timestamp_ms`, or
/// -1 when there is none (ListOffsets by timestamp); -1 and -2 ask for the end and the start.
///
/// # Errors
/// The client's failure.
pub async fn offsets_for(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    timestamp_ms: i64,
) -> Result<Vec<i64>> {
    let cluster = Cluster::new(ClientConfig::new([bootstrap]).client_id("event-kit-offsets"));
    let request: Vec<(String, i32, i64)> = (0..partitions)
        .map(|p| (topic.to_owned(), p, timestamp_ms))
        .collect();
    let mut answers = cluster.list_offsets(&request).await?;
    (0..partitions)
        .map(|p| match answers.remove(&(topic.to_owned(), p)) {
            Some(answer) => Ok(answer?),
            None => Err(Error::Timeout(format!("no answer for {topic}-{p}"))),
        })
        .collect()
}

/// The records of `topic`-`partition` at offsets `from..to`.
///
/// # Errors
/// The client's failure, or [`Error::Timeout`] after [`READ_TIMEOUT`].
pub async fn read(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    from: i64,
    to: i64,
) -> Result<Vec<ConsumerRecord>> {
    let mut out = Vec::new();
    if from >= to {
        return Ok(out);
    }
    let tp = TopicPartition::new(topic, partition);
    let mut consumer = Consumer::new(
        ConsumerConfig::new(ClientConfig::new([bootstrap]).client_id("event-kit-reader"))
            .fetch_wait(Duration::from_millis(100), 1),
    );
    consumer.assign([tp.clone()])?;
    consumer.seek(&tp, from)?;
    let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
    let mut next = from;
    while next < to {
        if tokio::time::Instant::now() > deadline {
            return Err(Error::Timeout(format!(
                "reading {tp} {from}..{to}, at {next}"
            )));
        }
        for record in consumer.poll(Duration::from_millis(200)).await? {
            next = record.offset + 1;
            if record.offset < to {
                out.push(record);
            }
        }
    }
    consumer.close().await?;
    Ok(out)
}

/// Decodes a record's JSON value.
///
/// # Errors
/// [`Error::Decode`] for a missing or malformed value.
pub fn decode<T: DeserializeOwned>(record: &ConsumerRecord) -> Result<T> {
    let bytes = record.value.as_deref().unwrap_or_default();
    serde_json::from_slice(bytes).map_err(|source| Error::Decode {
        topic: record.topic.to_string(),
        partition: record.partition,
        offset: record.offset,
        source,
    })
}
