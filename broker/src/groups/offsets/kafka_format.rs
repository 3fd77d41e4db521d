//! Committed offsets as records of Kafka's `__consumer_offsets` topic, so that Kafka's tools
//! (`kafka-console-consumer --formatter OffsetsMessageFormatter`, `kafka-dump-log
//! --offsets-decoder`) read a cluster's offsets partitions as they read Kafka's. Pure
//! functions: no I/O; decoders bound every length by the bytes present and return an error,
//! never panic.
//!
//! Big-endian, Kafka's non-flexible encoding (a `string` is an `i16` length and that many
//! bytes of UTF-8):
//!
//! ```text
//! key (OffsetCommitKey; Kafka's record type 1, written as key version 1):
//!   version    i16   1 (0 is the same layout, written by old brokers)
//!   group      string
//!   topic      string
//!   partition  i32
//! value (OffsetCommitValue version 3), or null for a tombstone:
//!   version           i16    3
//!   offset            i64
//!   leader_epoch      i32    -1 when unknown
//!   metadata          string "" when the client sent none
//!   commit_timestamp  i64    ms
//! ```
//!
//! Decoding also reads the older values Kafka wrote (version 0: offset, metadata, commit
//! timestamp; 1: the same and an expire timestamp; 2: as 0). A key of another record type
//! (2 = group metadata, and the KIP-848 records) is not an offset and is skipped by the
//! caller ([`Decoded::Other`]): Weir keeps no group metadata in the log.

use bytes::Bytes;
use weir_protocol::record_batch::{BatchBuilder, RecordInput};

use super::CommittedOffset;

/// Key version of an offset commit (Kafka's `OffsetCommitKey`, record type 1).
pub const KEY_OFFSET_COMMIT: i16 = 1;
/// Value version written (Kafka's `OffsetCommitValue` v3: with the leader epoch, without
/// the expire timestamp).
pub const VALUE_VERSION: i16 = 3;

/// One record of the offsets topic, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A commit (value present) or a tombstone (`None`) of one partition's offset.
    Offset {
        /// The consumer group.
        group: String,
        /// The committed topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// The committed value; `None` deletes it.
        value: Option<CommittedOffset>,
    },
    /// A record of another type (group metadata, KIP-848 records): not an offset.
    Other(i16),
}

/// A record of the offsets topic that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable __consumer_offsets record: {0}")]
pub struct BadRecord(pub String);

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Names and metadata are checked against the store's limits (all below i16::MAX) first.
    out.extend_from_slice(&i16::try_from(s.len()).unwrap_or(i16::MAX).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The key of `group`'s offset of `topic`-`partition`.
#[must_use]
pub fn encode_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 2 + group.len() + 2 + topic.len() + 4);
    out.extend_from_slice(&KEY_OFFSET_COMMIT.to_be_bytes());
    put_str(&mut out, group);
    put_str(&mut out, topic);
    out.extend_from_slice(&partition.to_be_bytes());
    out
}

/// The value of a committed offset (version 3).
#[must_use]
pub fn encode_value(value: &CommittedOffset) -> Vec<u8> {
    let metadata = value.metadata.as_deref().unwrap_or("");
    let mut out = Vec::with_capacity(2 + 8 + 4 + 2 + metadata.len() + 8);
    out.extend_from_slice(&VALUE_VERSION.to_be_bytes());
    out.extend_from_slice(&value.offset.to_be_bytes());
    out.extend_from_slice(&value.leader_epoch.to_be_bytes());
    put_str(&mut out, metadata);
    out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
    out
}

/// One change to a group's offsets, as it goes into a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// The new value, or `None` for a tombstone.
    pub value: Option<CommittedOffset>,
}

