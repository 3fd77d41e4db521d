//! What the consumer hands out ([`ConsumerRecord`], [`TopicPartition`]) and the decoding of
//! fetched record bytes into records.
//!
//! Keys, values and header values are `Bytes` slices of the fetched buffer: nothing is copied.
//! Decoding skips records below the fetch offset (a fetch from the middle of a batch returns
//! the whole batch), control batches, and a partial batch at the end (the broker may cut the
//! response at its byte limit). Compressed batches are decompressed with
//! [`crate::compression`], bounded by [`DEFAULT_MAX_DECOMPRESSED`]; their records are slices
//! of the decompressed buffer.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::{
    BatchHeader, Compression, HEADER_LEN, LENGTH_PREFIX_LEN, Records, batch_len_prefix,
    validate_stored_batch,
};

use crate::compression::{DEFAULT_MAX_DECOMPRESSED, decompress};
use crate::error::Error;

/// A topic and a partition index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// One record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// The key (a string on the wire; invalid UTF-8 is replaced).
    pub key: String,
    /// The value, `None` for a null value.
    pub value: Option<Bytes>,
}

/// One record as the application receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic (shared by every record of the partition).
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// Milliseconds since the epoch (create time or log-append time, as the batch says).
    pub timestamp: i64,
    /// The key, `None` for a null key.
    pub key: Option<Bytes>,
    /// The value, `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Headers in the order they were produced.
    pub headers: Vec<RecordHeader>,
}

impl ConsumerRecord {
    /// The record's topic and partition.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.as_ref(), self.partition)
    }
}

/// The records decoded from one partition's fetched bytes.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub(crate) records: Vec<ConsumerRecord>,
    /// The offset after the last complete batch seen (at least the fetch offset).
    pub(crate) next_offset: i64,
}

/// Decodes the batches in `bytes`, keeping records at or after `fetch_offset`.
///
/// A bad batch (CRC, layout, undecodable or oversized compressed records) is an error, unless records were already
/// decoded before it: those are returned and the error comes on the next fetch, from the
/// bad batch's offset.
pub(crate) fn decode(
    tp: &TopicPartition,
    topic: &Arc<str>,
    bytes: &Bytes,
    fetch_offset: i64,
) -> Result<Decoded, Error> {
    let mut out = Decoded {
        records: Vec::new(),
        next_offset: fetch_offset,
    };
    let mut at = 0usize;
    while let Some(rest) = bytes.get(at..) {
        let len = match batch_len_prefix(rest) {
            Ok(Some(len)) if len <= rest.len() => len,
            // Fewer than 12 bytes, or a batch cut by the response's byte limit.
            Ok(_) => break,
            Err(err) => return partial(corrupt(tp, out.next_offset, &err), out),
        };
        let Some(batch) = rest.get(..len) else { break };
        // A compacted topic's batches hold fewer records than their offset span (Kafka's
        // cleaner keeps a batch's offsets and drops records), or none at all.
        let header = match validate_stored_batch(batch) {
            Ok(h) => h,
            Err(err) => return partial(corrupt(tp, out.next_offset, &err), out),
        };
        at += len.max(LENGTH_PREFIX_LEN);
        if header.next_offset() <= out.next_offset {
            continue;
        }
        if header.attributes.is_control() {
            out.next_offset = header.next_offset();
            continue;
        }
        let codec = match header.attributes.compression() {
            Ok(codec) => codec,
            Err(err) => return partial(corrupt(tp, header.base_offset, &err), out),
        };
        let plain_records = batch.get(HEADER_LEN..).unwrap_or_default();
        let decompressed;
        let (owner, raw): (&Bytes, &[u8]) = if codec == Compression::None {
            (bytes, plain_records)
        } else {
            match decompress(codec, plain_records, DEFAULT_MAX_DECOMPRESSED) {
                Ok(plain) => {
                    decompressed = Bytes::from(plain);
                    (&decompressed, &decompressed[..])
                }
                Err(err) => return partial(corrupt(tp, header.base_offset, &err), out),
            }
        };
        let records = Records::from_raw(raw, header.records_count);
        if let Err(err) = push_records(&mut out, topic, tp.partition, owner, records, &header) {
            return partial(corrupt(tp, header.base_offset, &err), out);
        }
        out.next_offset = header.next_offset();
    }
    Ok(out)
}

/// Records decoded so far win over the error; with none, the error is the answer.
fn partial(err: Error, out: Decoded) -> Result<Decoded, Error> {
    if out.records.is_empty() {
        Err(err)
    } else {
        tracing::debug!(error = %err, "returning the records before a bad batch");
        Ok(out)
    }
}

fn corrupt(tp: &TopicPartition, offset: i64, err: &dyn std::error::Error) -> Error {
    Error::Kafka {
        code: ErrorCode::CorruptMessage.code(),
        message: Some(format!("at offset {offset}: {err}")),
        context: format!("fetching {tp}"),
    }
}

