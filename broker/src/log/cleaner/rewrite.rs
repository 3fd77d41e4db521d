//! Rewriting one stored batch without the records the cleaner drops.
//!
//! Owns the byte-level rules of a cleaned batch, which are Kafka's (`MemoryRecords.filterTo`):
//! - the batch keeps its `BaseOffset`, `LastOffsetDelta`, producer id, epoch and base sequence,
//!   and each kept record its offset delta, so offsets never move and the producer's sequence
//!   range survives; `RecordsCount` becomes the number kept (possibly below the span);
//! - a compressed batch is decompressed (bounded) and its kept records compressed again with
//!   the same codec;
//! - a batch whose tombstones are kept for the first time gets a delete horizon (KIP-534):
//!   attribute bit 6 set and `BaseTimestamp` = now + `delete.retention.ms`, the records'
//!   timestamp deltas rewritten against it so every record keeps its timestamp;
//! - a batch left with no record is kept as an empty batch (header only, uncompressed) when it
//!   is one of the last batches of an idempotent producer; otherwise it is dropped and its
//!   offsets are covered by a *filler*: one empty batch with no producer spanning a run of
//!   dropped batches, so that offsets stay dense from batch to batch (reads and recovery
//!   count offsets across batches to detect damage; see `docs/storage-format.md`).
//!
//! Does not decide which records to keep (the caller's `keep` does) and does no I/O.

use std::borrow::Cow;

use bytes::BufMut;
use weir_protocol::compression::{self, CompressionError};
use weir_protocol::record_batch::{
    BatchError, BatchHeader, Compression, HEADER_LEN, LENGTH_PREFIX_LEN, MAGIC_V2, Record, Records,
    field,
};
use weir_protocol::varint::{encode_varint, encode_varlong, varint_len, varlong_len};

/// Attribute bit 6: `BaseTimestamp` holds the delete horizon (KIP-534).
pub(crate) const DELETE_HORIZON: i16 = 0x40;
/// Attribute bit 5: a control batch (transaction markers), never cleaned.
const CONTROL: i16 = 0x20;

/// The most bytes a batch's records may decompress to; a larger batch stops the cleaning of
/// its log (reported), rather than letting one batch take unbounded memory.
pub const DECOMPRESSED_BATCH_MAX_BYTES: usize = 64 << 20;

/// Why a batch could not be rewritten.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RewriteError {
    /// The batch or one of its records does not parse.
    #[error("batch at offset {offset} is malformed: {source}")]
    Malformed {
        /// Its base offset.
        offset: i64,
        /// What is wrong.
        source: BatchError,
    },
    /// Its records could not be decompressed or compressed again.
    #[error("batch at offset {offset}: {source}")]
    Codec {
        /// Its base offset.
        offset: i64,
        /// The codec's error.
        source: CompressionError,
    },
}

/// What a record looks like to the decision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate<'a> {
    /// Its absolute offset.
    pub(crate) offset: i64,
    pub(crate) key: Option<&'a [u8]>,
    /// A tombstone has no value.
    pub(crate) tombstone: bool,
}

/// The decision for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep,
    Drop,
}

/// What became of a batch.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Every record kept and no horizon to set: copy the stored bytes.
    Unchanged,
    /// The rewritten batch (fewer records, or a new delete horizon, or emptied but kept).
    Rewritten(Vec<u8>),
    /// Nothing kept and not a producer's batch to keep: covered by a filler.
    Dropped,
}

/// The context of one batch's cleaning.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchRules {
    /// Cleaner time.
    pub(crate) now_ms: i64,
    /// The log's `delete.retention.ms`.
    pub(crate) delete_retention_ms: i64,
    /// One of the last batches of its idempotent producer: kept even when emptied.
    pub(crate) producer_keeps: bool,
}