/// One uncompressed batch holding `changes` of `group`'s offsets, timestamped `now_ms`
/// (one record per partition: a commit's records are one Raft entry, so all or none).
/// `None` when there is nothing to write.
#[must_use]
pub fn encode_batch(group: &str, changes: &[Change], now_ms: i64) -> Option<Bytes> {
    let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> = changes
        .iter()
        .map(|c| {
            (
                encode_key(group, &c.topic, c.partition),
                c.value.as_ref().map(encode_value),
            )
        })
        .collect();
    let mut builder = BatchBuilder::new();
    for (key, value) in &encoded {
        builder.push(RecordInput {
            key: Some(key),
            value: value.as_deref(),
            timestamp: now_ms,
            ..RecordInput::default()
        });
    }
    builder.build()
}

/// Reads big-endian fields, every length checked against what is left.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], BadRecord> {
        if self.0.len() < n {
            return Err(BadRecord(format!(
                "{what}: {n} bytes needed, {} left",
                self.0.len()
            )));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn i16(&mut self, what: &str) -> Result<i16, BadRecord> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self, what: &str) -> Result<i32, BadRecord> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self, what: &str) -> Result<i64, BadRecord> {
        let b = self.take(8, what)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    fn string(&mut self, what: &str) -> Result<String, BadRecord> {
        let len = self.i16(what)?;
        let len =
            usize::try_from(len).map_err(|_negative| BadRecord(format!("{what}: length {len}")))?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| BadRecord(format!("{what}: {e}")))
    }
}