fn push_records(
    out: &mut Decoded,
    topic: &Arc<str>,
    partition: i32,
    owner: &Bytes,
    records: Records<'_>,
    header: &BatchHeader,
) -> Result<(), weir_protocol::record_batch::BatchError> {
    let log_append = header.attributes.timestamp_type()
        == weir_protocol::record_batch::TimestampType::LogAppendTime;
    for record in records {
        let record = record?;
        let offset = record.offset(header.base_offset);
        if offset < out.next_offset {
            continue;
        }
        let slice = |s: &[u8]| owner.slice_ref(s);
        out.records.push(ConsumerRecord {
            topic: Arc::clone(topic),
            partition,
            offset,
            timestamp: if log_append {
                header.max_timestamp
            } else {
                record.timestamp(header.base_timestamp)
            },
            key: record.key.map(slice),
            value: record.value.map(slice),
            headers: record
                .headers
                .iter()
                .map(|h| RecordHeader {
                    key: String::from_utf8_lossy(h.key).into_owned(),
                    value: h.value.map(slice),
                })
                .collect(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use weir_protocol::record_batch::{
        BatchBuilder, RecordInput, set_base_offset, with_compressed_records,
    };

    use super::*;

    fn batch(base: i64, values: &[&str]) -> Bytes {
        let mut b = BatchBuilder::new();
        for (i, v) in values.iter().enumerate() {
            b.push(RecordInput {
                key: Some(b"k"),
                value: Some(v.as_bytes()),
                headers: &[(b"h", Some(b"x"))],
                timestamp: 1000 + i64::try_from(i).unwrap(),
            });
        }
        let mut bytes = b.build().unwrap().to_vec();
        set_base_offset(&mut bytes, base);
        Bytes::from(bytes)
    }

    /// `plain` with its records section cut to the first record and `RecordsCount` set to
    /// `count`, keeping its offset span: what a log cleaner leaves (`count` 0: an emptied
    /// batch).
    fn compacted(plain: &[u8], first_record_len: usize, count: i32) -> Vec<u8> {
        let keep = if count == 0 { 0 } else { first_record_len };
        let mut head = plain[..HEADER_LEN].to_vec();
        head[57..61].copy_from_slice(&count.to_be_bytes());
        // Sets the length and the CRC for the new records section.
        with_compressed_records(
            &head,
            Compression::None,
            &plain[HEADER_LEN..HEADER_LEN + keep],
        )
        .unwrap()
        .to_vec()
    }

    #[test]
    fn compacted_batches_are_read_and_skipped_by_their_span() {
        let tp = TopicPartition::new("t", 0);
        let topic: Arc<str> = Arc::from("t");
        let one = batch(0, &["a"]);
        let three = batch(20, &["a", "b", "c"]);
        let mut all = compacted(&three, one.len() - HEADER_LEN, 1);
        all.extend_from_slice(&compacted(&batch(23, &["d", "e"]), 0, 0));
        all.extend_from_slice(&batch(25, &["f"]));
        let decoded = decode(&tp, &topic, &Bytes::from(all), 20).unwrap();
        let offsets: Vec<i64> = decoded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [20, 25]);
        assert_eq!(decoded.next_offset, 26);
    }

    #[test]
    fn skips_records_before_the_fetch_offset_and_a_cut_tail() {
        let tp = TopicPartition::new("t", 0);
        let topic: Arc<str> = Arc::from("t");
        let mut all = batch(10, &["a", "b", "c"]).to_vec();
        all.extend_from_slice(&batch(13, &["d"]));
        let second = batch(14, &["e", "f"]);
        all.extend_from_slice(&second[..second.len() - 3]);
        let decoded = decode(&tp, &topic, &Bytes::from(all), 11).unwrap();
        let offsets: Vec<i64> = decoded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [11, 12, 13]);
        assert_eq!(decoded.next_offset, 14);
        let r = &decoded.records[0];
        assert_eq!(r.value.as_deref(), Some(&b"b"[..]));
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.timestamp, 1001);
        assert_eq!(r.headers[0].key, "h");
    }

    fn compressed(plain: &[u8], codec: Compression, section: &[u8]) -> Vec<u8> {
        let mut bytes = with_compressed_records(plain, codec, section)
            .unwrap()
            .to_vec();
        set_base_offset(
            &mut bytes,
            i64::from_be_bytes(plain[..8].try_into().unwrap()),
        );
        bytes
    }

    #[test]
    fn compressed_batches_are_decoded() {
        let tp = TopicPartition::new("t", 0);
        let mut all = Vec::new();
        let codecs = [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        for (i, codec) in (0i64..).zip(codecs) {
            let plain = batch(i * 2, &["x", "y"]);
            let section = crate::compression::compress(codec, &plain[HEADER_LEN..]).unwrap();
            all.extend_from_slice(&compressed(&plain, codec, &section));
        }
        let decoded = decode(&tp, &Arc::from("t"), &Bytes::from(all), 3).unwrap();
        let offsets: Vec<i64> = decoded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [3, 4, 5, 6, 7]);
        assert_eq!(decoded.next_offset, 8);
        let r = &decoded.records[0];
        assert_eq!(r.value.as_deref(), Some(&b"y"[..]));
        assert_eq!(r.timestamp, 1001);
        assert_eq!(r.headers[0].value.as_deref(), Some(&b"x"[..]));
    }

    #[test]
    fn an_undecodable_compressed_batch_is_corrupt() {
        let tp = TopicPartition::new("t", 0);
        let plain = batch(0, &["a"]);
        let bytes = compressed(&plain, Compression::Gzip, b"not gzip at all");
        let err = decode(&tp, &Arc::from("t"), &Bytes::from(bytes), 0).unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::CorruptMessage));
        assert!(err.to_string().contains("Gzip"), "{err}");

        // Records that decompress fine but do not match the header's count.
        let section = crate::compression::compress(Compression::Lz4, b"\x02").unwrap();
        let bytes = compressed(&plain, Compression::Lz4, &section);
        let err = decode(&tp, &Arc::from("t"), &Bytes::from(bytes), 0).unwrap_err();
        assert_eq!(err.code(), Some(ErrorCode::CorruptMessage));
    }
}