/// Cleans one stored batch (`bytes`, whose `header` was parsed and verified).
/// `keep` decides each record; tombstones it keeps are dropped here once their horizon
/// passed.
pub(crate) fn clean_batch(
    bytes: &[u8],
    header: &BatchHeader,
    rules: BatchRules,
    mut keep: impl FnMut(Candidate<'_>) -> Verdict,
) -> Result<Outcome, RewriteError> {
    let offset = header.base_offset;
    let malformed = |source| RewriteError::Malformed { offset, source };
    let attributes = header.attributes.0;
    if attributes & CONTROL != 0 {
        return Ok(Outcome::Unchanged);
    }
    let codec = header.attributes.compression().map_err(malformed)?;
    let records = records_section(bytes, header)?;
    let horizon = (attributes & DELETE_HORIZON != 0).then_some(header.base_timestamp);
    let expired = super::policy::tombstone_expired(horizon, rules.now_ms);
    let mut kept: Vec<Record<'_>> = Vec::new();
    let mut dropped_any = false;
    let mut kept_tombstone = false;
    for record in Records::from_raw(&records, header.records_count) {
        let record = record.map_err(malformed)?;
        let candidate = Candidate {
            offset: record.offset(header.base_offset),
            key: record.key,
            tombstone: record.value.is_none(),
        };
        let verdict = match keep(candidate) {
            Verdict::Keep if candidate.tombstone && expired => Verdict::Drop,
            v => v,
        };
        match verdict {
            Verdict::Keep => {
                kept_tombstone |= candidate.tombstone;
                kept.push(record);
            }
            Verdict::Drop => dropped_any = true,
        }
    }
    let set_horizon = kept_tombstone && horizon.is_none();
    if !dropped_any && !set_horizon {
        return Ok(Outcome::Unchanged);
    }
    if kept.is_empty() {
        return Ok(if rules.producer_keeps {
            Outcome::Rewritten(empty_batch(bytes, header))
        } else {
            Outcome::Dropped
        });
    }
    let base_timestamp = if set_horizon {
        rules
            .now_ms
            .saturating_add(rules.delete_retention_ms.max(0))
    } else {
        header.base_timestamp
    };
    let attributes = if set_horizon {
        attributes | DELETE_HORIZON
    } else {
        attributes
    };
    rebuild(bytes, header, &kept, codec, (attributes, base_timestamp)).map(Outcome::Rewritten)
}

/// The batch with only `kept` records, compressed with `codec`, carrying `attributes` and
/// `base_timestamp` (the record timestamps are re-based on it).
fn rebuild(
    bytes: &[u8],
    header: &BatchHeader,
    kept: &[Record<'_>],
    codec: Compression,
    (attributes, base_timestamp): (i16, i64),
) -> Result<Vec<u8>, RewriteError> {
    let mut body = Vec::with_capacity(bytes.len());
    for r in kept {
        let timestamp = r.timestamp(header.base_timestamp);
        encode_record(r, timestamp.wrapping_sub(base_timestamp), &mut body);
    }
    let body = if codec == Compression::None {
        body
    } else {
        compression::compress(codec, &body).map_err(|source| RewriteError::Codec {
            offset: header.base_offset,
            source,
        })?
    };
    let count = i32::try_from(kept.len()).unwrap_or(i32::MAX);
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&bytes[..HEADER_LEN]);
    out.extend_from_slice(&body);
    put_i16(&mut out, field::ATTRIBUTES, attributes);
    put_i64(&mut out, field::BASE_TIMESTAMP, base_timestamp);
    put_i32(&mut out, field::RECORDS_COUNT, count);
    finish(&mut out);
    Ok(out)
}

/// The records of a stored batch, decompressed (bounded by
/// [`DECOMPRESSED_BATCH_MAX_BYTES`]) when the batch is compressed.
pub(crate) fn records_section<'a>(
    bytes: &'a [u8],
    header: &BatchHeader,
) -> Result<Cow<'a, [u8]>, RewriteError> {
    let offset = header.base_offset;
    let codec = header
        .attributes
        .compression()
        .map_err(|source| RewriteError::Malformed { offset, source })?;
    let raw = &bytes[HEADER_LEN..];
    if codec == Compression::None {
        return Ok(Cow::Borrowed(raw));
    }
    compression::decompress(codec, raw, DECOMPRESSED_BATCH_MAX_BYTES)
        .map(Cow::Owned)
        .map_err(|source| RewriteError::Codec { offset, source })
}

/// The batch's header alone, with no records and no codec: what Kafka keeps of an emptied
/// batch of an idempotent producer.
fn empty_batch(bytes: &[u8], header: &BatchHeader) -> Vec<u8> {
    let mut out = bytes[..HEADER_LEN].to_vec();
    let attributes = header.attributes.0 & !0x07;
    put_i16(&mut out, field::ATTRIBUTES, attributes);
    put_i32(&mut out, field::RECORDS_COUNT, 0);
    finish(&mut out);
    out
}