/// Decodes one record's key and value.
///
/// # Errors
/// [`BadRecord`] when the key or value is short, a length is impossible, a string is not
/// UTF-8, or the value's version is one Weir does not know.
pub fn decode(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Decoded, BadRecord> {
    let key = key.ok_or_else(|| BadRecord("a record without a key".to_owned()))?;
    let mut k = Reader(key);
    let version = k.i16("key version")?;
    if !(0..=1).contains(&version) {
        return Ok(Decoded::Other(version));
    }
    let group = k.string("group")?;
    let topic = k.string("topic")?;
    let partition = k.i32("partition")?;
    let Some(value) = value else {
        return Ok(Decoded::Offset {
            group,
            topic,
            partition,
            value: None,
        });
    };
    let mut v = Reader(value);
    let value_version = v.i16("value version")?;
    let offset = v.i64("offset")?;
    let leader_epoch = if value_version >= 3 {
        v.i32("leader epoch")?
    } else {
        -1
    };
    let metadata = v.string("metadata")?;
    let commit_timestamp_ms = v.i64("commit timestamp")?;
    match value_version {
        // Version 1's expire timestamp is not kept (Weir expires by commit time).
        1 => drop(v.i64("expire timestamp")?),
        0 | 2 | 3 => {}
        // Version 4 is flexible (tagged fields): not written by Weir.
        other => return Err(BadRecord(format!("value version {other}"))),
    }
    Ok(Decoded::Offset {
        group,
        topic,
        partition,
        value: Some(CommittedOffset {
            offset,
            leader_epoch,
            // Kafka stores a missing metadata string as "" and answers "" for it.
            metadata: (!metadata.is_empty()).then_some(metadata),
            commit_timestamp_ms,
        }),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use weir_protocol::record_batch::Records;

    use super::*;

    fn committed(offset: i64, metadata: Option<&str>) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: 7,
            metadata: metadata.map(str::to_owned),
            commit_timestamp_ms: 1_700_000_000_123,
        }
    }

    /// Bytes as Kafka's `GroupCoordinatorRecordSerde` writes them for group "g", topic "t",
    /// partition 2, offset 42, leader epoch 7, metadata "m", commit time 1_700_000_000_123,
    /// worked out field by field from `OffsetCommitKey.json` and `OffsetCommitValue.json`.
    #[test]
    fn key_and_value_match_kafkas_bytes() {
        let key = encode_key("g", "t", 2);
        assert_eq!(
            key,
            [0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 2],
            "version 1, group, topic, partition"
        );
        let value = encode_value(&committed(42, Some("m")));
        let mut expected = vec![0, 3];
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 42]);
        expected.extend_from_slice(&[0, 0, 0, 7]);
        expected.extend_from_slice(&[0, 1, b'm']);
        expected.extend_from_slice(&[0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x7B]);
        assert_eq!(value, expected);
        assert_eq!(1_700_000_000_123_i64.to_be_bytes()[..], expected[17..]);
    }

    #[test]
    fn older_value_versions_decode() {
        let key = encode_key("g", "t", 0);
        // Version 1: offset, metadata, commit timestamp, expire timestamp.
        let mut v1 = vec![0, 1];
        v1.extend_from_slice(&5_i64.to_be_bytes());
        v1.extend_from_slice(&[0, 0]);
        v1.extend_from_slice(&9_i64.to_be_bytes());
        v1.extend_from_slice(&(-1_i64).to_be_bytes());
        let decoded = decode(Some(&key), Some(&v1)).unwrap();
        let Decoded::Offset {
            value: Some(value), ..
        } = decoded
        else {
            panic!("{decoded:?}")
        };
        assert_eq!(
            value,
            CommittedOffset {
                offset: 5,
                leader_epoch: -1,
                metadata: None,
                commit_timestamp_ms: 9
            }
        );
    }

    #[test]
    fn group_metadata_and_garbage_are_told_apart() {
        let mut group_key = vec![0, 2];
        group_key.extend_from_slice(&[0, 1, b'g']);
        assert_eq!(decode(Some(&group_key), None), Ok(Decoded::Other(2)));
        assert!(decode(None, None).is_err());
        assert!(decode(Some(&[0, 1, 0x7f, 0xff]), None).is_err());
        assert!(decode(Some(&[0, 1, 0xff, 0xff]), None).is_err());
        let key = encode_key("g", "t", 0);
        assert!(decode(Some(&key), Some(&[0, 4])).is_err());
        assert!(
            decode(
                Some(&key),
                Some(&[
                    0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
                ])
            )
            .is_err()
        );
    }

    #[test]
    fn a_batch_holds_one_record_per_change() {
        let changes = [
            Change {
                topic: "t".into(),
                partition: 0,
                value: Some(committed(3, None)),
            },
            Change {
                topic: "u".into(),
                partition: 1,
                value: None,
            },
        ];
        let batch = encode_batch("g", &changes, 5).unwrap();
        let decoded: Vec<Decoded> = Records::new(&batch)
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                decode(r.key, r.value).unwrap()
            })
            .collect();
        assert_eq!(
            decoded,
            [
                Decoded::Offset {
                    group: "g".into(),
                    topic: "t".into(),
                    partition: 0,
                    value: Some(committed(3, None)),
                },
                Decoded::Offset {
                    group: "g".into(),
                    topic: "u".into(),
                    partition: 1,
                    value: None,
                },
            ]
        );
        assert_eq!(encode_batch("g", &[], 5), None);
    }

    proptest! {
        #[test]
        fn commits_round_trip(
            group in "\\PC{0,20}",
            topic in "[a-zA-Z0-9._-]{1,30}",
            partition in any::<i32>(),
            offset in any::<i64>(),
            leader_epoch in any::<i32>(),
            metadata in proptest::option::of("\\PC{1,40}"),
            commit_timestamp_ms in any::<i64>(),
            tombstone in any::<bool>(),
        ) {
            let value = CommittedOffset { offset, leader_epoch, metadata, commit_timestamp_ms };
            let key = encode_key(&group, &topic, partition);
            let encoded = (!tombstone).then(|| encode_value(&value));
            let decoded = decode(Some(&key), encoded.as_deref()).unwrap();
            prop_assert_eq!(decoded, Decoded::Offset {
                group, topic, partition, value: (!tombstone).then_some(value),
            });
        }

        #[test]
        fn no_input_panics(key in proptest::collection::vec(any::<u8>(), 0..40),
                           value in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40))) {
            // Any answer is fine; a panic fails the test.
            drop(decode(Some(&key), value.as_deref()));
        }
    }
}