/// An empty batch with no producer covering offsets `first..=last`, newest timestamp
/// `max_timestamp_ms`, written with `leader_epoch`. `last - first` must fit an `i32`.
pub(crate) fn filler(first: i64, last: i64, max_timestamp_ms: i64, leader_epoch: i32) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    put_i64(&mut out, field::BASE_OFFSET, first);
    put_i32(&mut out, field::PARTITION_LEADER_EPOCH, leader_epoch);
    out[field::MAGIC] = MAGIC_V2 as u8;
    put_i16(&mut out, field::ATTRIBUTES, 0);
    put_i32(
        &mut out,
        field::LAST_OFFSET_DELTA,
        i32::try_from(last - first).unwrap_or(i32::MAX),
    );
    put_i64(&mut out, field::BASE_TIMESTAMP, max_timestamp_ms);
    put_i64(&mut out, field::MAX_TIMESTAMP, max_timestamp_ms);
    put_i64(&mut out, field::PRODUCER_ID, -1);
    put_i16(&mut out, field::PRODUCER_EPOCH, -1);
    put_i32(&mut out, field::BASE_SEQUENCE, -1);
    put_i32(&mut out, field::RECORDS_COUNT, 0);
    finish(&mut out);
    out
}

/// Sets `BatchLength` and the CRC-32C once everything else is in place.
fn finish(out: &mut [u8]) {
    let length = i32::try_from(out.len() - LENGTH_PREFIX_LEN).unwrap_or(i32::MAX);
    put_i32(out, field::BATCH_LENGTH, length);
    let crc = crc32c::crc32c(&out[field::ATTRIBUTES..]);
    out[field::CRC..field::CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Encodes a record as the v2 format has it, with its own offset delta and the given
/// timestamp delta.
fn encode_record(r: &Record<'_>, timestamp_delta: i64, out: &mut Vec<u8>) {
    let nullable_len =
        |b: Option<&[u8]>| b.map_or(varint_len(-1), |b| varint_len(len(b)) + b.len());
    let mut body_len = 1
        + varlong_len(timestamp_delta)
        + varint_len(r.offset_delta)
        + nullable_len(r.key)
        + nullable_len(r.value)
        + varint_len(len_of(r.headers.len()));
    for h in &r.headers {
        body_len += varint_len(len(h.key)) + h.key.len() + nullable_len(h.value);
    }
    encode_varint(len_of(body_len), out);
    out.put_i8(r.attributes);
    encode_varlong(timestamp_delta, out);
    encode_varint(r.offset_delta, out);
    put_nullable(out, r.key);
    put_nullable(out, r.value);
    encode_varint(len_of(r.headers.len()), out);
    for h in &r.headers {
        encode_varint(len(h.key), out);
        out.put_slice(h.key);
        put_nullable(out, h.value);
    }
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            encode_varint(len(b), out);
            out.put_slice(b);
        }
        None => encode_varint(-1, out),
    }
}

/// Lengths inside a stored batch came from a batch of at most 2 GiB.
fn len(b: &[u8]) -> i32 {
    len_of(b.len())
}

fn len_of(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn put_i16(out: &mut [u8], at: usize, v: i16) {
    out[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn put_i32(out: &mut [u8], at: usize, v: i32) {
    out[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn put_i64(out: &mut [u8], at: usize, v: i64) {
    out[at..at + 8].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_protocol::record_batch::{
        BatchBuilder, RecordInput, set_base_offset, validate_batch, validate_stored_batch,
        with_compressed_records,
    };

    fn batch(records: &[(&[u8], Option<&[u8]>)], base: i64) -> Vec<u8> {
        let mut b = BatchBuilder::new();
        for (i, (k, v)) in records.iter().enumerate() {
            b.push(RecordInput {
                key: Some(k),
                value: *v,
                timestamp: 1000 + i as i64,
                ..RecordInput::default()
            });
        }
        let mut bytes = b.build().expect("records").to_vec();
        set_base_offset(&mut bytes, base);
        bytes
    }

    fn rules() -> BatchRules {
        BatchRules {
            now_ms: 5000,
            delete_retention_ms: 100,
            producer_keeps: false,
        }
    }

    fn drop_key(key: &'static [u8]) -> impl FnMut(Candidate<'_>) -> Verdict {
        move |c| {
            if c.key == Some(key) {
                Verdict::Drop
            } else {
                Verdict::Keep
            }
        }
    }

    #[test]
    fn keeps_offsets_timestamps_and_span_of_kept_records() {
        let bytes = batch(
            &[(b"a", Some(b"1")), (b"b", Some(b"2")), (b"c", Some(b"3"))],
            40,
        );
        let header = validate_batch(&bytes).unwrap();
        let Outcome::Rewritten(out) =
            clean_batch(&bytes, &header, rules(), drop_key(b"b")).unwrap()
        else {
            panic!("a record was dropped")
        };
        let h = validate_stored_batch(&out).unwrap();
        assert_eq!(
            (h.base_offset, h.last_offset_delta, h.records_count),
            (40, 2, 2)
        );
        let got: Vec<_> = Records::new(&out)
            .unwrap()
            .map(|r| r.unwrap())
            .map(|r| {
                (
                    r.offset(h.base_offset),
                    r.timestamp(h.base_timestamp),
                    r.key.unwrap().to_vec(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![(40, 1000, b"a".to_vec()), (42, 1002, b"c".to_vec())]
        );
        assert!(matches!(
            clean_batch(&bytes, &header, rules(), |_| Verdict::Keep).unwrap(),
            Outcome::Unchanged
        ));
    }

    #[test]
    fn tombstones_get_a_horizon_then_go() {
        let bytes = batch(&[(b"a", None), (b"b", Some(b"2"))], 0);
        let header = validate_batch(&bytes).unwrap();
        let Outcome::Rewritten(first) =
            clean_batch(&bytes, &header, rules(), |_| Verdict::Keep).unwrap()
        else {
            panic!("a horizon must be set")
        };
        let h = validate_stored_batch(&first).unwrap();
        assert_eq!(h.attributes.0 & DELETE_HORIZON, DELETE_HORIZON);
        assert_eq!(h.base_timestamp, 5100);
        let ts: Vec<_> = Records::new(&first)
            .unwrap()
            .map(|r| r.unwrap().timestamp(h.base_timestamp))
            .collect();
        assert_eq!(ts, vec![1000, 1001]);
        let early = BatchRules {
            now_ms: 5099,
            ..rules()
        };
        assert!(matches!(
            clean_batch(&first, &h, early, |_| Verdict::Keep).unwrap(),
            Outcome::Unchanged
        ));
        let late = BatchRules {
            now_ms: 5100,
            ..rules()
        };
        let Outcome::Rewritten(second) = clean_batch(&first, &h, late, |_| Verdict::Keep).unwrap()
        else {
            panic!("the tombstone expired")
        };
        assert_eq!(validate_stored_batch(&second).unwrap().records_count, 1);
    }

    #[test]
    fn compressed_batches_keep_their_codec() {
        let plain = batch(&[(b"a", Some(b"1")), (b"b", Some(b"2"))], 7);
        let compressed = compression::compress(Compression::Lz4, &plain[HEADER_LEN..]).unwrap();
        let mut bytes = with_compressed_records(&plain, Compression::Lz4, &compressed)
            .unwrap()
            .to_vec();
        set_base_offset(&mut bytes, 7);
        let header = validate_batch(&bytes).unwrap();
        let Outcome::Rewritten(out) =
            clean_batch(&bytes, &header, rules(), drop_key(b"a")).unwrap()
        else {
            panic!("a record was dropped")
        };
        let h = validate_stored_batch(&out).unwrap();
        assert_eq!(h.attributes.compression().unwrap(), Compression::Lz4);
        let records =
            compression::decompress(Compression::Lz4, &out[HEADER_LEN..], 1 << 20).unwrap();
        let keys: Vec<_> = Records::from_raw(&records, h.records_count)
            .map(|r| r.unwrap().offset(7))
            .collect();
        assert_eq!(keys, vec![8]);
    }

    #[test]
    fn emptied_batches_are_kept_for_producers_or_dropped() {
        let bytes = batch(&[(b"a", Some(b"1"))], 3);
        let header = validate_batch(&bytes).unwrap();
        assert!(matches!(
            clean_batch(&bytes, &header, rules(), drop_key(b"a")).unwrap(),
            Outcome::Dropped
        ));
        let keeps = BatchRules {
            producer_keeps: true,
            ..rules()
        };
        let Outcome::Rewritten(out) = clean_batch(&bytes, &header, keeps, drop_key(b"a")).unwrap()
        else {
            panic!("kept empty")
        };
        let h = validate_stored_batch(&out).unwrap();
        assert_eq!(
            (
                h.base_offset,
                h.last_offset_delta,
                h.records_count,
                out.len()
            ),
            (3, 0, 0, HEADER_LEN)
        );
        let f = filler(10, 19, 77, 0);
        let h = validate_stored_batch(&f).unwrap();
        assert_eq!(
            (
                h.base_offset,
                h.last_offset(),
                h.records_count,
                h.producer_id
            ),
            (10, 19, 0, -1)
        );
    }
}
